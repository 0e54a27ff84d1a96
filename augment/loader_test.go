package augment

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
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

// epochOrder returns l's order of epoch e.
func epochOrder(t *testing.T, l *Loader, e int) []int {
	t.Helper()
	o, err := l.Order(e)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// indexedDataset has n one-pixel RGB images whose three bytes spell their
// index, in shards of data.ShardRecords: n above that makes several.
func indexedDataset(t *testing.T, n int) *data.Dataset {
	t.Helper()
	dir := t.TempDir() + "/ds"
	w, err := data.Create(dir, data.Preprocess{Size: 1, Channels: 3}, nil, data.Provenance{Format: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Add(data.Train, data.Record{Pixels: []uint8{uint8(i), uint8(i >> 8), uint8(i >> 16)}, Label: -1}); err != nil {
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

// indexSampler's one sample is the image's index (from its pixels) and
// the sample's first draw.
type indexSampler struct{}

func (indexSampler) Views() []View       { return []View{{Name: "index", Count: 1, Side: 1}} }
func (indexSampler) Labels() int         { return 1 }
func (s indexSampler) NewDrawer() Drawer { return s }
func (indexSampler) Draw(img Image, rng *rand.Rand, out Sample) error {
	out.Labels[0] = int(img.Pix[0]) | int(img.Pix[1])<<8 | int(img.Pix[2])<<16
	out.Views[0][0], out.Views[0][1], out.Views[0][2] = rng.Float32(), 0, 0
	return nil
}

// TestLoaderStreamOrder checks a shuffled loader over a split of several
// shards: each epoch's samples come from its Order with their documented
// draws, every image at most once an epoch, whatever the worker count;
// and a stream started at any batch gives what a stream from the start
// gives there, across epochs, with PerImage samples straddling batches.
func TestLoaderStreamOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a dataset of 25,000 records")
	}
	const n = 2*data.ShardRecords + 5000
	ds := indexedDataset(t, n)
	if len(ds.Manifest().Shards) != 3 {
		t.Fatalf("%d shards, want 3", len(ds.Manifest().Shards))
	}
	cfg := LoaderConfig{Batch: 1000, PerImage: 3, Seed: 5, Shuffle: true, ShuffleBuffer: 3000, Prefetch: 2}
	type sample struct {
		img, index int
		draw       float32
	}
	read := func(workers, epoch, index, k int) [][]sample {
		c := cfg
		c.Workers = workers
		l, err := NewLoader(ds, data.Train, indexSampler{}, c)
		if err != nil {
			t.Fatal(err)
		}
		s := l.Stream(context.Background(), epoch, index)
		defer s.Close()
		var out [][]sample
		for range k {
			b, err := s.Next()
			if err != nil {
				t.Fatal(err)
			}
			var bs []sample
			for j := range b.N {
				if b.Images[j] != b.Labels[j] {
					t.Fatalf("batch (%d, %d) sample %d: Images %d, the image's own index %d", b.Epoch, b.Index, j, b.Images[j], b.Labels[j])
				}
				bs = append(bs, sample{b.Labels[j], b.Epoch*1000 + b.Index, b.Views[0][j*3]})
			}
			out = append(out, bs)
			b.Release()
		}
		return out
	}
	l, _ := NewLoader(ds, data.Train, indexSampler{}, cfg)
	per := l.BatchesPerEpoch()
	if per != n*3/1000 {
		t.Fatalf("BatchesPerEpoch %d", per)
	}
	ref := read(1, 0, 0, per+3)
	for e := range 2 {
		order := epochOrder(t, l, e)
		if slices.Equal(order[:100], epochOrder(t, l, e+1)[:100]) {
			t.Fatalf("epochs %d and %d start alike", e, e+1)
		}
		for k := range per {
			if e == 1 && k == 3 {
				break
			}
			for j, s := range ref[e*per+k] {
				i := k*1000 + j
				if s.img != order[i/3] || s.draw != NewRand(5, e, i).Float32() {
					t.Fatalf("epoch %d sample %d: image %d draw %v, want %d %v", e, i, s.img, s.draw, order[i/3], NewRand(5, e, i).Float32())
				}
			}
		}
	}
	if got := read(3, 0, 0, per+3); !reflect.DeepEqual(got, ref) {
		t.Fatal("3 workers give other batches than 1")
	}
	for _, k := range []int{1, 7, 40, per - 1, per, per + 1} {
		got := read(2, k/per, k%per, len(ref)-k)
		if !reflect.DeepEqual(got, ref[k:]) {
			t.Fatalf("a stream from batch %d differs", k)
		}
	}
}

// TestLoaderParts checks that the slices of Parts loaders, put side by
// side, are the whole loader's batches, shuffled or not, with a short
// last batch split unevenly.
func TestLoaderParts(t *testing.T) {
	ds := numberedDataset(t, 13)
	for _, tc := range []struct {
		name    string
		shuffle bool
		parts   int
	}{{"shuffled/2", true, 2}, {"shuffled/3", true, 3}, {"pass/3", false, 3}, {"pass/4", false, 4}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := LoaderConfig{Batch: 6, PerImage: 2, Workers: 2, Seed: 7, Shuffle: tc.shuffle, ShuffleBuffer: 5}
			whole, err := NewLoader(ds, data.Train, countingSampler{bad: -1}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			var streams []*Stream
			for p := range tc.parts {
				c := cfg
				c.Part, c.Parts = p, tc.parts
				l, err := NewLoader(ds, data.Train, countingSampler{bad: -1}, c)
				if err != nil {
					t.Fatal(err)
				}
				s := l.Stream(context.Background(), 1, 1)
				defer s.Close()
				streams = append(streams, s)
			}
			ws := whole.Stream(context.Background(), 1, 1)
			defer ws.Close()
			for k := range 2 * whole.BatchesPerEpoch() {
				w, err := ws.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				var views [2][]float32
				var labels, images []int
				for p, s := range streams {
					b, err := s.Next()
					if err != nil {
						t.Fatalf("batch %d part %d: %v", k, p, err)
					}
					if b.Epoch != w.Epoch || b.Index != w.Index || b.First != len(images) {
						t.Fatalf("batch %d part %d: epoch %d index %d first %d, want %d %d %d", k, p, b.Epoch, b.Index, b.First, w.Epoch, w.Index, len(images))
					}
					views[0] = append(views[0], b.Views[0]...)
					views[1] = append(views[1], b.Views[1]...)
					labels = append(labels, b.Labels...)
					images = append(images, b.Images...)
					b.Release()
				}
				if !slices.Equal(views[0], w.Views[0]) || !slices.Equal(views[1], w.Views[1]) ||
					!slices.Equal(labels, w.Labels) || !slices.Equal(images, w.Images) {
					t.Fatalf("batch %d: the parts give images %v views %v, the whole %v %v", k, images, views[0], w.Images, w.Views[0])
				}
				w.Release()
			}
		})
	}
	for _, c := range []LoaderConfig{{Part: 2, Parts: 2}, {Part: -1, Parts: 2}, {Part: 1}, {Parts: -2}} {
		if _, err := NewLoader(ds, data.Train, countingSampler{bad: -1}, c); err == nil || !strings.Contains(err.Error(), "part") {
			t.Errorf("part %d of %d: error %v, want one naming the part", c.Part, c.Parts, err)
		}
	}
}
