package nn

import (
	"fmt"
	"math"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// BatchNorm normalises each channel to zero mean and unit variance, then
// scales and shifts it by the learned Weight (γ) and Bias (β). In training
// it uses the batch's statistics and updates the running ones
// (exponential average with Momentum; the running variance is unbiased, as
// in PyTorch); in evaluation it uses the running statistics.
// Channels are the last axis: BatchNorm2D takes channels-last images
// [N, H, W, C] (statistics over N, H, W); BatchNorm1D takes features
// [N, C] (statistics over N).
//
// With ReLU set (see WithReLU) the layer is batch norm followed by
// max(·, 0), fused: one pass over memory instead of two each way.
type BatchNorm struct {
	C                       int
	Eps, Momentum           float64 // 1e-5 and 0.1 by default
	Weight, Bias            *Param  // γ, β: [C]
	RunningMean, RunningVar *Param  // buffers: [C]

	ReLU bool

	rank       int
	x, y, dx   *Tensor
	mean, istd []float64 // statistics used by the last Forward
	// coef holds the last Forward's per-channel scales then shifts: with
	// the fused ReLU, the gate that rebuilds its mask from x in Backward.
	coef        []float32
	ga, gk, gb  []float32 // Backward's per-channel coefficients
	sums        kernel.Moments
	zeros       []float32
	centre      []float32
	trainedLast bool
	sync        syncScratch
}

// NewBatchNorm2D returns batch normalisation over [N, H, W, C] named name
// (parameters name+".weight", ".bias", buffers ".running_mean",
// ".running_var"), with γ = 1, β = 0.
func NewBatchNorm2D(name string, c int) *BatchNorm { return newBatchNorm(name, c, 4) }

// NewBatchNorm1D returns batch normalisation over features [N, C].
func NewBatchNorm1D(name string, c int) *BatchNorm { return newBatchNorm(name, c, 2) }

func newBatchNorm(name string, c, rank int) *BatchNorm {
	l := &BatchNorm{C: c, Eps: 1e-5, Momentum: 0.1, rank: rank,
		Weight:      newParam(name+".weight", false, c),
		Bias:        newParam(name+".bias", false, c),
		RunningMean: newBuffer(name+".running_mean", c),
		RunningVar:  newBuffer(name+".running_var", c),
	}
	for i := 0; i < c; i++ {
		l.Weight.Value.Data[i] = 1
		l.RunningVar.Value.Data[i] = 1
	}
	return l
}

// WithReLU sets l.ReLU and returns l.
func (l *BatchNorm) WithReLU() *BatchNorm {
	l.ReLU = true
	return l
}

// Params returns γ and β.
func (l *BatchNorm) Params() []*Param { return []*Param{l.Weight, l.Bias} }

// Buffers returns the running mean and variance.
func (l *BatchNorm) Buffers() []*Param { return []*Param{l.RunningMean, l.RunningVar} }

// rows returns the number of values per channel in x.
func (l *BatchNorm) rows(x *Tensor) int {
	mustRank("BatchNorm", x, l.rank)
	if x.Shape[l.rank-1] != l.C {
		panic(fmt.Sprintf("nn: BatchNorm %s: input has %d channels, want %d", l.Weight.Name, x.Shape[l.rank-1], l.C))
	}
	return x.Len() / l.C
}

// Forward normalises x. In training it panics if a channel has fewer than
// two values (N·H·W < 2), where the variance is undefined; synchronised
// (SyncBatchNorm), if it has none here or fewer than two in all.
func (l *BatchNorm) Forward(x *Tensor, train bool) *Tensor {
	m := l.rows(x)
	if train && m < 2 && (l.RunningMean.reducer == nil || m < 1) {
		panic(fmt.Sprintf("nn: BatchNorm %s: training needs at least 2 values per channel, got %d", l.Weight.Name, m))
	}
	l.x, l.trainedLast = x, train
	l.y = reuse(l.y, x.Shape...)
	c := l.C
	l.mean, l.istd = reuseSlice(l.mean, c), reuseSlice(l.istd, c)
	l.coef = reuseSlice(l.coef, 2*c)
	scale, add := l.coef[:c], l.coef[c:]
	if train {
		// Sums of x − x₀ (x₀ the first row) keep the variance exact
		// when the mean is large against the spread.
		shift := x.Data[:c]
		r := l.RunningMean.reducer
		if r != nil {
			shift = l.sync.sharedShift(r, shift)
		}
		s1, s2 := l.sums.Sums(x.Data, nil, shift, nil, nil)
		if r != nil {
			if s1, s2, m = l.sync.sum(r, s1, s2, m); m < 2 {
				panic(fmt.Sprintf("nn: BatchNorm %s: training needs at least 2 values per channel, got %d over every process", l.Weight.Name, m))
			}
		}
		for ch := 0; ch < c; ch++ {
			d := s1[ch] / float64(m)
			mean := float64(shift[ch]) + d
			variance := max(0, s2[ch]/float64(m)-d*d)
			mom := l.Momentum
			rm, rv := &l.RunningMean.Value.Data[ch], &l.RunningVar.Value.Data[ch]
			*rm = float32((1-mom)*float64(*rm) + mom*mean)
			*rv = float32((1-mom)*float64(*rv) + mom*variance*float64(m)/float64(m-1))
			l.mean[ch], l.istd[ch] = mean, 1/math.Sqrt(variance+l.Eps)
		}
	} else {
		for ch := 0; ch < c; ch++ {
			l.mean[ch] = float64(l.RunningMean.Value.Data[ch])
			l.istd[ch] = 1 / math.Sqrt(float64(l.RunningVar.Value.Data[ch])+l.Eps)
		}
	}
	for ch := 0; ch < c; ch++ {
		g := float64(l.Weight.Value.Data[ch]) * l.istd[ch]
		scale[ch] = float32(g)
		add[ch] = float32(float64(l.Bias.Value.Data[ch]) - l.mean[ch]*g)
	}
	kernel.ForElems(x.Len()/c, func(lo, hi int) {
		kernel.ScaleShiftRows(l.y.Data[lo*c:hi*c], x.Data[lo*c:hi*c], scale, add, l.ReLU)
	})
	return l.y
}

// Backward returns ∂loss/∂x and accumulates the gradients of γ and β. After
// a training Forward it differentiates through the batch statistics.
func (l *BatchNorm) Backward(dy *Tensor) *Tensor {
	x := l.x
	m, c := float64(l.rows(x)), l.C
	l.dx = gradBuffer(l.dx, x.Shape...)
	// With the fused ReLU, dy counts only where y > 0: where the last
	// Forward's scale and shift of x is, computed as it computed y.
	var gate kernel.Gate
	if l.ReLU {
		gate = l.coef
	}
	// Σ dy and Σ dy·(x − mean), with x centred before the product so that a
	// mean far from zero costs no precision.
	l.centre = reuseSlice(l.centre, c)
	for ch, m := range l.mean {
		l.centre[ch] = float32(m)
	}
	sumDy, sumDyXc := l.sums.Sums(dy.Data, x.Data, make0(&l.zeros, c), l.centre, gate)
	// Synchronised, γ and β take this process's sums, x the global batch's.
	gDy, gDyXc := sumDy, sumDyXc
	if r := l.RunningMean.reducer; r != nil && l.trainedLast {
		var gm int
		gDy, gDyXc, gm = l.sync.sum(r, sumDy, sumDyXc, int(m))
		m = float64(gm)
	}
	// dx = a·dy + k·x + b per channel. Training:
	// dx = γ·istd·(dy − mean(dy) − x̂·mean(dy·x̂)); evaluation: dx = γ·istd·dy.
	l.ga, l.gk, l.gb = reuseSlice(l.ga, c), reuseSlice(l.gk, c), reuseSlice(l.gb, c)
	for ch := 0; ch < c; ch++ {
		mean, istd := l.mean[ch], l.istd[ch]
		sumDyXhat := (sumDyXc[ch] - (mean-float64(l.centre[ch]))*sumDy[ch]) * istd
		l.Bias.Grad.Data[ch] += float32(sumDy[ch])
		l.Weight.Grad.Data[ch] += float32(sumDyXhat)
		g := float64(l.Weight.Value.Data[ch]) * istd
		a, k, b := g, 0.0, 0.0
		if l.trainedLast {
			gDyXhat := (gDyXc[ch] - (mean-float64(l.centre[ch]))*gDy[ch]) * istd
			k = -g * istd * gDyXhat / m
			b = -g * (gDy[ch]/m - mean*istd*gDyXhat/m)
		}
		l.ga[ch], l.gk[ch], l.gb[ch] = float32(a), float32(k), float32(b)
	}
	kernel.ForElems(x.Len()/c, func(lo, hi int) {
		kernel.AffineGradRows(l.dx.Data[lo*c:hi*c], dy.Data[lo*c:hi*c], gate, x.Data[lo*c:hi*c], l.ga, l.gk, l.gb)
	})
	return l.dx
}

// make0 returns a zero slice of n floats kept in *buf.
func make0(buf *[]float32, n int) []float32 {
	*buf = reuseSlice(*buf, n)
	clear(*buf)
	return *buf
}

func (l *BatchNorm) releaseGrad() { releaseGrad(l.dx) }
