package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Conv2D is a 2-D convolution with a square kernel, stride and zero
// padding, on channels-last images: input [N, H, W, InC] → output
// [N, OH, OW, OutC] with OH = (H + 2·Pad − K)/Stride + 1, and likewise OW.
// It runs as im2col followed by one GEMM per chunk of samples, with the
// im2col matrix as the GEMM's in-place operand, so it is never packed.
type Conv2D struct {
	InC, OutC, K, Stride, Pad int
	// Weight is [OutC, K, K, InC]: filter o's taps in row-major (ki, kj)
	// order, each holding InC input channels. PyTorch's layout
	// [OutC, InC, K, K] is a transpose of it (see the export).
	Weight *Param
	Bias   *Param // [OutC], or nil for none
	// NoInputGrad skips computing ∂loss/∂input in Backward (which then
	// returns nil): set it on a model's first layer.
	NoInputGrad bool

	x, y, dx  *Tensor
	scratch   convScratch
	wt, wflip []float32 // weights rearranged for the direct passes
	padded    []float32 // the padded input, kept from a training Forward for Backward
}

// NewConv2D returns a convolution named name (its parameters are
// name+".weight" and name+".bias") with Kaiming-normal weights and zero bias.
// It panics if a size is not positive or pad is negative.
func NewConv2D(name string, inC, outC, k, stride, pad int, bias bool, rng *rand.Rand) *Conv2D {
	if inC < 1 || outC < 1 || k < 1 || stride < 1 || pad < 0 {
		panic(fmt.Sprintf("nn: NewConv2D %q: bad geometry in=%d out=%d k=%d stride=%d pad=%d", name, inC, outC, k, stride, pad))
	}
	l := &Conv2D{InC: inC, OutC: outC, K: k, Stride: stride, Pad: pad,
		Weight: newParam(name+".weight", true, outC, k, k, inC)}
	KaimingNormal(l.Weight.Value, inC*k*k, rng)
	if bias {
		l.Bias = newParam(name+".bias", false, outC)
	}
	return l
}

// Params returns the weight and, if present, the bias.
func (l *Conv2D) Params() []*Param { return withBias(l.Weight, l.Bias) }

// Forward convolves x [N, H, W, InC]. It panics on a shape mismatch or if
// the kernel does not fit the padded input.
func (l *Conv2D) Forward(x *Tensor, train bool) *Tensor {
	n, h, w, c := dims4("Conv2D", x)
	if c != l.InC {
		panic(fmt.Sprintf("nn: Conv2D %s: input has %d channels, want %d", l.Weight.Name, c, l.InC))
	}
	oh, ow := kernel.ConvOut(h, l.K, l.Stride, l.Pad), kernel.ConvOut(w, l.K, l.Stride, l.Pad)
	if oh < 1 || ow < 1 {
		panic(fmt.Sprintf("nn: Conv2D %s: kernel %d does not fit input %dx%d with pad %d", l.Weight.Name, l.K, h, w, l.Pad))
	}
	l.x = x
	l.y = reuse(l.y, n, oh, ow, l.OutC)
	kk, p := l.K*l.K*c, oh*ow
	l.dropPadded()
	if l.direct(ow, c, l.OutC) {
		// No im2col matrix. A training pass pads the input once and keeps
		// it for Backward's direct weight gradient; an evaluation pass pads
		// on the fly.
		l.scratch.kept = nil
		l.wt = reuseSlice(l.wt, kk*l.OutC)
		transposeInto(l.wt, l.Weight.Value.Data, l.OutC, kk)
		if train {
			l.padded = padImages(x, l.Pad)
			kernel.DirectConv(l.y.Data, l.padded, n, h+2*l.Pad, w+2*l.Pad, c, l.K, l.wt, l.OutC)
		} else {
			kernel.DirectConvUnpadded(l.y.Data, x.Data, n, h, w, c, l.K, l.Pad, l.wt, l.OutC)
		}
		addBias(l.y.Data, l.Bias)
		return l.y
	}
	cs := l.scratch.get(n, p*kk, train)
	defer l.scratch.put()
	for s0 := 0; s0 < n; s0 += cs {
		m := min(cs, n-s0)
		col := l.scratch.im2col(x, s0, m, l.K, l.Stride, l.Pad, p*kk)
		kernel.Gemm(false, true, m*p, l.OutC, kk, 1, col, kk, l.Weight.Value.Data, kk, 0, l.y.Data[s0*p*l.OutC:], l.OutC)
	}
	addBias(l.y.Data, l.Bias)
	return l.y
}

