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
	// ShuffleBuffer is the number of images the shuffled order draws
	// from (data.Order's Buffer); default data.DefaultShuffleBuffer. The
	// loader holds that many images, whatever the split's size.
	ShuffleBuffer int `json:"shuffle_buffer"`

	// Parts, when above 1, splits every batch into Parts slices for a
	// data-parallel training, of which the loader makes only slice Part
	// (from 0): of a batch of n samples, samples [⌊Part·n/Parts⌋,
	// ⌊(Part+1)·n/Parts⌋), each drawn exactly as in the whole batch. The
	// slices of the Parts loaders together make the whole batch. 0 means
	// 1; Part must be in [0, Parts).
	Part  int `json:"part,omitempty"`
	Parts int `json:"parts,omitempty"`
}

// Batch is one batch of samples, channels-last. Give it back with Release
// when done with it, so its memory is reused.
type Batch struct {
	// Views[k] holds view k of every sample: [N·Count, Side, Side, C]
	// for the sampler's View k, sample by sample.
	Views  [][]float32
	Labels []int // [N·L]: the sampler's L labels of each sample, sample by sample
	Images []int // [N]: the index within the split of each sample's image
	N      int   // samples; less than the configured Batch only for the last batch of a pass without Shuffle, or for a slice (LoaderConfig.Parts)
	First  int   // the index within the whole batch of the first sample (0 unless sliced)
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
// It streams the split's shards (data.Reader) and never holds the split
// in memory: its memory is the shuffle buffer's images, the open shards'
// decoders and the batches made ahead, whatever the split's size.
//
// An epoch e visits the split's n images in the order of a data.Reader
// pass (Order returns it): with Shuffle, data.Order{Shuffle: true, Seed:
// Seed, Pass: e, Buffer: ShuffleBuffer} — shards in a seeded random order,
// a few read at a time, through a shuffle buffer —, without it file order.
// Sample i of epoch e, for i in [0, n·PerImage), is drawn from image
// Order(e)[i / PerImage], every random draw taken from NewRand(seed, e, i).
// Batch k of the epoch holds samples [k·N, (k+1)·N). With Shuffle an
// epoch has ⌊n·PerImage/N⌋ batches (the samples left over are not used
// that epoch, a different set each epoch) and the stream runs on epoch
// after epoch; without it a pass has ⌈n·PerImage/N⌉ batches. Either way a
// batch depends only on the dataset, the sampler, the config and (epoch,
// index), never on the number of workers.
type Loader struct {
	cfg     LoaderConfig
	sampler Sampler
	views   []View
	labels  int
	ds      *data.Dataset
	split   string
	n       int // images in the split
	side, c int // image side and channels
	free    chan *Batch
}

// NewLoader returns a loader of the sampler's batches from split of ds.
// It returns every problem at once: a missing or empty split, bad
// settings, and with Shuffle a split too small for one batch. It reads no
// shard: damaged shards are reported by the stream that reads them.
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
	l.ds, l.split, l.n = ds, split, n
	return l, nil
}

