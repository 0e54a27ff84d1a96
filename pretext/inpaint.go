package pretext

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

// Inpainting masks.
const (
	InpaintCenter = "center" // one square in the middle of the image
	InpaintBlocks = "blocks" // squares placed at random, possibly overlapping
)

// Default inpainting mask sides, as fractions of the encoder's input side.
const (
	DefaultInpaintCenter augment.Length = 0.5  // a quarter of the image, as Pathak et al.'s central region
	DefaultInpaintBlock  augment.Length = 0.25 // 4 blocks of a sixteenth each cover up to a quarter
)

// DefaultInpaintBlocks is the default number of squares of InpaintBlocks.
const DefaultInpaintBlocks = 4

// InpaintConfig is how the inpainting pretext masks the encoder's input.
// Its zero value means the central square of half the input side, a
// quarter of the image.
type InpaintConfig struct {
	// Mask is InpaintCenter (the default) or InpaintBlocks: Blocks squares,
	// each placed uniformly at random, drawn afresh for every image.
	Mask string `json:"mask,omitempty"`
	// Size is the side of the square, or of each block, in pixels of the
	// encoder's input or as a fraction of its side (see augment.Length);
	// default DefaultInpaintCenter, or DefaultInpaintBlock for blocks.
	// Masking the whole image is refused: no context would be left.
	Size augment.Length `json:"size,omitempty"`
	// Blocks is the number of squares of InpaintBlocks; default
	// DefaultInpaintBlocks. Unused by InpaintCenter.
	Blocks int `json:"blocks,omitempty"`
}

func (c InpaintConfig) withDefaults() InpaintConfig {
	if c.Mask == "" {
		c.Mask = InpaintCenter
	}
	if c.Size == 0 {
		c.Size = DefaultInpaintCenter
		if c.Mask == InpaintBlocks {
			c.Size = DefaultInpaintBlock
		}
	}
	if c.Blocks == 0 && c.Mask == InpaintBlocks {
		c.Blocks = DefaultInpaintBlocks
	}
	return c
}

// Validate reports every problem with c at once; side, if positive, is
// the encoder's input side the squares must fit inside with context
// around them. Zero fields are fine (the defaults).
func (c InpaintConfig) Validate(side int) error {
	var errs []error
	if c.Mask != "" && c.Mask != InpaintCenter && c.Mask != InpaintBlocks {
		errs = append(errs, fmt.Errorf("pretext: inpaint: mask %q, want %q or %q", c.Mask, InpaintCenter, InpaintBlocks))
	}
	if f := float64(c.Size); f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		errs = append(errs, fmt.Errorf("pretext: inpaint: mask size %v, want pixels (≥ 1) or a fraction of the input side (0: the default)", f))
	} else if px := c.withDefaults().Size.Pixels(side); side > 0 && (px < 1 || px >= side) {
		errs = append(errs, fmt.Errorf("pretext: inpaint: mask size %v is %d px: want 1 to %d px on %d×%d inputs", c.withDefaults().Size, px, side-1, side, side))
	}
	if c.Blocks < 0 {
		errs = append(errs, fmt.Errorf("pretext: inpaint: %d blocks: want ≥ 1, or 0 for the default %d", c.Blocks, DefaultInpaintBlocks))
	}
	return errors.Join(errs...)
}

// inpaintMetrics are the inpainting pretext's: the masked region's error
// on validation and that of predicting the mean image there instead, the
// baseline to beat.
var inpaintMetrics = []Metric{
	{Key: "mse", Title: "masked-region MSE", Baseline: "mse_mean_patch", EvalOnly: true},
	{Key: "mse_mean_patch", Title: "MSE of the mean patch", EvalOnly: true},
}

// inpaintSpec is the context encoder of Pathak et al. (2016): whole images
// (the shared crop and flip in training), the Inpaint model.
var inpaintSpec = Spec{
	Name:      "inpaint",
	Summary:   "a masked region from its context: the L2 autoencoder scored on what it cannot see",
	Reference: "Pathak et al. 2016",
	MeanImage: true,
	Metrics:   inpaintMetrics,
	Prepare:   func(c *Config, side int) { c.Inpaint = c.Inpaint.withDefaults() },
	Check: func(c Config, side int) error {
		var errs []error
		if least := c.Encoder.MinSize(); c.Size%least != 0 {
			errs = append(errs, fmt.Errorf("pretext: inpaint reconstructs only sides that are multiples of %d (%s), got %d",
				least, c.Encoder.downsampling(), c.Size))
		}
		errs = append(errs, c.Inpaint.Validate(c.Size))
		return errors.Join(errs...)
	},
	Sampler: func(c Config, side, ch int, train bool) (augment.Sampler, error) {
		return imageSampler(c, side, ch, train)
	},
	New: func(c Config, rng *rand.Rand) (Model, error) {
		m := NewInpaint(c.Encoder, c.Inpaint, rng)
		m.mean = c.MeanImage
		return m, nil
	},
}

