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
	scratch  chunkScratch
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
	wt := l.Weight.Value.Data
	size := batchChunk(n)
	l.scratch.cols = chunkBufs(l.scratch.cols, kernel.Chunks(n, size), kk*p)
	kernel.For(n, size, func(ch, lo, hi int) {
		col := l.scratch.cols[ch]
		for i := lo; i < hi; i++ {
			kernel.Im2col(col, x.Data[i*in:(i+1)*in], c, h, w, l.K, l.Stride, l.Pad)
			out := l.y.Data[i*l.OutC*p : (i+1)*l.OutC*p]
			kernel.Gemm(false, false, l.OutC, p, kk, 1, wt, kk, col, p, 0, out, p)
			addChannelBias(out, l.Bias, p)
		}
	})
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
	size := batchChunk(n)
	chunks := kernel.Chunks(n, size)
	l.scratch.parts = chunkBufs(l.scratch.parts, chunks, l.OutC*kk)
	kernel.For(n, size, func(ch, lo, hi int) {
		col, dw := l.scratch.cols[ch], l.scratch.parts[ch]
		clear(dw)
		for i := lo; i < hi; i++ {
			dyi := dy.Data[i*l.OutC*p : (i+1)*l.OutC*p]
			kernel.Im2col(col, x.Data[i*in:(i+1)*in], c, h, w, l.K, l.Stride, l.Pad)
			kernel.Gemm(false, true, l.OutC, kk, p, 1, dyi, p, col, p, 1, dw, kk)
			if l.NoInputGrad {
				continue
			}
			kernel.Gemm(true, false, kk, p, l.OutC, 1, wt, kk, dyi, p, 0, col, p)
			dxi := l.dx.Data[i*in : (i+1)*in]
			clear(dxi)
			kernel.Col2im(dxi, col, c, h, w, l.K, l.Stride, l.Pad)
		}
	})
	sumParts(l.Weight.Grad.Data, l.scratch.parts)
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
	scratch  chunkScratch
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
	wt := l.Weight.Value.Data
	size := batchChunk(n)
	l.scratch.cols = chunkBufs(l.scratch.cols, kernel.Chunks(n, size), okk*hw)
	kernel.For(n, size, func(ch, lo, hi int) {
		col := l.scratch.cols[ch]
		for i := lo; i < hi; i++ {
			kernel.Gemm(true, false, okk, hw, c, 1, wt, okk, x.Data[i*c*hw:(i+1)*c*hw], hw, 0, col, hw)
			out := l.y.Data[i*op : (i+1)*op]
			clear(out)
			kernel.Col2im(out, col, l.OutC, oh, ow, l.K, l.Stride, l.Pad)
			addChannelBias(out, l.Bias, oh*ow)
		}
	})
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
	size := batchChunk(n)
	l.scratch.parts = chunkBufs(l.scratch.parts, kernel.Chunks(n, size), c*okk)
	kernel.For(n, size, func(ch, lo, hi int) {
		col, dw := l.scratch.cols[ch], l.scratch.parts[ch]
		clear(dw)
		for i := lo; i < hi; i++ {
			kernel.Im2col(col, dy.Data[i*op:(i+1)*op], l.OutC, oh, ow, l.K, l.Stride, l.Pad)
			xi := x.Data[i*c*hw : (i+1)*c*hw]
			kernel.Gemm(false, false, c, hw, okk, 1, wt, okk, col, hw, 0, l.dx.Data[i*c*hw:(i+1)*c*hw], hw)
			kernel.Gemm(false, true, c, okk, hw, 1, xi, hw, col, hw, 1, dw, okk)
		}
	})
	sumParts(l.Weight.Grad.Data, l.scratch.parts)
	accumulateChannelBias(l.Bias, dy, n, l.OutC, oh*ow)
	return l.dx
}

// chunkScratch holds a layer's per-chunk buffers: im2col columns and
// partial weight gradients, reused across steps.
type chunkScratch struct {
	cols, parts [][]float32
}

// batchChunk is the number of samples a conv layer processes per chunk: at
// most 8 chunks per batch, so the per-chunk buffers stay small while both
// cores stay busy.
func batchChunk(n int) int { return max(1, (n+7)/8) }

// chunkBufs returns k buffers of length size, reusing bufs where it can.
func chunkBufs(bufs [][]float32, k, size int) [][]float32 {
	for len(bufs) < k {
		bufs = append(bufs, nil)
	}
	for i := range bufs[:k] {
		bufs[i] = reuseSlice(bufs[i], size)
	}
	return bufs[:k]
}

// sumParts adds the per-chunk partial gradients into g, in chunk order, so
// the result does not depend on which core did which chunk.
func sumParts(g []float32, parts [][]float32) {
	kernel.ForElems(len(g), func(lo, hi int) {
		for _, p := range parts {
			kernel.Axpy(1, p[lo:hi], g[lo:hi])
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
