package pretext

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/patchwise-ml/patchwise/nn"
)

// The encoder architectures (EncoderConfig.Arch) and ResNet stems
// (EncoderConfig.Stem).
const (
	ArchSmall    = "small"    // the reference encoder: blocks of conv → BN → ReLU → max pool
	ArchResNet18 = "resnet18" // ResNet-18: basic blocks [2, 2, 2, 2]
	ArchResNet34 = "resnet34" // ResNet-34: basic blocks [3, 4, 6, 3]

	StemSmall    = "small"    // conv 3×3 stride 1 → BN → ReLU, no pool: for small images
	StemImageNet = "imagenet" // conv 7×7 stride 2 → BN → ReLU → max pool 3×3 stride 2 pad 1
)

// resnetBlocks are the basic blocks per stage of each ResNet.
var resnetBlocks = map[string][]int{ArchResNet18: {2, 2, 2, 2}, ArchResNet34: {3, 4, 6, 3}}

// ResNetWidths are the stage widths of a ResNet at width multiplier 1.
var ResNetWidths = []int{64, 128, 256, 512}

// EncoderConfig shapes the encoder. Its zero value means the reference
// encoder on 3-channel images; Arch selects a ResNet instead. The fields
// of the ResNets are omitted from JSON when unset, so that the reference
// encoder's configs, and the hashes of runs made with it, stay as they
// were.
type EncoderConfig struct {
	Channels int `json:"channels,omitempty"` // input channels, 1 or 3; default 3
	// Widths are the output channels of each block (of each stage, for a
	// ResNet); default 32, 64, 128, 256, or for a ResNet the 4 stage
	// widths 64, 128, 256, 512 times Width, rounded (at least 1).
	Widths []int `json:"widths,omitempty"`
	// Arch is the architecture: ArchSmall (default, also "") or
	// ArchResNet18 / ArchResNet34.
	Arch string `json:"arch,omitempty"`
	// Stem is a ResNet's stem: StemSmall (default) or StemImageNet.
	Stem string `json:"stem,omitempty"`
	// Width is a ResNet's width multiplier (0.25 gives stage widths 16,
	// 32, 64, 128); default 1.
	Width float64 `json:"width,omitempty"`
}

// DefaultWidths are the reference encoder's block widths.
var DefaultWidths = []int{32, 64, 128, 256}

// IsResNet reports whether the configuration selects a ResNet.
func (c EncoderConfig) IsResNet() bool { return resnetBlocks[c.Arch] != nil }

// resnetWidths returns the stage widths of a ResNet at multiplier m.
func resnetWidths(m float64) []int {
	ws := make([]int, len(ResNetWidths))
	for i, w := range ResNetWidths {
		ws[i] = max(1, int(math.Round(m*float64(w))))
	}
	return ws
}

func (c EncoderConfig) withDefaults() EncoderConfig {
	if c.Channels == 0 {
		c.Channels = 3
	}
	if c.IsResNet() {
		if c.Stem == "" {
			c.Stem = StemSmall
		}
		if c.Width == 0 {
			c.Width = 1
		}
		if len(c.Widths) == 0 && c.Width > 0 {
			c.Widths = resnetWidths(c.Width)
		}
	}
	if len(c.Widths) == 0 {
		c.Widths = DefaultWidths
	}
	return c
}

// Validate reports every problem with the configuration at once.
func (c EncoderConfig) Validate() error {
	given := c
	c = c.withDefaults()
	var errs []error
	if c.Channels != 1 && c.Channels != 3 {
		errs = append(errs, fmt.Errorf("pretext: encoder channels must be 1 or 3, got %d", c.Channels))
	}
	switch {
	case c.IsResNet():
		if c.Stem != StemSmall && c.Stem != StemImageNet {
			errs = append(errs, fmt.Errorf("pretext: encoder stem %q: want %q or %q", c.Stem, StemSmall, StemImageNet))
		}
		if !(c.Width > 0) || math.IsInf(c.Width, 0) {
			errs = append(errs, fmt.Errorf("pretext: encoder width multiplier %v must be positive (1 for the standard %v)", c.Width, ResNetWidths))
		} else if len(given.Widths) > 0 && given.Width != 0 && !slices.Equal(given.Widths, resnetWidths(c.Width)) {
			errs = append(errs, fmt.Errorf("pretext: encoder widths %v disagree with width multiplier %v (%v): give one or the other",
				given.Widths, c.Width, resnetWidths(c.Width)))
		}
		if len(c.Widths) != len(ResNetWidths) {
			errs = append(errs, fmt.Errorf("pretext: encoder %s has %d stages, got %d widths %v", c.Arch, len(ResNetWidths), len(c.Widths), c.Widths))
		}
	case c.Arch != "" && c.Arch != ArchSmall:
		errs = append(errs, fmt.Errorf("pretext: encoder arch %q: want %q, %q or %q", c.Arch, ArchSmall, ArchResNet18, ArchResNet34))
	default:
		var set []string
		if c.Stem != "" {
			set = append(set, fmt.Sprintf("stem %q", c.Stem))
		}
		if c.Width != 0 {
			set = append(set, fmt.Sprintf("width %v", c.Width))
		}
		if len(set) > 0 {
			errs = append(errs, fmt.Errorf("pretext: encoder %s: only the ResNets have these: set arch to %q or %q, or leave them out",
				strings.Join(set, " and "), ArchResNet18, ArchResNet34))
		}
	}
	for i, w := range c.Widths {
		if w < 1 {
			errs = append(errs, fmt.Errorf("pretext: encoder width %d of block %d must be positive", w, i+1))
		}
	}
	return errors.Join(errs...)
}

