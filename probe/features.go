package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Features holds N feature vectors of dimension D, row-major, and their
// labels.
type Features struct {
	N, D    int
	X       []float32 // [N, D]: row i is the feature vector of sample i
	Labels  []int     // [N], each in [0, Classes)
	Classes int       // number of classes of the dataset the samples came from
}

// Check reports the first structural problem of f: a non-positive N or D,
// Classes < 1, X or Labels of the wrong length, or a label outside
// [0, Classes). It does not look at the values of X (see CheckFinite).
func (f *Features) Check() error {
	switch {
	case f == nil:
		return errors.New("nil features")
	case f.N < 1 || f.D < 1:
		return fmt.Errorf("%d samples of dimension %d: want at least 1 of each", f.N, f.D)
	case f.N > math.MaxInt/f.D:
		return fmt.Errorf("%d samples of dimension %d overflow int", f.N, f.D)
	case len(f.X) != f.N*f.D:
		return fmt.Errorf("%d values for %d samples of dimension %d", len(f.X), f.N, f.D)
	case len(f.Labels) != f.N:
		return fmt.Errorf("%d labels for %d samples", len(f.Labels), f.N)
	case f.Classes < 1:
		return fmt.Errorf("%d classes: want at least 1", f.Classes)
	}
	for i, l := range f.Labels {
		if l < 0 || l >= f.Classes {
			return fmt.Errorf("sample %d: label %d outside [0, %d)", i, l, f.Classes)
		}
	}
	return nil
}

// CheckFinite returns an error wrapping ErrNonFinite that names the first
// sample and feature of f holding a NaN or an infinity, or nil.
func (f *Features) CheckFinite() error {
	for i, v := range f.X {
		if isNonFinite(v) {
			return fmt.Errorf("sample %d, feature %d: %v: %w", i/f.D, i%f.D, v, ErrNonFinite)
		}
	}
	return nil
}

func isNonFinite(v float32) bool {
	return math.Float32bits(v)&0x7f800000 == 0x7f800000
}

// ErrUnlabeled is returned (wrapped) by Extract for a record without a
// label: a probe needs every sample's class.
var ErrUnlabeled = errors.New("record has no label")

// ErrNonFinite is returned (wrapped) for a feature that is NaN or infinite.
var ErrNonFinite = errors.New("non-finite feature")

// Featurizer maps a batch of images to features. x is [N, H, W, C] float32
// in [0, 1] (the dataset's pixels / 255, its side and channels). Features
// returns [N, D], or any shape [N, ...] whose trailing dimensions it
// flattens to D; the result may be reused by the next call. It is not
// called concurrently.
type Featurizer interface {
	Features(x *nn.Tensor) *nn.Tensor
}

// Pixels is the raw-pixel baseline featurizer: each image flattened
// (channels-last) to H·W·C values in [0, 1].
type Pixels struct{}

// Features returns x viewed as [N, H·W·C]. It panics if x has rank 0.
func (Pixels) Features(x *nn.Tensor) *nn.Tensor {
	if len(x.Shape) == 0 {
		panic("probe: Pixels.Features: rank-0 tensor")
	}
	n := x.Shape[0]
	d := 0
	if n > 0 {
		d = len(x.Data) / n
	}
	return nn.FromData(x.Data, n, d)
}

// Progress receives reports from long-running work; the command line
// implements it with progress bars. It has the method set of
// pipeline.Progress. Calls come from one goroutine at a time.
type Progress interface {
	Start(what string, total int) // total < 0 when unknown
	Add(n int)
	Done()
}

// NoProgress discards every report.
type NoProgress struct{}

func (NoProgress) Start(string, int) {}
func (NoProgress) Add(int)           {}
func (NoProgress) Done()             {}

// DefaultBatch is the number of images Extract passes to the featurizer at
// a time when its batch argument is ≤ 0.
const DefaultBatch = 256

// pixelValue[v] is float32(v) / 255.
var pixelValue = func() (t [256]float32) {
	for v := range t {
		t[v] = float32(v) / 255
	}
	return t
}()

// imageBatch is a batch of decoded images on its way to the featurizer.
type imageBatch struct {
	pix    []float32  // storage for batch images
	x      *nn.Tensor // [n, H, W, C], a view of pix
	labels []int      // [n]
	first  int        // index of the first record within the split
	err    error      // when set, the producer stopped here
}

