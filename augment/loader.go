package augment

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/patchwise-ml/patchwise/data"
)

// DefaultBatch is the default number of samples in a batch.
const DefaultBatch = 128

// LoaderConfig configures a Loader. Its zero value means the defaults
// given on each field.
type LoaderConfig struct {
	Batch    int    `json:"batch"`     // samples per batch, N; default DefaultBatch
	PerImage int    `json:"per_image"` // samples drawn from each image per epoch, next to each other in a batch; default 1
	Workers  int    `json:"workers"`   // goroutines filling batches; default runtime.GOMAXPROCS(0)
	Prefetch int    `json:"prefetch"`  // batches made ahead of the consumer; default 2 × Workers
	Seed     uint64 `json:"seed"`

	// Shuffle selects training order: a new random order of the images
	// every epoch, epoch after epoch, full batches only. Without it the
	// loader makes one pass over the images in file order, its last batch
	// possibly short.
	Shuffle bool `json:"shuffle"`
}

// Batch is one batch of samples, channels-last. Give it back with Release
// when done with it, so its memory is reused.
type Batch struct {
	// Views[k] holds view k of every sample: [N·Count, Side, Side, C]
	// for the sampler's View k, sample by sample.
	Views  [][]float32
	Labels []int // [N·L]: the sampler's L labels of each sample, sample by sample
	Images []int // [N]: the index within the split of each sample's image
	N      int   // samples; less than the configured Batch only for the last batch of a pass without Shuffle
	C      int   // channels
	Epoch  int   // the epoch, from 0
	Index  int   // the batch's index within its epoch, from 0

	free chan *Batch
}

// Release hands b back to its loader for reuse. b must not be used after,
// nor released twice.
func (b *Batch) Release() {
	if b == nil || b.free == nil {
		return
	}
	select {
	case b.free <- b:
	default:
	}
}

// Loader makes batches of a Sampler's samples from one split of a dataset.
// It holds the whole split in memory (data.Dataset.Load): a split of
// 50,000 32×32 RGB images is 150 MB.
//
// With Shuffle, an epoch is a seeded permutation perm_e of the split's n
// images (NewRand(seed, e, −1).Perm(n)); sample i of epoch e, for i in
// [0, n·PerImage), is drawn from image perm_e[i / PerImage], every random
// draw taken from NewRand(seed, e, i). Batch k of the epoch holds samples
// [k·N, (k+1)·N); an epoch has ⌊n·PerImage/N⌋ batches (the samples left
// over are not used that epoch, a different random set each epoch).
// Without Shuffle, sample i comes from image i / PerImage in file order,
// still drawn from NewRand(seed, e, i), and a pass has ⌈n·PerImage/N⌉
// batches. Either way a batch depends only on the dataset, the sampler,
// the config and (epoch, index), never on the number of workers.
type Loader struct {
	cfg     LoaderConfig
	sampler Sampler
	views   []View
	labels  int
	recs    []data.Record
	side, c int // image side and channels
	free    chan *Batch
}

// NewLoader loads split of ds into memory and returns a loader of the
// sampler's batches from it. It returns every problem at once: a missing
// or empty split, bad settings, and with Shuffle a split too small for
// one batch.
func NewLoader(ds *data.Dataset, split string, s Sampler, cfg LoaderConfig) (*Loader, error) {
	m := ds.Manifest()
	n := ds.Len(split)
	var errs []error
	if n == 0 {
		errs = append(errs, fmt.Errorf("augment: dataset %q has no split %q, or it is empty", ds.Dir(), split))
	}
	l, err := newLoader(s, m.Size, m.Channels, cfg)
	if err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		if err := l.checkCount(split, n); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	recs, err := ds.Load(split)
	if err != nil {
		return nil, err
	}
	l.recs = recs
	return l, nil
}

// newLoader checks cfg and fills in its defaults, for images of side
// pixels and c channels.
func newLoader(s Sampler, side, c int, cfg LoaderConfig) (*Loader, error) {
	var errs []error
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
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
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
	return &Loader{cfg: cfg, sampler: s, views: s.Views(), labels: s.Labels(), side: side, c: c,
		free: make(chan *Batch, cfg.Prefetch+cfg.Workers+2)}, nil
}

// checkCount reports a shuffled split of n images too small for a batch.
func (l *Loader) checkCount(split string, n int) error {
	if l.cfg.Shuffle && n*l.cfg.PerImage < l.cfg.Batch {
		return fmt.Errorf("augment: loader: split %q: %d images × %d samples per image make less than one batch of %d", split, n, l.cfg.PerImage, l.cfg.Batch)
	}
	return nil
}

