package pretext

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn"
)

var linearSpec = autoencoderSpec("ae-linear", "L2 reconstruction by one linear map F·W", false,
	func(c Config, rng *rand.Rand) autoencoder { return NewLinearAE(c.Encoder, c.Size, rng) })

// LinearAE is the autoencoder with a linear decoder (the F·W decoder of
// docs/design.md §4): the encoder's globally average-pooled feature [N, Dim]
// → Linear(Dim, Size·Size·C) → reshaped to the image [N, Size, Size, C],
// trained with the mean-squared error against the input.
type LinearAE struct {
	enc     *Encoder
	Size    int            // the side of the square images it reconstructs
	Decoder *nn.Sequential // [Linear, Reshape]
	gap     *nn.GlobalAvgPool
	loss    nn.MSE
	meanBaseline
}

// NewLinearAE returns the autoencoder for size×size images; the decoder's
// parameters are named "decoder.fc.weight" [Size·Size·C, Dim] and
// "decoder.fc.bias", the output's row-major (y, x, c) order. It panics if
// the configuration is invalid or size is smaller than cfg.MinSize().
func NewLinearAE(cfg EncoderConfig, size int, rng *rand.Rand) *LinearAE {
	if least := cfg.MinSize(); size < least {
		panic(fmt.Sprintf("pretext: NewLinearAE: size %d below the encoder's minimum %d", size, least))
	}
	e := NewEncoder("encoder", cfg, rng)
	c := e.Config.Channels
	dec := nn.NewSequential(nn.NewLinear("decoder.fc", e.Dim(), size*size*c, rng), nn.NewReshape(size, size, c))
	return &LinearAE{enc: e, Size: size, Decoder: dec, gap: nn.NewGlobalAvgPool()}
}

// Reconstruct returns the decoder's output [N, Size, Size, C] for x
// [N, Size, Size, C]; it panics if x has another shape.
func (m *LinearAE) Reconstruct(x *nn.Tensor, train bool) *nn.Tensor {
	if len(x.Shape) != 4 || x.Shape[1] != m.Size || x.Shape[2] != m.Size || x.Shape[3] != m.enc.Config.Channels {
		panic(fmt.Sprintf("pretext: LinearAE: input %v, want [N, %d, %d, %d]", x.Shape, m.Size, m.Size, m.enc.Config.Channels))
	}
	return m.Decoder.Forward(m.gap.Forward(m.enc.Forward(x, train), train), train)
}

// Step implements Model: the images are b.Views[0], and their own target.
func (m *LinearAE) Step(b Batch, train bool) Metrics {
	x := b.Views[0]
	loss := m.fit(x, x, train)
	return m.metrics(loss, loss, x, train)
}

func (m *LinearAE) fit(in, target *nn.Tensor, train bool) float64 {
	loss := m.loss.Forward(m.Reconstruct(in, train), target)
	if train {
		m.enc.Backward(m.gap.Backward(m.Decoder.Backward(m.loss.Backward())))
	}
	return loss
}

// Params implements Model.
func (m *LinearAE) Params() []*nn.Param { return append(m.enc.Params(), m.Decoder.Params()...) }

// Buffers implements Model.
func (m *LinearAE) Buffers() []*nn.Param { return m.enc.Buffers() }

// Encoder implements Model.
func (m *LinearAE) Encoder() *Encoder { return m.enc }