// Backward returns ∂loss/∂x [N, H, W, InC] and accumulates the weight and
// bias gradients. Each of the two runs directly on the padded tensors
// where the shapes suit (see direct), and otherwise from the im2col
// matrix: kept from a training Forward, or unrolled again in chunks.
func (l *Conv2D) Backward(dy *Tensor) *Tensor {
	x := l.x
	n, h, w, c := dims4("Conv2D", x)
	oh, ow := l.y.Shape[1], l.y.Shape[2]
	kk, p := l.K*l.K*c, oh*ow
	if !l.NoInputGrad {
		l.dx = gradBuffer(l.dx, x.Shape...)
	}
	directDW := l.direct(ow, c, l.OutC)
	directDX := !l.NoInputGrad && l.direct(w, l.OutC, c) && l.Pad <= l.K-1
	colDX := !l.NoInputGrad && !directDX
	dwt := l.scratch.gradient(kk * l.OutC) // ∂W transposed: [kk, OutC]
	if directDW {
		xp := l.padded // from the training Forward, or made now
		if xp == nil {
			xp = padImages(x, l.Pad)
		}
		l.padded = nil
		kernel.DirectConvWeightGrad(dwt, xp, n, h+2*l.Pad, w+2*l.Pad, c, l.K, dy.Data, l.OutC)
		putScratch(xp)
	}
	if !directDW || colDX {
		kept := l.scratch.kept != nil // the training Forward's im2col matrix is still there
		cs := n
		if !kept {
			cs = l.scratch.get(n, p*kk, false)
		}
		for s0 := 0; s0 < n; s0 += cs {
			m := min(cs, n-s0)
			col := l.scratch.kept
			if !kept {
				col = l.scratch.im2col(x, s0, m, l.K, l.Stride, l.Pad, p*kk)
			}
			dyc := dy.Data[s0*p*l.OutC : (s0+m)*p*l.OutC]
			if !directDW {
				// colᵀ · dy, summed over the chunks.
				beta := float32(1)
				if s0 == 0 {
					beta = 0
				}
				kernel.Gemm(true, false, kk, l.OutC, m*p, 1, col, kk, dyc, l.OutC, beta, dwt, l.OutC)
			}
			if !colDX {
				continue
			}
			// ∂col = dy · W, then folded back onto the input pixels.
			kernel.Gemm(false, false, m*p, kk, l.OutC, 1, dyc, l.OutC, l.Weight.Value.Data, kk, 0, col, kk)
			in := h * w * c
			kernel.For(m, 1, func(_, i, _ int) {
				dxi := l.dx.Data[(s0+i)*in : (s0+i+1)*in]
				clear(dxi)
				kernel.Col2im(dxi, col[i*p*kk:(i+1)*p*kk], h, w, c, l.K, l.Stride, l.Pad)
			})
		}
		l.scratch.put()
	}
	l.scratch.kept = nil // spent: ∂col may have overwritten it
	kernel.AddTransposed(l.Weight.Grad.Data, dwt, kk, l.OutC)
	accumulateBias(l.Bias, dy)
	if l.NoInputGrad {
		return nil
	}
	if directDX {
		l.inputGradDirect(dy, n, oh, ow, c)
	}
	return l.dx
}

// inputGradDirect sets l.dx to ∂loss/∂x by a direct convolution of ∂y,
// padded on the fly, with the flipped kernel (stride 1).
func (l *Conv2D) inputGradDirect(dy *Tensor, n, oh, ow, c int) {
	q := l.K - 1 - l.Pad
	l.wflip = reuseSlice(l.wflip, l.K*l.K*l.OutC*c)
	flipWeights(l.wflip, l.Weight.Value.Data, l.OutC, l.K, c)
	kernel.DirectConvUnpadded(l.dx.Data, dy.Data, n, oh, ow, l.OutC, l.K, q, l.wflip, c)
}

