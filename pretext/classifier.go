package pretext

import (
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn"
)

// Classifier is the encoder trained with labels: encoder → global average
// pool → Linear(Dim, Classes), cross-entropy. It is the supervised upper
// bound of comparisons and the model of the reference speed benchmark.
type Classifier struct {
	Encoder *Encoder
	gap     *nn.GlobalAvgPool
	head    *nn.Linear
	loss    nn.SoftmaxCrossEntropy
}

// NewClassifier returns a classifier over classes labels; parameters are
// named "encoder.…" and "head.weight", "head.bias".
func NewClassifier(cfg EncoderConfig, classes int, rng *rand.Rand) *Classifier {
	e := NewEncoder("encoder", cfg, rng)
	return &Classifier{Encoder: e, gap: nn.NewGlobalAvgPool(), head: nn.NewLinear("head", e.Dim(), classes, rng)}
}

// Logits returns the class scores [N, Classes] for x [N, H, W, C].
func (m *Classifier) Logits(x *nn.Tensor, train bool) *nn.Tensor {
	return m.head.Forward(m.gap.Forward(m.Encoder.Forward(x, train), train), train)
}

// Step implements Model; b.Labels holds the classes.
func (m *Classifier) Step(b Batch, train bool) Metrics {
	loss, acc := m.loss.Forward(m.Logits(b.X, train), b.Labels)
	if train {
		m.Encoder.Backward(m.gap.Backward(m.head.Backward(m.loss.Backward())))
	}
	return Metrics{Loss: loss, Accuracy: acc}
}

// Params implements Model.
func (m *Classifier) Params() []*nn.Param { return append(m.Encoder.Params(), m.head.Params()...) }

// Buffers implements Model.
func (m *Classifier) Buffers() []*nn.Param { return m.Encoder.Buffers() }