// Extract computes the features of every record of split of ds, in record
// order, batch images at a time (DefaultBatch when batch ≤ 0), decoding the
// next batch on another goroutine while f runs. The images reach f as
// [n, Size, Size, Channels] float32 pixels / 255 (n ≤ batch).
//
// Errors name the dataset and split: the split missing or empty; a record
// without a label (wrapping ErrUnlabeled, naming the record's index and
// origin); a featurizer result whose shape is not [n, D] with the same D
// for every batch; a non-finite feature (wrapping ErrNonFinite, naming the
// record); a damaged shard (the *data.CorruptError, wrapped); ctx's error
// when ctx is done.
func Extract(ctx context.Context, ds *data.Dataset, split string, f Featurizer, batch int, p Progress) (*Features, error) {
	if p == nil {
		p = NoProgress{}
	}
	if batch <= 0 {
		batch = DefaultBatch
	}
	where := fmt.Sprintf("probe: dataset %q split %q", ds.Dir(), split)
	n := ds.Len(split)
	if n == 0 {
		return nil, fmt.Errorf("%s: no records (the dataset has splits %q)", where, ds.Splits())
	}
	man := ds.Manifest()
	if len(man.Classes) == 0 {
		return nil, fmt.Errorf("%s: the dataset has no classes: %w", where, ErrUnlabeled)
	}
	side, ch := man.Size, man.Channels
	pix := side * side * ch
	batch = min(batch, n)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Two batches circulate between the producer, which fills one from
	// the shards, and this goroutine, which featurizes the other.
	free := make(chan *imageBatch, 2)
	full := make(chan *imageBatch, 1)
	for range 2 {
		free <- &imageBatch{pix: make([]float32, batch*pix), labels: make([]int, batch)}
	}
	go func() {
		defer close(full)
		var b *imageBatch
		k, i := 0, 0
		emit := func() bool {
			b.x = nn.FromData(b.pix[:k*pix], k, side, side, ch)
			b.labels = b.labels[:k]
			select {
			case full <- b:
				b, k = nil, 0
				return true
			case <-ctx.Done():
				return false
			}
		}
		err := ds.Stream(ctx, split, 0, 0, func(r data.Record) error {
			if b == nil {
				select {
				case b = <-free:
				case <-ctx.Done():
					return ctx.Err()
				}
				b.labels = b.labels[:batch]
				b.first = i
			}
			if r.Label < 0 {
				return fmt.Errorf("record %d (%s): %w", i, r.Origin, ErrUnlabeled)
			}
			if len(r.Pixels) != pix {
				return fmt.Errorf("record %d (%s): %d pixel values, want %d", i, r.Origin, len(r.Pixels), pix)
			}
			dst := b.pix[k*pix : (k+1)*pix]
			for j, v := range r.Pixels {
				dst[j] = pixelValue[v]
			}
			b.labels[k] = r.Label
			k++
			i++
			if k == batch && !emit() {
				return ctx.Err()
			}
			return nil
		})
		if err == nil && b != nil && k > 0 && !emit() {
			err = ctx.Err()
		}
		if err == nil && i != n {
			err = fmt.Errorf("read %d records, the manifest says %d", i, n)
		}
		if err != nil {
			select {
			case full <- &imageBatch{err: err}:
			case <-ctx.Done():
			}
		}
	}()

	p.Start(fmt.Sprintf("features %s", split), n)
	defer p.Done()
	out := &Features{N: n, Labels: make([]int, n), Classes: len(man.Classes)}
	for b := range full {
		if b.err != nil {
			return nil, fmt.Errorf("%s: %w", where, b.err)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		m := len(b.labels)
		y := f.Features(b.x)
		if y == nil || len(y.Shape) == 0 || y.Shape[0] != m || len(y.Data) == 0 || len(y.Data)%m != 0 {
			shape := []int(nil)
			if y != nil {
				shape = y.Shape
			}
			return nil, fmt.Errorf("%s: records %d to %d: the featurizer returned shape %v for %d images", where, b.first, b.first+m-1, shape, m)
		}
		d := len(y.Data) / m
		if out.X == nil {
			if n > math.MaxInt/d {
				return nil, fmt.Errorf("%s: %d records of %d features overflow int", where, n, d)
			}
			out.D = d
			out.X = make([]float32, n*d)
		} else if d != out.D {
			return nil, fmt.Errorf("%s: records %d to %d: the featurizer returned %d features per image, earlier batches %d", where, b.first, b.first+m-1, d, out.D)
		}
		if !kernel.AllFinite(y.Data) {
			j := slices.IndexFunc(y.Data, isNonFinite)
			return nil, fmt.Errorf("%s: record %d: feature %d is %v: %w", where, b.first+j/d, j%d, y.Data[j], ErrNonFinite)
		}
		copy(out.X[b.first*d:], y.Data)
		copy(out.Labels[b.first:], b.labels)
		p.Add(m)
		free <- b
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if out.X == nil {
		return nil, fmt.Errorf("%s: no records were read", where)
	}
	return out, nil
}
