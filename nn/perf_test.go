package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// This file tests the performance features of the package against plain
// definitions: batch norm with the fused ReLU and with means far from zero,
// the convolution's kept im2col matrix against its chunked unrolling, and
// the scratch pool that Sequential.Backward gives consumed gradients back
// to.

// bnRef is batch normalisation from its definition, in float64.
type bnRef struct {
	z, y              []float64 // before and after the optional ReLU
	dx, dgamma, dbeta []float64 // set when dy is given
}

// refBatchNorm normalises x, a matrix of c columns (channels), with γ and β
// of bn, using the batch's statistics (biased variance) when train is set
// and bn's running ones otherwise, followed by max(·, 0) if bn.ReLU; with
// dy not nil it also returns the gradients.
func refBatchNorm(bn *BatchNorm, x, dy []float32, train bool) bnRef {
	c := bn.C
	m := len(x) / c
	mean, istd := make([]float64, c), make([]float64, c)
	for ch := 0; ch < c; ch++ {
		if !train {
			mean[ch] = float64(bn.RunningMean.Value.Data[ch])
			istd[ch] = 1 / math.Sqrt(float64(bn.RunningVar.Value.Data[ch])+bn.Eps)
			continue
		}
		var s, ss float64
		for i := ch; i < len(x); i += c {
			s += float64(x[i])
		}
		mean[ch] = s / float64(m)
		for i := ch; i < len(x); i += c {
			d := float64(x[i]) - mean[ch]
			ss += d * d
		}
		istd[ch] = 1 / math.Sqrt(ss/float64(m)+bn.Eps)
	}
	r := bnRef{z: make([]float64, len(x)), y: make([]float64, len(x))}
	xhat := make([]float64, len(x))
	for i, v := range x {
		ch := i % c
		xhat[i] = (float64(v) - mean[ch]) * istd[ch]
		r.z[i] = float64(bn.Weight.Value.Data[ch])*xhat[i] + float64(bn.Bias.Value.Data[ch])
		r.y[i] = r.z[i]
		if bn.ReLU {
			r.y[i] = max(r.z[i], 0)
		}
	}
	if dy == nil {
		return r
	}
	g := make([]float64, len(x))
	r.dgamma, r.dbeta = make([]float64, c), make([]float64, c)
	for i, v := range dy {
		if !bn.ReLU || r.z[i] > 0 {
			g[i] = float64(v)
		}
		r.dbeta[i%c] += g[i]
		r.dgamma[i%c] += g[i] * xhat[i]
	}
	r.dx = make([]float64, len(x))
	for i := range x {
		ch := i % c
		a := float64(bn.Weight.Value.Data[ch]) * istd[ch]
		if train {
			r.dx[i] = a * (g[i] - r.dbeta[ch]/float64(m) - xhat[i]*r.dgamma[ch]/float64(m))
		} else {
			r.dx[i] = a * g[i]
		}
	}
	return r
}

// awayFromKink redraws elements of x (uniform in [−1, 1)) until no
// pre-activation γ·x̂ + β of bn (with the batch's statistics when train is
// set) lies within margin of the ReLU's kink at 0. Redrawing an element in
// training moves its channel's statistics, hence the loop.
func awayFromKink(t *testing.T, bn *BatchNorm, x *Tensor, train bool, margin float64, rng *rand.Rand) {
	t.Helper()
	for range 100 {
		near := 0
		for i, z := range refBatchNorm(bn, x.Data, nil, train).z {
			if math.Abs(z) < margin {
				x.Data[i] = float32(2*rng.Float64() - 1)
				near++
			}
		}
		if near == 0 {
			return
		}
	}
	t.Fatalf("could not keep the inputs %v from the ReLU kink", x)
}

// fusedCase is a batch norm shape: 2-D [N, H, W, C] or 1-D [N, C]. Widths
// that are multiples of 8 take the AVX2 row kernels where the CPU has them.
type fusedCase struct {
	name  string
	shape []int
}

func (fc fusedCase) build(relu bool) *BatchNorm {
	c := fc.shape[len(fc.shape)-1]
	bn := NewBatchNorm1D("bn", c)
	if len(fc.shape) == 4 {
		bn = NewBatchNorm2D("bn", c)
	}
	if relu {
		return bn.WithReLU()
	}
	return bn
}

