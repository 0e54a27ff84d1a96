package pretext

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

// SimCLR defaults.
const (
	// DefaultTemperature is the NT-Xent temperature, the paper's for
	// ImageNet; on Fashion-MNIST at batch 128 it gave a higher top-1 and
	// k-NN accuracy than 0.2 or 0.5 (docs/design.md §5).
	DefaultTemperature = 0.1
	// DefaultProjection is the largest default output width of the
	// projection head; an encoder of a narrower feature projects to its
	// own width.
	DefaultProjection = 128
)

// SimCLRConfig holds the settings of the simclr pretext. Its zero value
// means the defaults given on each field.
type SimCLRConfig struct {
	// Views is the augmentation of each of the two views; nil means
	// augment.SimCLRViews() (the paper's recipe with a crop scale of
	// 0.2–1 for small images).
	Views *augment.ViewConfig `json:"views,omitempty"`
	// Hidden is the projection head's hidden width; default the
	// encoder's feature width.
	Hidden int `json:"hidden,omitempty"`
	// Out is the width of the embeddings the loss compares; default
	// min(DefaultProjection, the encoder's feature width).
	Out int `json:"out,omitempty"`
	// Temperature is the NT-Xent temperature T > 0; default
	// DefaultTemperature.
	Temperature float64 `json:"temperature,omitempty"`
}

// contrastive are the metrics of simclr: the top-1 of every step, and its
// chance level for the step's batch of N pairs, 1/(2N−1), as the baseline
// (Metric.Chance cannot know the batch size).
var contrastive = []Metric{
	{Key: "top1", Title: "contrastive top-1", Percent: true, Baseline: "top1_chance"},
	{Key: "top1_chance", Title: "chance top-1, 1/(2N−1)", Percent: true},
}

// simclrSpec is contrastive instance discrimination: two augmented views
// of each image (augment.ViewSampler), the SimCLR model. It keeps the
// pipeline's default optimiser: the paper's LARS is made for batches of
// thousands, and at batch 128 on Fashion-MNIST SGD at 0.05 matched AdamW at
// its best learning rate (docs/design.md §5).
var simclrSpec = Spec{
	Name:      "simclr",
	Summary:   "which view in the batch is another augmentation of the same image",
	Reference: "Chen, Kornblith, Norouzi & Hinton 2020",
	Metrics:   contrastive,
	Prepare: func(c *Config, side int) {
		s := &c.SimCLR
		if s.Views == nil {
			v := augment.SimCLRViews()
			s.Views = &v
		}
		dim := c.Encoder.Widths[len(c.Encoder.Widths)-1]
		if s.Hidden == 0 {
			s.Hidden = dim
		}
		if s.Out == 0 {
			s.Out = min(DefaultProjection, dim)
		}
		if s.Temperature == 0 {
			s.Temperature = DefaultTemperature
		}
	},
	Check: func(c Config, side int) error {
		s := c.SimCLR
		var errs []error
		if s.Hidden < 0 {
			errs = append(errs, fmt.Errorf("pretext: simclr: hidden width %d is negative", s.Hidden))
		}
		if s.Out < 0 {
			errs = append(errs, fmt.Errorf("pretext: simclr: projection width %d is negative", s.Out))
		}
		if !(s.Temperature >= 0) || math.IsInf(s.Temperature, 0) {
			errs = append(errs, fmt.Errorf("pretext: simclr: temperature %v: want a finite value > 0 (0: default %g)", s.Temperature, DefaultTemperature))
		}
		return errors.Join(errs...)
	},
	Sampler: func(c Config, side, ch int, train bool) (augment.Sampler, error) {
		return augment.NewViewSampler(*c.SimCLR.Views, side, ch, c.Size)
	},
	New: func(c Config, rng *rand.Rand) (Model, error) {
		s := c.SimCLR
		return NewSimCLR(c.Encoder, s.Hidden, s.Out, s.Temperature, rng), nil
	},
}

// SimCLR is the contrastive model of Chen et al. (2020): both views of
// every image go through the shared encoder as one batch of 2N (so batch
// norm sees both), their pooled features through a projection head
// Linear(Dim, Hidden) → ReLU → Linear(Hidden, Out), and the NT-Xent loss
// (nn.NTXent) asks each embedding to pick out its image's other view among
// the 2N−1 others by cosine similarity. The probe and export use the
// encoder's features, before the head.
type SimCLR struct {
	enc  *Encoder
	gap  *nn.GlobalAvgPool
	head *nn.Sequential
	loss nn.NTXent
}

// NewSimCLR returns the model with a projection head of hidden and out
// units and the loss at temperature; head parameters are named
// "head.fc1.…" and "head.fc2.…". It panics if a width or the temperature
// is not positive.
func NewSimCLR(cfg EncoderConfig, hidden, out int, temperature float64, rng *rand.Rand) *SimCLR {
	if !(temperature > 0) {
		panic(fmt.Sprintf("pretext: NewSimCLR: temperature %v", temperature))
	}
	e := NewEncoder("encoder", cfg, rng)
	head := nn.NewSequential(nn.NewLinear("head.fc1", e.Dim(), hidden, rng), nn.NewReLU(),
		nn.NewLinear("head.fc2", hidden, out, rng))
	return &SimCLR{enc: e, gap: nn.NewGlobalAvgPool(), head: head, loss: nn.NTXent{Temperature: temperature}}
}

// Embed returns the projections [2N, Out] of the views x [2N, H, W, C].
func (m *SimCLR) Embed(x *nn.Tensor, train bool) *nn.Tensor {
	return m.head.Forward(m.gap.Forward(m.enc.Forward(x, train), train), train)
}

// Step implements Model: b.Views[0] holds the two views of each image at
// rows 2i and 2i+1 (augment.ViewSampler). It reports the contrastive
// top-1 ("top1") and its chance level ("top1_chance").
func (m *SimCLR) Step(b Batch, train bool) Metrics {
	x := b.Views[0]
	loss, top1 := m.loss.Forward(m.Embed(x, train))
	if train {
		m.enc.Backward(m.gap.Backward(m.head.Backward(m.loss.Backward())))
	}
	return Metrics{Loss: loss, Values: map[string]float64{"top1": top1, "top1_chance": 1 / float64(x.Shape[0]-1)}}
}

// Params implements Model.
func (m *SimCLR) Params() []*nn.Param { return append(m.enc.Params(), m.head.Params()...) }

// Buffers implements Model.
func (m *SimCLR) Buffers() []*nn.Param { return m.enc.Buffers() }

// Encoder implements Model.
func (m *SimCLR) Encoder() *Encoder { return m.enc }
