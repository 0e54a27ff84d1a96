package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
)

// tinyRecord returns record i of a test dataset: deterministic pixels and
// label i mod classes (-1 when classes is 0).
func tinyRecord(side, ch, classes, i int, split string) data.Record {
	px := make([]uint8, side*side*ch)
	for j := range px {
		px[j] = uint8(i*37 + j*11 + len(split))
	}
	label := -1
	if classes > 0 {
		label = i % classes
	}
	return data.Record{Pixels: px, Label: label, Origin: fmt.Sprintf("%s/%04d.png", split, i)}
}

// writeTiny writes a dataset of side×side×ch images with the given
// classes and split sizes into a new directory, and opens it. edit, when
// not nil, may change each record before it is added.
func writeTiny(t testing.TB, side, ch, classes int, counts map[string]int, edit func(split string, i int, r *data.Record)) *data.Dataset {
	t.Helper()
	var names []string
	for c := range classes {
		names = append(names, fmt.Sprintf("c%d", c))
	}
	dir := filepath.Join(t.TempDir(), "ds")
	w, err := data.Create(dir, data.Preprocess{Size: side, Channels: ch}, names, data.Provenance{Format: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for _, split := range []string{data.Train, data.Test, data.Unlabeled} {
		for i := range counts[split] {
			r := tinyRecord(side, ch, classes, i, split)
			if edit != nil {
				edit(split, i, &r)
			}
			if err := w.Add(split, r); err != nil {
				t.Fatal(err)
			}
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

// countingProgress records the work reported.
type countingProgress struct {
	starts, added, dones int
	total                int
}

func (p *countingProgress) Start(_ string, total int) { p.starts++; p.total = total }
func (p *countingProgress) Add(n int)                 { p.added += n }
func (p *countingProgress) Done()                     { p.dones++ }

// TestExtractPixels checks that Pixels features are the pixels / 255 in
// record order, with the labels, for batch sizes that divide the split and
// that do not.
func TestExtractPixels(t *testing.T) {
	const side, ch, classes, n = 4, 3, 3, 37
	ds := writeTiny(t, side, ch, classes, map[string]int{data.Train: n, data.Test: 5}, nil)
	for _, batch := range []int{0, 1, 8, n, 100} {
		t.Run(fmt.Sprintf("batch%d", batch), func(t *testing.T) {
			var p countingProgress
			f, err := Extract(context.Background(), ds, data.Train, Pixels{}, batch, &p)
			if err != nil {
				t.Fatal(err)
			}
			d := side * side * ch
			if f.N != n || f.D != d || f.Classes != classes || len(f.X) != n*d || len(f.Labels) != n {
				t.Fatalf("N %d, D %d, classes %d, %d values, %d labels", f.N, f.D, f.Classes, len(f.X), len(f.Labels))
			}
			for i := range n {
				r := tinyRecord(side, ch, classes, i, data.Train)
				if f.Labels[i] != r.Label {
					t.Fatalf("record %d: label %d, want %d", i, f.Labels[i], r.Label)
				}
				for j, v := range r.Pixels {
					if got, want := f.X[i*d+j], float32(v)/255; got != want {
						t.Fatalf("record %d, value %d: %v, want %v", i, j, got, want)
					}
				}
			}
			if p.starts != 1 || p.dones != 1 || p.added != n || p.total != n {
				t.Errorf("progress: %+v", p)
			}
		})
	}
}

// featurizerFunc adapts a function to Featurizer.
type featurizerFunc func(x *nn.Tensor) *nn.Tensor

func (f featurizerFunc) Features(x *nn.Tensor) *nn.Tensor { return f(x) }

// TestExtractFeaturizer checks that the featurizer sees [n, H, W, C]
// batches and that its (reused) output is copied.
func TestExtractFeaturizer(t *testing.T) {
	ds := writeTiny(t, 3, 1, 2, map[string]int{data.Train: 10}, nil)
	out := nn.NewTensor(4, 2)
	var shapes []string
	f, err := Extract(context.Background(), ds, data.Train, featurizerFunc(func(x *nn.Tensor) *nn.Tensor {
		shapes = append(shapes, fmt.Sprint(x.Shape))
		n := x.Shape[0]
		y := out.Rows(0, n)
		for i := range n {
			var s float32
			for _, v := range x.Data[i*9 : (i+1)*9] {
				s += v
			}
			y.Data[2*i], y.Data[2*i+1] = s, -s
		}
		return y
	}), 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(shapes, " "); got != "[4 3 3 1] [4 3 3 1] [2 3 3 1]" {
		t.Errorf("batch shapes %s", got)
	}
	for i := range 10 {
		var s float32
		for _, v := range tinyRecord(3, 1, 2, i, data.Train).Pixels {
			s += float32(v) / 255
		}
		if math.Abs(float64(f.X[2*i]-s)) > 1e-5 || f.X[2*i+1] != -f.X[2*i] {
			t.Errorf("record %d: features %v, want [%v %v]", i, f.X[2*i:2*i+2], s, -s)
		}
	}
}

func TestExtractErrors(t *testing.T) {
	labelled := writeTiny(t, 2, 1, 2, map[string]int{data.Train: 9, data.Unlabeled: 3}, func(split string, i int, r *data.Record) {
		if split == data.Unlabeled || i == 6 {
			r.Label = -1
		}
	})
	unlabelled := writeTiny(t, 2, 1, 0, map[string]int{data.Unlabeled: 4}, nil)
	clean := writeTiny(t, 2, 1, 2, map[string]int{data.Train: 9}, nil)
	nanAt := func(rec int) Featurizer {
		seen := 0
		return featurizerFunc(func(x *nn.Tensor) *nn.Tensor {
			y := Pixels{}.Features(x).Clone()
			if rec >= seen && rec < seen+x.Shape[0] {
				y.Data[(rec-seen)*4+1] = float32(math.Inf(1))
			}
			seen += x.Shape[0]
			return y
		})
	}
	for _, tc := range []struct {
		name  string
		ds    *data.Dataset
		split string
		f     Featurizer
		want  string
		is    error
	}{
		{"missing split", labelled, data.Test, Pixels{}, `split "test": no records`, nil},
		{"unlabelled record", labelled, data.Train, Pixels{}, "record 6 (train/0006.png)", ErrUnlabeled},
		{"unlabelled split", labelled, data.Unlabeled, Pixels{}, "record 0 (unlabeled/0000.png)", ErrUnlabeled},
		{"unlabelled dataset", unlabelled, data.Unlabeled, Pixels{}, "no classes", ErrUnlabeled},
		{"non-finite", clean, data.Train, nanAt(5), "record 5: feature 1 is +Inf", ErrNonFinite},
		{"wrong rows", clean, data.Train, featurizerFunc(func(x *nn.Tensor) *nn.Tensor { return nn.NewTensor(1, 3) }),
			"returned shape [1 3] for 4 images", nil},
		{"changing width", clean, data.Train, featurizerFunc(func(x *nn.Tensor) *nn.Tensor {
			return nn.NewTensor(x.Shape[0], 1+x.Shape[0])
		}), "records 8 to 8: the featurizer returned 2 features per image, earlier batches 5", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Extract(context.Background(), tc.ds, tc.split, tc.f, 4, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not match %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.ds.Dir()) {
				t.Errorf("error %v does not name the dataset %s", err, tc.ds.Dir())
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Extract(ctx, labelled, data.Train, Pixels{}, 4, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
}