var fusedCases = []fusedCase{
	{"2D_C3", []int{2, 3, 4, 3}},
	{"2D_C8", []int{2, 3, 4, 8}},
	{"2D_C16", []int{1, 3, 3, 16}},
	{"1D_C5", []int{6, 5}},
	{"1D_C8", []int{5, 8}},
}

// randomBN gives bn γ in [0.5, 1.5) and β in [−0.5, 0.5), so that the
// ReLU cuts a good part of every channel, and running statistics away
// from 0 and 1.
func randomBN(bn *BatchNorm, rng *rand.Rand) {
	for ch := 0; ch < bn.C; ch++ {
		bn.Weight.Value.Data[ch] = float32(0.5 + rng.Float64())
		bn.Bias.Value.Data[ch] = float32(rng.Float64() - 0.5)
		bn.RunningMean.Value.Data[ch] = float32(rng.Float64() - 0.5)
		bn.RunningVar.Value.Data[ch] = float32(0.3 + rng.Float64())
	}
}

// TestBatchNormReLUGradients checks the fused batch norm + ReLU against
// finite differences in both modes, with inputs kept further from the
// kink (0.1) than a step can move them (γ·istd·h, about 0.03).
func TestBatchNormReLUGradients(t *testing.T) {
	for i, fc := range fusedCases {
		for _, train := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s_train%v", fc.name, train), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(i), 71))
				bn := fc.build(true)
				randomBN(bn, rng)
				x := randTensor(rng, fc.shape...)
				awayFromKink(t, bn, x, train, 0.1, rng)
				cut := 0
				for _, v := range bn.Forward(x, train).Data {
					if v == 0 {
						cut++
					}
				}
				if cut == 0 || cut == x.Len() {
					t.Fatalf("the ReLU cuts %d of %d outputs: the check would not test it", cut, x.Len())
				}
				checkLayer(t, bn, x, train, checkOpts{})
			})
		}
	}
}

// TestBatchNormReLUFused checks that batch norm with the fused ReLU gives
// the outputs, input gradient, parameter gradients and running statistics
// of batch norm followed by a separate ReLU.
func TestBatchNormReLUFused(t *testing.T) {
	for i, fc := range fusedCases {
		for _, train := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s_train%v", fc.name, train), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(i), 72))
				fused, plain := fc.build(true), fc.build(false)
				randomBN(fused, rng)
				for k, p := range fused.Params() {
					copy(plain.Params()[k].Value.Data, p.Value.Data)
				}
				for k, p := range fused.Buffers() {
					copy(plain.Buffers()[k].Value.Data, p.Value.Data)
				}
				unfused := NewSequential(plain, NewReLU())
				for step := range 2 {
					x := randTensor(rng, fc.shape...)
					dy := randTensor(rng, fc.shape...)
					ZeroGrads(fused.Params())
					ZeroGrads(plain.Params())
					y1 := fused.Forward(x, train).Clone()
					dx1 := fused.Backward(dy).Clone()
					y2 := unfused.Forward(x, train).Clone()
					dx2 := unfused.Backward(dy).Clone()
					for _, c := range []struct {
						what string
						a, b []float32
					}{
						{"output", y1.Data, y2.Data},
						{"input gradient", dx1.Data, dx2.Data},
						{"γ gradient", fused.Weight.Grad.Data, plain.Weight.Grad.Data},
						{"β gradient", fused.Bias.Grad.Data, plain.Bias.Grad.Data},
						{"running mean", fused.RunningMean.Value.Data, plain.RunningMean.Value.Data},
						{"running variance", fused.RunningVar.Value.Data, plain.RunningVar.Value.Data},
					} {
						for k := range c.a {
							if d := math.Abs(float64(c.a[k] - c.b[k])); !(d <= 1e-5*(1+math.Abs(float64(c.b[k])))) {
								t.Fatalf("step %d: %s[%d]: fused %v, unfused %v", step, c.what, k, c.a[k], c.b[k])
							}
						}
					}
				}
			})
		}
	}
}

// relErr is ‖got − want‖ / ‖want‖.
func relErr(got []float32, want []float64) float64 {
	var num, den float64
	for i, w := range want {
		d := float64(got[i]) - w
		num += d * d
		den += w * w
	}
	if math.IsNaN(num) {
		return math.Inf(1)
	}
	return math.Sqrt(num / den)
}

