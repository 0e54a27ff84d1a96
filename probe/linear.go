package probe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/optimize"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// StdFloor is the smallest standard deviation a feature is divided by:
// a feature whose standard deviation over the training samples is below it
// (a constant feature, such as an image border that is always black) is
// only centred, not scaled (its scale is 1).
const StdFloor = 1e-8

// Defaults of LinearConfig.
const (
	DefaultMaxIter = 500
	DefaultTol     = 1e-4
)

// LinearConfig configures FitLinear.
type LinearConfig struct {
	// L2 is λ ≥ 0, the strength of the penalty (λ/2)·‖W‖² added to the
	// mean cross-entropy; the bias is not penalised. This is
	// scikit-learn's LogisticRegression(C = 1/(λ·N)) for N training
	// samples.
	L2 float64
	// MaxIter caps the L-BFGS iterations; 0 means DefaultMaxIter.
	MaxIter int
	// Tol stops the fit once every component of the gradient of the
	// objective (mean cross-entropy plus penalty, per sample) is at most
	// Tol in absolute value; 0 means DefaultTol.
	Tol float64
	// Init, when not nil, is the starting point (a warm start): its
	// weights and bias, which must have the training features' D and
	// Classes. Its standardisation is not used. Nil starts from zero.
	Init *Linear
}

// Linear is a fitted linear probe: multinomial logistic regression on
// standardised features. Sample x (D features) scores class c as
//
//	z_c = Σ_j (x_j − Mean_j)·Scale_j·W[j·Classes+c] + B_c
//
// and is predicted as the class of the highest score (the lowest class
// index among equal scores).
type Linear struct {
	D, Classes int
	Mean       []float64 // [D]: the training features' means
	Scale      []float64 // [D]: 1/std of the training features (population std), 1 where std < StdFloor
	W          []float64 // [D, Classes], row-major
	B          []float64 // [Classes]

	L2          float64 // λ it was fitted with
	Iterations  int     // L-BFGS iterations (major iterations)
	Evaluations int     // evaluations of the loss and its gradient
	Converged   bool    // the gradient fell below the tolerance
	Status      string  // how L-BFGS stopped: "GradientThreshold", "IterationLimit", …
	Loss        float64 // final objective: mean cross-entropy + (λ/2)·‖W‖²
	GradNorm    float64 // final max |gradient component| of the objective
}

// standardiser holds per-feature means and scales.
type standardiser struct {
	mean, scale []float64
}

// fitStandardiser computes the mean and 1/std of every feature of x
// ([n, d]) in float64, in a fixed order of row chunks.
func fitStandardiser(x []float32, n, d int) standardiser {
	const rows = 1024
	chunks := kernel.Chunks(n, rows)
	part := make([]float64, chunks*d)
	kernel.For(n, rows, func(c, lo, hi int) {
		s := part[c*d : (c+1)*d]
		for i := lo; i < hi; i++ {
			for j, v := range x[i*d : (i+1)*d] {
				s[j] += float64(v)
			}
		}
	})
	mean := make([]float64, d)
	for c := range chunks {
		for j, v := range part[c*d : (c+1)*d] {
			mean[j] += v
		}
	}
	for j := range mean {
		mean[j] /= float64(n)
	}
	clear(part)
	kernel.For(n, rows, func(c, lo, hi int) {
		s := part[c*d : (c+1)*d]
		for i := lo; i < hi; i++ {
			for j, v := range x[i*d : (i+1)*d] {
				e := float64(v) - mean[j]
				s[j] += e * e
			}
		}
	})
	scale := make([]float64, d)
	for c := range chunks {
		for j, v := range part[c*d : (c+1)*d] {
			scale[j] += v
		}
	}
	for j, v := range scale {
		std := math.Sqrt(v / float64(n))
		if std < StdFloor {
			scale[j] = 1
		} else {
			scale[j] = 1 / std
		}
	}
	return standardiser{mean: mean, scale: scale}
}

// apply returns (x − mean)·scale for the n rows of x ([n, d]), rounded to
// float32.
func (s standardiser) apply(x []float32, n, d int) []float32 {
	out := make([]float32, n*d)
	kernel.For(n, 1024, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			src, dst := x[i*d:(i+1)*d], out[i*d:(i+1)*d]
			for j, v := range src {
				dst[j] = float32((float64(v) - s.mean[j]) * s.scale[j])
			}
		}
	})
	return out
}

