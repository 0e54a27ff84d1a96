package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// This file checks every layer's Backward against central finite
// differences of its Forward. The scalar checked is L = Σ r ⊙ y for a fixed
// random r, so every output element contributes, and Backward(r) must
// return ∂L/∂x and add ∂L/∂θ into each Param.Grad.

// fdTol is the tolerance of a gradient check: an element passes when
// |analytic − numeric| ≤ atol + rtol·max(|analytic|, |numeric|).
type fdTol struct{ atol, rtol float64 }

// defaultTol suits float32 forward passes with central differences of
// step defaultH on inputs of order 1: the rounding of L is about 1e-7·Σ|r·y|,
// which divided by 2h stays well under atol.
var defaultTol = fdTol{atol: 1e-3, rtol: 1e-2}

// defaultH is the finite-difference step: large enough that float32
// rounding of the forward pass is small against h, small enough that the
// O(h²) truncation error of central differences is negligible for the
// smooth layers. Piecewise-linear layers (ReLU, max pool) are exact as long
// as no input crosses a kink within ±h; their tests draw inputs that stay
// further than h from one.
const defaultH = 1e-2

// fdCheck compares analytic[i] with the central difference of eval with
// respect to vals[i], for every i, and reports the worst element. eval must
// read vals afresh on each call.
func fdCheck(t *testing.T, what string, vals, analytic []float32, h float64, tol fdTol, eval func() float64) {
	t.Helper()
	fdCheckKinks(t, what, vals, analytic, h, tol, false, eval)
}

// fdCheckKinks is fdCheck that, with kinks set, tolerates a kink (of ReLU
// or a max-pool switch) inside [v−h, v+h]: where the central difference
// disagrees, the two one-sided differences disagree with each other by more
// than the tolerance and the analytic gradient matches one of them, the kink
// lies on the other side and the element passes. A wrong gradient still
// fails: it matches neither side. Use it only for composite models whose
// intermediate values cannot be kept away from kinks.
func fdCheckKinks(t *testing.T, what string, vals, analytic []float32, h float64, tol fdTol, kinks bool, eval func() float64) {
	t.Helper()
	if len(vals) != len(analytic) {
		t.Fatalf("%s: %d values but %d gradient entries", what, len(vals), len(analytic))
	}
	worst, wi, bad, excused := 0.0, -1, 0, 0
	var wa, wn, maxNum float64
	for i, v := range vals {
		vp, vm := float32(float64(v)+h), float32(float64(v)-h)
		vals[i] = vp
		lp := eval()
		vals[i] = vm
		lm := eval()
		vals[i] = v
		// Divide by the step actually taken after rounding to float32.
		num := (lp - lm) / (float64(vp) - float64(vm))
		a := float64(analytic[i])
		maxNum = math.Max(maxNum, math.Abs(num))
		ratio := tol.ratio(a, num)
		if ratio > 1 && kinks {
			l0 := eval()
			fwd := (lp - l0) / (float64(vp) - float64(v))
			bwd := (l0 - lm) / (float64(v) - float64(vm))
			if tol.ratio(fwd, bwd) > 1 && min(tol.ratio(a, fwd), tol.ratio(a, bwd)) <= 1 {
				ratio = 0
				excused++
			}
		}
		if ratio > 1 {
			bad++
		}
		if ratio > worst || wi < 0 {
			worst, wi, wa, wn = ratio, i, a, num
		}
	}
	if 4*excused > len(vals) {
		t.Errorf("%s: %d of %d elements passed only by a one-sided difference; too many kinks for the check to mean much", what, excused, len(vals))
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d elements off; worst [%d]: analytic %.6g, numeric %.6g (error %.2f× the tolerance)",
			what, bad, len(vals), wi, wa, wn, worst)
	}
	if len(vals) > 0 && maxNum < 1e-6 {
		t.Errorf("%s: the numeric gradient is zero everywhere, the check proves nothing", what)
	}
}

// ratio is |a − b| over the tolerance allowed between them: ≤ 1 passes.
func (tol fdTol) ratio(a, b float64) float64 {
	r := math.Abs(a-b) / (tol.atol + tol.rtol*math.Max(math.Abs(a), math.Abs(b)))
	if math.IsNaN(r) {
		return math.Inf(1)
	}
	return r
}

