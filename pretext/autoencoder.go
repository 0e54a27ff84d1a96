package pretext

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn"
)

// MirroredAE is the autoencoder with a decoder that mirrors the encoder:
// from the encoder's last map, one [upsample ×2 → conv3×3 → BatchNorm →
// ReLU] block per encoder block, with the encoder's widths in reverse
// (256 → 128 → 64 → 32 → 32 for the reference), then conv3×3 to the input
// channels. The loss is the mean-squared error against the input; the
// output has the input's shape when H and W are multiples of 2^blocks.
type MirroredAE struct {
	Encoder *Encoder
	Decoder *nn.Sequential
	loss    nn.MSE
}

// NewMirroredAE returns the autoencoder; decoder parameters are named
// "decoder.blockK.conv.weight", … and "decoder.out.weight", ".bias".
func NewMirroredAE(cfg EncoderConfig, rng *rand.Rand) *MirroredAE {
	e := NewEncoder("encoder", cfg, rng)
	ws := e.Config.Widths
	dec := nn.NewSequential()
	in := ws[len(ws)-1]
	for i := range ws {
		out := ws[0]
		if j := len(ws) - 2 - i; j >= 0 {
			out = ws[j]
		}
		name := fmt.Sprintf("decoder.block%d", i+1)
		dec.Layers = append(dec.Layers, nn.NewUpsample2D(2),
			nn.NewConv2D(name+".conv", in, out, 3, 1, 1, false, rng),
			nn.NewBatchNorm2D(name+".bn", out).WithReLU())
		in = out
	}
	dec.Layers = append(dec.Layers, nn.NewConv2D("decoder.out", in, e.Config.Channels, 3, 1, 1, true, rng))
	return &MirroredAE{Encoder: e, Decoder: dec}
}

// Reconstruct returns the decoder's output for x [N, H, W, C].
func (m *MirroredAE) Reconstruct(x *nn.Tensor, train bool) *nn.Tensor {
	return m.Decoder.Forward(m.Encoder.Forward(x, train), train)
}

// Step implements Model: the target is b.X itself.
func (m *MirroredAE) Step(b Batch, train bool) Metrics {
	loss := m.loss.Forward(m.Reconstruct(b.X, train), b.X)
	if train {
		m.Encoder.Backward(m.Decoder.Backward(m.loss.Backward()))
	}
	return Metrics{Loss: loss}
}

// Params implements Model.
func (m *MirroredAE) Params() []*nn.Param { return append(m.Encoder.Params(), m.Decoder.Params()...) }

// Buffers implements Model.
func (m *MirroredAE) Buffers() []*nn.Param {
	return append(m.Encoder.Buffers(), m.Decoder.Buffers()...)
}
