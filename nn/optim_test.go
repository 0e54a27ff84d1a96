package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// scalarParam returns a one-element parameter.
func scalarParam(name string, v float32, decay bool) *Param {
	p := newParam(name, decay, 1)
	p.Value.Data[0] = v
	return p
}

// runSteps sets each parameter's gradient to grads[step] before each Step
// and records the values after every step.
func runSteps(o Optimizer, ps []*Param, lr float64, grads []float32) [][]float64 {
	out := make([][]float64, len(ps))
	for _, g := range grads {
		for _, p := range ps {
			p.Grad.Data[0] = g
		}
		o.Step(lr)
		for i, p := range ps {
			out[i] = append(out[i], float64(p.Value.Data[0]))
		}
	}
	return out
}

func closeTo(got, want []float64, tol float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			return false
		}
	}
	return true
}

// TestSGD checks three steps of w₀ = 1 under a constant gradient 0.5 and
// lr 0.1 against updates worked by hand from PyTorch's rule
// g = ∇ + λ·w; v = μ·v + g; w −= lr·(Nesterov ? g + μ·v : v).
// "bias" has Decay unset, so weight decay must leave it alone.
func TestSGD(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mu, wd     float64
		nesterov   bool
		weight     []float64 // Decay set
		bias       []float64 // Decay unset
		noMomentum bool
	}{
		{
			// w −= 0.05 each step.
			name:   "plain",
			weight: []float64{0.95, 0.90, 0.85},
			bias:   []float64{0.95, 0.90, 0.85},
		},
		{
			// v: 0.5, 0.95, 1.355; w: 1 − 0.05 = 0.95, − 0.095 = 0.855, − 0.1355 = 0.7195.
			name: "momentum", mu: 0.9,
			weight: []float64{0.95, 0.855, 0.7195},
			bias:   []float64{0.95, 0.855, 0.7195},
		},
		{
			// v as above; steps g + μv: 0.95, 1.355, 1.7195.
			name: "nesterov", mu: 0.9, nesterov: true,
			weight: []float64{0.905, 0.7695, 0.59755},
			bias:   []float64{0.905, 0.7695, 0.59755},
		},
		{
			// g = 0.5 + 0.1w: 0.6 → 0.94; 0.594 → 0.8806; 0.58806 → 0.821794.
			name: "weight decay", wd: 0.1,
			weight: []float64{0.94, 0.8806, 0.821794},
			bias:   []float64{0.95, 0.90, 0.85},
		},
		{
			// g: 0.6, 0.594, 0.58266; v: 0.6, 1.134, 1.60326.
			name: "momentum and weight decay", mu: 0.9, wd: 0.1,
			weight: []float64{0.94, 0.8266, 0.666274},
			bias:   []float64{0.95, 0.855, 0.7195},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, b := scalarParam("w", 1, true), scalarParam("b", 1, false)
			o := NewSGD([]*Param{w, b}, tc.mu, tc.wd, tc.nesterov)
			got := runSteps(o, []*Param{w, b}, 0.1, []float32{0.5, 0.5, 0.5})
			if !closeTo(got[0], tc.weight, 1e-6) {
				t.Errorf("weight: %v, want %v", got[0], tc.weight)
			}
			if !closeTo(got[1], tc.bias, 1e-6) {
				t.Errorf("bias: %v, want %v", got[1], tc.bias)
			}
			if n := len(o.State()); n != 2 {
				t.Errorf("State has %d tensors, want 2", n)
			}
		})
	}
}

// adamWRef is PyTorch's AdamW for one scalar, in float64:
// w ← w·(1 − lr·λ); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
// w ← w − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
func adamWRef(w, lr, wd float64, grads []float64) []float64 {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	var m, v float64
	var out []float64
	for i, g := range grads {
		t := float64(i + 1)
		w *= 1 - lr*wd
		m = b1*m + (1-b1)*g
		v = b2*v + (1-b2)*g*g
		w -= lr / (1 - math.Pow(b1, t)) * m / (math.Sqrt(v)/math.Sqrt(1-math.Pow(b2, t)) + eps)
		out = append(out, w)
	}
	return out
}

func TestAdamW(t *testing.T) {
	t.Run("constant gradient", func(t *testing.T) {
		// With a constant gradient the bias-corrected m̂/√v̂ is exactly 1
		// (up to ε), so each step is w ← w·(1 − lr·λ) − lr:
		// 0.999 − 0.1 = 0.899; 0.898101 − 0.1 = 0.798101; 0.797302899 − 0.1.
		w, b := scalarParam("w", 1, true), scalarParam("b", 1, false)
		o := NewAdamW([]*Param{w, b}, 0.01)
		got := runSteps(o, []*Param{w, b}, 0.1, []float32{0.5, 0.5, 0.5})
		if want := []float64{0.899, 0.798101, 0.697302899}; !closeTo(got[0], want, 1e-6) {
			t.Errorf("weight: %v, want %v", got[0], want)
		}
		if want := []float64{0.9, 0.8, 0.7}; !closeTo(got[1], want, 1e-6) {
			t.Errorf("bias (no decay): %v, want %v", got[1], want)
		}
	})
	t.Run("varying gradient", func(t *testing.T) {
		grads := []float32{1, -0.5, 2}
		w := scalarParam("w", 0.3, true)
		o := NewAdamW([]*Param{w}, 0.05)
		got := runSteps(o, []*Param{w}, 0.01, grads)
		want := adamWRef(0.3, 0.01, 0.05, []float64{1, -0.5, 2})
		if !closeTo(got[0], want, 1e-6) {
			t.Errorf("weight: %v, want %v", got[0], want)
		}
		// The step count is saved with the state.
		st := o.State()
		if st[0].Value.Data[0] != 3 {
			t.Errorf("step count %v, want 3", st[0].Value.Data[0])
		}
		if len(st) != 3 {
			t.Errorf("State has %d tensors, want 3 (step, m, v)", len(st))
		}
	})
}

