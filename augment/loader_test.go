package augment

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

// countingSampler is a sampler of two views and two labels whose values
// record the image and the first draw of the sample's generator; it fails
// on image bad.
type countingSampler struct{ bad int }

var errBadImage = errors.New("bad image")

func (countingSampler) Views() []View {
	return []View{{Name: "a", Count: 2, Side: 1}, {Name: "b", Count: 1, Side: 2}}
}
func (countingSampler) Labels() int         { return 2 }
func (s countingSampler) NewDrawer() Drawer { return s }
func (s countingSampler) Draw(img Image, rng *rand.Rand, out Sample) error {
	if int(img.Pix[0]) == s.bad {
		return errBadImage
	}
	r := rng.Float32()
	for k := range out.Views {
		for i := range out.Views[k] {
			out.Views[k][i] = float32(img.Pix[0]) + r
		}
	}
	out.Labels[0], out.Labels[1] = int(img.Pix[0]), img.Label
	return nil
}

// numberedDataset has n one-pixel grey images whose value is their index.
func numberedDataset(t *testing.T, n int) *data.Dataset {
	t.Helper()
	dir := t.TempDir() + "/ds"
	w, err := data.Create(dir, data.Preprocess{Size: 1, Channels: 1}, []string{"a", "b"}, data.Provenance{Format: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Add(data.Train, data.Record{Pixels: []uint8{uint8(i)}, Label: i % 2, Origin: "img" + string(rune('A'+i))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ds, err := data.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestLoaderLayout checks where the loader puts each sample's views and
// labels, and PerImage.
func TestLoaderLayout(t *testing.T) {
	ds := numberedDataset(t, 6)
	l, err := NewLoader(ds, data.Train, countingSampler{bad: -1}, LoaderConfig{Batch: 4, PerImage: 2, Workers: 2, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.BatchesPerEpoch(); got != 3 {
		t.Fatalf("BatchesPerEpoch = %d, want ⌈6·2/4⌉ = 3", got)
	}
	s := l.Stream(context.Background(), 0, 0)
	defer s.Close()
	for k := range 3 {
		b, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Views[0]) != 4*2 || len(b.Views[1]) != 4*4 || len(b.Labels) != 8 {
			t.Fatalf("batch %d: %d, %d values, %d labels", k, len(b.Views[0]), len(b.Views[1]), len(b.Labels))
		}
		for j := range b.N {
			i := k*4 + j
			img := i / 2
			r := NewRand(3, 0, i).Float32()
			want := float32(img) + r
			if b.Images[j] != img || b.Labels[2*j] != img || b.Labels[2*j+1] != img%2 ||
				b.Views[0][2*j] != want || b.Views[0][2*j+1] != want || b.Views[1][4*j+3] != want {
				t.Fatalf("batch %d sample %d: image %d labels %v views %v %v", k, j, b.Images[j], b.Labels, b.Views[0], b.Views[1])
			}
		}
		b.Release()
	}
}

// TestLoaderDrawError checks that a sample that cannot be drawn ends the
// stream with an error naming it.
func TestLoaderDrawError(t *testing.T) {
	ds := numberedDataset(t, 6)
	l, err := NewLoader(ds, data.Train, countingSampler{bad: 4}, LoaderConfig{Batch: 2, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	s := l.Stream(context.Background(), 0, 0)
	defer s.Close()
	for k := range 2 {
		b, err := s.Next()
		if err != nil {
			t.Fatalf("batch %d: %v", k, err)
		}
		b.Release()
	}
	_, err = s.Next()
	if !errors.Is(err, errBadImage) || !strings.Contains(err.Error(), `sample 4 (image 4, "imgE")`) {
		t.Fatalf("err = %v", err)
	}
	if _, err2 := s.Next(); err2 != err {
		t.Errorf("the next call returned %v", err2)
	}
}