// newLoader checks cfg and fills in its defaults, for images of side
// pixels and c channels.
func newLoader(s Sampler, side, c int, cfg LoaderConfig) (*Loader, error) {
	var errs []error
	for _, f := range []struct {
		name string
		v    int
	}{{"batch", cfg.Batch}, {"per_image", cfg.PerImage}, {"workers", cfg.Workers}, {"prefetch", cfg.Prefetch}, {"shuffle_buffer", cfg.ShuffleBuffer}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("augment: loader: %s %d: want ≥ 1, or 0 for the default", f.name, f.v))
		}
	}
	if cfg.Parts < 0 || cfg.Part < 0 || cfg.Part >= max(cfg.Parts, 1) {
		errs = append(errs, fmt.Errorf("augment: loader: part %d of %d: want 0 ≤ part < parts", cfg.Part, cfg.Parts))
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
	if cfg.ShuffleBuffer == 0 {
		cfg.ShuffleBuffer = data.DefaultShuffleBuffer
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
func (l *Loader) Len() int { return l.n }

// BatchesPerEpoch returns the number of batches in an epoch:
// ⌊n·PerImage/Batch⌋ with Shuffle, ⌈n·PerImage/Batch⌉ without.
func (l *Loader) BatchesPerEpoch() int {
	n, b := l.n*l.cfg.PerImage, l.cfg.Batch
	if l.cfg.Shuffle {
		return n / b
	}
	return (n + b - 1) / b
}

// order is the data.Order of epoch's pass.
func (l *Loader) order(epoch int) data.Order {
	if !l.cfg.Shuffle {
		return data.Order{}
	}
	return data.Order{Shuffle: true, Seed: l.cfg.Seed, Pass: epoch, Buffer: l.cfg.ShuffleBuffer}
}

// Order returns the indices within the split of epoch's images in the
// order the epoch visits them (see Loader), computed from the manifest
// without reading the shards. It holds one int per image.
func (l *Loader) Order(epoch int) ([]int, error) {
	return l.ds.PassOrder(l.split, l.order(epoch))
}

// Stream delivers batches in order, made ahead by the loader's workers. It
// is used from one goroutine.
type Stream struct {
	s *stream
}

// Stream starts the reader and the workers and returns the stream of
// batches beginning with batch index of epoch (0, 0 for a fresh run; a
// resumed run passes where it stopped). With Shuffle the stream runs on
// through the following epochs; without it, it ends with the last batch
// of the pass (epoch then only labels the batches and seeds their draws).
// At most Prefetch batches are made ahead of Next. Cancelling ctx or
// calling Close stops the reader and the workers.
//
// Starting inside an epoch costs what data.Dataset.NewReader's start
// costs: a replay of the epoch's order from the manifest, then reading
// the shards that the shuffle buffer's images at that point come from.
func (l *Loader) Stream(ctx context.Context, epoch, index int) *Stream {
	return &Stream{startStream(ctx, l, epoch, index)}
}

// Next returns the next batch. Without Shuffle it returns io.EOF after
// the last batch of the pass; after Close or a cancelled context it
// returns the context's error; a sample that cannot be drawn or a damaged
// shard ends the stream with an error naming it. Once it has returned an
// error it returns the same error on every later call.
func (s *Stream) Next() (*Batch, error) { return s.s.next() }

// Close stops the reader and the workers and waits for them; Next then
// returns context.Canceled. Batches already returned by Next stay valid
// until released. Close may be called more than once.
func (s *Stream) Close() { s.s.close() }

// batch returns a buffer for batch index of epoch from the free list, or a
// new one, sized for the batch's number of samples.
func (l *Loader) batch(epoch, index int) *Batch {
	var b *Batch
	select {
	case b = <-l.free:
	default:
		n := (l.cfg.Batch + l.parts() - 1) / l.parts() // the largest slice
		b = &Batch{Views: make([][]float32, len(l.views)), Labels: make([]int, n*l.labels),
			Images: make([]int, n), C: l.c, free: l.free}
		for k, v := range l.views {
			b.Views[k] = make([]float32, n*v.Len(l.c))
		}
	}
	first, n := l.slice(index)
	b.N, b.First, b.Epoch, b.Index = n, first, epoch, index
	for k, v := range l.views {
		b.Views[k] = b.Views[k][:n*v.Len(l.c)]
	}
	b.Labels, b.Images = b.Labels[:n*l.labels], b.Images[:n]
	return b
}

// samples returns the number of samples of batch index.
func (l *Loader) samples(index int) int {
	return min(l.cfg.Batch, l.n*l.cfg.PerImage-index*l.cfg.Batch)
}

// parts returns the number of slices of a batch.
func (l *Loader) parts() int { return max(l.cfg.Parts, 1) }

// slice returns the first sample within batch index and the number of
// samples of this loader's slice of it.
func (l *Loader) slice(index int) (first, n int) {
	total, p := l.samples(index), l.parts()
	first = total * l.cfg.Part / p
	return first, total*(l.cfg.Part+1)/p - first
}

// images returns the positions in the epoch's order, [lo, hi], of the
// images batch index draws from (the whole batch's, sliced or not).
func (l *Loader) images(index int) (lo, hi int) {
	first := index * l.cfg.Batch
	return first / l.cfg.PerImage, (first + l.samples(index) - 1) / l.cfg.PerImage
}

// fill draws the samples of batch b with d from imgs, the images at
// positions [lo, lo+len(imgs)) of the epoch's order.
func (l *Loader) fill(d Drawer, b *Batch, imgs []loaded, lo int) error {
	s := Sample{Views: make([][]float32, len(l.views))}
	for j := range b.N {
		i := b.Index*l.cfg.Batch + b.First + j
		im := &imgs[i/l.cfg.PerImage-lo]
		for k, v := range l.views {
			n := v.Len(l.c)
			s.Views[k] = b.Views[k][j*n : (j+1)*n]
		}
		s.Labels = b.Labels[j*l.labels : (j+1)*l.labels]
		b.Images[j] = im.index
		if err := d.Draw(Image{Pix: im.rec.Pixels, Side: l.side, C: l.c, Label: im.rec.Label}, NewRand(l.cfg.Seed, b.Epoch, i), s); err != nil {
			return fmt.Errorf("augment: epoch %d sample %d (image %d, %q): %w", b.Epoch, i, im.index, im.rec.Origin, err)
		}
	}
	return nil
}

// loaded is a record of the split with its index.
type loaded struct {
	rec   data.Record
	index int
}
