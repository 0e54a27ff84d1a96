package pretext

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn"
)

// EncoderConfig shapes the encoder. Its zero value means the reference
// encoder on 3-channel images.
type EncoderConfig struct {
	Channels int   `json:"channels,omitempty"` // input channels, 1 or 3; default 3
	Widths   []int `json:"widths,omitempty"`   // output channels of each block; default 32, 64, 128, 256
}

// DefaultWidths are the reference encoder's block widths.
var DefaultWidths = []int{32, 64, 128, 256}

func (c EncoderConfig) withDefaults() EncoderConfig {
	if c.Channels == 0 {
		c.Channels = 3
	}
	if len(c.Widths) == 0 {
		c.Widths = DefaultWidths
	}
	return c
}

// Validate reports every problem with the configuration at once.
func (c EncoderConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Channels != 1 && c.Channels != 3 {
		errs = append(errs, fmt.Errorf("pretext: encoder channels must be 1 or 3, got %d", c.Channels))
	}
	for i, w := range c.Widths {
		if w < 1 {
			errs = append(errs, fmt.Errorf("pretext: encoder width %d of block %d must be positive", w, i+1))
		}
	}
	return errors.Join(errs...)
}

// MinSize is the smallest image side the encoder accepts: each block halves
// the side, which must stay at least 1.
func (c EncoderConfig) MinSize() int { return 1 << len(c.withDefaults().Widths) }

// InputSize is the input side the encoder takes images of side pixels at
// by default: side rounded up to a multiple of MinSize (28 → 32 for four
// blocks), so that every block halves a whole side.
func (c EncoderConfig) InputSize(side int) int {
	unit := c.MinSize()
	return (side + unit - 1) / unit * unit
}

// Encoder is the shared convolutional encoder: input [N, H, W, C] → last
// map [N, H/2^B, W/2^B, W_last] for B blocks.
type Encoder struct {
	Config EncoderConfig
	Blocks []*nn.Sequential // each [conv, bn+relu, pool]
	body   *nn.Sequential
	gap    *nn.GlobalAvgPool // for Features
}

// NewEncoder returns an encoder whose parameters are named
// prefix+".blockK.conv.weight", ".blockK.bn.weight" and so on, K from 1.
// It panics if the configuration is invalid (call Validate first).
func NewEncoder(prefix string, cfg EncoderConfig, rng *rand.Rand) *Encoder {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	e := &Encoder{Config: cfg, body: nn.NewSequential()}
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