// direct reports whether a pass of this convolution runs as a direct
// convolution (kernel.DirectConv) rather than im2col and a GEMM: stride 1,
// output rows that leave few tile rows empty (kernel.DirectRows: at least
// 16 pixels, or whole tiles: 8×8 maps measured 3.0 ms against 4.1 ms for
// im2col and its GEMM, 64→128 channels, batch 128, Zen 5), at
// least 16 input channels (enough work per tap) or fewer than 8 (an im2col
// matrix of k·k·in columns would cost more than its short GEMM: measured
// 1.2–1.4× faster for a 3→32 layer and 2× for the input gradient of a
// 32→3 layer at 32×32, batch 128, on Zen 5), and a multiple of 16 output
// channels (whole tiles) or fewer than 8 (a mostly empty tile still costs
// less than unrolling a large input). The input gradient is such a pass
// with the roles of the channels swapped; the weight gradient of a direct
// layer is direct too (kernel.DirectConvWeightGrad, whose tile rows are
// the k·in channels of a kernel row's taps: 9 for a 3-channel first
// layer, measured 1.7–2.1 ms against 3.0–3.2 ms for the GEMM alone of its
// im2col matrix, 3→32 at 32×32, batch 128, Zen 5).
func (l *Conv2D) direct(rowLen, in, out int) bool {
	return l.Stride == 1 && kernel.DirectRows(rowLen) && (in >= 16 || in < 8) && (out%16 == 0 || out < 8)
}

// dropPadded gives back a padded input kept by a training Forward whose
// Backward did not come.
func (l *Conv2D) dropPadded() {
	if l.padded != nil {
		putScratch(l.padded)
		l.padded = nil
	}
}

// flipWeights writes the weights of the convolution that gives a stride-1
// Conv2D's input gradient: dst [(ki·k+kj)·outC + o, ci] =
// w[o, k−1−ki, k−1−kj, ci], w being [outC, k, k, inC].
func flipWeights(dst, w []float32, outC, k, inC int) {
	kk := k * k * inC
	for t := 0; t < k*k; t++ {
		ft := k*k - 1 - t // (k−1−ki)·k + (k−1−kj)
		for o := 0; o < outC; o++ {
			copy(dst[(t*outC+o)*inC:(t*outC+o+1)*inC], w[o*kk+ft*inC:o*kk+(ft+1)*inC])
		}
	}
}

// transposeInto sets dst (cols × rows) to the transpose of src (rows × cols).
func transposeInto(dst, src []float32, rows, cols int) {
	for i := 0; i < rows; i++ {
		for j, v := range src[i*cols : (i+1)*cols] {
			dst[j*rows+i] = v
		}
	}
}

// padImages returns x [N, H, W, C] with p zero pixels on every side, as
// [N, H+2p, W+2p, C] in a buffer from the scratch pool (give it back with
// putScratch), followed by kernel.Slack·C zeros of slack for kernel.DirectConv.
func padImages(x *Tensor, p int) []float32 {
	n, h, w, c := dims4("padImages", x)
	hp, wp := h+2*p, w+2*p
	size := n * hp * wp * c
	buf := getScratch(size + kernel.Slack*c)
	kernel.For(n*hp, 8, func(_, lo, hi int) {
		for r := lo; r < hi; r++ {
			i, y := r/hp, r%hp
			row := buf[r*wp*c : (r+1)*wp*c]
			if y < p || y >= h+p {
				clear(row)
				continue
			}
			clear(row[:p*c])
			copy(row[p*c:(p+w)*c], x.Data[(i*h+y-p)*w*c:(i*h+y-p+1)*w*c])
			clear(row[(p+w)*c:])
		}
	})
	clear(buf[size:])
	return buf[:size]
}