func dot32(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// randTensor returns a tensor with entries uniform in [−1, 1).
func randTensor(rng *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(shape...)
	Uniform(t, 1, rng)
	return t
}

// awayFromZero returns a tensor with entries of magnitude in [0.1, 1) and
// random sign, so that no entry is within a finite-difference step of a
// ReLU kink.
func awayFromZero(rng *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(shape...)
	for i := range t.Data {
		v := 0.1 + 0.9*rng.Float64()
		if rng.IntN(2) == 0 {
			v = -v
		}
		t.Data[i] = float32(v)
	}
	return t
}

// distinct returns a tensor whose entries are a random permutation of
// values spaced 0.05 apart (centred on 0), so that every max-pool window
// has a unique maximum that no ±h perturbation can overturn.
func distinct(rng *rand.Rand, shape ...int) *Tensor {
	t := NewTensor(shape...)
	n := t.Len()
	for i, p := range rng.Perm(n) {
		t.Data[i] = float32(0.05 * (float64(p) - float64(n)/2))
	}
	return t
}

// checkOpts tunes checkLayer.
type checkOpts struct {
	h           float64
	tol         fdTol
	noInputGrad bool // Backward must return nil
	kinks       bool // tolerate kinks within ±h, see fdCheckKinks
}

// checkLayer checks l's input gradient and every unique parameter's
// gradient at x against finite differences.
func checkLayer(t *testing.T, l Layer, x *Tensor, train bool, o checkOpts) {
	t.Helper()
	if o.h == 0 {
		o.h = defaultH
	}
	if o.tol == (fdTol{}) {
		o.tol = defaultTol
	}
	rng := rand.New(rand.NewPCG(99, 7))
	y := l.Forward(x, train)
	r := randTensor(rng, y.Shape...)
	ps := Unique(l.Params())
	ZeroGrads(ps)
	dx := l.Backward(r)
	grads := make([][]float32, len(ps))
	for i, p := range ps {
		grads[i] = append([]float32(nil), p.Grad.Data...)
	}
	eval := func() float64 { return dot32(l.Forward(x, train).Data, r.Data) }
	if o.noInputGrad {
		if dx != nil {
			t.Errorf("Backward returned %v, want nil with NoInputGrad", dx)
		}
	} else {
		if dx == nil {
			t.Fatal("Backward returned nil")
		}
		if dx.Len() != x.Len() {
			t.Fatalf("Backward returned %v for input %v", dx, x)
		}
		fdCheckKinks(t, "∂L/∂x", x.Data, append([]float32(nil), dx.Data...), o.h, o.tol, o.kinks, eval)
	}
	for i, p := range ps {
		fdCheckKinks(t, "∂L/∂"+p.Name, p.Value.Data, grads[i], o.h, o.tol, o.kinks, eval)
	}
}

// randomiseParams gives every parameter random values, so that γ = 1, β = 0
// and zero biases do not hide mistakes.
func randomiseParams(l Layer, rng *rand.Rand) {
	for _, p := range l.Params() {
		for i := range p.Value.Data {
			p.Value.Data[i] = float32(0.5 + rng.Float64())
			if rng.IntN(2) == 0 && p.Decay {
				p.Value.Data[i] = -p.Value.Data[i]
			}
		}
	}
}

type gradCase struct {
	name  string
	build func(rng *rand.Rand) Layer
	input func(rng *rand.Rand) *Tensor
	train bool
	// prepare runs before the check, e.g. a training step that gives batch
	// norm non-trivial running statistics before an evaluation check.
	prepare func(l Layer, rng *rand.Rand)
	opts    checkOpts
}

func uniformIn(shape ...int) func(*rand.Rand) *Tensor {
	return func(rng *rand.Rand) *Tensor { return randTensor(rng, shape...) }
}

func conv(inC, outC, k, stride, pad int, bias bool) func(*rand.Rand) Layer {
	return func(rng *rand.Rand) Layer {
		l := NewConv2D("c", inC, outC, k, stride, pad, bias, rng)
		if bias {
			Uniform(l.Bias.Value, 1, rng)
		}
		return l
	}
}

func convT(inC, outC, k, stride, pad, outPad int, bias bool) func(*rand.Rand) Layer {
	return func(rng *rand.Rand) Layer {
		l := NewConvTranspose2D("ct", inC, outC, k, stride, pad, outPad, bias, rng)
		if bias {
			Uniform(l.Bias.Value, 1, rng)
		}
		return l
	}
}

func batchNorm2D(c int) func(*rand.Rand) Layer {
	return func(rng *rand.Rand) Layer {
		l := NewBatchNorm2D("bn", c)
		randomiseParams(l, rng)
		return l
	}
}

func batchNorm1D(c int) func(*rand.Rand) Layer {
	return func(rng *rand.Rand) Layer {
		l := NewBatchNorm1D("bn", c)
		randomiseParams(l, rng)
		return l
	}
}

// trainFirst runs one training forward pass on shifted, scaled data so that
// batch norm's running statistics are far from their initial 0 and 1.
func trainFirst(shape ...int) func(Layer, *rand.Rand) {
	return func(l Layer, rng *rand.Rand) {
		x := randTensor(rng, shape...)
		for i := range x.Data {
			x.Data[i] = 3*x.Data[i] + 0.7
		}
		for range 5 {
			l.Forward(x, true)
		}
	}
}

// tiedPair is conv followed by a transposed convolution that shares its
// weight, so the shared weight's gradient is the sum of both uses.
func tiedPair(rng *rand.Rand) Layer {
	c := NewConv2D("enc", 3, 4, 3, 2, 1, true, rng)
	Uniform(c.Bias.Value, 1, rng)
	d := NewTiedConvTranspose2D("dec", c, 1, true)
	Uniform(d.Bias.Value, 1, rng)
	return NewSequential(c, d)
}

// smallNet is conv → BN → ReLU → max pool → global average pool → linear.
func smallNet(rng *rand.Rand) Layer {
	bn := NewBatchNorm2D("bn", 4)
	randomiseParams(bn, rng)
	lin := NewLinear("fc", 4, 3, rng)
	Uniform(lin.Bias.Value, 1, rng)
	return NewSequential(
		NewConv2D("conv", 2, 4, 3, 1, 1, false, rng),
		bn,
		NewReLU(),
		NewMaxPool2D(2, 2),
		NewGlobalAvgPool(),
		lin,
	)
}

// netOpts checks a composite model. Its ReLU and max-pool inputs come out
// of batch norm and cannot be kept away from kinks: a conv weight moves
// every value of its channel, so a step of 1e-2 crosses a kink for many
// elements. A step of 1e-3 crosses few, and those pass by a one-sided
// difference (kinks); a smaller step would drown in float32 rounding, whose
// error in the central difference grows as 1/h.
var netOpts = checkOpts{h: 1e-3, kinks: true}

var gradCases = []gradCase{
	// Conv2D.
	{name: "Conv2D/k3_s1_p1_bias", build: conv(2, 3, 3, 1, 1, true), input: uniformIn(2, 5, 6, 2)},
	{name: "Conv2D/k3_s1_p0_nobias", build: conv(2, 3, 3, 1, 0, false), input: uniformIn(2, 5, 6, 2)},
	{name: "Conv2D/k3_s2_p1_bias", build: conv(3, 2, 3, 2, 1, true), input: uniformIn(2, 7, 6, 3)},
	{name: "Conv2D/k1_s1_p0_bias", build: conv(3, 4, 1, 1, 0, true), input: uniformIn(2, 3, 4, 3)},
	{name: "Conv2D/k5_s3_p2_nobias", build: conv(2, 2, 5, 3, 2, false), input: uniformIn(1, 7, 8, 2)},
	{name: "Conv2D/k2_s2_p0_bias", build: conv(2, 3, 2, 2, 0, true), input: uniformIn(3, 5, 4, 2)},
	{name: "Conv2D/k5_s1_p2_width1", build: conv(2, 2, 5, 1, 2, true), input: uniformIn(2, 4, 1, 2)},
	// Training passes: Backward reuses the im2col matrix Forward kept.
	{name: "Conv2D/k3_s1_p1_bias_train", build: conv(2, 3, 3, 1, 1, true), input: uniformIn(2, 5, 6, 2), train: true},
	{name: "Conv2D/k3_s2_p1_nobias_train", build: conv(3, 2, 3, 2, 1, false), input: uniformIn(2, 7, 6, 3), train: true},
	// Eleven samples, all in one GEMM.
	{name: "Conv2D/k3_s1_p1_batch11", build: conv(1, 2, 3, 1, 1, true), input: uniformIn(11, 3, 2, 1)},
	// Enough channels that an im2col kernel row (k·c = 48 values) takes
	// the long copy path.
	{name: "Conv2D/k3_s1_p1_16ch", build: conv(16, 2, 3, 1, 1, true), input: uniformIn(1, 4, 3, 16)},
	// Direct convolutions, forward and input gradient (see Conv2D.direct),
	// in evaluation and training mode, with a partial row tile.
	{name: "Conv2D/direct_k3_p1", build: conv(16, 16, 3, 1, 1, true), input: uniformIn(1, 2, 17, 16)},
	{name: "Conv2D/direct_k3_p1_train", build: conv(16, 16, 3, 1, 1, false), input: uniformIn(2, 2, 16, 16), train: true},
	{name: "Conv2D/direct_k3_p0", build: conv(16, 16, 3, 1, 0, false), input: uniformIn(1, 3, 19, 16)},
	{name: "Conv2D/direct_3out", build: conv(16, 3, 3, 1, 1, true), input: uniformIn(1, 2, 17, 16)},
	// Direct weight gradient with an im2col input gradient (24 input
	// channels: not a whole tile of the flipped convolution).
	{name: "Conv2D/direct_dW_only", build: conv(24, 16, 3, 1, 1, true), input: uniformIn(1, 2, 16, 24), train: true},
	{
		name: "Conv2D/NoInputGrad",
		build: func(rng *rand.Rand) Layer {
			l := conv(2, 3, 3, 2, 1, true)(rng).(*Conv2D)
			l.NoInputGrad = true
			return l
		},
		input: uniformIn(2, 6, 5, 2),
		opts:  checkOpts{noInputGrad: true},
	},
	{
		name: "Conv2D/NoInputGrad_train",
		build: func(rng *rand.Rand) Layer {
			l := conv(2, 3, 3, 1, 1, true)(rng).(*Conv2D)
			l.NoInputGrad = true
			return l
		},
		input: uniformIn(2, 5, 4, 2),
		train: true,
		opts:  checkOpts{noInputGrad: true},
	},

	// ConvTranspose2D.
	{name: "ConvTranspose2D/k3_s1_p1_bias", build: convT(2, 3, 3, 1, 1, 0, true), input: uniformIn(2, 4, 5, 2)},
	{name: "ConvTranspose2D/k3_s1_p0_nobias", build: convT(3, 2, 3, 1, 0, 0, false), input: uniformIn(2, 3, 4, 3)},
	{name: "ConvTranspose2D/k3_s2_p1_outpad1_bias", build: convT(3, 2, 3, 2, 1, 1, true), input: uniformIn(2, 3, 4, 3)},
	{name: "ConvTranspose2D/k4_s2_p1_nobias", build: convT(2, 2, 4, 2, 1, 0, false), input: uniformIn(2, 3, 3, 2)},
	{name: "ConvTranspose2D/k2_s2_p0_outpad1_bias", build: convT(2, 3, 2, 2, 0, 1, true), input: uniformIn(1, 3, 2, 2)},
	{name: "ConvTranspose2D/k3_s3_p1_outpad2_nobias", build: convT(2, 2, 3, 3, 1, 2, false), input: uniformIn(2, 2, 3, 2)},
	{name: "ConvTranspose2D/k3_s2_p1_batch11", build: convT(1, 2, 3, 2, 1, 1, true), input: uniformIn(11, 2, 2, 1)},
	{name: "ConvTranspose2D/k3_s2_p1_outpad1_16ch", build: convT(2, 16, 3, 2, 1, 1, true), input: uniformIn(1, 2, 3, 2)},

	// Tied encoder and decoder weights.
	{name: "TiedConvTranspose2D", build: tiedPair, input: uniformIn(2, 6, 6, 3)},

	// Batch norm: training differentiates through the batch statistics,
	// evaluation uses the running ones.
	{name: "BatchNorm2D/train", build: batchNorm2D(3), input: uniformIn(2, 3, 4, 3), train: true},
	{name: "BatchNorm2D/eval", build: batchNorm2D(3), input: uniformIn(2, 3, 4, 3), prepare: trainFirst(4, 3, 4, 3)},
	{name: "BatchNorm1D/train", build: batchNorm1D(4), input: uniformIn(6, 4), train: true},
	{name: "BatchNorm1D/eval", build: batchNorm1D(4), input: uniformIn(6, 4), prepare: trainFirst(5, 4)},

	// Parameter-free layers.
	{
		name:  "ReLU",
		build: func(*rand.Rand) Layer { return NewReLU() },
		input: func(rng *rand.Rand) *Tensor { return awayFromZero(rng, 2, 4, 5, 3) },
	},
	{
		name:  "MaxPool2D/k2_s2",
		build: func(*rand.Rand) Layer { return NewMaxPool2D(2, 2) },
		input: func(rng *rand.Rand) *Tensor { return distinct(rng, 2, 6, 5, 2) },
	},
	{
		name:  "MaxPool2D/k2_s1_overlapping",
		build: func(*rand.Rand) Layer { return NewMaxPool2D(2, 1) },
		input: func(rng *rand.Rand) *Tensor { return distinct(rng, 2, 4, 5, 3) },
	},
	{
		name:  "MaxPool2D/k3_s2_overlapping",
		build: func(*rand.Rand) Layer { return NewMaxPool2D(3, 2) },
		input: func(rng *rand.Rand) *Tensor { return distinct(rng, 2, 7, 6, 2) },
	},
	{name: "GlobalAvgPool", build: func(*rand.Rand) Layer { return NewGlobalAvgPool() }, input: uniformIn(2, 4, 5, 3)},
	{name: "Upsample2D/x2", build: func(*rand.Rand) Layer { return NewUpsample2D(2) }, input: uniformIn(2, 3, 4, 2)},
	{name: "Upsample2D/x3", build: func(*rand.Rand) Layer { return NewUpsample2D(3) }, input: uniformIn(1, 2, 3, 2)},
	{name: "Upsample2D/x1", build: func(*rand.Rand) Layer { return NewUpsample2D(1) }, input: uniformIn(1, 2, 3, 2)},
	{
		name: "Linear",
		build: func(rng *rand.Rand) Layer {
			l := NewLinear("fc", 5, 3, rng)
			Uniform(l.Bias.Value, 1, rng)
			return l
		},
		input: uniformIn(4, 5),
	},
	{name: "Flatten", build: func(*rand.Rand) Layer { return NewFlatten() }, input: uniformIn(2, 2, 2, 3)},
	{name: "Reshape", build: func(*rand.Rand) Layer { return NewReshape(2, 6) }, input: uniformIn(2, 2, 2, 3)},

	// A small classifier: conv → BN → ReLU → pool → GAP → linear, in both
	// modes; see netOpts.
	{name: "Sequential/train", build: smallNet, input: uniformIn(2, 4, 4, 2), train: true, opts: netOpts},
	{name: "Sequential/eval", build: smallNet, input: uniformIn(2, 4, 4, 2), prepare: trainFirst(3, 4, 4, 2), opts: netOpts},
}

func TestGradients(t *testing.T) {
	for i, tc := range gradCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			l := tc.build(rng)
			if tc.prepare != nil {
				tc.prepare(l, rng)
			}
			checkLayer(t, l, tc.input(rng), tc.train, tc.opts)
		})
	}
}

