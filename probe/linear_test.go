package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// blobs returns n samples of dimension d in k classes: class c is a
// Gaussian of standard deviation spread around a random centre of
// standard deviation 1. Labels cycle through the classes.
func blobs(seed uint64, n, d, k int, spread float64) *Features {
	return blobsFrom(seed, seed, n, d, k, spread)
}

// blobsFrom is blobs with the centres drawn from centreSeed and the noise
// from noiseSeed: samples of the same classes with other noise.
func blobsFrom(centreSeed, noiseSeed uint64, n, d, k int, spread float64) *Features {
	rng := rand.New(rand.NewPCG(centreSeed, 1))
	centres := make([]float64, k*d)
	for i := range centres {
		centres[i] = rng.NormFloat64()
	}
	rng = rand.New(rand.NewPCG(noiseSeed, 2))
	f := &Features{N: n, D: d, X: make([]float32, n*d), Labels: make([]int, n), Classes: k}
	for i := range n {
		c := i % k
		f.Labels[i] = c
		for j := range d {
			f.X[i*d+j] = float32(centres[c*d+j] + spread*rng.NormFloat64())
		}
	}
	return f
}

// referenceLoss is the logistic objective computed naively in float64.
func referenceLoss(x []float32, y []int, n, d, k int, l2 float64, theta []float64) float64 {
	w, b := theta[:d*k], theta[d*k:]
	var loss float64
	for i := range n {
		z := make([]float64, k)
		for c := range k {
			z[c] = b[c]
			for j := range d {
				z[c] += float64(x[i*d+j]) * w[j*k+c]
			}
		}
		mx := math.Inf(-1)
		for _, v := range z {
			mx = max(mx, v)
		}
		var s float64
		for _, v := range z {
			s += math.Exp(v - mx)
		}
		loss += math.Log(s) + mx - z[y[i]]
	}
	var reg float64
	for _, v := range w {
		reg += v * v
	}
	return loss/float64(n) + 0.5*l2*reg
}

// TestLogisticGradient checks the loss against a float64 reference, and
// its gradient against central finite differences of that reference and of
// the loss itself, over several chunks of rows.
func TestLogisticGradient(t *testing.T) {
	for _, tc := range []struct {
		n, d, k int
		l2      float64
	}{
		{1, 1, 2, 0},
		{37, 5, 4, 0.3},
		{3*logisticRows + 17, 7, 3, 1e-3},
	} {
		t.Run(fmt.Sprintf("n%d_d%d_k%d", tc.n, tc.d, tc.k), func(t *testing.T) {
			f := blobs(uint64(tc.n), tc.n, tc.d, tc.k, 1)
			obj := newLogistic(f.X, f.Labels, tc.n, tc.d, tc.k, tc.l2)
			rng := rand.New(rand.NewPCG(7, 7))
			theta := make([]float64, tc.d*tc.k+tc.k)
			for i := range theta {
				theta[i] = 0.5 * rng.NormFloat64()
			}
			grad := make([]float64, len(theta))
			got := obj.eval(theta, grad)
			want := referenceLoss(f.X, f.Labels, tc.n, tc.d, tc.k, tc.l2, theta)
			if math.Abs(got-want) > 1e-5*max(1, math.Abs(want)) {
				t.Errorf("loss %.9g, reference %.9g", got, want)
			}
			probe := slices.Clone(theta)
			scratch := make([]float64, len(theta))
			for i := range theta {
				// The reference in float64 allows a small step.
				const h = 1e-6
				probe[i] = theta[i] + h
				fp := referenceLoss(f.X, f.Labels, tc.n, tc.d, tc.k, tc.l2, probe)
				probe[i] = theta[i] - h
				fm := referenceLoss(f.X, f.Labels, tc.n, tc.d, tc.k, tc.l2, probe)
				fd := (fp - fm) / (2 * h)
				if math.Abs(grad[i]-fd) > 1e-5+1e-4*math.Abs(fd) {
					t.Errorf("θ[%d]: gradient %.9g, finite difference of the reference %.9g", i, grad[i], fd)
				}
				// The loss itself rounds scores to float32: a larger step.
				const h32 = 1e-2
				probe[i] = theta[i] + h32
				fp = obj.eval(probe, scratch)
				probe[i] = theta[i] - h32
				fm = obj.eval(probe, scratch)
				probe[i] = theta[i]
				fd = (fp - fm) / (2 * h32)
				if math.Abs(grad[i]-fd) > 2e-4+1e-3*math.Abs(fd) {
					t.Errorf("θ[%d]: gradient %.9g, finite difference of the loss %.9g", i, grad[i], fd)
				}
			}
		})
	}
}

