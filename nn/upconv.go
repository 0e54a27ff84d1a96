package nn

import (
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// UpsampleConv2D is a 2× nearest-neighbour upsampling followed by a 3×3
// convolution with stride 1 and zero padding 1, fused, on channels-last
// images: input [N, H, W, InC] → output [N, 2H, 2W, OutC]. It computes the
// same function as Upsample2D(2) then Conv2D(InC, OutC, 3, 1, 1) with the
// same weight, without making the upsampled image: each of the four output
// phases (even or odd row, even or odd column) is a 2×2 convolution of the
// input with sums of the 3×3 taps (see kernel.UpConv), which takes 16/36
// of the arithmetic. The weight is the 3×3 one, stored as Conv2D stores
// it, so parameters, checkpoints and exports are those of the unfused
// pair; the phase kernels are derived from it on every pass.
type UpsampleConv2D struct {
	InC, OutC int
	// Weight is [OutC, 3, 3, InC], as Conv2D's.
	Weight *Param
	Bias   *Param // [OutC], or nil for none

	x, y, dx *Tensor
	wk, wx   []float32 // phase kernels, input-gradient kernel
	gk       []float32 // phase kernels' gradient
	padded   []float32 // the padded input, kept from a training Forward for Backward
}

// NewUpsampleConv2D returns the fused layer named name (its parameters are
// name+".weight" and name+".bias") with the Kaiming-normal weights and
// zero bias of NewConv2D(name, inC, outC, 3, 1, 1, bias, rng), drawn
// alike from rng. It panics if a channel count is not positive.
func NewUpsampleConv2D(name string, inC, outC int, bias bool, rng *rand.Rand) *UpsampleConv2D {
	if inC < 1 || outC < 1 {
		panic(fmt.Sprintf("nn: NewUpsampleConv2D %q: bad channels in=%d out=%d", name, inC, outC))
	}
	l := &UpsampleConv2D{InC: inC, OutC: outC, Weight: newParam(name+".weight", true, outC, 3, 3, inC)}
	KaimingNormal(l.Weight.Value, inC*9, rng)
	if bias {
		l.Bias = newParam(name+".bias", false, outC)
	}
	return l
}

// Params returns the weight and, if present, the bias.
func (l *UpsampleConv2D) Params() []*Param { return withBias(l.Weight, l.Bias) }

// Forward upsamples and convolves x [N, H, W, InC]. It panics on a
// shape mismatch.
func (l *UpsampleConv2D) Forward(x *Tensor, train bool) *Tensor {
	n, h, w, c := dims4("UpsampleConv2D", x)
	if c != l.InC {
		panic(fmt.Sprintf("nn: UpsampleConv2D %s: input has %d channels, want %d", l.Weight.Name, c, l.InC))
	}
	l.dropPadded()
	l.x = x
	l.y = reuse(l.y, n, 2*h, 2*w, l.OutC)
	l.wk = reuseSlice(l.wk, 16*c*l.OutC)
	kernel.UpConvWeights(l.wk, l.Weight.Value.Data, l.OutC, c)
	xp := padImages(x, 1)
	kernel.UpConv(l.y.Data, xp, n, h, w, c, l.wk, l.OutC)
	if train {
		l.padded = xp
	} else {
		putScratch(xp)
	}
	addBias(l.y.Data, l.Bias)
	return l.y
}

// Backward returns ∂loss/∂x [N, H, W, InC] and accumulates the weight and
// bias gradients. It panics if dy is not shaped as the last output.
func (l *UpsampleConv2D) Backward(dy *Tensor) *Tensor {
	x := l.x
	n, h, w, c := dims4("UpsampleConv2D", x)
	if !slices.Equal(dy.Shape, l.y.Shape) {
		panic(fmt.Sprintf("nn: UpsampleConv2D %s: gradient %v for output %v", l.Weight.Name, dy.Shape, l.y.Shape))
	}
	cols := l.OutC
	dys := getScratch(n*(h+2)*(w+2)*4*cols + kernel.Slack*4*cols)
	kernel.PadSpaceToDepth(dys, dy.Data, n, h, w, cols)
	xp := l.padded // from the training Forward, or made now
	if xp == nil {
		xp = padImages(x, 1)
	}
	l.padded = nil
	l.gk = reuseSlice(l.gk, 16*c*cols)
	kernel.UpConvWeightGrad(l.gk, xp, n, h, w, c, dys, cols)
	putScratch(xp)
	kernel.AddUpConvWeightGrad(l.Weight.Grad.Data, l.gk, cols, c)
	accumulateBias(l.Bias, dy)
	l.dx = gradBuffer(l.dx, x.Shape...)
	l.wx = reuseSlice(l.wx, 16*c*cols)
	kernel.UpConvInputWeights(l.wx, l.wk, cols, c)
	kernel.UpConvInputGrad(l.dx.Data, dys, n, h, w, cols, l.wx, c)
	putScratch(dys)
	return l.dx
}

// dropPadded gives back a padded input kept by a training Forward whose
// Backward did not come.
func (l *UpsampleConv2D) dropPadded() {
	if l.padded != nil {
		putScratch(l.padded)
		l.padded = nil
	}
}

func (l *UpsampleConv2D) releaseGrad() { releaseGrad(l.dx) }
