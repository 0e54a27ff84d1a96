package augment

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/patchwise-ml/patchwise/data"
)

// LoaderConfig configures a PairLoader. Its zero value means the defaults
// given on each field.
type LoaderConfig struct {
	Pairs     PairConfig `json:"pairs"`     // how pairs are drawn; resolved for the dataset's image size
	Transform Transform  `json:"transform"` // applied to each crop independently, after resizing to Size

	// Size is the side S of the crops in a batch, in pixels: crops are
	// resized to S×S with a box filter (Resize) when the patch is not S.
	// Default: the patch size.
	Size int `json:"size"`

	Batch    int    `json:"batch"`     // pairs per batch, N; default 128
	PerImage int    `json:"per_image"` // pairs drawn from each image per epoch, next to each other in a batch; default 1
	Workers  int    `json:"workers"`   // goroutines filling batches; default runtime.GOMAXPROCS(0)
	Prefetch int    `json:"prefetch"`  // batches made ahead of the consumer; default 2 × Workers
	Seed     uint64 `json:"seed"`
}

// PairBatch is one batch of crop pairs, channels-last. Give it back with
// Release when done with it, so its memory is reused.
type PairBatch struct {
	A, B   []float32 // [N, S, S, C]: first and second crop of each pair
	Labels []int     // [N]: direction from A to B, 0–7 (see the Label* constants)
	Images []int     // [N]: index within the split of each pair's image
	N      int       // pairs
	S      int       // crop side in pixels
	C      int       // channels
	Epoch  int       // the epoch, from 0
	Index  int       // the batch's index within its epoch, from 0

	free chan *PairBatch
}

// Release hands b back to its loader for reuse. b must not be used after.
func (b *PairBatch) Release() {
	if b == nil || b.free == nil {
		return
	}
	select {
	case b.free <- b:
	default:
	}
}

// PairLoader makes batches of crop pairs from one split of a dataset. It
// holds the whole split in memory (data.Dataset.Load): a split of 50,000
// 32×32 RGB images is 150 MB.
//
// An epoch is a seeded permutation perm_e of the split's n images
// (NewRand(seed, e, −1).Perm(n)); sample i of epoch e, for i in
// [0, n·PerImage), is drawn from image perm_e[i / PerImage], with every
// random draw (the pair, then the transform of A, then of B) taken from
// NewRand(seed, e, i). Batch k of the epoch holds samples [k·N, (k+1)·N);
// an epoch has n·PerImage / N batches (rounded down: the samples left over
// are not used that epoch, a different random set each epoch). So a batch
// depends only on the dataset, the config and (epoch, index), never on the
// number of workers.
type PairLoader struct {
	cfg      LoaderConfig
	geom     Geometry
	recs     []data.Record
	size, ch int // image side and channels
	free     chan *PairBatch
}

// NewPairLoader loads split of ds into memory and returns a loader of
// batches from it. It returns every problem with cfg at once: bad
// settings, a pair geometry that does not fit the images (a
// *GeometryError), a split with fewer than Batch/PerImage images.
func NewPairLoader(ds *data.Dataset, split string, cfg LoaderConfig) (*PairLoader, error) {
	m := ds.Manifest()
	if n := ds.Len(split); n == 0 {
		return nil, fmt.Errorf("augment: dataset %q has no split %q", ds.Dir(), split)
	}
	l, err := newPairLoader(nil, m.Size, m.Channels, cfg)
	if err != nil {
		return nil, err
	}
	if err := l.checkCount(ds.Len(split)); err != nil {
		return nil, err
	}
	recs, err := ds.Load(split)
	if err != nil {
		return nil, err
	}
	l.recs = recs
	return l, nil
}