// ConvTranspose2D is the transpose (adjoint) of a Conv2D with the same
// geometry, as used in decoders, on channels-last images: input
// [N, H, W, InC] → output [N, OH, OW, OutC] with
// OH = (H − 1)·Stride − 2·Pad + K + OutPad. Its weight [InC, K, K, OutC]
// is exactly the weight of a Conv2D from OutC to InC channels, so the two
// can share one Param (tied weights, see NewTiedConvTranspose2D).
type ConvTranspose2D struct {
	InC, OutC, K, Stride, Pad, OutPad int
	Weight                            *Param // [InC, K, K, OutC]
	Bias                              *Param // [OutC], or nil for none

	x, y, dx *Tensor
	scratch  convScratch
}

// NewConvTranspose2D returns a transposed convolution with its own
// Kaiming-normal weights (fan-in InC·K²/Stride², the inputs that reach
// one output) and zero bias. It panics on bad geometry, including
// OutPad ≥ Stride.
func NewConvTranspose2D(name string, inC, outC, k, stride, pad, outPad int, bias bool, rng *rand.Rand) *ConvTranspose2D {
	l := &ConvTranspose2D{InC: inC, OutC: outC, K: k, Stride: stride, Pad: pad, OutPad: outPad,
		Weight: newParam(name+".weight", true, inC, k, k, outC)}
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
		OutPad: outPad, Weight: conv.Weight}
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

// Forward applies the transposed convolution to x [N, H, W, InC].
func (l *ConvTranspose2D) Forward(x *Tensor, train bool) *Tensor {
	n, h, w, c := dims4("ConvTranspose2D", x)
	if c != l.InC {
		panic(fmt.Sprintf("nn: ConvTranspose2D %s: input has %d channels, want %d", l.Weight.Name, c, l.InC))
	}
	oh, ow := (h-1)*l.Stride-2*l.Pad+l.K+l.OutPad, (w-1)*l.Stride-2*l.Pad+l.K+l.OutPad
	if oh < 1 || ow < 1 {
		panic(fmt.Sprintf("nn: ConvTranspose2D %s: empty output for input %dx%d", l.Weight.Name, h, w))
	}
	l.x = x
	l.y = reuse(l.y, n, oh, ow, l.OutC)
	kk, hw, op := l.K*l.K*l.OutC, h*w, oh*ow*l.OutC
	cs := l.scratch.get(n, hw*kk, false)
	defer l.scratch.put()
	col := l.scratch.col
	for s0 := 0; s0 < n; s0 += cs {
		m := min(cs, n-s0)
		kernel.Gemm(false, false, m*hw, kk, c, 1, x.Data[s0*hw*c:], c, l.Weight.Value.Data, kk, 0, col, kk)
		kernel.For(m, 1, func(_, i, _ int) {
			out := l.y.Data[(s0+i)*op : (s0+i+1)*op]
			clear(out)
			kernel.Col2im(out, col[i*hw*kk:(i+1)*hw*kk], oh, ow, l.OutC, l.K, l.Stride, l.Pad)
		})
	}
	addBias(l.y.Data, l.Bias)
	return l.y
}

// Backward returns ∂loss/∂x [N, H, W, InC] and accumulates the gradients.
func (l *ConvTranspose2D) Backward(dy *Tensor) *Tensor {
	x := l.x
	n, h, w, c := dims4("ConvTranspose2D", x)
	kk, hw := l.K*l.K*l.OutC, h*w
	l.dx = gradBuffer(l.dx, x.Shape...)
	cs := l.scratch.get(n, hw*kk, false)
	defer l.scratch.put()
	dwt := l.scratch.gradient(kk * c)
	for s0 := 0; s0 < n; s0 += cs {
		m := min(cs, n-s0)
		col := l.scratch.im2col(dy, s0, m, l.K, l.Stride, l.Pad, hw*kk)
		xc := x.Data[s0*hw*c : (s0+m)*hw*c]
		beta := float32(1)
		if s0 == 0 {
			beta = 0
		}
		kernel.Gemm(true, false, kk, c, m*hw, 1, col, kk, xc, c, beta, dwt, c)
		kernel.Gemm(false, true, m*hw, c, kk, 1, col, kk, l.Weight.Value.Data, kk, 0, l.dx.Data[s0*hw*c:], c)
	}
	kernel.AddTransposed(l.Weight.Grad.Data, dwt, kk, c)
	accumulateBias(l.Bias, dy)
	return l.dx
}