// TestGradientsAccumulate checks that Backward adds into Param.Grad: two
// backward passes give twice the gradient of one.
func TestGradientsAccumulate(t *testing.T) {
	for i, tc := range gradCases {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 43))
			l := tc.build(rng)
			ps := Unique(l.Params())
			if len(ps) == 0 {
				t.Skip("no parameters")
			}
			x := tc.input(rng)
			y := l.Forward(x, tc.train)
			r := randTensor(rng, y.Shape...)
			ZeroGrads(ps)
			l.Backward(r)
			once := make([][]float32, len(ps))
			for j, p := range ps {
				once[j] = append([]float32(nil), p.Grad.Data...)
			}
			l.Backward(r)
			for j, p := range ps {
				for k, g := range p.Grad.Data {
					if want := 2 * once[j][k]; math.Abs(float64(g-want)) > 1e-6*(1+math.Abs(float64(want))) {
						t.Fatalf("%s[%d] after two backward passes = %v, want %v", p.Name, k, g, want)
					}
				}
			}
		})
	}
}

// TestTiedGradIsSum checks directly that the shared weight of a tied pair
// collects the encoder's and the decoder's contributions: its gradient
// equals the sum of the gradients of two untied copies.
func TestTiedGradIsSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	x := randTensor(rng, 2, 6, 6, 3)

	tied := tiedPair(rng).(*Sequential)
	enc, dec := tied.Layers[0].(*Conv2D), tied.Layers[1].(*ConvTranspose2D)
	if got := len(Unique(tied.Params())); got != 3 {
		t.Fatalf("tied pair has %d unique params, want 3 (shared weight, two biases)", got)
	}

	// An untied copy: same values, separate weight Params.
	enc2 := &Conv2D{InC: enc.InC, OutC: enc.OutC, K: enc.K, Stride: enc.Stride, Pad: enc.Pad,
		Weight: &Param{Name: "w1", Value: enc.Weight.Value.Clone(), Grad: NewTensor(enc.Weight.Value.Shape...)},
		Bias:   enc.Bias}
	dec2 := &ConvTranspose2D{InC: dec.InC, OutC: dec.OutC, K: dec.K, Stride: dec.Stride, Pad: dec.Pad, OutPad: dec.OutPad,
		Weight: &Param{Name: "w2", Value: enc.Weight.Value.Clone(), Grad: NewTensor(enc.Weight.Value.Shape...)},
		Bias:   dec.Bias}
	untied := NewSequential(enc2, dec2)

	y := tied.Forward(x, true)
	r := randTensor(rng, y.Shape...)
	ZeroGrads(tied.Params())
	tied.Backward(r)
	y2 := untied.Forward(x, true)
	for i := range y.Data {
		if y.Data[i] != y2.Data[i] {
			t.Fatalf("tied and untied outputs differ at %d", i)
		}
	}
	ZeroGrads(untied.Params())
	untied.Backward(r)
	for i, g := range enc.Weight.Grad.Data {
		want := enc2.Weight.Grad.Data[i] + dec2.Weight.Grad.Data[i]
		if math.Abs(float64(g-want)) > 1e-5*(1+math.Abs(float64(want))) {
			t.Fatalf("shared grad[%d] = %v, want %v + %v", i, g, enc2.Weight.Grad.Data[i], dec2.Weight.Grad.Data[i])
		}
	}
}