// inpaintStream separates the masks' draws from any other use of a
// batch's seed.
const inpaintStream = 0x1a9a1e7c0de5eed5

// Inpaint is the context encoder of Pathak et al. (2016): the masked
// region of each image is set to 0, the encoder sees the rest, and the
// mirrored autoencoder's decoder (see MirroredAE) reconstructs the whole
// image; the loss is the mean squared error over the masked pixels alone
// (maskedMSE), so the model is scored only on what it could not see: the
// L2 autoencoder with a loss that rewards understanding the context
// rather than copying the input.
//
// The hole is filled with 0 rather than the training split's mean image
// (Pathak et al. filled it with the mean pixel): the mean image reaches a
// model only when the pipeline validates, and the inputs a model trains
// on must not depend on that; 0 is also what the denoising autoencoders'
// mask corruption writes. The mean image, when given, is the baseline of
// evaluation steps instead.
//
// The masks come from the model, not the sampler: the sampler's first
// view stays the clean image, whose mean over the training split the
// pipeline computes for the baseline, and random blocks are drawn from a
// generator seeded by Batch.Seed alone (as Denoising's corruption), so a
// batch is masked the same way whenever it is stepped with the same seed,
// with no generator state to checkpoint. The central square draws nothing.
type Inpaint struct {
	Config InpaintConfig // resolved

	ae   *MirroredAE
	mean []float32 // [S, S, C], the training split's mean image; nil: no baseline
	loss maskedMSE
	in   *nn.Tensor // the masked input, reused
	mask []bool     // [N, H, W]: true where masked, reused
	pcg  rand.PCG
	rng  *rand.Rand
}

// NewInpaint returns the inpainting model for the mask c (zero fields:
// the defaults); its parameters are those of NewMirroredAE ("encoder.…",
// "decoder.…"). It panics if c is invalid.
func NewInpaint(enc EncoderConfig, c InpaintConfig, rng *rand.Rand) *Inpaint {
	if err := c.Validate(0); err != nil {
		panic(err)
	}
	m := &Inpaint{Config: c.withDefaults(), ae: NewMirroredAE(enc, rng)}
	m.rng = rand.New(&m.pcg)
	return m
}

// Mask returns a copy of x [N, H, W, C] with each image's mask set to 0 in
// every channel, and the mask [N·H·W] (row by row, true where masked),
// random blocks drawn from seed. Both are the model's reused buffers,
// valid until the next call. It panics if x is not rank 4 or the squares
// do not fit inside it.
func (m *Inpaint) Mask(x *nn.Tensor, seed uint64) (*nn.Tensor, []bool) {
	if len(x.Shape) != 4 {
		panic(fmt.Sprintf("pretext: Inpaint: input %v is not [N, H, W, C]", x.Shape))
	}
	n, h, w, ch := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	s := m.Config.Size.Pixels(min(h, w))
	if s < 1 || s >= h || s >= w {
		panic(fmt.Sprintf("pretext: Inpaint: a mask of %d px on %d×%d images", s, h, w))
	}
	if m.in == nil || cap(m.in.Data) < x.Len() {
		m.in = nn.NewTensor(x.Shape...)
	}
	m.in.Shape = append(m.in.Shape[:0], x.Shape...)
	m.in.Data = m.in.Data[:x.Len()]
	copy(m.in.Data, x.Data)
	if cap(m.mask) < n*h*w {
		m.mask = make([]bool, n*h*w)
	}
	m.mask = m.mask[:n*h*w]
	clear(m.mask)
	m.pcg.Seed(seed, inpaintStream)
	for i := range n {
		mask := m.mask[i*h*w : (i+1)*h*w]
		img := m.in.Data[i*h*w*ch : (i+1)*h*w*ch]
		square := func(x0, y0 int) {
			for y := y0; y < y0+s; y++ {
				clear(img[(y*w+x0)*ch : (y*w+x0+s)*ch])
				for x := x0; x < x0+s; x++ {
					mask[y*w+x] = true
				}
			}
		}
		switch m.Config.Mask {
		case InpaintCenter:
			square((w-s)/2, (h-s)/2)
		case InpaintBlocks:
			for range m.Config.Blocks {
				x0 := m.rng.IntN(w - s + 1)
				square(x0, m.rng.IntN(h-s+1))
			}
		}
	}
	return m.in, m.mask
}

// Reconstruct returns the decoder's output for x [N, H, W, C], masked or
// not.
func (m *Inpaint) Reconstruct(x *nn.Tensor, train bool) *nn.Tensor { return m.ae.Reconstruct(x, train) }

