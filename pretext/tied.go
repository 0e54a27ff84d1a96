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
// transposed: from the encoder's last map, for each convolution on the
// encoder's downsampling path (Encoder.DownConvs) from the last to the
// first, the transpose of that convolution (nn.NewTiedConvTranspose2D,
// the same weight tensor; with the upsampling before it as one
// nn.NewTiedUpsampleConv2D when it is 3×3 with stride 1), which maps its output width back to its input
// width; a BatchNorm+ReLU of the decoder's own follows each but the last,
// which maps back to the input channels with a bias and no ReLU. A max
// pool after a convolution is undone by nearest upsampling ×2 before its
// transpose (every block of the reference encoder; the ImageNet stem of a
// ResNet), a stride-2 convolution by its transpose's own stride (the
// first convolution of ResNet stages 2–4; ImageNet stem). For a ResNet
// the path is the stem and the first convolution of each stage; the
// other convolutions of the residual blocks have no transpose in the
// decoder. The loss is the mean-squared error against the input; the
// output has the input's shape when H and W are multiples of
// EncoderConfig.MinSize.
//
// Encoder and decoder learn the shared kernels together: both add their
// gradients into the one parameter, which Params lists once (nn.Unique),
// under its encoder name ("encoder.blockK.conv.weight", or for a ResNet
// "encoder.conv1.weight", "encoder.layerS.0.conv1.weight").
//
// The shared kernels start Kaiming-normal for the fan-in of the
// transposes (OutC·K²/Stride², PyTorch's mode "fan_out" for the
// convolutions of stride 1): the encoder's own draws scaled by
// Stride·√(InC/OutC). The encoder computes the same function either way,
// since batch norm follows each of its bias-free convolutions, but the
// decoder's last transpose, which no batch norm follows, would otherwise
// start √(OutC/InC) times too large: outputs of standard deviation about
// 6 for 32 channels from grey images, a first loss near 80 on images in
// [0, 1], which plain SGD diverged from and AdamW did not recover from in
// 300 steps.
type TiedAE struct {
	enc     *Encoder
	Decoder *nn.Sequential
	loss    nn.MSE
	meanBaseline
}

// NewTiedAE returns the autoencoder. Its own parameters are the decoder's
// batch norms "decoder.blockI.bn.weight", ".bias" (I = 1 … D−1 in
// decoder order, D = len(Encoder.DownConvs()): block I transposes
// down-convolution D+1−I) and the output bias "decoder.out.bias" [C]. It
// panics if the configuration is invalid.
func NewTiedAE(cfg EncoderConfig, rng *rand.Rand) *TiedAE {
	e := NewEncoder("encoder", cfg, rng)
	convs := e.DownConvs()
	dec := nn.NewSequential()
	for i := range convs {
		k := len(convs) - 1 - i // the convolution this decoder step undoes, 0-based
		conv := convs[k]
		s := float32(float64(conv.Stride) * math.Sqrt(float64(conv.InC)/float64(conv.OutC)))
		for j := range conv.Weight.Value.Data {
			conv.Weight.Value.Data[j] *= s
		}
		pooled := !e.Config.IsResNet() || (k == 0 && e.Config.Stem == StemImageNet)
		// Upsampling ×2 and the transpose of a 3×3, stride-1 convolution
		// run as one layer (the same function and shared weight, 16/36 of
		// the arithmetic).
		fused := pooled && conv.K == 3 && conv.Stride == 1 && conv.Pad == 1
		if pooled && !fused {
			dec.Layers = append(dec.Layers, nn.NewUpsample2D(2))
		}
		outPad := conv.Stride - conv.K + 2*conv.Pad // the output side exactly Stride times the input's
		transpose := func(name string, bias bool) nn.Layer {
			if fused {
				return nn.NewTiedUpsampleConv2D(name, conv, bias)
			}
			return nn.NewTiedConvTranspose2D(name, conv, outPad, bias)
		}
		if k == 0 {
			dec.Layers = append(dec.Layers, transpose("decoder.out", true))
			break
		}
		name := fmt.Sprintf("decoder.block%d", i+1)
		dec.Layers = append(dec.Layers, transpose(name+".deconv", false),
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
