package augment

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/patchwise-ml/patchwise/data"
)

// DefaultImageBatch is the default number of images in an ImageBatch.
const DefaultImageBatch = 128

// ImageLoaderConfig configures an ImageLoader. Its zero value means the
// defaults given on each field.
type ImageLoaderConfig struct {
	// Size is the side S of the images in a batch, in pixels: images (or
	// their crops) are resized to S×S with a box filter (Resize) when
	// their side is not S. Default: the dataset's image side.
	Size int `json:"size"`

	// Crop is the side of a square crop taken before resizing, in pixels
	// or as a fraction of the image side (see Length): with Train a
	// uniformly placed random crop, without it the centre crop. 0 (or
	// None) means the whole image.
	Crop Length `json:"crop"`

	// Flip, with Train, mirrors each image left to right with probability
	// 1/2. It is ignored without Train.
	Flip bool `json:"flip"`

	Batch    int    `json:"batch"`    // images per batch, N; default DefaultImageBatch
	Workers  int    `json:"workers"`  // goroutines filling batches; default runtime.GOMAXPROCS(0)
	Prefetch int    `json:"prefetch"` // batches made ahead of the consumer; default 2 × Workers
	Seed     uint64 `json:"seed"`

	// Train selects training batches: a new random order of the images
	// every epoch, full batches only, random crops and flips. Without it
	// the images come in file order, once, with no randomness at all.
	Train bool `json:"train"`
}

// ImageBatch is one batch of whole images (or crops of them), channels-last.
// Give it back with Release when done with it, so its memory is reused.
type ImageBatch struct {
	X      []float32 // [N, S, S, C]: pixel values / 255, in [0, 1]
	Labels []int     // [N]: each image's label, -1 when unlabelled
	Images []int     // [N]: each image's index within the split
	N      int       // images; less than the configured Batch only for the last batch of a pass without Train
	S      int       // image side in pixels
	C      int       // channels
	Epoch  int       // the epoch, from 0
	Index  int       // the batch's index within its epoch, from 0

	free chan *ImageBatch
}

// Release hands b back to its loader for reuse. b must not be used after,
// nor released twice.
func (b *ImageBatch) Release() {
	if b == nil || b.free == nil {
		return
	}
	select {
	case b.free <- b:
	default:
	}
}

// ImageLoader makes batches of whole images from one split of a dataset,
// for supervised training, linear probes and evaluation. It holds the
// whole split in memory (data.Dataset.Load).
//
// With Train, an epoch is a seeded permutation perm_e of the split's n
// images (NewRand(seed, e, −1).Perm(n)); sample i of epoch e is image
// perm_e[i], its crop (RandomCrop) and then its flip drawn from
// NewRand(seed, e, i). Batch k of the epoch holds samples [k·N, (k+1)·N);
// an epoch has ⌊n/N⌋ batches (the images left over are not used that
// epoch, a different random set each epoch). Without Train, batch k holds
// images [k·N, min((k+1)·N, n)) in file order, centre-cropped, and a pass
// has ⌈n/N⌉ batches, the last one possibly short. Either way a batch
// depends only on the dataset, the config and (epoch, index), never on the
// number of workers.
type ImageLoader struct {
	cfg      ImageLoaderConfig
	recs     []data.Record
	size, ch int // image side and channels
	crop     int // crop side in pixels; size when not cropping
	free     chan *ImageBatch
}