// Step implements Model: b.Views[0] holds the clean images, masked by
// Mask(b.Views[0], b.Seed) for the input and their own target on the
// masked pixels. Evaluation steps report the loss as "mse" and, given the
// mean image, the error of predicting it on the same pixels as
// "mse_mean_patch".
func (m *Inpaint) Step(b Batch, train bool) Metrics {
	x := b.Views[0]
	in, mask := m.Mask(x, b.Seed)
	loss := m.loss.Forward(m.ae.Reconstruct(in, train), x, mask)
	if train {
		m.ae.enc.Backward(m.ae.Decoder.Backward(m.loss.Backward()))
		return Metrics{Loss: loss}
	}
	v := map[string]float64{"mse": loss}
	if m.mean != nil {
		v["mse_mean_patch"] = maskedMeanMSE(x.Data, mask, m.mean)
	}
	return Metrics{Loss: loss, Values: v}
}

// Params implements Model.
func (m *Inpaint) Params() []*nn.Param { return m.ae.Params() }

// Buffers implements Model.
func (m *Inpaint) Buffers() []*nn.Param { return m.ae.Buffers() }

// Encoder implements Model.
func (m *Inpaint) Encoder() *Encoder { return m.ae.enc }

// maskedMSE is the mean squared error over the masked pixels only, every
// channel of each: Σ (pred − target)² / (C · masked pixels) over the
// pixels where the mask is true. Unmasked pixels get no gradient.
type maskedMSE struct {
	diff, dx *nn.Tensor // diff is 0 where unmasked
	count    int        // masked values
}

// Forward returns the loss of pred against target, both [N, H, W, C],
// over the pixels where mask [N·H·W] is true (0 when none is). It panics
// if the shapes differ in size or mask does not have one entry per pixel.
func (l *maskedMSE) Forward(pred, target *nn.Tensor, mask []bool) float64 {
	if pred.Len() != target.Len() || len(mask) == 0 || pred.Len()%len(mask) != 0 {
		panic(fmt.Sprintf("pretext: masked MSE of prediction %v, target %v and %d mask entries", pred.Shape, target.Shape, len(mask)))
	}
	ch := pred.Len() / len(mask)
	if l.diff == nil || cap(l.diff.Data) < pred.Len() {
		l.diff = nn.NewTensor(pred.Shape...)
	}
	l.diff.Shape = append(l.diff.Shape[:0], pred.Shape...)
	l.diff.Data = l.diff.Data[:pred.Len()]
	var s float64
	l.count = 0
	for p, on := range mask {
		d := l.diff.Data[p*ch : (p+1)*ch]
		if !on {
			clear(d)
			continue
		}
		for k := range d {
			e := pred.Data[p*ch+k] - target.Data[p*ch+k]
			d[k] = e
			s += float64(e) * float64(e)
		}
		l.count += ch
	}
	if l.count == 0 {
		return 0
	}
	return s / float64(l.count)
}

// Backward returns ∂loss/∂pred: 2(pred − target)/count on the masked
// values, 0 elsewhere, in pred's shape. It reuses its buffer: the result
// is valid until the next Backward.
func (l *maskedMSE) Backward() *nn.Tensor {
	if l.dx == nil || cap(l.dx.Data) < l.diff.Len() {
		l.dx = nn.NewTensor(l.diff.Shape...)
	}
	l.dx.Shape = append(l.dx.Shape[:0], l.diff.Shape...)
	l.dx.Data = l.dx.Data[:l.diff.Len()]
	scale := float32(0)
	if l.count > 0 {
		scale = 2 / float32(l.count)
	}
	for i, d := range l.diff.Data {
		l.dx.Data[i] = d * scale
	}
	return l.dx
}

// maskedMeanMSE is the mean squared error of predicting mean [H, W, C]
// for every image of x [N, H, W, C] on the pixels where mask [N·H·W] is
// true: the mean patch's error. It panics if the sizes do not match.
func maskedMeanMSE(x []float32, mask []bool, mean []float32) float64 {
	if len(mask) == 0 || len(x)%len(mask) != 0 || len(x)%len(mean) != 0 || len(mean)%(len(x)/len(mask)) != 0 {
		panic(fmt.Sprintf("pretext: mean image of %d values, %d mask entries, for images of %d values in all", len(mean), len(mask), len(x)))
	}
	ch := len(x) / len(mask)
	var s float64
	count := 0
	for p, on := range mask {
		if !on {
			continue
		}
		for k := range ch {
			i := p*ch + k
			d := float64(x[i]) - float64(mean[i%len(mean)])
			s += d * d
		}
		count += ch
	}
	if count == 0 {
		return 0
	}
	return s / float64(count)
}
