package pretext

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/patchwise-ml/patchwise/nn"
)

// Positions is the number of relative positions RelPos tells apart: the 8
// neighbours of a cell in a 3×3 grid.
const Positions = 8

// RelPos is the relative-position model of Doersch et al. (2015): both
// crops of a pair go through the one shared encoder (as a single batch of
// 2N, so batch norm sees both), their pooled features are concatenated,
// and an MLP Linear(2·Dim, Hidden) → ReLU → Linear(Hidden, 8) predicts
// where the second crop lies relative to the first.
type RelPos struct {
	Encoder *Encoder
	gap     *nn.GlobalAvgPool
	cat     nn.Concat
	head    *nn.Sequential
	loss    nn.SoftmaxCrossEntropy

	pair, dfeat *nn.Tensor // reused [2N, …] buffers
}

// NewRelPos returns the model with a head of hidden units (256 in the
// reference); head parameters are named "head.fc1.…" and "head.fc2.…".
func NewRelPos(cfg EncoderConfig, hidden int, rng *rand.Rand) *RelPos {
	e := NewEncoder("encoder", cfg, rng)
	head := nn.NewSequential(nn.NewLinear("head.fc1", 2*e.Dim(), hidden, rng), nn.NewReLU(),
		nn.NewLinear("head.fc2", hidden, Positions, rng))
	return &RelPos{Encoder: e, gap: nn.NewGlobalAvgPool(), head: head}
}

// Logits returns the position scores [N, 8] for the pairs (a[i], b[i]),
// both [N, H, W, C]. It panics if the shapes differ.
func (m *RelPos) Logits(a, b *nn.Tensor, train bool) *nn.Tensor {
	if !slices.Equal(a.Shape, b.Shape) {
		panic(fmt.Sprintf("pretext: RelPos: crops of shapes %v and %v", a.Shape, b.Shape))
	}
	n := a.Shape[0]
	shape := append([]int{2 * n}, a.Shape[1:]...)
	if m.pair == nil || !slices.Equal(m.pair.Shape, shape) {
		m.pair = nn.NewTensor(shape...)
	}
	copy(m.pair.Data, a.Data)
	copy(m.pair.Data[a.Len():], b.Data)
	f := m.gap.Forward(m.Encoder.Forward(m.pair, train), train)
	return m.head.Forward(m.cat.Forward(f.Rows(0, n), f.Rows(n, 2*n)), train)
}

// Step implements Model: b.X and b.X2 are the crops, b.Labels the positions.
func (m *RelPos) Step(b Batch, train bool) Metrics {
	loss, acc := m.loss.Forward(m.Logits(b.X, b.X2, train), b.Labels)
	if train {
		d := m.cat.Backward(m.head.Backward(m.loss.Backward()))
		n, dim := d[0].Shape[0], d[0].Shape[1]
		if m.dfeat == nil || m.dfeat.Len() != 2*n*dim {
			m.dfeat = nn.NewTensor(2*n, dim)
		}
		copy(m.dfeat.Data, d[0].Data)
		copy(m.dfeat.Data[n*dim:], d[1].Data)
		m.Encoder.Backward(m.gap.Backward(m.dfeat))
	}
	return Metrics{Loss: loss, Accuracy: acc}
}

// Params implements Model.
func (m *RelPos) Params() []*nn.Param { return append(m.Encoder.Params(), m.head.Params()...) }

// Buffers implements Model.
func (m *RelPos) Buffers() []*nn.Param { return m.Encoder.Buffers() }