// TestBatchNormLargeMean checks training batch norm on channels whose
// means are about 1000 times their spread (each channel its own offset)
// against the float64 definition: the forward pass to a relative error of
// 1e-3, the gradients to 2e-3.
func TestBatchNormLargeMean(t *testing.T) {
	for i, tc := range []struct {
		name  string
		shape []int
		relu  bool
	}{
		{"2D_C8", []int{8, 16, 16, 8}, false},
		{"2D_C8_relu", []int{8, 16, 16, 8}, true},
		{"2D_C3", []int{4, 16, 16, 3}, false},
		{"2D_C3_relu", []int{4, 16, 16, 3}, true},
		{"1D_C16", []int{2048, 16}, false},
		{"1D_C5", []int{1000, 5}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 73))
			bn := fusedCase{shape: tc.shape}.build(tc.relu)
			randomBN(bn, rng)
			c := bn.C
			offset := make([]float64, c)
			for ch := range offset {
				offset[ch] = 1000 + 7.5*float64(ch)
				if ch%3 == 2 {
					offset[ch] = -offset[ch]
				}
			}
			x := NewTensor(tc.shape...)
			for k := range x.Data {
				x.Data[k] = float32(offset[k%c] + rng.NormFloat64())
			}
			if tc.relu {
				// Keep the float32 and float64 masks the same.
				for range 100 {
					near := 0
					for k, z := range refBatchNorm(bn, x.Data, nil, true).z {
						if math.Abs(z) < 1e-2 {
							x.Data[k] = float32(offset[k%c] + rng.NormFloat64())
							near++
						}
					}
					if near == 0 {
						break
					}
				}
			}
			dy := NewTensor(tc.shape...)
			for k := range dy.Data {
				dy.Data[k] = float32(rng.NormFloat64())
			}
			want := refBatchNorm(bn, x.Data, dy.Data, true)
			ZeroGrads(bn.Params())
			y := bn.Forward(x, true)
			dx := bn.Backward(dy)
			for _, c := range []struct {
				what string
				got  []float32
				want []float64
				tol  float64
			}{
				{"output", y.Data, want.y, 1e-3},
				{"input gradient", dx.Data, want.dx, 2e-3},
				{"γ gradient", bn.Weight.Grad.Data, want.dgamma, 2e-3},
				{"β gradient", bn.Bias.Grad.Data, want.dbeta, 2e-3},
			} {
				e := relErr(c.got, c.want)
				t.Logf("%s: relative error %.2g", c.what, e)
				if !(e <= c.tol) {
					t.Errorf("%s: relative error %.3g, want ≤ %g", c.what, e, c.tol)
				}
			}
		})
	}
}

