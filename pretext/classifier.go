package pretext

import (
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

// supervisedSpec is the encoder trained with the dataset's labels: the
// upper bound a pretext is read against.
var supervisedSpec = Spec{
	Name:      "supervised",
	Summary:   "the labels themselves: the upper bound",
	Reference: "supervised baseline",
	Default:   true,
	Labels:    true,
	Metrics: []Metric{{Key: accuracy.Key, Title: "accuracy", Percent: true,
		Chance: func(c Config) float64 { return 1 / float64(c.Classes) }}},
	Sampler: func(c Config, side, ch int, train bool) (augment.Sampler, error) {
		return imageSampler(c, side, ch, train)
	},
	New: func(c Config, rng *rand.Rand) (Model, error) {
		return NewClassifier(c.Encoder, c.Classes, rng), nil
	},
}

// Classifier is the encoder trained with labels: encoder → global average
// pool → Linear(Dim, Classes), cross-entropy. It is the supervised upper
// bound of comparisons and the model of the reference speed benchmark.
type Classifier struct {
	enc  *Encoder
	gap  *nn.GlobalAvgPool
	head *nn.Linear
	loss nn.SoftmaxCrossEntropy
}

// NewClassifier returns a classifier over classes labels; parameters are
// named "encoder.…" and "head.weight", "head.bias".
func NewClassifier(cfg EncoderConfig, classes int, rng *rand.Rand) *Classifier {
	e := NewEncoder("encoder", cfg, rng)
	return &Classifier{enc: e, gap: nn.NewGlobalAvgPool(), head: nn.NewLinear("head", e.Dim(), classes, rng)}
}

// Logits returns the class scores [N, Classes] for x [N, H, W, C].
func (m *Classifier) Logits(x *nn.Tensor, train bool) *nn.Tensor {
	return m.head.Forward(m.gap.Forward(m.enc.Forward(x, train), train), train)
}

// Step implements Model: b.Views[0] holds the images, b.Labels their
// classes.
func (m *Classifier) Step(b Batch, train bool) Metrics {
	loss, acc := m.loss.Forward(m.Logits(b.Views[0], train), b.Labels)
	if train {
		m.enc.Backward(m.gap.Backward(m.head.Backward(m.loss.Backward())))
	}
	return Metrics{Loss: loss, Values: map[string]float64{accuracy.Key: acc}}
}

// Params implements Model.
func (m *Classifier) Params() []*nn.Param { return append(m.enc.Params(), m.head.Params()...) }

// Buffers implements Model.
func (m *Classifier) Buffers() []*nn.Param { return m.enc.Buffers() }

// Encoder implements Model.
func (m *Classifier) Encoder() *Encoder { return m.enc }