// NewImageLoader loads split of ds into memory and returns a loader of
// batches from it. It returns every problem at once: a missing or empty
// split, bad settings, a crop that does not fit the images, and with
// Train a split with fewer than Batch images.
func NewImageLoader(ds *data.Dataset, split string, cfg ImageLoaderConfig) (*ImageLoader, error) {
	m := ds.Manifest()
	n := ds.Len(split)
	var errs []error
	if n == 0 {
		errs = append(errs, fmt.Errorf("augment: dataset %q has no split %q, or it is empty", ds.Dir(), split))
	}
	l, err := newImageLoader(m.Size, m.Channels, cfg)
	if err != nil {
		errs = append(errs, err)
	} else if n > 0 && cfg.Train && n < l.cfg.Batch {
		errs = append(errs, fmt.Errorf("augment: image loader: split %q has %d images, less than one batch of %d", split, n, l.cfg.Batch))
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

// newImageLoader checks cfg for size×size images of ch channels and fills
// in its defaults.
func newImageLoader(size, ch int, cfg ImageLoaderConfig) (*ImageLoader, error) {
	var errs []error
	if cfg.Size < 0 {
		errs = append(errs, fmt.Errorf("augment: image loader: size %d: want ≥ 1, or 0 for the image side", cfg.Size))
	}
	crop := size
	switch c := cfg.Crop.Pixels(size); {
	case !cfg.Crop.valid():
		errs = append(errs, fmt.Errorf("augment: image loader: crop %v: want pixels (≥ 1), a fraction of the image side, or 0 for the whole image", float64(cfg.Crop)))
	case cfg.Crop == 0 || cfg.Crop == None:
	case c < 1 || c > size:
		errs = append(errs, fmt.Errorf("augment: image loader: crop %v is %d px: want 1 to %d px on %d×%d images", cfg.Crop, c, size, size, size))
	default:
		crop = c
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"batch", cfg.Batch}, {"workers", cfg.Workers}, {"prefetch", cfg.Prefetch}} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("augment: image loader: %s %d: want ≥ 1, or 0 for the default", f.name, f.v))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Size == 0 {
		cfg.Size = size
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultImageBatch
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	return &ImageLoader{cfg: cfg, size: size, ch: ch, crop: crop,
		free: make(chan *ImageBatch, cfg.Prefetch+cfg.Workers+2)}, nil
}

// Config returns the loader's configuration with its defaults filled in.
func (l *ImageLoader) Config() ImageLoaderConfig { return l.cfg }

// Len returns the number of images in the split.
func (l *ImageLoader) Len() int { return len(l.recs) }

// BatchesPerEpoch returns the number of batches in an epoch: ⌊n/Batch⌋
// with Train, ⌈n/Batch⌉ without.
func (l *ImageLoader) BatchesPerEpoch() int {
	n, b := len(l.recs), l.cfg.Batch
	if l.cfg.Train {
		return n / b
	}
	return (n + b - 1) / b
}

// ImageStream delivers batches in order, made ahead by the loader's
// workers. It is used from one goroutine.
type ImageStream struct {
	s *stream[*ImageBatch]
}

// Stream starts the workers and returns the stream of batches beginning
// with batch index of epoch (0, 0 for a fresh run; a resumed run passes
// where it stopped). With Train the stream runs on through the following
// epochs; without it, it ends with the last batch of the pass (epoch only
// labels the batches). At most Prefetch batches are made ahead of Next.
// Cancelling ctx or calling Close stops the workers.
func (l *ImageLoader) Stream(ctx context.Context, epoch, index int) *ImageStream {
	plan := streamPlan{perEpoch: l.BatchesPerEpoch(), endless: l.cfg.Train, shuffle: l.cfg.Train, images: len(l.recs),
		seed: l.cfg.Seed, workers: l.cfg.Workers, prefetch: l.cfg.Prefetch}
	return &ImageStream{startStream(ctx, epoch, index, plan, func() func(int, int, []int) (*ImageBatch, error) {
		w := l.newImageWorker()
		return func(epoch, index int, perm []int) (*ImageBatch, error) {
			b := l.batch(epoch, index)
			w.fill(b, perm)
			return b, nil
		}
	})}
}

// Next returns the next batch. Without Train it returns io.EOF after the
// last batch of the pass; after Close or a cancelled context it returns
// the context's error. Once it has returned an error it returns the same
// error on every later call.
func (s *ImageStream) Next() (*ImageBatch, error) { return s.s.next() }

// Close stops the workers and waits for them; Next then returns
// context.Canceled. Batches already returned by Next stay valid until
// released. Close may be called more than once.
func (s *ImageStream) Close() { s.s.close() }

// batch returns a buffer for batch index of epoch from the free list, or a
// new one, sized for the batch's number of images.
func (l *ImageLoader) batch(epoch, index int) *ImageBatch {
	var b *ImageBatch
	select {
	case b = <-l.free:
	default:
		n, s, c := l.cfg.Batch, l.cfg.Size, l.ch
		b = &ImageBatch{
			X: make([]float32, n*s*s*c), Labels: make([]int, n), Images: make([]int, n),
			S: s, C: c, free: l.free,
		}
	}
	n := min(l.cfg.Batch, len(l.recs)-index*l.cfg.Batch)
	b.N, b.Epoch, b.Index = n, epoch, index
	b.X = b.X[:n*b.S*b.S*b.C]
	b.Labels, b.Images = b.Labels[:n], b.Images[:n]
	return b
}

// imageWorker holds one goroutine's scratch memory.
type imageWorker struct {
	l      *ImageLoader
	crop   Patch    // crop × crop × C, used when resizing
	resize *resizer // nil when the crop is already S
}

func (l *ImageLoader) newImageWorker() *imageWorker {
	w := &imageWorker{l: l}
	if l.crop != l.cfg.Size {
		w.crop = NewPatch(l.crop, l.crop, l.ch)
		w.resize = newResizer(l.crop, l.crop, l.cfg.Size, l.cfg.Size, l.ch)
	}
	return w
}

// fill makes the images of batch b; perm is the epoch's order with Train,
// nil for file order.
func (w *imageWorker) fill(b *ImageBatch, perm []int) {
	l := w.l
	cfg := &l.cfg
	n, s, c := b.N, b.S, b.C
	side, cs := l.size, l.crop
	for j := range n {
		i := b.Index*cfg.Batch + j
		img := i
		cr := Crop{X: (side - cs) / 2, Y: (side - cs) / 2, Size: cs}
		flip := false
		if cfg.Train {
			img = perm[i]
			if cs < side || cfg.Flip {
				rng := NewRand(cfg.Seed, b.Epoch, i)
				if cs < side {
					cr = RandomCrop(side, side, cs, rng)
				}
				flip = cfg.Flip && rng.IntN(2) == 1
			}
		}
		r := &l.recs[img]
		b.Labels[j], b.Images[j] = r.Label, img
		out := Patch{Pix: b.X[j*s*s*c : (j+1)*s*s*c], W: s, H: s, C: c}
		if w.resize == nil {
			CropPatch(out, r.Pixels, side, side, c, cr)
		} else {
			CropPatch(w.crop, r.Pixels, side, side, c, cr)
			w.resize.resize(out, w.crop)
		}
		if flip {
			FlipH(out)
		}
	}
}