// newPairLoader checks cfg for size×size images of ch channels and fills
// in its defaults.
func newPairLoader(recs []data.Record, size, ch int, cfg LoaderConfig) (*PairLoader, error) {
	var errs []error
	g, err := cfg.Pairs.Geometry(size, size)
	if err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Transform.Validate(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Size < 0 {
		errs = append(errs, fmt.Errorf("augment: loader: size %d: want ≥ 1, or 0 for the patch size", cfg.Size))
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"batch", cfg.Batch}, {"per_image", cfg.PerImage}, {"workers", cfg.Workers}, {"prefetch", cfg.Prefetch}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("augment: loader: %s %d: want ≥ 1, or 0 for the default", f.name, f.v))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Size == 0 {
		cfg.Size = g.Patch
	}
	if cfg.Batch == 0 {
		cfg.Batch = 128
	}
	if cfg.PerImage == 0 {
		cfg.PerImage = 1
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	l := &PairLoader{cfg: cfg, geom: g, recs: recs, size: size, ch: ch,
		free: make(chan *PairBatch, cfg.Prefetch+cfg.Workers+2)}
	if recs != nil {
		if err := l.checkCount(len(recs)); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *PairLoader) checkCount(n int) error {
	if n*l.cfg.PerImage < l.cfg.Batch {
		return fmt.Errorf("augment: loader: %d images × %d pairs per image make less than one batch of %d", n, l.cfg.PerImage, l.cfg.Batch)
	}
	return nil
}

// Config returns the loader's configuration with its defaults filled in.
func (l *PairLoader) Config() LoaderConfig { return l.cfg }

// Geometry returns the pair geometry resolved for the dataset's images.
func (l *PairLoader) Geometry() Geometry { return l.geom }

// BatchesPerEpoch returns the number of batches in an epoch.
func (l *PairLoader) BatchesPerEpoch() int {
	return len(l.recs) * l.cfg.PerImage / l.cfg.Batch
}

// PairStream delivers batches in order, from a starting (epoch, index)
// onwards through the following epochs, made ahead by the loader's
// workers. It is used from one goroutine.
type PairStream struct {
	s *stream[*PairBatch]
}

// Stream starts the workers and returns the stream of batches beginning
// with batch index of epoch (0, 0 for a fresh run; a resumed run passes
// where it stopped). At most Prefetch batches are made ahead of Next.
// Cancelling ctx or calling Close stops the workers.
func (l *PairLoader) Stream(ctx context.Context, epoch, index int) *PairStream {
	plan := streamPlan{perEpoch: l.BatchesPerEpoch(), endless: true, shuffle: true, images: len(l.recs),
		seed: l.cfg.Seed, workers: l.cfg.Workers, prefetch: l.cfg.Prefetch}
	return &PairStream{startStream(ctx, epoch, index, plan, func() func(int, int, []int) (*PairBatch, error) {
		w := l.newWorker()
		return func(epoch, index int, perm []int) (*PairBatch, error) {
			b := l.batch()
			b.Epoch, b.Index = epoch, index
			if err := w.fill(b, perm); err != nil {
				b.Release()
				return nil, err
			}
			return b, nil
		}
	})}
}

// Next returns the next batch. After an error (ctx's, or a pair that could
// not be drawn) every later call returns the same error.
func (s *PairStream) Next() (*PairBatch, error) { return s.s.next() }

// Close stops the workers and waits for them; Next then returns
// context.Canceled. Batches already returned by Next stay valid until
// released.
func (s *PairStream) Close() { s.s.close() }

// batch returns a buffer from the free list, or a new one.
func (l *PairLoader) batch() *PairBatch {
	select {
	case b := <-l.free:
		return b
	default:
	}
	n, s, c := l.cfg.Batch, l.cfg.Size, l.ch
	return &PairBatch{
		A: make([]float32, n*s*s*c), B: make([]float32, n*s*s*c),
		Labels: make([]int, n), Images: make([]int, n),
		N: n, S: s, C: c, free: l.free,
	}
}

// worker holds one goroutine's scratch memory.
type worker struct {
	l      *PairLoader
	crop   Patch    // patch × patch × C
	resize *resizer // nil when the patch is already S
}

func (l *PairLoader) newWorker() *worker {
	p := l.geom.Patch
	w := &worker{l: l, crop: NewPatch(p, p, l.ch)}
	if p != l.cfg.Size {
		w.resize = newResizer(p, p, l.cfg.Size, l.cfg.Size, l.ch)
	}
	return w
}

// fill draws the pairs of batch b.
func (w *worker) fill(b *PairBatch, perm []int) error {
	cfg := &w.l.cfg
	n, s, c := b.N, b.S, b.C
	for j := range n {
		i := b.Index*n + j
		img := perm[i/cfg.PerImage]
		rng := NewRand(cfg.Seed, b.Epoch, i)
		p, err := w.l.geom.Sample(rng)
		if err != nil {
			return fmt.Errorf("augment: epoch %d sample %d (image %d): %w", b.Epoch, i, img, err)
		}
		b.Labels[j], b.Images[j] = p.Label, img
		for k, cr := range []Crop{p.A, p.B} {
			dst := b.A
			if k == 1 {
				dst = b.B
			}
			out := Patch{Pix: dst[j*s*s*c : (j+1)*s*s*c], W: s, H: s, C: c}
			pix := w.l.recs[img].Pixels
			if w.resize == nil {
				CropPatch(out, pix, w.l.size, w.l.size, c, cr)
			} else {
				CropPatch(w.crop, pix, w.l.size, w.l.size, c, cr)
				w.resize.resize(out, w.crop)
			}
			cfg.Transform.Apply(out, rng)
		}
	}
	return nil
}
