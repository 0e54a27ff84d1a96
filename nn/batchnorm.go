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
// BatchNorm2D takes [N, C, H, W] (statistics over N, H, W); BatchNorm1D
// takes [N, C] (statistics over N).
type BatchNorm struct {
	C                       int
	Eps, Momentum           float64 // 1e-5 and 0.1 by default
	Weight, Bias            *Param  // γ, β: [C]
	RunningMean, RunningVar *Param  // buffers: [C]

	rank        int
	x, y, dx    *Tensor
	mean, istd  []float64 // statistics used by the last Forward
	trainedLast bool
}

// NewBatchNorm2D returns batch normalisation over [N, C, H, W] named name
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

// Params returns γ and β.
func (l *BatchNorm) Params() []*Param { return []*Param{l.Weight, l.Bias} }

// Buffers returns the running mean and variance.
func (l *BatchNorm) Buffers() []*Param { return []*Param{l.RunningMean, l.RunningVar} }

// geometry returns the batch size and the number of values per channel per sample.
func (l *BatchNorm) geometry(x *Tensor) (n, s int) {
	mustRank("BatchNorm", x, l.rank)
	if x.Shape[1] != l.C {
		panic(fmt.Sprintf("nn: BatchNorm %s: input has %d channels, want %d", l.Weight.Name, x.Shape[1], l.C))
	}
	n, s = x.Shape[0], 1
	if l.rank == 4 {
		s = x.Shape[2] * x.Shape[3]
	}
	return n, s
}

// Forward normalises x. In training it panics if a channel has fewer than
// two values (N·H·W < 2), where the variance is undefined.
func (l *BatchNorm) Forward(x *Tensor, train bool) *Tensor {
	n, s := l.geometry(x)
	m := n * s
	if train && m < 2 {
		panic(fmt.Sprintf("nn: BatchNorm %s: training needs at least 2 values per channel, got %d", l.Weight.Name, m))
	}
	l.x, l.trainedLast = x, train
	l.y = reuse(l.y, x.Shape...)
	l.mean, l.istd = reuseSlice(l.mean, l.C), reuseSlice(l.istd, l.C)
	c := l.C
	kernel.For(c, 1, func(ch, _, _ int) {
		var mean, variance float64
		if train {
			for i := 0; i < n; i++ {
				mean += kernel.Sum(x.Data[(i*c+ch)*s : (i*c+ch+1)*s])
			}
			mean /= float64(m)
			for i := 0; i < n; i++ {
				for _, v := range x.Data[(i*c+ch)*s : (i*c+ch+1)*s] {
					d := float64(v) - mean
					variance += d * d
				}
			}
			variance /= float64(m)
			mom := l.Momentum
			rm, rv := &l.RunningMean.Value.Data[ch], &l.RunningVar.Value.Data[ch]
			*rm = float32((1-mom)*float64(*rm) + mom*mean)
			*rv = float32((1-mom)*float64(*rv) + mom*variance*float64(m)/float64(m-1))
		} else {
			mean, variance = float64(l.RunningMean.Value.Data[ch]), float64(l.RunningVar.Value.Data[ch])
		}
		istd := 1 / math.Sqrt(variance+l.Eps)
		l.mean[ch], l.istd[ch] = mean, istd
		scale := float32(float64(l.Weight.Value.Data[ch]) * istd)
		shift := l.Bias.Value.Data[ch] - float32(mean)*scale
		for i := 0; i < n; i++ {
			src := x.Data[(i*c+ch)*s : (i*c+ch+1)*s]
			dst := l.y.Data[(i*c+ch)*s : (i*c+ch+1)*s]
			for j, v := range src {
				dst[j] = v*scale + shift
			}
		}
	})
	return l.y
}

// Backward returns ∂loss/∂x and accumulates the gradients of γ and β. After
// a training Forward it differentiates through the batch statistics.
func (l *BatchNorm) Backward(dy *Tensor) *Tensor {
	x := l.x
	n, s := l.geometry(x)
	m, c := float64(n*s), l.C
	l.dx = reuse(l.dx, x.Shape...)
	kernel.For(c, 1, func(ch, _, _ int) {
		mean, istd := l.mean[ch], l.istd[ch]
		var sumDy, sumDyXhat float64
		for i := 0; i < n; i++ {
			xs := x.Data[(i*c+ch)*s : (i*c+ch+1)*s]
			for j, d := range dy.Data[(i*c+ch)*s : (i*c+ch+1)*s] {
				sumDy += float64(d)
				sumDyXhat += float64(d) * (float64(xs[j]) - mean) * istd
			}
		}
		l.Bias.Grad.Data[ch] += float32(sumDy)
		l.Weight.Grad.Data[ch] += float32(sumDyXhat)
		g := float64(l.Weight.Value.Data[ch]) * istd
		// Training: dx = γ·istd·(dy − mean(dy) − x̂·mean(dy·x̂)); evaluation: dx = γ·istd·dy.
		a, b := float32(g), float32(0)
		var k float32
		if l.trainedLast {
			b = float32(-g * (sumDy/m - mean*istd*sumDyXhat/m))
			k = float32(-g * istd * sumDyXhat / m)
		}
		for i := 0; i < n; i++ {
			xs := x.Data[(i*c+ch)*s : (i*c+ch+1)*s]
			dst := l.dx.Data[(i*c+ch)*s : (i*c+ch+1)*s]
			for j, d := range dy.Data[(i*c+ch)*s : (i*c+ch+1)*s] {
				dst[j] = a*d + k*xs[j] + b
			}
		}
	})
	return l.dx
}