// Strides returns by how much each block divides the side of its input:
// 2 for every block of the reference encoder; for a ResNet, the first
// stage with its stem (1 with the small stem, 4 with the ImageNet stem's
// strided convolution and pool), then 2 for each later stage.
func (c EncoderConfig) Strides() []int {
	c = c.withDefaults()
	s := make([]int, len(c.Widths))
	for i := range s {
		s[i] = 2
	}
	if c.IsResNet() && len(s) > 0 {
		s[0] = 1
		if c.Stem == StemImageNet {
			s[0] = 4
		}
	}
	return s
}

// MinSize is the smallest image side the encoder accepts, the product of
// its Strides: each block of the reference encoder halves the side, which
// must stay at least 1 (16 for four blocks); a ResNet takes 8 with the
// small stem and 32 with the ImageNet stem, where its last map is 1×1.
func (c EncoderConfig) MinSize() int {
	m := 1
	for _, s := range c.Strides() {
		m *= s
	}
	return m
}

// BlockWidths returns the output channels of each block (each stage of a
// ResNet), the defaults filled in.
func (c EncoderConfig) BlockWidths() []int { return slices.Clone(c.withDefaults().Widths) }

// MapSides returns the side of each block's output map for inputs of side
// size: halved (rounded down) by each max pool of the reference encoder;
// for a ResNet halved (rounded up) by each stride-2 convolution and by the
// ImageNet stem's pool, as in PyTorch.
func (c EncoderConfig) MapSides(size int) []int {
	c = c.withDefaults()
	sides := make([]int, len(c.Widths))
	for k, st := range c.Strides() {
		switch {
		case !c.IsResNet():
			size /= 2
		case st == 4:
			size = (size + 1) / 2
			size = (size + 1) / 2
		case st == 2:
			size = (size + 1) / 2
		}
		sides[k] = size
	}
	return sides
}

// InputSize is the input side the encoder takes images of side pixels at
// by default: side rounded up to a multiple of MinSize (28 → 32 for four
// blocks), so that every block divides a whole side.
func (c EncoderConfig) InputSize(side int) int {
	unit := c.MinSize()
	return (side + unit - 1) / unit * unit
}

// Describe says in words what the encoder is, for reports: "ResNet-18
// (small stem, widths [16 32 64 128])".
func (c EncoderConfig) Describe() string {
	c = c.withDefaults()
	if !c.IsResNet() {
		return fmt.Sprintf("blocks of conv 3×3 → batch norm → ReLU → max-pool 2, widths %v", c.Widths)
	}
	return fmt.Sprintf("ResNet-%s (%s stem, basic blocks %v, stage widths %v)", c.Arch[len("resnet"):], c.Stem, resnetBlocks[c.Arch], c.Widths)
}

// downsampling says, for messages, what makes MinSize: "2^4 blocks".
func (c EncoderConfig) downsampling() string {
	c = c.withDefaults()
	if c.IsResNet() {
		return fmt.Sprintf("the total stride of the %s with the %s stem", c.Arch, c.Stem)
	}
	return fmt.Sprintf("2^%d blocks", len(c.Widths))
}

// Encoder is the shared convolutional encoder: input [N, H, W, C] → last
// map [N, H/M, W/M, W_last], M = MinSize (2^B for the B blocks of the
// reference encoder).
//
// A ResNet (He et al. 2016) is a stem, then 4 stages of basic blocks
// (nn.NewBasicBlock), the first block of stages 2–4 with stride 2 and a
// projection shortcut. Its parameters have torchvision's names after
// the prefix: prefix+".conv1.weight", ".bn1.…" for the stem,
// ".layerS.B.conv1.weight", ".layerS.B.downsample.0.weight", … for block
// B (from 0) of stage S (from 1). Blocks[0] is the stem and stage 1,
// Blocks[k] stage k+1.
type Encoder struct {
	Config EncoderConfig
	Blocks []*nn.Sequential // each [conv, bn+relu, pool]; for a ResNet, the stages
	body   *nn.Sequential
	gap    *nn.GlobalAvgPool // for Features
}