// sameBits returns the first index where a and b differ bitwise, or −1.
func sameBits(a, b []float32) int {
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// convRun is what one forward and backward pass of a convolution gives.
type convRun struct {
	y, dx, dw, db []float32
}

// runConv runs l.Forward(x, train) and l.Backward(dy) from zero
// gradients and copies the results.
func runConv(l *Conv2D, x, dy *Tensor, train bool) convRun {
	ZeroGrads(l.Params())
	y := l.Forward(x, train).Clone()
	dx := l.Backward(dy)
	return convRun{y: y.Data, dx: slices.Clone(dx.Data), dw: slices.Clone(l.Weight.Grad.Data), db: slices.Clone(l.Bias.Grad.Data)}
}

func compareRuns(t *testing.T, what string, got, want convRun) {
	t.Helper()
	for _, c := range []struct {
		name string
		a, b []float32
	}{{"output", got.y, want.y}, {"input gradient", got.dx, want.dx}, {"weight gradient", got.dw, want.dw}, {"bias gradient", got.db, want.db}} {
		if i := sameBits(c.a, c.b); i >= 0 {
			t.Errorf("%s: %s differs at %d: %v, want %v", what, c.name, i, c.a[i], c.b[i])
		}
	}
}

// copyConv returns a new Conv2D with l's geometry and parameter values.
func copyConv(l *Conv2D) *Conv2D {
	c := &Conv2D{InC: l.InC, OutC: l.OutC, K: l.K, Stride: l.Stride, Pad: l.Pad,
		Weight: newParam("copy.weight", true, l.Weight.Value.Shape...)}
	copy(c.Weight.Value.Data, l.Weight.Value.Data)
	if l.Bias != nil {
		c.Bias = newParam("copy.bias", false, l.OutC)
		copy(c.Bias.Value.Data, l.Bias.Value.Data)
	}
	return c
}

// TestConvKeptIm2col checks that Conv2D's gradients are the same whether
// Backward reuses the im2col matrix a training Forward kept (at most
// keepFloats floats) or unrolls the input again in chunks of at most
// colBudget floats, as after an evaluation Forward or for larger batches.
// Small integers make every sum exact whatever its order, so the batched
// results must also equal the sums over single samples bit for bit.
func TestConvKeptIm2col(t *testing.T) {
	for i, tc := range []struct {
		name                        string
		n, h, w, c, outC, k, stride int
		ints                        bool
		keptInTraining              bool
		chunks                      int // of the unkept passes
	}{
		// Real values: one GEMM either way, the same operations.
		{name: "small", n: 3, h: 6, w: 5, c: 2, outC: 3, k: 3, stride: 1, keptInTraining: true, chunks: 1},
		{name: "small_stride2", n: 4, h: 7, w: 7, c: 8, outC: 5, k: 3, stride: 2, keptInTraining: true, chunks: 1},
		// Kept in training, three chunks otherwise.
		{name: "chunked", n: 120, h: 32, w: 32, c: 8, outC: 4, k: 3, stride: 1, ints: true, keptInTraining: true, chunks: 3},
		// Too large to keep: chunked in training too.
		{name: "over_keep", n: 26, h: 32, w: 32, c: 16, outC: 2, k: 5, stride: 1, ints: true, chunks: 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 74))
			l := NewConv2D("c", tc.c, tc.outC, tc.k, tc.stride, tc.k/2, true, rng)
			x := randTensor(rng, tc.n, tc.h, tc.w, tc.c)
			Uniform(l.Bias.Value, 1, rng)
			if tc.ints {
				smallInts(l.Weight.Value, rng)
				smallInts(l.Bias.Value, rng)
				smallInts(x, rng)
			}
			oh := (tc.h+2*(tc.k/2)-tc.k)/tc.stride + 1
			ow := (tc.w+2*(tc.k/2)-tc.k)/tc.stride + 1
			dy := randTensor(rng, tc.n, oh, ow, tc.outC)
			if tc.ints {
				smallInts(dy, rng)
			}
			// The geometry takes the paths the case is named for.
			per := oh * ow * tc.k * tc.k * tc.c
			if kept := tc.n*per <= keepFloats; kept != tc.keptInTraining {
				t.Fatalf("%d floats of im2col matrix: kept in training %v, want %v", tc.n*per, kept, tc.keptInTraining)
			}
			if cs := min(tc.n, max(1, colBudget/per)); (tc.n+cs-1)/cs != tc.chunks {
				t.Fatalf("%d samples of %d floats: %d per chunk, want %d chunks", tc.n, per, cs, tc.chunks)
			}

			train := runConv(l, x, dy, true)
			if l.scratch.kept != nil {
				t.Error("the kept matrix outlived Backward")
			}
			l.Forward(x, true)
			if got := l.scratch.kept != nil; got != tc.keptInTraining {
				t.Errorf("after a training Forward, kept matrix %v, want %v", got, tc.keptInTraining)
			}
			eval := runConv(l, x, dy, false)
			compareRuns(t, "evaluation Forward then Backward vs training", eval, train)
			l.Forward(x, false)
			if l.scratch.kept != nil {
				t.Error("an evaluation Forward left a kept matrix")
			}

			if !tc.ints {
				return
			}
			// Sample by sample (each kept), summing the parameter gradients.
			ZeroGrads(l.Params())
			var single convRun
			for s := 0; s < tc.n; s++ {
				single.y = append(single.y, l.Forward(x.Rows(s, s+1), true).Data...)
				single.dx = append(single.dx, l.Backward(dy.Rows(s, s+1)).Data...)
			}
			single.dw, single.db = l.Weight.Grad.Data, l.Bias.Grad.Data
			compareRuns(t, "batch vs one sample at a time", train, single)
		})
	}
}

