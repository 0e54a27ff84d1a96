package nn

import (
	"math"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Optimizer updates parameters from their accumulated gradients.
type Optimizer interface {
	// Step applies one update with learning rate lr. It does not clear the
	// gradients; call ZeroGrads before the next backward pass.
	Step(lr float64)
	// State lists the optimiser's own tensors (momenta, moments, step
	// count), named after their parameters, for checkpoints.
	State() []*Param
}

// SGD is stochastic gradient descent with optional momentum, Nesterov
// momentum and L2 weight decay, with PyTorch's update rule:
// g = ∇ + λ·w; v = μ·v + g; w −= lr·(Nesterov ? g + μ·v : v).
// Weight decay applies only to parameters with Decay set.
type SGD struct {
	Momentum, WeightDecay float64
	Nesterov              bool

	params, vel []*Param
}

// NewSGD returns an SGD optimiser over the unique parameters of ps.
func NewSGD(ps []*Param, momentum, weightDecay float64, nesterov bool) *SGD {
	o := &SGD{Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov, params: Unique(ps)}
	for _, p := range o.params {
		o.vel = append(o.vel, newBuffer(p.Name+".momentum", p.Value.Shape...))
	}
	return o
}

// State returns the momentum buffers.
func (o *SGD) State() []*Param { return o.vel }

// Step updates every parameter.
func (o *SGD) Step(lr float64) {
	mu, lrf := float32(o.Momentum), float32(lr)
	for i, p := range o.params {
		wd := float32(0)
		if p.Decay {
			wd = float32(o.WeightDecay)
		}
		w, g, v := p.Value.Data, p.Grad.Data, o.vel[i].Value.Data
		if mu == 0 {
			v = nil
		}
		kernel.ForElems(len(w), func(lo, hi int) {
			var vs []float32
			if v != nil {
				vs = v[lo:hi]
			}
			kernel.SGDStep(w[lo:hi], g[lo:hi], vs, lrf, wd, mu, o.Nesterov)
		})
	}
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter):
// w −= lr·λ·w, then the Adam step with bias-corrected moments.
// Weight decay applies only to parameters with Decay set.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64

	params, m, v []*Param
	step         *Param // [1]: the number of steps taken
}

// NewAdamW returns an AdamW optimiser over the unique parameters of ps
// with β₁ = 0.9, β₂ = 0.999, ε = 1e-8 and the given weight decay.
func NewAdamW(ps []*Param, weightDecay float64) *AdamW {
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, params: Unique(ps),
		step: newBuffer("adamw.step", 1)}
	for _, p := range o.params {
		o.m = append(o.m, newBuffer(p.Name+".exp_avg", p.Value.Shape...))
		o.v = append(o.v, newBuffer(p.Name+".exp_avg_sq", p.Value.Shape...))
	}
	return o
}

// State returns the step count and the first and second moments.
func (o *AdamW) State() []*Param {
	return append(append([]*Param{o.step}, o.m...), o.v...)
}

// Step updates every parameter.
func (o *AdamW) Step(lr float64) {
	o.step.Value.Data[0]++
	t := float64(o.step.Value.Data[0])
	// 1−β is rounded from float64, as PyTorch does: 1 − float32(0.999) is
	// 0.00099998713, 1.3e-5 away from the 1−β₂ in the bias correction.
	b1, b2 := float32(o.Beta1), float32(o.Beta2)
	a1, a2 := float32(1-o.Beta1), float32(1-o.Beta2)
	c1, c2 := 1-math.Pow(o.Beta1, t), 1-math.Pow(o.Beta2, t)
	stepSize, sqrtC2, eps := float32(lr/c1), math.Sqrt(c2), o.Eps
	for i, p := range o.params {
		decay := float32(1)
		if p.Decay {
			decay = float32(1 - lr*o.WeightDecay)
		}
		w, g, m, v := p.Value.Data, p.Grad.Data, o.m[i].Value.Data, o.v[i].Value.Data
		kernel.ForElems(len(w), func(lo, hi int) {
			kernel.AdamWStep(w[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], b1, b2, a1, a2, stepSize, decay, sqrtC2, eps)
		})
	}
}

// WarmupCosine is a learning-rate schedule: a linear warm-up from Base/Warmup
// to Base over the first Warmup steps, then a cosine decay from Base to
// Final at step Total. Steps count from 0; past Total it stays at Final.
type WarmupCosine struct {
	Base, Final   float64
	Warmup, Total int
}

// At returns the learning rate for step.
func (s WarmupCosine) At(step int) float64 {
	if step < s.Warmup {
		return s.Base * float64(step+1) / float64(s.Warmup)
	}
	span := s.Total - s.Warmup
	if span <= 0 || step >= s.Total {
		return s.Final
	}
	frac := float64(step-s.Warmup) / float64(span)
	return s.Final + (s.Base-s.Final)*0.5*(1+math.Cos(math.Pi*frac))
}