// convScratch holds a convolution's GEMM buffers: the im2col matrix of one
// chunk of samples during a pass, from the shared scratch pool, or kept by
// the layer from a training Forward to its Backward; and the transposed
// weight gradient.
type convScratch struct {
	col  []float32 // the im2col matrix of the current pass
	kept []float32 // when not nil, col is this: the whole batch's, kept for Backward
	own  []float32 // the layer's own buffer for kept matrices
	dwt  []float32
}

// keepFloats is the largest im2col matrix, in floats, that a convolution
// keeps from a training Forward so that Backward need not unroll the
// input again; larger ones are unrolled twice, a chunk at a time.
const keepFloats = 10 << 20

// colBudget is the size, in floats, of the im2col matrix of one chunk.
const colBudget = 4 << 20

// get returns how many samples one GEMM covers, with perSample floats of
// im2col matrix each, and takes the matrix: for training passes small
// enough, the whole batch's, kept until Backward; otherwise as many samples
// as fit colBudget floats (at least one), from the pool. Call put when the
// pass is done.
func (s *convScratch) get(n, perSample int, train bool) int {
	s.kept = nil
	if train && n*perSample <= keepFloats {
		s.own = reuseSlice(s.own, n*perSample)
		s.kept, s.col = s.own, s.own
		return n
	}
	cs := min(n, max(1, colBudget/perSample))
	s.col = getScratch(cs * perSample)
	return cs
}

// put ends a pass: a pooled matrix goes back to the pool; a kept one stays
// for the Backward that follows a training Forward, after which it is
// spent.
func (s *convScratch) put() {
	switch {
	case s.kept == nil:
		putScratch(s.col)
	case s.col == nil:
		s.kept = nil
	}
	s.col = nil
}

// gradient returns the buffer for the transposed weight gradient, of n floats.
func (s *convScratch) gradient(n int) []float32 {
	s.dwt = reuseSlice(s.dwt, n)
	return s.dwt
}

// im2col fills the scratch matrix with the im2col rows of samples
// s0..s0+m of x [N, H, W, C] (perSample floats each) and returns it.
func (s *convScratch) im2col(x *Tensor, s0, m, k, stride, pad, perSample int) []float32 {
	_, h, w, c := dims4("im2col", x)
	in := h * w * c
	kernel.For(m, 1, func(_, i, _ int) {
		kernel.Im2col(s.col[i*perSample:(i+1)*perSample], x.Data[(s0+i)*in:(s0+i+1)*in], h, w, c, k, stride, pad)
	})
	return s.col[:m*perSample]
}

// addBias adds bias[c] to channel c of every position of a channels-last
// tensor's data; a nil bias does nothing.
func addBias(y []float32, bias *Param) {
	if bias == nil {
		return
	}
	b := bias.Value.Data
	kernel.ForElems(len(y)/len(b), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			kernel.Axpy(1, b, y[r*len(b):(r+1)*len(b)])
		}
	})
}

// accumulateBias adds the sum over all positions of dy, channel by
// channel (the last axis), into bias.Grad; a nil bias does nothing.
func accumulateBias(bias *Param, dy *Tensor) {
	if bias == nil {
		return
	}
	kernel.AddColumnSums(bias.Grad.Data, dy.Data)
}

func withBias(w, b *Param) []*Param {
	if b == nil {
		return []*Param{w}
	}
	return []*Param{w, b}
}

// dims4 returns the four dimensions of x, panicking unless it is rank 4.
func dims4(op string, x *Tensor) (n, h, w, c int) {
	mustRank(op, x, 4)
	return x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
}

func (l *Conv2D) releaseGrad() { releaseGrad(l.dx) }

func (l *ConvTranspose2D) releaseGrad() { releaseGrad(l.dx) }
