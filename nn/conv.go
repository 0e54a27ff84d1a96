package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Conv2D is a 2-D convolution with a square kernel, stride and zero
// padding, computed per sample as im2col followed by a GEMM.
// Input [N, InC, H, W] → output [N, OutC, OH, OW] with
// OH = (H + 2·Pad − K)/Stride + 1, and likewise OW.
type Conv2D struct {
	InC, OutC, K, Stride, Pad int
	Weight                    *Param // [OutC, InC, K, K]
	Bias                      *Param // [OutC], or nil for none
	// NoInputGrad skips computing ∂loss/∂input in Backward (which then
	// returns nil): set it on a model's first layer.
	NoInputGrad bool

	x, y, dx *Tensor
	scratch  convScratch
}

// NewConv2D returns a convolution named name (its parameters are
// name+".weight" and name+".bias") with Kaiming-normal weights and zero bias.
// It panics if a size is not positive or pad is negative.
func NewConv2D(name string, inC, outC, k, stride, pad int, bias bool, rng *rand.Rand) *Conv2D {
	if inC < 1 || outC < 1 || k < 1 || stride < 1 || pad < 0 {
		panic(fmt.Sprintf("nn: NewConv2D %q: bad geometry in=%d out=%d k=%d stride=%d pad=%d", name, inC, outC, k, stride, pad))
	}
	l := &Conv2D{InC: inC, OutC: outC, K: k, Stride: stride, Pad: pad,
		Weight: newParam(name+".weight", true, outC, inC, k, k)}
	KaimingNormal(l.Weight.Value, inC*k*k, rng)
	if bias {
		l.Bias = newParam(name+".bias", false, outC)
	}
	return l
}

// Params returns the weight and, if present, the bias.
func (l *Conv2D) Params() []*Param { return withBias(l.Weight, l.Bias) }

// Forward convolves x [N, InC, H, W]. It panics on a shape mismatch or if
// the kernel does not fit the padded input.
func (l *Conv2D) Forward(x *Tensor, train bool) *Tensor {
	n, c, h, w := dims4("Conv2D", x)
	if c != l.InC {
		panic(fmt.Sprintf("nn: Conv2D %s: input has %d channels, want %d", l.Weight.Name, c, l.InC))
	}
	oh, ow := kernel.ConvOut(h, l.K, l.Stride, l.Pad), kernel.ConvOut(w, l.K, l.Stride, l.Pad)
	if oh < 1 || ow < 1 {
		panic(fmt.Sprintf("nn: Conv2D %s: kernel %d does not fit input %dx%d with pad %d", l.Weight.Name, l.K, h, w, l.Pad))
	}
	l.x = x
	l.y = reuse(l.y, n, l.OutC, oh, ow)
	kk, p, in := c*l.K*l.K, oh*ow, c*h*w
	cs := l.scratch.size(n, kk, l.OutC, p)
	for s0 := 0; s0 < n; s0 += cs {
		m := min(cs, n-s0)
		ld := m * p
		col, out := l.scratch.col[:kk*ld], l.scratch.mat[:l.OutC*ld]
		kernel.For(m, 1, func(_, i, _ int) {
			kernel.Im2col(col[i*p:], x.Data[(s0+i)*in:(s0+i+1)*in], ld, c, h, w, l.K, l.Stride, l.Pad)
		})
		kernel.Gemm(false, false, l.OutC, ld, kk, 1, l.Weight.Value.Data, kk, col, ld, 0, out, ld)
		scatterSamples(l.y.Data[s0*l.OutC*p:], out, m, l.OutC, p, l.Bias)
	}
	return l.y
}

// Backward returns ∂loss/∂x [N, InC, H, W] and accumulates the weight and
// bias gradients.
func (l *Conv2D) Backward(dy *Tensor) *Tensor {
	x := l.x
	n, c, h, w := dims4("Conv2D", x)
	oh, ow := l.y.Shape[2], l.y.Shape[3]
	kk, p, in := c*l.K*l.K, oh*ow, c*h*w
	wt := l.Weight.Value.Data
	if !l.NoInputGrad {
		l.dx = reuse(l.dx, x.Shape...)
	}
	cs := l.scratch.size(n, kk, l.OutC, p)
	for s0 := 0; s0 < n; s0 += cs {
		m := min(cs, n-s0)
		ld := m * p
		col, dyc := l.scratch.col[:kk*ld], l.scratch.mat[:l.OutC*ld]
		gatherSamples(dyc, dy.Data[s0*l.OutC*p:], m, l.OutC, p)
		kernel.For(m, 1, func(_, i, _ int) {
			kernel.Im2col(col[i*p:], x.Data[(s0+i)*in:(s0+i+1)*in], ld, c, h, w, l.K, l.Stride, l.Pad)
		})
		kernel.Gemm(false, true, l.OutC, kk, ld, 1, dyc, ld, col, ld, 1, l.Weight.Grad.Data, kk)
		if l.NoInputGrad {
			continue
		}
		kernel.Gemm(true, false, kk, ld, l.OutC, 1, wt, kk, dyc, ld, 0, col, ld)
		kernel.For(m, 1, func(_, i, _ int) {
			dxi := l.dx.Data[(s0+i)*in : (s0+i+1)*in]
			clear(dxi)
			kernel.Col2im(dxi, col[i*p:], ld, c, h, w, l.K, l.Stride, l.Pad)
		})
	}
	accumulateChannelBias(l.Bias, dy, n, l.OutC, p)
	if l.NoInputGrad {
		return nil
	}
	return l.dx
}

