package pretext

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn"
)

var tiedSpec = autoencoderSpec("ae-tied", "L2 reconstruction by the encoder's kernels transposed", true,
	func(c Config, rng *rand.Rand) autoencoder { return NewTiedAE(c.Encoder, rng) })

// TiedAE is the autoencoder whose decoder reuses the encoder's kernels,
// transposed: from the encoder's last map, for each encoder block k from
// the last to the first, nearest upsampling ×2 (undoing the max pool)
// then the transpose of block k's convolution (the same weight tensor;
// the two run as one nn.NewTiedUpsampleConv2D), which maps width_k back to width_{k−1}; a
// BatchNorm+ReLU of the decoder's own follows each but the last, which
// maps back to the input channels with a bias and no ReLU. The loss is
// the mean-squared error against the input; the output has the input's
// shape when H and W are multiples of 2^blocks.
//
// Encoder and decoder learn the shared kernels together: both add their
// gradients into the one parameter, which Params lists once (nn.Unique),
// under its encoder name "encoder.blockK.conv.weight".
//
// The shared kernels start Kaiming-normal for the fan-in of the
// transposes (OutC·K², PyTorch's mode "fan_out" for the convolutions):
// the encoder's own draws scaled by √(InC/OutC). The encoder computes the
// same function either way, since batch norm follows each of its
// bias-free convolutions, but the decoder's last transpose, which no batch
// norm follows, would otherwise start √(OutC/InC) times too large: outputs
// of standard deviation about 6 for 32 channels from grey images, a first
// loss near 80 on images in [0, 1], which plain SGD diverged from and
// AdamW did not recover from in 300 steps.
type TiedAE struct {
	enc     *Encoder
	Decoder *nn.Sequential
	loss    nn.MSE
	meanBaseline
}

// NewTiedAE returns the autoencoder. Its own parameters are the decoder's
// batch norms "decoder.blockI.bn.weight", ".bias" (I = 1 … blocks−1 in
// decoder order: block I transposes encoder block blocks+1−I) and the
// output bias "decoder.out.bias" [C]. It panics if the configuration is
// invalid.
func NewTiedAE(cfg EncoderConfig, rng *rand.Rand) *TiedAE {
	e := NewEncoder("encoder", cfg, rng)
	dec := nn.NewSequential()
	for i := range e.Blocks {
		k := len(e.Blocks) - 1 - i // the encoder block this decoder step undoes, 0-based
		conv := e.Blocks[k].Layers[0].(*nn.Conv2D)
		s := float32(math.Sqrt(float64(conv.InC) / float64(conv.OutC)))
		for j := range conv.Weight.Value.Data {
			conv.Weight.Value.Data[j] *= s
		}
		// Upsample ×2 and the transpose as one layer (the same function
		// and shared weight, 16/36 of the arithmetic).
		if k == 0 {
			dec.Layers = append(dec.Layers, nn.NewTiedUpsampleConv2D("decoder.out", conv, true))
			break
		}
		name := fmt.Sprintf("decoder.block%d", i+1)
		dec.Layers = append(dec.Layers, nn.NewTiedUpsampleConv2D(name+".deconv", conv, false),
			nn.NewBatchNorm2D(name+".bn", conv.InC).WithReLU())
	}
	return &TiedAE{enc: e, Decoder: dec}
}

// Reconstruct returns the decoder's output for x [N, H, W, C].
func (m *TiedAE) Reconstruct(x *nn.Tensor, train bool) *nn.Tensor {
	return m.Decoder.Forward(m.enc.Forward(x, train), train)
}

// Step implements Model: the images are b.Views[0], and their own target.
func (m *TiedAE) Step(b Batch, train bool) Metrics {
	x := b.Views[0]
	loss := m.fit(x, x, train)
	return m.metrics(loss, loss, x, train)
}

func (m *TiedAE) fit(in, target *nn.Tensor, train bool) float64 {
	loss := m.loss.Forward(m.Reconstruct(in, train), target)
	if train {
		m.enc.Backward(m.Decoder.Backward(m.loss.Backward()))
	}
	return loss
}

// Params implements Model: the encoder's parameters, then the decoder's
// own; the shared kernels appear once, as the encoder's.
func (m *TiedAE) Params() []*nn.Param {
	return nn.Unique(append(m.enc.Params(), m.Decoder.Params()...))
}

// Buffers implements Model.
func (m *TiedAE) Buffers() []*nn.Param {
	return append(m.enc.Buffers(), m.Decoder.Buffers()...)
}

// Encoder implements Model.
func (m *TiedAE) Encoder() *Encoder { return m.enc }
