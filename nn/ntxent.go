package nn

import (
	"fmt"
	"math"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// NTXent is the normalised temperature-scaled cross-entropy of SimCLR
// (Chen et al. 2020), over a batch of M = 2N embeddings z [M, D] made of N
// positive pairs at rows 2i and 2i+1 (Positive). With u the rows of z
// scaled to unit length and s_ij = u_i·u_j / T, the loss is the mean over
// the M rows of
//
//	−log( exp(s_i,p(i)) / Σ_{k≠i} exp(s_ik) ),
//
// a cross-entropy that picks each row's positive out of the other M−1
// rows, its M−2 negatives the other pairs' rows. A row of zeros is
// scaled by 1/max(|z_i|, 1e-12), as PyTorch's F.normalize does.
type NTXent struct {
	// Temperature T > 0 scales the cosine similarities.
	Temperature float64

	z      *Tensor   // the input of the last Forward
	u      []float32 // [M, D] unit rows
	norm   []float32 // [M] the rows' lengths (at least normEps)
	labels []int     // [M] each row's positive
	p      []float32 // [M, M] the rows' softmax over the other rows
	g, gs  []float32 // [M, M] ∂L/∂s, and G + Gᵀ
	du     []float32 // [M, D] ∂L/∂u
	dx     *Tensor
}

// normEps is the smallest length a row of z is divided by.
const normEps = 1e-12

// Positive returns the row that is row i's positive: i XOR 1.
func (l *NTXent) Positive(i int) int { return i ^ 1 }

// Forward takes z [M, D] (M even, at least 2) and returns the mean loss
// and the contrastive top-1: the fraction of rows whose most similar other
// row is their positive (the first of equally similar ones; chance
// 1/(M−1)). It panics if z is not rank 2, M is odd or less than 2, or the
// temperature is not positive.
//
// The similarities s = U·Uᵀ/T come from kernel.Gemm; with the diagonal set
// to −∞ (a row is not its own candidate), each row's loss and top-1 are
// kernel.SoftmaxCrossEntropy's with the positive as the label.
func (l *NTXent) Forward(z *Tensor) (loss, top1 float64) {
	mustRank("NTXent", z, 2)
	m, d := z.Shape[0], z.Shape[1]
	if m < 2 || m%2 != 0 {
		panic(fmt.Sprintf("nn: NTXent: %d rows, want an even number ≥ 2 (pairs at 2i, 2i+1)", m))
	}
	if !(l.Temperature > 0) || math.IsInf(l.Temperature, 0) {
		panic(fmt.Sprintf("nn: NTXent: temperature %v, want a finite value > 0", l.Temperature))
	}
	l.z = z
	l.u = reuseSlice(l.u, m*d)
	l.norm = reuseSlice(l.norm, m)
	l.labels = reuseSlice(l.labels, m)
	for i := range m {
		row := z.Data[i*d : (i+1)*d]
		n := float32(max(math.Sqrt(kernel.SquaredDiff(nil, row, nil)), normEps))
		l.norm[i] = n
		kernel.Scale(l.u[i*d:(i+1)*d], row, 1/n)
		l.labels[i] = l.Positive(i)
	}
	l.g = reuseSlice(l.g, m*m) // the similarities, until Backward
	kernel.Gemm(false, true, m, m, d, float32(1/l.Temperature), l.u, d, l.u, d, 0, l.g, m)
	for i := range m {
		l.g[i*m+i] = float32(math.Inf(-1))
	}
	l.p = reuseSlice(l.p, m*m)
	sum, correct := kernel.SoftmaxCrossEntropy(l.p, l.g, l.labels, m)
	return sum / float64(m), float64(correct) / float64(m)
}

// Backward returns ∂loss/∂z [M, D] for the last Forward. With
// G = ∂L/∂s = (P − onehot(positives)) / M (P the rows' softmax, 0 on the
// diagonal), ∂L/∂U = (G + Gᵀ)·U / T, and each row goes back through the
// normalisation: ∂L/∂z_i = (g_i − u_i (u_i·g_i)) / |z_i|. The result is
// valid until the next Backward.
func (l *NTXent) Backward() *Tensor {
	m, d := l.z.Shape[0], l.z.Shape[1]
	kernel.SoftmaxCrossEntropyGrad(l.g, l.p, l.labels, m, 1/float32(m))
	l.gs = reuseSlice(l.gs, m*m)
	copy(l.gs, l.g)
	kernel.AddTransposed(l.gs, l.g, m, m)
	l.du = reuseSlice(l.du, m*d)
	kernel.Gemm(false, false, m, d, m, float32(1/l.Temperature), l.gs, m, l.u, d, 0, l.du, d)
	l.dx = reuse(l.dx, m, d)
	for i := range m {
		u, g, dx := l.u[i*d:(i+1)*d], l.du[i*d:(i+1)*d], l.dx.Data[i*d:(i+1)*d]
		inv := 1 / l.norm[i]
		kernel.Scale(dx, g, inv)
		kernel.Axpy(-kernel.Dot(u, g)*inv, u, dx)
	}
	return l.dx
}