// ConvTranspose2D is the transpose (adjoint) of a Conv2D with the same
// geometry, as used in decoders: input [N, InC, H, W] → output
// [N, OutC, OH, OW] with OH = (H − 1)·Stride − 2·Pad + K + OutPad.
// Its weight has PyTorch's layout [InC, OutC, K, K], which is exactly the
// weight of a Conv2D from OutC to InC channels, so the two can share one
// Param (tied weights, see NewTiedConvTranspose2D).
type ConvTranspose2D struct {
	InC, OutC, K, Stride, Pad, OutPad int
	Weight                            *Param // [InC, OutC, K, K]
	Bias                              *Param // [OutC], or nil for none

	x, y, dx *Tensor
	tied     bool
	scratch  convScratch
}

// NewConvTranspose2D returns a transposed convolution with its own
// Kaiming-normal weights (fan-in InC·K²/Stride², the inputs that reach
// one output) and zero bias. It panics on bad geometry, including
// OutPad ≥ Stride.
func NewConvTranspose2D(name string, inC, outC, k, stride, pad, outPad int, bias bool, rng *rand.Rand) *ConvTranspose2D {
	l := &ConvTranspose2D{InC: inC, OutC: outC, K: k, Stride: stride, Pad: pad, OutPad: outPad,
		Weight: newParam(name+".weight", true, inC, outC, k, k)}
	l.check(name)
	KaimingNormal(l.Weight.Value, max(1, inC*k*k/(stride*stride)), rng)
	if bias {
		l.Bias = newParam(name+".bias", false, outC)
	}
	return l
}

// NewTiedConvTranspose2D returns the transpose of conv that shares conv's
// weight: it maps conv's output shape back to its input shape (with
// outPad ≥ 0 extra rows and columns to undo the rounding of a strided
// convolution). Gradients from both layers add into the one weight. The
// bias, if any, is the decoder's own, named name+".bias".
func NewTiedConvTranspose2D(name string, conv *Conv2D, outPad int, bias bool) *ConvTranspose2D {
	l := &ConvTranspose2D{InC: conv.OutC, OutC: conv.InC, K: conv.K, Stride: conv.Stride, Pad: conv.Pad,
		OutPad: outPad, Weight: conv.Weight, tied: true}
	l.check(name)
	if bias {
		l.Bias = newParam(name+".bias", false, l.OutC)
	}
	return l
}

func (l *ConvTranspose2D) check(name string) {
	if l.InC < 1 || l.OutC < 1 || l.K < 1 || l.Stride < 1 || l.Pad < 0 || l.OutPad < 0 || l.OutPad >= l.Stride {
		panic(fmt.Sprintf("nn: ConvTranspose2D %q: bad geometry in=%d out=%d k=%d stride=%d pad=%d outpad=%d",
			name, l.InC, l.OutC, l.K, l.Stride, l.Pad, l.OutPad))
	}
}

// Params returns the weight (also when shared) and, if present, the bias.
func (l *ConvTranspose2D) Params() []*Param { return withBias(l.Weight, l.Bias) }

// Forward applies the transposed convolution to x [N, InC, H, W].
func (l *ConvTranspose2D) Forward(x *Tensor, train bool) *Tensor {
	n, c, h, w := dims4("ConvTranspose2D", x)
	if c != l.InC {
		panic(fmt.Sprintf("nn: ConvTranspose2D %s: input has %d channels, want %d", l.Weight.Name, c, l.InC))
	}
	oh, ow := (h-1)*l.Stride-2*l.Pad+l.K+l.OutPad, (w-1)*l.Stride-2*l.Pad+l.K+l.OutPad
	if oh < 1 || ow < 1 {
		panic(fmt.Sprintf("nn: ConvTranspose2D %s: empty output for input %dx%d", l.Weight.Name, h, w))
	}
	l.x = x
	l.y = reuse(l.y, n, l.OutC, oh, ow)
	okk, hw, op := l.OutC*l.K*l.K, h*w, l.OutC*oh*ow
	cs := l.scratch.size(n, okk, c, hw)
	for s0 := 0; s0 < n; s0 += cs {
		m := min(cs, n-s0)
		ld := m * hw
		col, xc := l.scratch.col[:okk*ld], l.scratch.mat[:c*ld]
		gatherSamples(xc, x.Data[s0*c*hw:], m, c, hw)
		kernel.Gemm(true, false, okk, ld, c, 1, l.Weight.Value.Data, okk, xc, ld, 0, col, ld)
		kernel.For(m, 1, func(_, i, _ int) {
			out := l.y.Data[(s0+i)*op : (s0+i+1)*op]
			clear(out)
			kernel.Col2im(out, col[i*hw:], ld, l.OutC, oh, ow, l.K, l.Stride, l.Pad)
			addChannelBias(out, l.Bias, oh*ow)
		})
	}
	return l.y
}