func TestConcatGradients(t *testing.T) {
	for i, shapes := range [][][]int{
		{{3, 2}, {3, 4}},
		{{2, 1}, {2, 3}, {2, 2}},
		{{2, 3, 2, 2}, {2, 3, 2, 1}},
		{{1, 2, 2, 3}, {1, 2, 2, 2}, {1, 2, 2, 1}},
	} {
		t.Run(fmt.Sprint(shapes), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 8))
			xs := make([]*Tensor, len(shapes))
			for j, s := range shapes {
				xs[j] = randTensor(rng, s...)
			}
			var l Concat
			y := l.Forward(xs...)
			r := randTensor(rng, y.Shape...)
			dxs := l.Backward(r)
			if len(dxs) != len(xs) {
				t.Fatalf("Backward returned %d gradients for %d inputs", len(dxs), len(xs))
			}
			eval := func() float64 { return dot32(l.Forward(xs...).Data, r.Data) }
			for j, x := range xs {
				if fmt.Sprint(dxs[j].Shape) != fmt.Sprint(x.Shape) {
					t.Fatalf("gradient %d has shape %v, want %v", j, dxs[j].Shape, x.Shape)
				}
				fdCheck(t, fmt.Sprintf("∂L/∂x%d", j), x.Data, append([]float32(nil), dxs[j].Data...), defaultH, defaultTol, eval)
			}
		})
	}
}

