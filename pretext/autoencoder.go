package pretext

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// reconstruction are the metrics of the autoencoders: the reconstruction
// error of evaluation steps on clean images, and the error of predicting
// the training split's mean image instead, the baseline to beat.
var reconstruction = []Metric{
	{Key: "mse", Title: "reconstruction MSE", Baseline: "mse_mean_image", EvalOnly: true},
	{Key: "mse_mean_image", Title: "MSE of the mean image", EvalOnly: true},
}

// autoencoderSpec returns the Spec of an L2 autoencoder built by newAE;
// convolutional says its decoder upsamples back to the input side, which
// must then be a multiple of 2^blocks.
func autoencoderSpec(name, summary string, convolutional bool, newAE func(c Config, rng *rand.Rand) autoencoder) Spec {
	s := Spec{
		Name:      name,
		Summary:   summary,
		Reference: "Hinton & Salakhutdinov 2006",
		Default:   true,
		MeanImage: true,
		Metrics:   reconstruction,
		Sampler: func(c Config, side, ch int, train bool) (augment.Sampler, error) {
			return imageSampler(c, side, ch, train)
		},
		New: func(c Config, rng *rand.Rand) (Model, error) {
			ae := newAE(c, rng)
			ae.setMean(c.MeanImage)
			return ae, nil
		},
	}
	if convolutional {
		s.Check = func(c Config, side int) error {
			if least := c.Encoder.MinSize(); c.Size%least != 0 {
				return fmt.Errorf("pretext: %s reconstructs only sides that are multiples of %d (%s), got %d",
					name, least, c.Encoder.downsampling(), c.Size)
			}
			return nil
		}
	}
	return s
}

var mirroredSpec = autoencoderSpec("ae-mirrored", "L2 reconstruction, decoder mirroring the encoder", true,
	func(c Config, rng *rand.Rand) autoencoder { return NewMirroredAE(c.Encoder, rng) })

// meanBaseline is what the autoencoders share: the mean image their
// evaluation steps report the error of (nil: not reported).
type meanBaseline struct {
	mean []float32 // [S, S, C]
}

func (b *meanBaseline) setMean(mean []float32) { b.mean = mean }

// metrics returns a step's Metrics: the loss and, for an evaluation step,
// the reconstruction error mse of the clean images x [N, S, S, C] and the
// mean image's error on them.
func (b *meanBaseline) metrics(loss, mse float64, x *nn.Tensor, train bool) Metrics {
	m := Metrics{Loss: loss}
	if train {
		return m
	}
	m.Values = map[string]float64{"mse": mse}
	if b.mean != nil {
		m.Values["mse_mean_image"] = meanImageMSE(x.Data, b.mean)
	}
	return m
}

// meanImageMSE is the mean squared error of predicting mean for every
// image of x [N, S, S, C]. It panics if len(x) is not a multiple of
// len(mean).
func meanImageMSE(x, mean []float32) float64 {
	if len(x)%len(mean) != 0 {
		panic(fmt.Sprintf("pretext: mean image of %d values for images of %d values in all", len(mean), len(x)))
	}
	var s float64
	for i := 0; i < len(x); i += len(mean) {
		s += kernel.SquaredDiff(nil, x[i:i+len(mean)], mean)
	}
	return s / float64(len(x))
}

// MirroredAE is the autoencoder with a decoder that mirrors the encoder:
// from the encoder's last map, one [upsample → conv3×3 → BatchNorm →
// ReLU] block per encoder block, from the last to the first, with the
// encoder's widths in reverse (256 → 128 → 64 → 32 → 32 for the
// reference), then conv3×3 to the input channels. Each upsampling
// (nearest neighbour) undoes the stride of the encoder block it mirrors
// (EncoderConfig.Strides): ×2 for each block of the reference encoder;
// for a ResNet ×2 for stages 4, 3 and 2, and for stage 1 with its stem
// none (small stem) or ×4 (ImageNet stem). The loss is the mean-squared
// error against the input; the output has the input's shape when H and
// W are multiples of EncoderConfig.MinSize.
type MirroredAE struct {
	enc     *Encoder
	Decoder *nn.Sequential
	loss    nn.MSE
	meanBaseline
}

// NewMirroredAE returns the autoencoder; decoder parameters are named
// "decoder.blockK.conv.weight", … and "decoder.out.weight", ".bias".
func NewMirroredAE(cfg EncoderConfig, rng *rand.Rand) *MirroredAE {
	e := NewEncoder("encoder", cfg, rng)
	ws, strides := e.Config.Widths, e.Config.Strides()
	dec := nn.NewSequential()
	in := ws[len(ws)-1]
	for i := range ws {
		k := len(ws) - 1 - i // the encoder block this decoder block mirrors
		out := ws[0]
		if k > 0 {
			out = ws[k-1]
		}
		name := fmt.Sprintf("decoder.block%d", i+1)
		switch s := strides[k]; {
		case s%2 == 0:
			// Upsample ×2 and conv3×3 as one layer (the same function and
			// weight, 16/36 of the arithmetic); nearest ×s is ×s/2 then ×2.
			if s > 2 {
				dec.Layers = append(dec.Layers, nn.NewUpsample2D(s/2))
			}
			dec.Layers = append(dec.Layers, nn.NewUpsampleConv2D(name+".conv", in, out, false, rng))
		default:
			if s > 1 {
				dec.Layers = append(dec.Layers, nn.NewUpsample2D(s))
			}
			dec.Layers = append(dec.Layers, nn.NewConv2D(name+".conv", in, out, 3, 1, 1, false, rng))
		}
		dec.Layers = append(dec.Layers,
			nn.NewBatchNorm2D(name+".bn", out).WithReLU())
		in = out
	}
	dec.Layers = append(dec.Layers, nn.NewConv2D("decoder.out", in, e.Config.Channels, 3, 1, 1, true, rng))
	return &MirroredAE{enc: e, Decoder: dec}
}

// Reconstruct returns the decoder's output for x [N, H, W, C].
func (m *MirroredAE) Reconstruct(x *nn.Tensor, train bool) *nn.Tensor {
	return m.Decoder.Forward(m.enc.Forward(x, train), train)
}

// Step implements Model: the images are b.Views[0], and their own target.
func (m *MirroredAE) Step(b Batch, train bool) Metrics {
	x := b.Views[0]
	loss := m.fit(x, x, train)
	return m.metrics(loss, loss, x, train)
}

func (m *MirroredAE) fit(in, target *nn.Tensor, train bool) float64 {
	loss := m.loss.Forward(m.Reconstruct(in, train), target)
	if train {
		m.enc.Backward(m.Decoder.Backward(m.loss.Backward()))
	}
	return loss
}

// Params implements Model.
func (m *MirroredAE) Params() []*nn.Param { return append(m.enc.Params(), m.Decoder.Params()...) }

// Buffers implements Model.
func (m *MirroredAE) Buffers() []*nn.Param {
	return append(m.enc.Buffers(), m.Decoder.Buffers()...)
}

// Encoder implements Model.
func (m *MirroredAE) Encoder() *Encoder { return m.enc }
