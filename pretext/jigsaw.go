package pretext

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/augment"
	"github.com/patchwise-ml/patchwise/nn"
)

// Jigsaw defaults.
const (
	DefaultJigsawPermutations = 100
	DefaultJigsawHidden       = 512
)

// JigsawConfig holds the settings of the jigsaw pretext. Its zero value
// means the defaults given on each field; a resolved config holds the
// permutation set itself, so a run's config.json and its checkpoints say
// which permutation each label is.
type JigsawConfig struct {
	// Permutations is the number P of permutations the puzzles are
	// shuffled by, the classes of the head; default 100 (or the length
	// of Set when it is given).
	Permutations int `json:"permutations"`
	// Seed drives the choice of the set (augment.MaxHammingPermutations).
	Seed uint64 `json:"seed,omitempty"`
	// Set is the permutations, label by label, each as 9 digits (slot i
	// holds the tile of cell p[i], cells row by row). Default (empty):
	// the P permutations augment.MaxHammingPermutations(P, Seed) makes,
	// filled in when the config is resolved; P may be at most
	// augment.MaxGenerated then. A given set is used as it is.
	Set []augment.Permutation `json:"set,omitempty"`
	// Tiles is how the 3×3 tiles are cut: tile side, gap and jitter as
	// pixels or fractions of the image side (augment.TileConfig).
	Tiles augment.TileConfig `json:"tiles"`
	// Size is the side, in pixels, that each tile is resized to for the
	// encoder. Default: the tile's own side, so that tiles go in at their
	// native resolution (24 for the 24-pixel tiles of 96×96 images),
	// where it is at least the encoder's least input side
	// (EncoderConfig.MinSize); that least side where tiles are smaller
	// (16 for the 7-pixel tiles of 28×28 images and four blocks). The
	// shared Config.Size stays the side of whole images for probes and
	// export.
	Size int `json:"size"`
	// Hidden is the width of the head's hidden layer; default 512.
	Hidden int `json:"hidden"`
	// Transform is applied to each tile on its own; default (nil)
	// augment.ModernDefaults(): grayscale with probability 0.66 and
	// per-tile standardisation.
	Transform *augment.Transform `json:"transform,omitempty"`
}

// jigsawSpec is the jigsaw puzzle pretext: puzzles drawn by an
// augment.JigsawSampler, the Jigsaw model.
var jigsawSpec = Spec{
	Name:      "jigsaw",
	Summary:   "which of P permutations shuffled the 9 tiles of a 3×3 grid",
	Reference: "Noroozi & Favaro 2016",
	Metrics: []Metric{{Key: accuracy.Key, Title: accuracy.Title, Percent: true,
		Chance: func(c Config) float64 { return 1 / float64(c.Jigsaw.Permutations) }}},
	Prepare: func(c *Config, side int) {
		j := &c.Jigsaw
		if j.Transform == nil {
			t := augment.ModernDefaults()
			j.Transform = &t
		}
		if j.Hidden == 0 {
			j.Hidden = DefaultJigsawHidden
		}
		if j.Permutations == 0 {
			j.Permutations = DefaultJigsawPermutations
			if len(j.Set) > 0 {
				j.Permutations = len(j.Set)
			}
		}
		if len(j.Set) == 0 {
			// Out of range: Check says so.
			j.Set, _ = augment.MaxHammingPermutations(j.Permutations, j.Seed)
		}
		if j.Size == 0 {
			if g, err := j.Tiles.Geometry(side); err == nil {
				j.Size = max(g.Tile, c.Encoder.MinSize())
			}
		}
	},
	Check: func(c Config, side int) error {
		j := c.Jigsaw
		var errs []error
		if j.Hidden < 0 {
			errs = append(errs, fmt.Errorf("pretext: jigsaw: hidden width %d is negative", j.Hidden))
		}
		switch {
		case len(j.Set) == 0:
			errs = append(errs, fmt.Errorf("pretext: jigsaw: %d permutations: want 2 to %d, or a set of at least 2", j.Permutations, augment.MaxGenerated))
		case len(j.Set) != j.Permutations:
			errs = append(errs, fmt.Errorf("pretext: jigsaw: permutations %d, but the set holds %d", j.Permutations, len(j.Set)))
		}
		errs = append(errs, checkViewSize("jigsaw: tile input size", j.Size, c.Encoder))
		return errors.Join(errs...)
	},
	// Validation draws its puzzles as training does (from the loader's
	// own seed), so that val_acc measures the same task.
	Sampler: func(c Config, side, ch int, train bool) (augment.Sampler, error) {
		j := c.Jigsaw
		return augment.NewJigsawSampler(j.Tiles, j.Set, *j.Transform, side, ch, j.Size)
	},
	New: func(c Config, rng *rand.Rand) (Model, error) {
		return NewJigsaw(c.Encoder, c.Jigsaw.Hidden, len(c.Jigsaw.Set), rng), nil
	},
	Normalize: func(c Config) string { return c.Jigsaw.Transform.Normalize },
}