// Config returns the loader's configuration with its defaults filled in.
func (l *Loader) Config() LoaderConfig { return l.cfg }

// Views returns the sampler's views.
func (l *Loader) Views() []View { return l.views }

// Len returns the number of images in the split.
func (l *Loader) Len() int { return len(l.recs) }

// BatchesPerEpoch returns the number of batches in an epoch:
// ⌊n·PerImage/Batch⌋ with Shuffle, ⌈n·PerImage/Batch⌉ without.
func (l *Loader) BatchesPerEpoch() int {
	n, b := len(l.recs)*l.cfg.PerImage, l.cfg.Batch
	if l.cfg.Shuffle {
		return n / b
	}
	return (n + b - 1) / b
}

// Stream delivers batches in order, made ahead by the loader's workers. It
// is used from one goroutine.
type Stream struct {
	s *stream[*Batch]
}

// Stream starts the workers and returns the stream of batches beginning
// with batch index of epoch (0, 0 for a fresh run; a resumed run passes
// where it stopped). With Shuffle the stream runs on through the following
// epochs; without it, it ends with the last batch of the pass (epoch then
// only labels the batches and seeds their draws). At most Prefetch batches
// are made ahead of Next. Cancelling ctx or calling Close stops the
// workers.
func (l *Loader) Stream(ctx context.Context, epoch, index int) *Stream {
	plan := streamPlan{perEpoch: l.BatchesPerEpoch(), endless: l.cfg.Shuffle, shuffle: l.cfg.Shuffle, images: len(l.recs),
		seed: l.cfg.Seed, workers: l.cfg.Workers, prefetch: l.cfg.Prefetch}
	return &Stream{startStream(ctx, epoch, index, plan, func() func(int, int, []int) (*Batch, error) {
		d := l.sampler.NewDrawer()
		return func(epoch, index int, perm []int) (*Batch, error) {
			b := l.batch(epoch, index)
			if err := l.fill(d, b, perm); err != nil {
				b.Release()
				return nil, err
			}
			return b, nil
		}
	})}
}

// Next returns the next batch. Without Shuffle it returns io.EOF after
// the last batch of the pass; after Close or a cancelled context it
// returns the context's error; a sample that cannot be drawn ends the
// stream with an error naming it. Once it has returned an error it
// returns the same error on every later call.
func (s *Stream) Next() (*Batch, error) { return s.s.next() }

// Close stops the workers and waits for them; Next then returns
// context.Canceled. Batches already returned by Next stay valid until
// released. Close may be called more than once.
func (s *Stream) Close() { s.s.close() }

// batch returns a buffer for batch index of epoch from the free list, or a
// new one, sized for the batch's number of samples.
func (l *Loader) batch(epoch, index int) *Batch {
	var b *Batch
	select {
	case b = <-l.free:
	default:
		n := l.cfg.Batch
		b = &Batch{Views: make([][]float32, len(l.views)), Labels: make([]int, n*l.labels),
			Images: make([]int, n), C: l.c, free: l.free}
		for k, v := range l.views {
			b.Views[k] = make([]float32, n*v.Len(l.c))
		}
	}
	n := min(l.cfg.Batch, len(l.recs)*l.cfg.PerImage-index*l.cfg.Batch)
	b.N, b.Epoch, b.Index = n, epoch, index
	for k, v := range l.views {
		b.Views[k] = b.Views[k][:n*v.Len(l.c)]
	}
	b.Labels, b.Images = b.Labels[:n*l.labels], b.Images[:n]
	return b
}

// fill draws the samples of batch b with d; perm is the epoch's order with
// Shuffle, nil for file order.
func (l *Loader) fill(d Drawer, b *Batch, perm []int) error {
	s := Sample{Views: make([][]float32, len(l.views))}
	for j := range b.N {
		i := b.Index*l.cfg.Batch + j
		img := i / l.cfg.PerImage
		if perm != nil {
			img = perm[img]
		}
		r := &l.recs[img]
		for k, v := range l.views {
			n := v.Len(l.c)
			s.Views[k] = b.Views[k][j*n : (j+1)*n]
		}
		s.Labels = b.Labels[j*l.labels : (j+1)*l.labels]
		b.Images[j] = img
		im := Image{Pix: r.Pixels, Side: l.side, C: l.c, Label: r.Label}
		if err := d.Draw(im, NewRand(l.cfg.Seed, b.Epoch, i), s); err != nil {
			return fmt.Errorf("augment: epoch %d sample %d (image %d, %q): %w", b.Epoch, i, img, r.Origin, err)
		}
	}
	return nil
}