// TestConvEvalDropsKept checks that an evaluation Forward after a training
// one drops the kept im2col matrix, so that Backward differentiates at the
// evaluation input, and that a second Backward unrolls the input again.
func TestConvEvalDropsKept(t *testing.T) {
	rng := rand.New(rand.NewPCG(75, 76))
	l := NewConv2D("c", 3, 4, 3, 1, 1, true, rng)
	Uniform(l.Bias.Value, 1, rng)
	x1, x2 := randTensor(rng, 5, 6, 7, 3), randTensor(rng, 5, 6, 7, 3)
	dy := randTensor(rng, 5, 6, 7, 4)

	l.Forward(x1, true) // keeps x1's matrix
	got := runConv(l, x2, dy, false)
	want := runConv(copyConv(l), x2, dy, false)
	compareRuns(t, "train(x1), eval(x2), Backward vs a fresh layer", got, want)
	wantTrain := runConv(copyConv(l), x2, dy, true)
	compareRuns(t, "train(x1), eval(x2), Backward vs a fresh layer's training pass", got, wantTrain)

	// Backward twice after one training Forward: the second unrolls x again.
	first := runConv(l, x2, dy, true)
	ZeroGrads(l.Params())
	dx := l.Backward(dy)
	again := convRun{y: first.y, dx: slices.Clone(dx.Data), dw: slices.Clone(l.Weight.Grad.Data), db: slices.Clone(l.Bias.Grad.Data)}
	compareRuns(t, "second Backward vs first", again, first)

	// A smaller training batch after a larger one reuses the kept buffer.
	small := runConv(l, x1.Rows(0, 2), dy.Rows(0, 2), true)
	wantSmall := runConv(copyConv(l), x1.Rows(0, 2), dy.Rows(0, 2), true)
	compareRuns(t, "smaller batch", small, wantSmall)
}

// deepNet is conv → BN+ReLU → max pool → conv → BN+ReLU → upsample → conv,
// built the same way from the same seed every time.
func deepNet(seed uint64) []Layer {
	rng := rand.New(rand.NewPCG(seed, 77))
	bn1 := NewBatchNorm2D("bn1", 8).WithReLU()
	bn2 := NewBatchNorm2D("bn2", 16).WithReLU()
	randomiseParams(bn1, rng)
	randomiseParams(bn2, rng)
	return []Layer{
		NewConv2D("conv1", 3, 8, 3, 1, 1, true, rng),
		bn1,
		NewMaxPool2D(2, 2),
		NewConv2D("conv2", 8, 16, 3, 1, 1, false, rng),
		bn2,
		NewUpsample2D(2),
		NewConv2D("conv3", 16, 3, 3, 1, 1, true, rng),
	}
}

// reshapeNet has Reshape layers, whose Backward returns a view of the
// gradient it is given, between layers that release their gradients, and
// first, where Sequential returns such a view.
func reshapeNet(seed uint64) []Layer {
	rng := rand.New(rand.NewPCG(seed, 78))
	return []Layer{
		NewReshape(8, 8, 3),
		NewConv2D("conv1", 3, 4, 3, 1, 1, true, rng),
		NewUpsample2D(2),
		NewReshape(16, 16, 4),
		NewConv2D("conv2", 4, 4, 3, 2, 1, true, rng),
		NewReshape(8, 8, 4),
		NewReshape(8, 8, 4),
		NewMaxPool2D(2, 2),
		NewFlatten(),
		NewLinear("fc", 64, 5, rng),
	}
}

// flattenFirst is a classifier head whose input gradient, which Sequential
// returns, is a view of the linear layer's.
func flattenFirst(seed uint64) []Layer {
	return []Layer{NewFlatten(), NewLinear("fc", 192, 5, rand.New(rand.NewPCG(seed, 79)))}
}

