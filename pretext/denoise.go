package pretext

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/patchwise-ml/patchwise/nn"
)

// Corruption kinds.
const (
	CorruptNoise = "noise" // additive Gaussian noise
	CorruptMask  = "mask"  // squares set to 0
)

// Corruption is how a denoising autoencoder spoils its input. Its zero
// value means additive Gaussian noise of standard deviation 0.5 (inputs
// are pixel values in [0, 1], so half their range).
type Corruption struct {
	// Kind is CorruptNoise (the default) or CorruptMask.
	Kind string `json:"kind,omitempty"`
	// Std is the noise's standard deviation, in the input's units;
	// default 0.5.
	Std float64 `json:"std,omitempty"`
	// MaskFraction is the fraction of the squares of a sample that are
	// masked, in (0, 1]; default 0.25.
	MaskFraction float64 `json:"mask_fraction,omitempty"`
	// MaskSize is the side of the masked squares in pixels, which tile the
	// image from its top-left corner (those at the right and bottom edges
	// may be cut); default max(1, side/8).
	MaskSize int `json:"mask_size,omitempty"`
}

func (c Corruption) withDefaults(side int) Corruption {
	if c.Kind == "" {
		c.Kind = CorruptNoise
	}
	if c.Std == 0 {
		c.Std = 0.5
	}
	if c.MaskFraction == 0 {
		c.MaskFraction = 0.25
	}
	if c.MaskSize == 0 {
		c.MaskSize = max(1, side/8)
	}
	return c
}

// Validate reports every problem with the corruption at once; side, if
// positive, is the image side the masks must fit.
func (c Corruption) Validate(side int) error {
	var errs []error
	if c.Kind != "" && c.Kind != CorruptNoise && c.Kind != CorruptMask {
		errs = append(errs, fmt.Errorf("pretext: corruption kind %q, want %q or %q", c.Kind, CorruptNoise, CorruptMask))
	}
	if c.Std < 0 || math.IsNaN(c.Std) || math.IsInf(c.Std, 0) {
		errs = append(errs, fmt.Errorf("pretext: corruption std %v, want a finite value ≥ 0 (0: default 0.5)", c.Std))
	}
	if !(c.MaskFraction >= 0 && c.MaskFraction <= 1) {
		errs = append(errs, fmt.Errorf("pretext: corruption mask fraction %v, want one in [0, 1] (0: default 0.25)", c.MaskFraction))
	}
	if c.MaskSize < 0 {
		errs = append(errs, fmt.Errorf("pretext: corruption mask size %d is negative", c.MaskSize))
	} else if side > 0 && c.MaskSize > side {
		errs = append(errs, fmt.Errorf("pretext: corruption mask size %d exceeds the image side %d", c.MaskSize, side))
	}
	return errors.Join(errs...)
}

// autoencoder is implemented by the autoencoders that a Denoising wraps:
// fit is Step with an input other than its target, returning the loss.
type autoencoder interface {
	Model
	Reconstruct(x *nn.Tensor, train bool) *nn.Tensor
	fit(in, target *nn.Tensor, train bool) float64
	metrics(loss, mse float64, x *nn.Tensor, train bool) Metrics
	setMean(mean []float32)
}

// denoisingSpec returns the Spec of the denoising variant of the
// autoencoder ae ("dae-mirrored" for "ae-mirrored"): the same model,
// trained on inputs spoilt by Config.Corruption.
func denoisingSpec(ae Spec) Spec {
	s := ae
	s.Name = "d" + ae.Name
	s.Summary = ae.Summary + ", of a corrupted input"
	s.Reference = "Vincent et al. 2008"
	s.Default = false
	s.Check = func(c Config, side int) error {
		var errs []error
		if ae.Check != nil {
			errs = append(errs, ae.Check(c, side))
		}
		errs = append(errs, c.Corruption.Validate(c.Size))
		return errors.Join(errs...)
	}
	s.New = func(c Config, rng *rand.Rand) (Model, error) {
		m, err := ae.New(c, rng)
		if err != nil {
			return nil, err
		}
		return NewDenoising(m, c.Corruption), nil
	}
	return s
}

// corruptStream separates the corruption's draws from any other use of a
// batch's seed.
const corruptStream = 0xda3e39cb94b95bdb

// Denoising trains an autoencoder (MirroredAE, LinearAE or TiedAE) to
// reconstruct the clean image from a corrupted copy of it: Step corrupts
// b.X into a buffer the model keeps and reuses, runs the wrapped model on
// that, and takes the loss against the clean b.X.
//
// The corruption's draws come from a generator seeded by b.Seed alone, so
// a batch is corrupted the same way whenever it is stepped with the same
// seed, whatever happened before (a resumed run reproduces them with no
// generator state to restore); the caller gives each batch its own seed,
// e.g. BatchSeed(runSeed, step). Evaluation steps (train false) corrupt
// too, so their loss is the denoising loss; they also report the plain
// reconstruction error of the clean images ("mse") next to the mean
// image's. Clean returns the wrapped model.
//
// Batch norm's running statistics describe the inputs they were gathered
// on, and corrupted images are distributed differently from clean ones
// (noise widens every channel's spread; a max pool over noisy activations
// raises their mean), so no one set serves both. A Denoising keeps two:
// the wrapped model's buffers hold those of clean images, which
// evaluation on clean images (Clean, the encoder's features for a probe,
// the "mse" an evaluation step reports) uses, and a second set, named "corrupted." + the buffer's name, holds
// those of corrupted images, which the denoising loss of evaluation steps
// uses. A training step gathers both: a forward pass of the clean
// batch in training mode updates the first set (it computes no
// gradient and does not change the loss), and the corrupted pass that
// trains updates the second. That extra forward pass is the price.
type Denoising struct {
	Corruption Corruption // as given, before defaults

	ae        autoencoder
	clean     []*nn.Param // ae.Buffers(): running statistics of clean inputs
	corrupted []*nn.Param // those of corrupted inputs, one for each of clean
	noisy     *nn.Tensor  // the corrupted input, reused
	pcg       rand.PCG
	rng       *rand.Rand
	cells     []int // square indices, for masking
}