// FitLinear fits a linear probe to train: it standardises the features with
// their mean and std over train, then minimises the mean cross-entropy of
// the softmax plus (λ/2)·‖W‖² by L-BFGS (gonum/optimize, with a
// Moré–Thuente line search and a history of up to 200 steps) from zero or
// cfg.Init.
//
// The loss and its gradient are computed with two float32 GEMMs per chunk
// of rows (scores X·W and gradient Xᵀ·(P − Y)); the softmax, the loss and
// the sums over chunks are computed in float64, in a fixed order, so the
// fit is the same bits whatever the number of cores.
//
// Not reaching the tolerance within MaxIter iterations, or a line search
// that can make no more progress, is not an error: the result says so in
// Converged and Status. Errors: a bad configuration or bad features (see
// Features.Check), non-finite features (ErrNonFinite), a non-finite loss,
// and ctx's error when ctx is done.
func FitLinear(ctx context.Context, train *Features, cfg LinearConfig) (*Linear, error) {
	if err := train.Check(); err != nil {
		return nil, fmt.Errorf("probe: FitLinear: %w", err)
	}
	if err := train.CheckFinite(); err != nil {
		return nil, fmt.Errorf("probe: FitLinear: %w", err)
	}
	if err := cfg.check(train); err != nil {
		return nil, fmt.Errorf("probe: FitLinear: %w", err)
	}
	st := fitStandardiser(train.X, train.N, train.D)
	xs := st.apply(train.X, train.N, train.D)
	m, err := fitStandardised(ctx, xs, train.Labels, train.N, train.D, train.Classes, cfg)
	if err != nil {
		return nil, fmt.Errorf("probe: FitLinear: %w", err)
	}
	m.Mean, m.Scale = st.mean, st.scale
	return m, nil
}

func (cfg LinearConfig) check(train *Features) error {
	var errs []error
	if !(cfg.L2 >= 0) || math.IsInf(cfg.L2, 0) {
		errs = append(errs, fmt.Errorf("L2 %v: want a finite λ ≥ 0", cfg.L2))
	}
	if cfg.MaxIter < 0 {
		errs = append(errs, fmt.Errorf("MaxIter %d: want ≥ 0 (0 for %d)", cfg.MaxIter, DefaultMaxIter))
	}
	if !(cfg.Tol >= 0) || math.IsInf(cfg.Tol, 0) {
		errs = append(errs, fmt.Errorf("Tol %v: want a finite value ≥ 0 (0 for %g)", cfg.Tol, DefaultTol))
	}
	if in := cfg.Init; in != nil {
		if in.D != train.D || in.Classes != train.Classes || len(in.W) != in.D*in.Classes || len(in.B) != in.Classes {
			errs = append(errs, fmt.Errorf("Init has D %d, %d classes, %d weights and %d biases: want D %d and %d classes",
				in.D, in.Classes, len(in.W), len(in.B), train.D, train.Classes))
		} else if slices.ContainsFunc(in.W, isNaNInf) || slices.ContainsFunc(in.B, isNaNInf) {
			errs = append(errs, errors.New("Init has non-finite weights"))
		}
	}
	return errors.Join(errs...)
}

func isNaNInf(v float64) bool { return math.IsNaN(v) || math.IsInf(v, 0) }