// TestSequentialRelease checks that Sequential, which gives each consumed
// input gradient back to the scratch pool during Backward, computes
// bitwise what the same layers give when run one by one with nothing
// released, over several steps in which the pool's buffers change hands
// (training and evaluation passes mixed); and that the input gradient it
// returns stays intact while other layers use the pool.
func TestSequentialRelease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(seed uint64) []Layer
		in    []int
	}{
		{"deep", deepNet, []int{4, 8, 8, 3}},
		{"reshape", reshapeNet, []int{3, 8, 8, 3}},
		{"flatten_first", flattenFirst, []int{3, 8, 8, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seq := NewSequential(tc.build(1)...)
			manual := tc.build(1)
			other := NewSequential(tc.build(2)...) // shares the pool
			rng := rand.New(rand.NewPCG(79, 80))
			for step, train := range []bool{true, true, false, true, false, false, true} {
				x := randTensor(rng, tc.in...)
				ZeroGrads(seq.Params())
				ZeroGrads(Unique(paramsOf(manual)))
				y1 := seq.Forward(x, train).Clone()
				dy := randTensor(rng, y1.Shape...)
				dx1 := seq.Backward(dy)
				keep := slices.Clone(dx1.Data)
				// Other work that takes buffers from the pool.
				other.Backward(randTensor(rng, other.Forward(randTensor(rng, tc.in...), !train).Shape...))
				if i := sameBits(dx1.Data, keep); i >= 0 {
					t.Fatalf("step %d: the returned input gradient changed at %d when other layers used the pool", step, i)
				}

				y2 := x
				for _, l := range manual {
					y2 = l.Forward(y2, train)
				}
				dx2 := dy
				for k := len(manual) - 1; k >= 0; k-- {
					dx2 = manual[k].Backward(dx2)
				}
				if i := sameBits(y1.Data, y2.Data); i >= 0 {
					t.Fatalf("step %d (train %v): output differs at %d", step, train, i)
				}
				if i := sameBits(keep, dx2.Data); i >= 0 {
					t.Fatalf("step %d (train %v): input gradient differs at %d: %v, want %v", step, train, i, keep[i], dx2.Data[i])
				}
				for k, p := range seq.Params() {
					if i := sameBits(p.Grad.Data, paramsOf(manual)[k].Grad.Data); i >= 0 {
						t.Fatalf("step %d (train %v): %s gradient differs at %d", step, train, p.Name, i)
					}
				}
			}
		})
	}
}

func paramsOf(layers []Layer) []*Param { return NewSequential(layers...).Params() }

// TestSequentialStepMemory checks that once the scratch pool has settled,
// training steps of the deep net allocate almost nothing: the buffers that
// Backward releases are the ones the next layers and the next step take
// back, rather than new ones each time. Every activation here is at least
// 64 KiB, so one buffer made afresh per step would exceed the bound.
func TestSequentialStepMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own account")
	}
	for _, withEval := range []bool{false, true} {
		t.Run(fmt.Sprintf("eval%v", withEval), func(t *testing.T) {
			net := NewSequential(deepNet(3)...)
			rng := rand.New(rand.NewPCG(81, 82))
			x := randTensor(rng, 8, 16, 16, 3)
			dy := randTensor(rng, net.Forward(x, true).Shape...)
			ps := net.Params()
			opt := NewSGD(ps, 0.9, 1e-4, false)
			step := func() {
				ZeroGrads(ps)
				net.Forward(x, true)
				net.Backward(dy)
				opt.Step(0.01)
				if withEval {
					net.Forward(x, false)
				}
			}
			for range 3 {
				step()
			}
			pooled := poolFloats()
			// The median over steps: a step now and then allocates the
			// GEMM's packing buffers afresh (a sync.Pool, emptied by the
			// garbage collector), but buffers that churned would do so
			// every step.
			const steps = 11
			perStep := make([]float64, steps)
			var before, after runtime.MemStats
			for k := range perStep {
				runtime.ReadMemStats(&before)
				step()
				runtime.ReadMemStats(&after)
				perStep[k] = float64(after.TotalAlloc - before.TotalAlloc)
			}
			slices.Sort(perStep)
			median := perStep[steps/2]
			t.Logf("%.0f bytes allocated per step (median; most %.0f); pool %d floats", median, perStep[steps-1], pooled)
			if median > 64<<10 {
				t.Errorf("%.0f bytes allocated per step, want < 64 KiB", median)
			}
			if got := poolFloats(); got != pooled {
				t.Errorf("the pool holds %d floats after %d more steps, %d before: it has not settled", got, steps, pooled)
			}
		})
	}
}

// poolFloats returns the capacity of the free scratch buffers.
func poolFloats() int {
	scratch.Lock()
	defer scratch.Unlock()
	n := 0
	for _, b := range scratch.free {
		n += cap(b)
	}
	return n
}