// Jigsaw is the jigsaw puzzle model of Noroozi & Favaro (2016): the 9
// tiles of every puzzle go through the one shared encoder (as a single
// batch of 9N, so batch norm sees them all), their globally average-pooled
// features are concatenated per puzzle in slot order, and an MLP
// Linear(9·Dim, Hidden) → ReLU → Linear(Hidden, P) tells which of the P
// permutations shuffled them.
type Jigsaw struct {
	enc  *Encoder
	gap  *nn.GlobalAvgPool
	head *nn.Sequential
	loss nn.SoftmaxCrossEntropy
}

// NewJigsaw returns the model for perms permutations with a head of
// hidden units; head parameters are named "head.fc1.…" and "head.fc2.…".
func NewJigsaw(cfg EncoderConfig, hidden, perms int, rng *rand.Rand) *Jigsaw {
	e := NewEncoder("encoder", cfg, rng)
	head := nn.NewSequential(nn.NewLinear("head.fc1", augment.Tiles*e.Dim(), hidden, rng), nn.NewReLU(),
		nn.NewLinear("head.fc2", hidden, perms, rng))
	return &Jigsaw{enc: e, gap: nn.NewGlobalAvgPool(), head: head}
}

// Logits returns the permutation scores [N, P] for the puzzles of tiles
// [9N, S, S, C]: puzzle i's tiles are rows 9i to 9i+8, in slot order. It
// panics if the rows are not a multiple of 9.
func (m *Jigsaw) Logits(tiles *nn.Tensor, train bool) *nn.Tensor {
	if len(tiles.Shape) != 4 || tiles.Shape[0]%augment.Tiles != 0 {
		panic(fmt.Sprintf("pretext: Jigsaw: tiles %v are not [9N, S, S, C]", tiles.Shape))
	}
	f := m.gap.Forward(m.enc.Forward(tiles, train), train) // [9N, Dim], a puzzle's 9 rows together
	n := tiles.Shape[0] / augment.Tiles
	return m.head.Forward(f.Reshape(n, augment.Tiles*m.enc.Dim()), train)
}

// Step implements Model: b.Views[0] holds the puzzles' tiles, b.Labels
// the permutations' indices.
func (m *Jigsaw) Step(b Batch, train bool) Metrics {
	loss, acc := m.loss.Forward(m.Logits(b.Views[0], train), b.Labels)
	if train {
		d := m.head.Backward(m.loss.Backward()) // [N, 9·Dim]
		m.enc.Backward(m.gap.Backward(d.Reshape(d.Shape[0]*augment.Tiles, m.enc.Dim())))
	}
	return Metrics{Loss: loss, Values: map[string]float64{accuracy.Key: acc}}
}

// Params implements Model.
func (m *Jigsaw) Params() []*nn.Param { return append(m.enc.Params(), m.head.Params()...) }

// Buffers implements Model.
func (m *Jigsaw) Buffers() []*nn.Param { return m.enc.Buffers() }

// Encoder implements Model.
func (m *Jigsaw) Encoder() *Encoder { return m.enc }