// NewEncoder returns an encoder whose parameters are named
// prefix+".blockK.conv.weight", ".blockK.bn.weight" and so on, K from 1,
// or for a ResNet as torchvision names them (see Encoder). It panics if
// the configuration is invalid (call Validate first).
func NewEncoder(prefix string, cfg EncoderConfig, rng *rand.Rand) *Encoder {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	e := &Encoder{Config: cfg, body: nn.NewSequential()}
	if cfg.IsResNet() {
		e.buildResNet(prefix, rng)
		return e
	}
	in := cfg.Channels
	for i, w := range cfg.Widths {
		name := fmt.Sprintf("%s.block%d", prefix, i+1)
		conv := nn.NewConv2D(name+".conv", in, w, 3, 1, 1, false, rng)
		conv.NoInputGrad = i == 0 // nothing upstream of the first layer learns
		block := nn.NewSequential(conv, nn.NewBatchNorm2D(name+".bn", w).WithReLU(), nn.NewMaxPool2D(2, 2))
		e.Blocks = append(e.Blocks, block)
		e.body.Layers = append(e.body.Layers, block)
		in = w
	}
	return e
}

// buildResNet makes e's stem and stages.
func (e *Encoder) buildResNet(prefix string, rng *rand.Rand) {
	cfg := e.Config
	ws := cfg.Widths
	var stem *nn.Conv2D
	if cfg.Stem == StemImageNet {
		stem = nn.NewConv2D(prefix+".conv1", cfg.Channels, ws[0], 7, 2, 3, false, rng)
	} else {
		stem = nn.NewConv2D(prefix+".conv1", cfg.Channels, ws[0], 3, 1, 1, false, rng)
	}
	stem.NoInputGrad = true
	first := nn.NewSequential(stem, nn.NewBatchNorm2D(prefix+".bn1", ws[0]).WithReLU())
	if cfg.Stem == StemImageNet {
		first.Layers = append(first.Layers, nn.NewPaddedMaxPool2D(3, 2, 1))
	}
	in := ws[0]
	for s, n := range resnetBlocks[cfg.Arch] {
		stage := first
		if s > 0 {
			stage = nn.NewSequential()
		}
		for b := range n {
			stride := 1
			if b == 0 && s > 0 {
				stride = 2
			}
			stage.Layers = append(stage.Layers, nn.NewBasicBlock(fmt.Sprintf("%s.layer%d.%d", prefix, s+1, b), in, ws[s], stride, rng))
			in = ws[s]
		}
		e.Blocks = append(e.Blocks, stage)
		e.body.Layers = append(e.body.Layers, stage)
	}
}

// DownConvs returns the convolutions on the encoder's path from the input
// to the last map, first to last: each block's convolution for the
// reference encoder; for a ResNet the stem's, then the first convolution
// of every stage's first block (stride 1 in stage 1, else 2).
func (e *Encoder) DownConvs() []*nn.Conv2D {
	var cs []*nn.Conv2D
	for k, b := range e.Blocks {
		if !e.Config.IsResNet() {
			cs = append(cs, b.Layers[0].(*nn.Conv2D))
			continue
		}
		if k == 0 {
			cs = append(cs, b.Layers[0].(*nn.Conv2D))
		}
		for _, l := range b.Layers {
			if r, ok := l.(*nn.Residual); ok {
				cs = append(cs, r.Main.Layers[0].(*nn.Conv2D))
				break
			}
		}
	}
	return cs
}

// Dim returns the feature dimension (the last block's width).
func (e *Encoder) Dim() int { return e.Config.Widths[len(e.Config.Widths)-1] }

// Forward returns the last block's map for x [N, H, W, C].
func (e *Encoder) Forward(x *nn.Tensor, train bool) *nn.Tensor { return e.body.Forward(x, train) }

// Backward propagates ∂loss/∂map through the blocks. It returns nil: the
// input's gradient is not computed.
func (e *Encoder) Backward(dy *nn.Tensor) *nn.Tensor { return e.body.Backward(dy) }

// Features returns the globally average-pooled features [N, Dim] of the
// last block for x [N, H, W, C], in evaluation mode, as a frozen encoder
// gives them to a probe. The result is valid until the next call.
func (e *Encoder) Features(x *nn.Tensor) *nn.Tensor {
	if e.gap == nil {
		e.gap = nn.NewGlobalAvgPool()
	}
	return e.gap.Forward(e.body.Forward(x, false), false)
}

// Params lists the trainable parameters.
func (e *Encoder) Params() []*nn.Param { return e.body.Params() }

// Buffers lists the batch-norm running statistics.
func (e *Encoder) Buffers() []*nn.Param { return e.body.Buffers() }