// TestFitLinearSeparable fits well-separated classes: every training sample
// is classified right, and fresh samples from the same classes too.
func TestFitLinearSeparable(t *testing.T) {
	train := blobs(1, 300, 6, 4, 0.05)
	m, err := FitLinear(context.Background(), train, LinearConfig{L2: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Converged || m.Status != "GradientThreshold" {
		t.Errorf("not converged: %d iterations, status %s", m.Iterations, m.Status)
	}
	for name, f := range map[string]*Features{"train": train, "fresh": blobsFrom(1, 2, 300, 6, 4, 0.05)} {
		pred, err := m.Predict(f)
		if err != nil {
			t.Fatal(err)
		}
		if acc := top1(pred, f.Labels); acc != 1 {
			t.Errorf("%s accuracy %v, want 1", name, acc)
		}
	}
	// A stronger penalty gives smaller weights and a higher loss.
	m2, err := FitLinear(context.Background(), train, LinearConfig{L2: 1})
	if err != nil {
		t.Fatal(err)
	}
	if norm(m2.W) >= norm(m.W) || m2.Loss <= m.Loss {
		t.Errorf("λ 1: ‖W‖ %v, loss %v; λ 1e-3: ‖W‖ %v, loss %v", norm(m2.W), m2.Loss, norm(m.W), m.Loss)
	}
}

func norm(w []float64) float64 {
	var s float64
	for _, v := range w {
		s += v * v
	}
	return math.Sqrt(s)
}

// TestFitLinearOptimality checks the first-order condition at the fit: the
// gradient of the objective is below the tolerance.
func TestFitLinearOptimality(t *testing.T) {
	f := blobs(3, 500, 8, 5, 1.5) // overlapping classes
	const tol = 1e-5
	m, err := FitLinear(context.Background(), f, LinearConfig{L2: 1e-2, Tol: tol, MaxIter: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Converged {
		t.Fatalf("not converged: %s after %d iterations, gradient %g", m.Status, m.Iterations, m.GradNorm)
	}
	st := standardiser{mean: m.Mean, scale: m.Scale}
	xs := st.apply(f.X, f.N, f.D)
	obj := newLogistic(xs, f.Labels, f.N, f.D, f.Classes, m.L2)
	theta := append(slices.Clone(m.W), m.B...)
	grad := make([]float64, len(theta))
	loss := obj.eval(theta, grad)
	for i, g := range grad {
		if math.Abs(g) > tol {
			t.Errorf("gradient[%d] = %g at the fit", i, g)
		}
	}
	if math.Abs(loss-m.Loss) > 1e-12 {
		t.Errorf("loss %v at the fit, model says %v", loss, m.Loss)
	}

	// A tolerance below what float32 scores can resolve on 500 samples
	// ends in a line search that can make no progress: not an error, but
	// not converged, and the gradient is still small.
	tight, err := FitLinear(context.Background(), f, LinearConfig{L2: 1e-2, Tol: 1e-9, MaxIter: 2000})
	if err != nil {
		t.Fatal(err)
	}
	if tight.Converged || tight.GradNorm > tol || tight.Loss > m.Loss+1e-9 {
		t.Errorf("tolerance 1e-9: converged %v (%s), gradient %g, loss %v (tolerance %g: %v)",
			tight.Converged, tight.Status, tight.GradNorm, tight.Loss, tol, m.Loss)
	}
	// Standardisation: mean 0 and std 1 per feature.
	for j := range f.D {
		var s, s2 float64
		for i := range f.N {
			v := float64(xs[i*f.D+j])
			s += v
			s2 += v * v
		}
		if mean, v := s/float64(f.N), s2/float64(f.N); math.Abs(mean) > 1e-6 || math.Abs(v-1) > 1e-5 {
			t.Errorf("feature %d: standardised mean %g, variance %g", j, mean, v)
		}
	}
}

// TestStandardiserConstant checks that a constant feature is centred but
// not scaled.
func TestStandardiserConstant(t *testing.T) {
	x := []float32{3, 1, 3, 2, 3, 3} // feature 0 constant 3, feature 1 1, 2, 3
	st := fitStandardiser(x, 3, 2)
	if st.mean[0] != 3 || st.scale[0] != 1 {
		t.Errorf("constant feature: mean %v, scale %v; want 3, 1", st.mean[0], st.scale[0])
	}
	if st.mean[1] != 2 || math.Abs(st.scale[1]-1/math.Sqrt(2.0/3)) > 1e-12 {
		t.Errorf("feature 1: mean %v, scale %v; want 2, %v", st.mean[1], st.scale[1], 1/math.Sqrt(2.0/3))
	}
	got := st.apply(x, 3, 2)
	if got[0] != 0 || got[2] != 0 || got[4] != 0 {
		t.Errorf("constant feature standardised to %v, %v, %v; want 0", got[0], got[2], got[4])
	}
}

// TestFitLinearDeterministic checks that a fit gives the same bits on one
// core as on several.
func TestFitLinearDeterministic(t *testing.T) {
	f := blobs(4, 3*logisticRows+5, 12, 3, 1)
	fit := func(procs int) *Linear {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		m, err := FitLinear(context.Background(), f, LinearConfig{L2: 1e-3})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := fit(1), fit(4)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("GOMAXPROCS 1 and 4 give different fits: loss %v vs %v, %d vs %d iterations", a.Loss, b.Loss, a.Iterations, b.Iterations)
	}
}

func TestFitLinearErrors(t *testing.T) {
	good := blobs(5, 40, 3, 2, 1)
	nan := blobs(5, 40, 3, 2, 1)
	nan.X[7] = float32(math.NaN())
	for _, tc := range []struct {
		name string
		f    *Features
		cfg  LinearConfig
		want string
		is   error
	}{
		{"nan", nan, LinearConfig{}, "sample 2, feature 1", ErrNonFinite},
		{"negative l2", good, LinearConfig{L2: -1}, "L2 -1", nil},
		{"bad init", good, LinearConfig{Init: &Linear{D: 2, Classes: 2}}, "Init has D 2", nil},
		{"short labels", &Features{N: 2, D: 1, X: []float32{1, 2}, Labels: []int{0}, Classes: 2}, LinearConfig{}, "1 labels for 2 samples", nil},
		{"label range", &Features{N: 2, D: 1, X: []float32{1, 2}, Labels: []int{0, 2}, Classes: 2}, LinearConfig{}, "sample 1: label 2 outside [0, 2)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FitLinear(context.Background(), tc.f, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not match %v", err, tc.is)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := FitLinear(ctx, good, LinearConfig{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: error %v", err)
	}
}

// TestFitLinearWarmStart checks that a warm start from the optimum stops
// at once at the same solution.
func TestFitLinearWarmStart(t *testing.T) {
	f := blobs(6, 400, 5, 3, 1)
	cold, err := FitLinear(context.Background(), f, LinearConfig{L2: 1e-2})
	if err != nil {
		t.Fatal(err)
	}
	warm, err := FitLinear(context.Background(), f, LinearConfig{L2: 1e-2, Init: cold})
	if err != nil {
		t.Fatal(err)
	}
	if warm.Iterations > 1 || math.Abs(warm.Loss-cold.Loss) > 1e-9 {
		t.Errorf("warm start from the optimum: %d iterations, loss %v (cold %v)", warm.Iterations, warm.Loss, cold.Loss)
	}
}