// fitStandardised fits the weights and bias of a linear probe to the
// standardised features xs ([n, d]) with labels y in [0, k). Its errors
// carry no package prefix.
func fitStandardised(ctx context.Context, xs []float32, y []int, n, d, k int, cfg LinearConfig) (*Linear, error) {
	maxIter := cfg.MaxIter
	if maxIter == 0 {
		maxIter = DefaultMaxIter
	}
	tol := cfg.Tol
	if tol == 0 {
		tol = DefaultTol
	}
	obj := newLogistic(xs, y, n, d, k, cfg.L2)
	theta0 := make([]float64, d*k+k)
	if cfg.Init != nil {
		copy(theta0, cfg.Init.W)
		copy(theta0[d*k:], cfg.Init.B)
	}
	var ctxErr error
	prob := optimize.Problem{
		Func: func(theta []float64) float64 { return obj.value(theta) },
		Grad: func(grad, theta []float64) { obj.gradient(grad, theta) },
		Status: func() (optimize.Status, error) {
			if err := ctx.Err(); err != nil {
				ctxErr = err
				return optimize.Failure, err
			}
			return optimize.NotTerminated, nil
		},
	}
	settings := &optimize.Settings{
		GradientThreshold: tol,
		MajorIterations:   maxIter,
		// Stop when the objective has not improved by a relative 1e-12
		// in 20 iterations: the float32 scores make smaller changes noise.
		Converger: &optimize.FunctionConverge{Relative: 1e-12, Iterations: 20},
	}
	method := &optimize.LBFGS{Linesearcher: &optimize.MoreThuente{}, GradStopThreshold: math.NaN(), Store: historySize(len(theta0))}
	res, err := optimize.Minimize(prob, theta0, settings, method)
	if ctxErr != nil {
		return nil, ctxErr
	}
	if res == nil {
		return nil, fmt.Errorf("λ %g: L-BFGS: %w", cfg.L2, err)
	}
	loss := res.F
	if isNaNInf(loss) || slices.ContainsFunc(res.X, isNaNInf) {
		return nil, fmt.Errorf("λ %g: the loss is not finite (%v) after %d iterations", cfg.L2, loss, res.MajorIterations)
	}
	grad := res.Gradient
	if len(grad) != len(res.X) {
		grad = make([]float64, len(res.X))
		obj.gradient(grad, res.X)
	}
	gradNorm := 0.0
	for _, g := range grad {
		gradNorm = max(gradNorm, math.Abs(g))
	}
	status := res.Status.String()
	if err != nil {
		// A line search that cannot improve further near the optimum:
		// keep the best point found, and say why it stopped.
		status = fmt.Sprintf("%s: %v", status, err)
	}
	return &Linear{
		D: d, Classes: k,
		W:           slices.Clone(res.X[:d*k]),
		B:           slices.Clone(res.X[d*k:]),
		L2:          cfg.L2,
		Iterations:  res.MajorIterations,
		Evaluations: obj.evals,
		Converged:   res.Status == optimize.GradientThreshold,
		Status:      status,
		Loss:        loss,
		GradNorm:    gradNorm,
	}, nil
}

// historySize returns how many steps L-BFGS keeps for a problem of params
// parameters: as many as fit in 64 MiB (two float64 vectors a step), at
// least 10 and at most 200. The loss costs 4·N·params flops against the
// history's 4·steps·params, so a long history is cheap, and it cuts the
// iterations on ill-conditioned features: on raw Fashion-MNIST pixels at
// λ = 1e-2, 137 iterations instead of 304 with gonum's default of 15.
func historySize(params int) int {
	const budget = 64 << 20
	return min(200, max(10, budget/(16*max(params, 1))))
}

// logisticRows is the number of samples per chunk of the loss: the rows of
// X a chunk reads (D float32 each) stay in L2 between its two GEMMs.
const logisticRows = 256

// logistic is the multinomial logistic loss
//
//	f(W, b) = (1/n)·Σ_i [log Σ_c exp(z_ic) − z_i,y_i] + (λ/2)·‖W‖²,  z = X·W + b,
//
// with its gradient, over standardised features. θ = [W (d×k, row-major), b (k)].
type logistic struct {
	x       []float32 // [n, d]
	y       []int     // [n]
	n, d, k int
	l2      float64

	w32   []float32 // [d, k]: W rounded for the GEMMs
	z     []float32 // [n, k]: scores, then P − Y
	partW []float32 // [chunks, d, k]: Xᵀ·(P − Y) of each chunk
	partB []float64 // [chunks, k]: column sums of P − Y of each chunk
	partL []float64 // [chunks]: cross-entropy sum of each chunk

	// The last point evaluated, and its value and gradient: L-BFGS asks
	// for the value and the gradient at the same point in two calls.
	lastX    []float64
	lastF    float64
	lastGrad []float64
	evals    int
}

func newLogistic(x []float32, y []int, n, d, k int, l2 float64) *logistic {
	chunks := kernel.Chunks(n, logisticRows)
	return &logistic{
		x: x, y: y, n: n, d: d, k: k, l2: l2,
		w32:      make([]float32, d*k),
		z:        make([]float32, n*k),
		partW:    make([]float32, chunks*d*k),
		partB:    make([]float64, chunks*k),
		partL:    make([]float64, chunks),
		lastGrad: make([]float64, d*k+k),
	}
}

func (l *logistic) value(theta []float64) float64 {
	l.ensure(theta)
	return l.lastF
}

func (l *logistic) gradient(grad, theta []float64) {
	l.ensure(theta)
	copy(grad, l.lastGrad)
}

// ensure evaluates the loss and gradient at theta unless it was the last
// point evaluated.
func (l *logistic) ensure(theta []float64) {
	if l.lastX != nil && slices.Equal(l.lastX, theta) {
		return
	}
	l.lastF = l.eval(theta, l.lastGrad)
	l.lastX = append(l.lastX[:0], theta...)
}

