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
//
// A tied layer (NewTiedUpsampleConv2D) is instead Upsample2D(2) then a
// stride-1 ConvTranspose2D sharing a Conv2D's weight.
type UpsampleConv2D struct {
	InC, OutC int
	// Weight is [OutC, 3, 3, InC], as Conv2D's; for a tied layer it is
	// the shared [InC, 3, 3, OutC] of the Conv2D it transposes.
	Weight *Param
	Bias   *Param // [OutC], or nil for none
	tied   bool

	x, y, dx *Tensor
	w3, g3   []float32 // a tied layer's 3×3 weight and its gradient, as Conv2D's
	wk, wx   []float32 // phase kernels, input-gradient kernel
	gk       []float32 // phase kernels' gradient
	dys      []float32 // the output gradient rearranged by phase, for Backward
	dysDims  [3]int    // N, H, W of the input when dys was last written
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

// NewTiedUpsampleConv2D returns the fused layer of Upsample2D(2) then
// NewTiedConvTranspose2D(name, conv, 0, bias): a 3×3 convolution from
// conv.OutC to conv.InC channels whose weight is conv's, shared, read as
// the transposed convolution reads it (filter o's tap (ky, kx) for input
// channel i is conv.Weight[i, 2−ky, 2−kx, o]). Gradients from both layers
// add into the one weight. The bias, if any, is the layer's own, named
// name+".bias". It panics unless conv is 3×3 with stride 1 and padding 1.
func NewTiedUpsampleConv2D(name string, conv *Conv2D, bias bool) *UpsampleConv2D {
	if conv.K != 3 || conv.Stride != 1 || conv.Pad != 1 {
		panic(fmt.Sprintf("nn: NewTiedUpsampleConv2D %q: %s is %d×%d with stride %d and padding %d, want 3×3, 1 and 1",
			name, conv.Weight.Name, conv.K, conv.K, conv.Stride, conv.Pad))
	}
	l := &UpsampleConv2D{InC: conv.OutC, OutC: conv.InC, Weight: conv.Weight, tied: true}
	if bias {
		l.Bias = newParam(name+".bias", false, l.OutC)
	}
	return l
}

// weight3 returns the 3×3 weight [OutC, 3, 3, InC] of the convolution
// the layer computes.
func (l *UpsampleConv2D) weight3() []float32 {
	if !l.tied {
		return l.Weight.Value.Data
	}
	l.w3 = reuseSlice(l.w3, 9*l.InC*l.OutC)
	flipTranspose(l.w3, l.Weight.Value.Data, l.OutC, l.InC, false)
	return l.w3
}

// flipTranspose sets (or with add, adds to) dst [out, 3, 3, in] from
// src [in, 3, 3, out]: dst[o, ky, kx, i] = src[i, 2−ky, 2−kx, o].
func flipTranspose(dst, src []float32, out, in int, add bool) {
	for o := 0; o < out; o++ {
		for t := 0; t < 9; t++ {
			d := dst[(o*9+t)*in : (o*9+t+1)*in]
			for i := range d {
				v := src[(i*9+8-t)*out+o]
				if add {
					d[i] += v
				} else {
					d[i] = v
				}
			}
		}
	}
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
	kernel.UpConvWeights(l.wk, l.weight3(), l.OutC, c)
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
	// The layer's own buffer: taken from the scratch pool, a buffer of
	// this size made the pool drop and remake its large buffers. Its zero
	// border stays from the last Backward of the same sizes.
	size := n*(h+2)*(w+2)*4*cols + kernel.Slack*4*cols
	same := l.dysDims == [3]int{n, h, w} && len(l.dys) == size
	l.dys, l.dysDims = reuseSlice(l.dys, size), [3]int{n, h, w}
	dys := l.dys
	kernel.PadSpaceToDepth(dys, dy.Data, n, h, w, cols, !same)
	xp := l.padded // from the training Forward, or made now
	if xp == nil {
		xp = padImages(x, 1)
	}
	l.padded = nil
	l.gk = reuseSlice(l.gk, 16*c*cols)
	kernel.UpConvWeightGrad(l.gk, xp, n, h, w, c, dys, cols)
	putScratch(xp)
	if l.tied {
		l.g3 = reuseSlice(l.g3, 9*c*cols)
		clear(l.g3)
		kernel.AddUpConvWeightGrad(l.g3, l.gk, cols, c)
		flipTranspose(l.Weight.Grad.Data, l.g3, c, cols, true) // the flip and transpose is its own inverse
	} else {
		kernel.AddUpConvWeightGrad(l.Weight.Grad.Data, l.gk, cols, c)
	}
	accumulateBias(l.Bias, dy)
	l.dx = gradBuffer(l.dx, x.Shape...)
	l.wx = reuseSlice(l.wx, 16*c*cols)
	kernel.UpConvInputWeights(l.wx, l.wk, cols, c)
	kernel.UpConvInputGrad(l.dx.Data, dys, n, h, w, cols, l.wx, c)
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