// emptyPool gives the test an empty scratch pool and restores the old one
// when it ends.
func emptyPool(t *testing.T) {
	saved := scratch.free
	scratch.free = nil
	t.Cleanup(func() { scratch.free = saved })
}

// poolCaps returns the capacities of the free buffers, in pool order.
func poolCaps() []int {
	var caps []int
	for _, b := range scratch.free {
		caps = append(caps, cap(b))
	}
	return caps
}

func TestScratchBestFit(t *testing.T) {
	emptyPool(t)
	pooled := map[*float32]int{} // first element → capacity
	for _, n := range []int{100, 10, 1000, 100, 50} {
		b := make([]float32, n)
		pooled[&b[0]] = n
		putScratch(b[:n/2]) // the pool keeps the whole capacity
	}
	if got, want := poolCaps(), []int{1000, 100, 100, 50, 10}; !slices.Equal(got, want) {
		t.Fatalf("pool capacities %v, want %v (largest first)", got, want)
	}
	for _, tc := range []struct {
		n, wantCap int
		rest       []int
	}{
		{n: 60, wantCap: 100, rest: []int{1000, 100, 50, 10}}, // the smallest that fits
		{n: 100, wantCap: 100, rest: []int{1000, 50, 10}},
		{n: 10, wantCap: 10, rest: []int{1000, 50}},
		{n: 1, wantCap: 50, rest: []int{1000}},
		{n: 1000, wantCap: 1000, rest: nil},
		{n: 5, wantCap: 5, rest: nil}, // none free: a new one
	} {
		b := getScratch(tc.n)
		if len(b) != tc.n || cap(b) != tc.wantCap {
			t.Fatalf("getScratch(%d) = len %d cap %d, want len %d cap %d", tc.n, len(b), cap(b), tc.n, tc.wantCap)
		}
		if c, ok := pooled[&b[:1][0]]; ok != (tc.rest != nil || tc.wantCap == 1000) || ok && c != tc.wantCap {
			t.Fatalf("getScratch(%d) returned the wrong buffer (pooled %v)", tc.n, ok)
		}
		if got := poolCaps(); !slices.Equal(got, tc.rest) {
			t.Fatalf("after getScratch(%d) the pool holds %v, want %v", tc.n, got, tc.rest)
		}
	}

	// When no free buffer is large enough, the largest of them is dropped:
	// it can never serve the size now in demand, which replaces it.
	for _, n := range []int{30, 20, 10} {
		putScratch(make([]float32, n))
	}
	if b := getScratch(40); cap(b) != 40 {
		t.Fatalf("getScratch(40) from %v gave capacity %d, want a new buffer of 40", []int{30, 20, 10}, cap(b))
	}
	if got, want := poolCaps(), []int{20, 10}; !slices.Equal(got, want) {
		t.Fatalf("pool holds %v, want %v", got, want)
	}
}

// TestGradBufferRelease checks the life of a layer's input-gradient
// buffer: kept while the layer holds it, given to the pool by
// releaseGrad, and taken from the pool when needed again.
func TestGradBufferRelease(t *testing.T) {
	emptyPool(t)
	g := gradBuffer(nil, 2, 3)
	if g.Len() != 6 || !slices.Equal(g.Shape, []int{2, 3}) {
		t.Fatalf("gradBuffer(nil, 2, 3) = %v with %d floats", g, g.Len())
	}
	p := &g.Data[0]
	if g2 := gradBuffer(g, 3, 2); g2 != g || &g2.Data[0] != p || !slices.Equal(g2.Shape, []int{3, 2}) {
		t.Fatal("gradBuffer did not keep the storage the layer holds")
	}
	releaseGrad(g)
	if g.Data != nil || len(scratch.free) != 1 {
		t.Fatalf("after releaseGrad: data %v, %d free buffers; want nil and 1", g.Data, len(scratch.free))
	}
	releaseGrad(g) // a second release does nothing
	releaseGrad(nil)
	if len(scratch.free) != 1 {
		t.Fatalf("a repeated release put %d buffers in the pool, want 1", len(scratch.free))
	}
	if g3 := gradBuffer(g, 1, 5); &g3.Data[0] != p || len(scratch.free) != 0 || g3.Len() != 5 {
		t.Fatal("gradBuffer did not take the released storage back from the pool")
	}
}