func TestSoftmaxCrossEntropyGradient(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	logits := randTensor(rng, 5, 4)
	for i := range logits.Data {
		logits.Data[i] *= 3
	}
	labels := []int{0, 3, 1, 1, 2}
	var l SoftmaxCrossEntropy
	l.Forward(logits, labels)
	dx := append([]float32(nil), l.Backward().Data...)
	fdCheck(t, "∂loss/∂logits", logits.Data, dx, 1e-2, fdTol{atol: 1e-4, rtol: 1e-2}, func() float64 {
		loss, _ := l.Forward(logits, labels)
		return loss
	})
}

func TestSoftmaxCrossEntropyValues(t *testing.T) {
	for _, tc := range []struct {
		name         string
		logits       []float32
		k            int
		labels       []int
		loss, acc    float64
		wantGradRow0 []float64
	}{
		{
			// Row 0: log(e¹+e²+e³) − 3 = log(1 + e⁻¹ + e⁻²); row 1: log 3,
			// and its tie goes to the first class, not the label.
			name:   "hand",
			logits: []float32{1, 2, 3, 1, 1, 1}, k: 3, labels: []int{2, 1},
			loss: (math.Log(1+math.Exp(-1)+math.Exp(-2)) + math.Log(3)) / 2,
			acc:  0.5,
			wantGradRow0: func() []float64 {
				z := math.Exp(1) + math.Exp(2) + math.Exp(3)
				return []float64{math.Exp(1) / z / 2, math.Exp(2) / z / 2, (math.Exp(3)/z - 1) / 2}
			}(),
		},
		{
			// Large logits must not overflow.
			name:   "large",
			logits: []float32{1000, 0, -1000, 1000}, k: 2, labels: []int{1, 0},
			loss:         (1000 + 2000) / 2.0,
			acc:          0,
			wantGradRow0: []float64{0.5, -0.5},
		},
		{
			name:   "uniform",
			logits: []float32{0, 0, 0, 0}, k: 4, labels: []int{3},
			loss: math.Log(4), acc: 0,
			wantGradRow0: []float64{0.25, 0.25, 0.25, -0.75},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l SoftmaxCrossEntropy
			loss, acc := l.Forward(FromData(tc.logits, len(tc.logits)/tc.k, tc.k), tc.labels)
			if math.Abs(loss-tc.loss) > 1e-6*(1+tc.loss) {
				t.Errorf("loss = %.9g, want %.9g", loss, tc.loss)
			}
			if acc != tc.acc {
				t.Errorf("accuracy = %v, want %v", acc, tc.acc)
			}
			g := l.Backward()
			for j, want := range tc.wantGradRow0 {
				if math.Abs(float64(g.Data[j])-want) > 1e-6 {
					t.Errorf("grad[0][%d] = %v, want %v", j, g.Data[j], want)
				}
			}
		})
	}
}

func TestMSE(t *testing.T) {
	var l MSE
	pred := FromData([]float32{1, 2, 3}, 3)
	target := FromData([]float32{0, 2, 5}, 3)
	if got, want := l.Forward(pred, target), 5.0/3; math.Abs(got-want) > 1e-7 {
		t.Errorf("MSE = %v, want %v", got, want)
	}
	want := []float32{2.0 / 3, 0, -4.0 / 3}
	for pass := range 2 {
		g := l.Backward()
		for i := range want {
			if math.Abs(float64(g.Data[i]-want[i])) > 1e-6 {
				t.Errorf("pass %d: grad = %v, want %v", pass, g.Data, want)
				break
			}
		}
	}

	rng := rand.New(rand.NewPCG(13, 14))
	p, q := randTensor(rng, 2, 3, 4), randTensor(rng, 2, 3, 4)
	l.Forward(p, q)
	dx := append([]float32(nil), l.Backward().Data...)
	fdCheck(t, "∂mse/∂pred", p.Data, dx, 1e-2, fdTol{atol: 1e-4, rtol: 1e-2}, func() float64 { return l.Forward(p, q) })
}