// eval returns the loss at theta and stores its gradient in grad.
func (l *logistic) eval(theta, grad []float64) float64 {
	l.evals++
	n, d, k := l.n, l.d, l.k
	w, b := theta[:d*k], theta[d*k:]
	for i, v := range w {
		l.w32[i] = float32(v)
	}
	kernel.For(n, logisticRows, func(c, lo, hi int) {
		rows := hi - lo
		x := l.x[lo*d : hi*d]
		z := l.z[lo*k : hi*k]
		kernel.Gemm(false, false, rows, k, d, 1, x, d, l.w32, k, 0, z, k)
		gb := l.partB[c*k : (c+1)*k]
		clear(gb)
		e := make([]float64, k)
		var loss float64
		for i := range rows {
			zi := z[i*k : (i+1)*k]
			mx := math.Inf(-1)
			for j, v := range zi {
				e[j] = float64(v) + b[j]
				mx = max(mx, e[j])
			}
			yi := l.y[lo+i]
			loss += mx - e[yi]
			var s float64
			for j, v := range e {
				e[j] = math.Exp(v - mx)
				s += e[j]
			}
			loss += math.Log(s)
			inv := 1 / s
			for j, v := range e {
				r := v * inv
				if j == yi {
					r--
				}
				zi[j] = float32(r)
				gb[j] += r
			}
		}
		l.partL[c] = loss
		kernel.Gemm(true, false, d, k, rows, 1, x, d, z, k, 0, l.partW[c*d*k:(c+1)*d*k], k)
	})
	chunks := len(l.partL)
	inv := 1 / float64(n)
	var loss float64
	for _, v := range l.partL {
		loss += v
	}
	loss *= inv
	var reg float64
	for _, v := range w {
		reg += v * v
	}
	loss += 0.5 * l.l2 * reg
	dk := d * k
	kernel.For(dk, 1024, func(_, lo, hi int) {
		g := grad[lo:hi]
		clear(g)
		for c := range chunks {
			for j, v := range l.partW[c*dk+lo : c*dk+hi] {
				g[j] += float64(v)
			}
		}
		for j := range g {
			g[j] = g[j]*inv + l.l2*w[lo+j]
		}
	})
	gb := grad[dk:]
	clear(gb)
	for c := range chunks {
		for j, v := range l.partB[c*k : (c+1)*k] {
			gb[j] += v
		}
	}
	for j := range gb {
		gb[j] *= inv
	}
	return loss
}

// Predict returns the predicted class of every sample of f. It returns an
// error if f's D or Classes differ from the model's, or f is malformed.
func (m *Linear) Predict(f *Features) ([]int, error) {
	if err := f.Check(); err != nil {
		return nil, fmt.Errorf("probe: Predict: %w", err)
	}
	if f.D != m.D || f.Classes != m.Classes {
		return nil, fmt.Errorf("probe: Predict: features have D %d and %d classes, the model D %d and %d classes", f.D, f.Classes, m.D, m.Classes)
	}
	if len(m.Mean) != m.D || len(m.Scale) != m.D || len(m.W) != m.D*m.Classes || len(m.B) != m.Classes {
		return nil, fmt.Errorf("probe: Predict: model of D %d and %d classes has %d means, %d scales, %d weights and %d biases",
			m.D, m.Classes, len(m.Mean), len(m.Scale), len(m.W), len(m.B))
	}
	st := standardiser{mean: m.Mean, scale: m.Scale}
	return m.predictStandardised(st.apply(f.X, f.N, f.D), f.N), nil
}

// predictStandardised returns the predicted classes of the n standardised
// samples xs ([n, D]).
func (m *Linear) predictStandardised(xs []float32, n int) []int {
	d, k := m.D, m.Classes
	w32 := make([]float32, d*k)
	for i, v := range m.W {
		w32[i] = float32(v)
	}
	z := make([]float32, n*k)
	pred := make([]int, n)
	kernel.For(n, logisticRows, func(_, lo, hi int) {
		kernel.Gemm(false, false, hi-lo, k, d, 1, xs[lo*d:hi*d], d, w32, k, 0, z[lo*k:hi*k], k)
		for i := lo; i < hi; i++ {
			best, arg := math.Inf(-1), 0
			for j, v := range z[i*k : (i+1)*k] {
				if s := float64(v) + m.B[j]; s > best {
					best, arg = s, j
				}
			}
			pred[i] = arg
		}
	})
	return pred
}