// NewDenoising returns the denoising variant of ae. It panics if ae is not
// a *MirroredAE, *LinearAE or *TiedAE, or if c is invalid.
func NewDenoising(ae Model, c Corruption) *Denoising {
	a, ok := ae.(autoencoder)
	if !ok {
		panic(fmt.Sprintf("pretext: NewDenoising: %T is not an autoencoder", ae))
	}
	if err := c.Validate(0); err != nil {
		panic(err)
	}
	d := &Denoising{Corruption: c, ae: a, clean: a.Buffers()}
	for _, b := range d.clean {
		d.corrupted = append(d.corrupted, &nn.Param{Name: "corrupted." + b.Name, Value: b.Value.Clone()})
	}
	d.rng = rand.New(&d.pcg)
	return d
}

// Clean returns the wrapped autoencoder (the same parameters), whose Step
// reconstructs uncorrupted inputs.
func (d *Denoising) Clean() Model { return d.ae }

// Step implements Model: the input is Corrupt(b.Views[0], b.Seed), the
// target b.Views[0]. In training it first runs the clean images forward,
// for the running statistics of clean inputs (see the type's comment).
func (d *Denoising) Step(b Batch, train bool) Metrics {
	x := b.Views[0]
	in := d.Corrupt(x, b.Seed)
	if train {
		d.ae.Reconstruct(x, true)
	}
	d.exchange()
	loss := d.ae.fit(in, x, train)
	d.exchange()
	mse := loss
	if !train {
		mse = d.ae.fit(x, x, false)
	}
	return d.ae.metrics(loss, mse, x, train)
}

// exchange swaps the values of the wrapped model's buffers with those of
// their counterparts for corrupted inputs.
func (d *Denoising) exchange() {
	for i, b := range d.clean {
		u, v := b.Value.Data, d.corrupted[i].Value.Data
		for j := range u {
			u[j], v[j] = v[j], u[j]
		}
	}
}

// Corrupt returns a corrupted copy of x [N, H, W, C] drawn from seed: x
// plus N(0, Std²) noise on every element, or x with round(MaskFraction·S)
// of each sample's S squares of side MaskSize (all channels) set to 0,
// the mean of standardised inputs. The result is the model's reused
// buffer, valid until the next call; it panics if x is not rank 4 or a
// square does not fit it.
func (d *Denoising) Corrupt(x *nn.Tensor, seed uint64) *nn.Tensor {
	if len(x.Shape) != 4 {
		panic(fmt.Sprintf("pretext: Denoising: input %v is not [N, H, W, C]", x.Shape))
	}
	n, h, w, ch := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	c := d.Corruption.withDefaults(min(h, w))
	if d.noisy == nil || cap(d.noisy.Data) < x.Len() {
		d.noisy = nn.NewTensor(x.Shape...)
	}
	d.noisy.Shape = append(d.noisy.Shape[:0], x.Shape...)
	d.noisy.Data = d.noisy.Data[:x.Len()]
	out := d.noisy.Data
	d.pcg.Seed(seed, corruptStream)
	switch c.Kind {
	case CorruptNoise:
		for i, v := range x.Data {
			out[i] = v + float32(c.Std*d.rng.NormFloat64())
		}
	case CorruptMask:
		s := c.MaskSize
		if s > h || s > w {
			panic(fmt.Sprintf("pretext: Denoising: mask squares of side %d do not fit %dx%d images", s, h, w))
		}
		copy(out, x.Data)
		gh, gw := (h+s-1)/s, (w+s-1)/s
		cells := gh * gw
		k := int(math.Round(c.MaskFraction * float64(cells)))
		if cap(d.cells) < cells {
			d.cells = make([]int, cells)
		}
		d.cells = d.cells[:cells]
		per := h * w * ch
		for i := 0; i < n; i++ {
			for j := range d.cells {
				d.cells[j] = j
			}
			// The first k of a partial Fisher–Yates shuffle.
			for j := 0; j < k; j++ {
				r := j + d.rng.IntN(cells-j)
				d.cells[j], d.cells[r] = d.cells[r], d.cells[j]
			}
			img := out[i*per : (i+1)*per]
			for _, cell := range d.cells[:k] {
				y0, x0 := cell/gw*s, cell%gw*s
				for y := y0; y < min(y0+s, h); y++ {
					clear(img[(y*w+x0)*ch : (y*w+min(x0+s, w))*ch])
				}
			}
		}
	}
	return d.noisy
}

// Params implements Model.
func (d *Denoising) Params() []*nn.Param { return d.ae.Params() }

// Buffers implements Model: the wrapped model's buffers (statistics of
// clean inputs), then their counterparts for corrupted inputs.
func (d *Denoising) Buffers() []*nn.Param {
	return append(slices.Clip(d.clean), d.corrupted...)
}

// Encoder implements Model.
func (d *Denoising) Encoder() *Encoder { return d.ae.Encoder() }

// BatchSeed returns the seed of the batch of a training's step (for
// Batch.Seed): a SplitMix64 hash of both, so neighbouring steps and runs
// get unrelated draws.
func BatchSeed(runSeed uint64, step int64) uint64 {
	z := runSeed + uint64(step)*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

var (
	_ autoencoder = (*MirroredAE)(nil)
	_ autoencoder = (*LinearAE)(nil)
	_ autoencoder = (*TiedAE)(nil)
)