func TestWarmupCosine(t *testing.T) {
	s := WarmupCosine{Base: 1, Final: 0.1, Warmup: 4, Total: 14}
	for _, tc := range []struct {
		step int
		want float64
	}{
		{0, 0.25}, // Base/Warmup
		{1, 0.5},
		{3, 1},
		{4, 1},    // the cosine starts at Base
		{9, 0.55}, // half way: (Base + Final)/2
		{13, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*0.9))}, // one step before the end
		{14, 0.1},   // Total
		{1000, 0.1}, // past Total
		{6, 0.1 + 0.9*0.5*(1+math.Cos(math.Pi*2/10.0))}, // a fifth of the way
	} {
		if got := s.At(tc.step); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("At(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
	// Non-increasing after the warm-up.
	for step := s.Warmup; step < s.Total+2; step++ {
		if s.At(step+1) > s.At(step) {
			t.Errorf("At(%d) = %v > At(%d) = %v", step+1, s.At(step+1), step, s.At(step))
		}
	}
	// No warm-up: starts at Base.
	if got := (WarmupCosine{Base: 0.5, Total: 10}).At(0); got != 0.5 {
		t.Errorf("without warm-up At(0) = %v, want 0.5", got)
	}
}

func TestUnique(t *testing.T) {
	a, b := scalarParam("a", 0, true), scalarParam("b", 0, true)
	got := Unique([]*Param{a, b, a, b, a})
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("Unique = %v, want [a b]", got)
	}
	if err := CheckNames([]*Param{a, b, a}); err != nil {
		t.Errorf("CheckNames with a repeated param: %v", err)
	}
	if err := CheckNames([]*Param{a, scalarParam("a", 0, true)}); err == nil {
		t.Error("CheckNames accepted two params named a")
	}
}

// TestTiedStepOnce checks that an optimiser over a tied encoder/decoder pair
// updates the shared weight once per Step, not once per listing.
func TestTiedStepOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for _, mk := range []struct {
		name string
		new  func([]*Param) Optimizer
		// step is the change of a weight with value w and gradient 1 after
		// one Step at lr 0.1.
		step func(w float32) float32
	}{
		{"SGD", func(ps []*Param) Optimizer { return NewSGD(ps, 0.9, 0, false) }, func(float32) float32 { return -0.1 }},
		{"AdamW", func(ps []*Param) Optimizer { return NewAdamW(ps, 0) }, func(float32) float32 { return -0.1 }},
	} {
		t.Run(mk.name, func(t *testing.T) {
			conv := NewConv2D("enc", 2, 3, 3, 1, 1, false, rng)
			dec := NewTiedConvTranspose2D("dec", conv, 0, true)
			ps := append(conv.Params(), dec.Params()...)
			if len(ps) != 3 {
				t.Fatalf("%d params listed, want 3", len(ps))
			}
			o := mk.new(ps)
			before := conv.Weight.Value.Clone()
			for i := range conv.Weight.Grad.Data {
				conv.Weight.Grad.Data[i] = 1
			}
			o.Step(0.1)
			for i, w := range conv.Weight.Value.Data {
				want := before.Data[i] + mk.step(before.Data[i])
				if math.Abs(float64(w-want)) > 1e-6 {
					t.Fatalf("weight[%d]: %v → %v, want %v", i, before.Data[i], w, want)
				}
			}
		})
	}
}

// TestMinimiseQuadratic checks that each optimiser drives
// f(w) = Σ cᵢ(wᵢ − tᵢ)² to its minimum.
func TestMinimiseQuadratic(t *testing.T) {
	target := []float32{1, -2, 0.5, 3}
	curv := []float32{1, 0.5, 2, 0.25}
	for _, tc := range []struct {
		name  string
		new   func([]*Param) Optimizer
		lr    float64
		steps int
	}{
		{"SGD", func(ps []*Param) Optimizer { return NewSGD(ps, 0, 0, false) }, 0.2, 200},
		{"SGD momentum", func(ps []*Param) Optimizer { return NewSGD(ps, 0.9, 0, false) }, 0.05, 300},
		{"SGD nesterov", func(ps []*Param) Optimizer { return NewSGD(ps, 0.9, 0, true) }, 0.05, 300},
		{"AdamW", func(ps []*Param) Optimizer { return NewAdamW(ps, 0) }, 0.05, 800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newParam("w", true, len(target))
			o := tc.new([]*Param{p})
			for range tc.steps {
				for i, w := range p.Value.Data {
					p.Grad.Data[i] = 2 * curv[i] * (w - target[i])
				}
				o.Step(tc.lr)
			}
			for i, w := range p.Value.Data {
				if math.Abs(float64(w-target[i])) > 1e-3 {
					t.Errorf("w = %v, want %v", p.Value.Data, target)
					break
				}
			}
		})
	}
}

func ExampleWarmupCosine() {
	s := WarmupCosine{Base: 0.1, Final: 0, Warmup: 2, Total: 6}
	for step := 0; step <= 6; step++ {
		fmt.Printf("%.4f ", s.At(step))
	}
	fmt.Println()
	// Output:
	// 0.0500 0.1000 0.1000 0.0854 0.0500 0.0146 0.0000
}