// Backward returns ∂loss/∂x [N, InC, H, W] and accumulates the gradients.
func (l *ConvTranspose2D) Backward(dy *Tensor) *Tensor {
	x := l.x
	n, c, h, w := dims4("ConvTranspose2D", x)
	oh, ow := l.y.Shape[2], l.y.Shape[3]
	okk, hw, op := l.OutC*l.K*l.K, h*w, l.OutC*oh*ow
	wt := l.Weight.Value.Data
	l.dx = reuse(l.dx, x.Shape...)
	cs := l.scratch.size(n, okk, c, hw)
	for s0 := 0; s0 < n; s0 += cs {
		m := min(cs, n-s0)
		ld := m * hw
		col, mat := l.scratch.col[:okk*ld], l.scratch.mat[:c*ld]
		kernel.For(m, 1, func(_, i, _ int) {
			kernel.Im2col(col[i*hw:], dy.Data[(s0+i)*op:(s0+i+1)*op], ld, l.OutC, oh, ow, l.K, l.Stride, l.Pad)
		})
		gatherSamples(mat, x.Data[s0*c*hw:], m, c, hw)
		kernel.Gemm(false, true, c, okk, ld, 1, mat, ld, col, ld, 1, l.Weight.Grad.Data, okk)
		kernel.Gemm(false, false, c, ld, okk, 1, wt, okk, col, ld, 0, mat, ld)
		scatterSamples(l.dx.Data[s0*c*hw:], mat, m, c, hw, nil)
	}
	accumulateChannelBias(l.Bias, dy, n, l.OutC, oh*ow)
	return l.dx
}

// convScratch holds a convolution's GEMM operands, reused across steps:
// the im2col matrix and a channels × (samples·positions) matrix.
type convScratch struct {
	col, mat []float32
}

// size returns how many samples one GEMM covers, and makes the buffers
// large enough: enough columns (samples × positions) for the GEMM to run at
// speed, with the im2col matrix capped at colBudget floats.
func (s *convScratch) size(n, rows, chans, p int) int {
	const targetCols, colBudget = 8192, 4 << 20
	cs := min(n, max(1, targetCols/p), max(1, colBudget/(rows*p)))
	s.col = reuseSlice(s.col, rows*cs*p)
	s.mat = reuseSlice(s.mat, chans*cs*p)
	return cs
}

// gatherSamples copies m samples of src [m, C, P] into dst as a C × (m·P)
// matrix: channel c's row holds sample 0's P values, then sample 1's, ….
func gatherSamples(dst, src []float32, m, c, p int) {
	kernel.For(c, 1, func(_, ch, _ int) {
		for i := 0; i < m; i++ {
			copy(dst[ch*m*p+i*p:ch*m*p+(i+1)*p], src[(i*c+ch)*p:(i*c+ch+1)*p])
		}
	})
}

// scatterSamples is the inverse of gatherSamples, adding bias[c] to channel
// c when bias is not nil.
func scatterSamples(dst, src []float32, m, c, p int, bias *Param) {
	kernel.For(c, 1, func(_, ch, _ int) {
		var b float32
		if bias != nil {
			b = bias.Value.Data[ch]
		}
		for i := 0; i < m; i++ {
			d, s := dst[(i*c+ch)*p:(i*c+ch+1)*p], src[ch*m*p+i*p:ch*m*p+(i+1)*p]
			if b == 0 {
				copy(d, s)
				continue
			}
			for j, v := range s {
				d[j] = v + b
			}
		}
	})
}

// addChannelBias adds bias[c] to each of the p values of channel c of one
// sample's [C, p] map; a nil bias does nothing.
func addChannelBias(out []float32, bias *Param, p int) {
	if bias == nil {
		return
	}
	for c, b := range bias.Value.Data {
		row := out[c*p : (c+1)*p]
		for j := range row {
			row[j] += b
		}
	}
}

// accumulateChannelBias adds Σ over samples and positions of dy [N, C, p]
// into bias.Grad; a nil bias does nothing.
func accumulateChannelBias(bias *Param, dy *Tensor, n, c, p int) {
	if bias == nil {
		return
	}
	g := bias.Grad.Data
	kernel.For(c, 1, func(ch, _, _ int) {
		var s float64
		for i := 0; i < n; i++ {
			s += kernel.Sum(dy.Data[(i*c+ch)*p : (i*c+ch+1)*p])
		}
		g[ch] += float32(s)
	})
}

func withBias(w, b *Param) []*Param {
	if b == nil {
		return []*Param{w}
	}
	return []*Param{w, b}
}

// dims4 returns the four dimensions of x, panicking unless it is rank 4.
func dims4(op string, x *Tensor) (n, c, h, w int) {
	mustRank(op, x, 4)
	return x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
}
