package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// upconvShapes are input shapes [N, H, W, InC] with an output channel
// count: odd and even sides, rows shorter and longer than the kernels'
// tiles, channel counts below, at and above a tile.
var upconvShapes = []struct{ n, h, w, in, out int }{
	{1, 1, 1, 1, 1},
	{2, 3, 2, 2, 3},
	{1, 2, 5, 3, 16},
	{2, 4, 4, 16, 32},
	{1, 3, 9, 24, 20},
	{2, 8, 8, 32, 16},
	{1, 2, 17, 8, 40},
}

// TestUpsampleConv2DGradients checks the fused layer's input, weight and
// bias gradients against finite differences, in training and evaluation
// passes.
func TestUpsampleConv2DGradients(t *testing.T) {
	for i, s := range upconvShapes[:5] {
		for _, train := range []bool{false, true} {
			for _, bias := range []bool{false, true} {
				if i >= 3 && train != bias {
					continue // the larger shapes twice, not four times: the check is slow
				}
				t.Run(fmt.Sprintf("%+v/train=%v/bias=%v", s, train, bias), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(71, 72))
					l := NewUpsampleConv2D("up", s.in, s.out, bias, rng)
					if bias {
						Uniform(l.Bias.Value, 1, rng)
					}
					checkLayer(t, l, randTensor(rng, s.n, s.h, s.w, s.in), train, checkOpts{})
				})
			}
		}
	}
}

// TestUpsampleConv2DIsUpsampleThenConv checks that the fused layer computes
// what Upsample2D(2) then Conv2D with the same weight computes: outputs,
// input gradients and parameter gradients, to float32 rounding (on the
// kernel path in use), and that both draw the same initial weights.
func TestUpsampleConv2DIsUpsampleThenConv(t *testing.T) {
	for _, s := range upconvShapes {
		for _, bias := range []bool{false, true} {
			t.Run(fmt.Sprintf("%+v/bias=%v", s, bias), func(t *testing.T) {
				r1, r2 := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
				fused := NewUpsampleConv2D("c", s.in, s.out, bias, r1)
				conv := NewConv2D("c", s.in, s.out, 3, 1, 1, bias, r2)
				if !slices.Equal(fused.Weight.Value.Data, conv.Weight.Value.Data) {
					t.Fatal("the fused layer draws other initial weights than Conv2D")
				}
				if bias {
					Uniform(fused.Bias.Value, 1, r1)
					copy(conv.Bias.Value.Data, fused.Bias.Value.Data)
				}
				pair := NewSequential(NewUpsample2D(2), conv)
				rng := rand.New(rand.NewPCG(5, 6))
				x := randTensor(rng, s.n, s.h, s.w, s.in)
				for _, train := range []bool{true, false} {
					ZeroGrads(fused.Params())
					ZeroGrads(pair.Params())
					y := fused.Forward(x, train)
					want := pair.Forward(x, train)
					if !slices.Equal(y.Shape, want.Shape) {
						t.Fatalf("output %v, want %v", y.Shape, want.Shape)
					}
					near(t, "output", y.Data, want.Data, 9*s.in)
					dy := randTensor(rng, y.Shape...)
					near(t, "input gradient", fused.Backward(dy).Data, pair.Backward(dy).Data, 9*s.out)
					near(t, "weight gradient", fused.Weight.Grad.Data, conv.Weight.Grad.Data, 4*s.n*s.h*s.w)
					if bias {
						near(t, "bias gradient", fused.Bias.Grad.Data, conv.Bias.Grad.Data, 4*s.n*s.h*s.w)
					}
				}
			})
		}
	}
}

// near fails unless got and want agree to float32 rounding of sums of
// terms terms of order 1.
func near(t *testing.T, what string, got, want []float32, terms int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	tol := 1e-6 * float64(terms+10)
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*(1+math.Abs(float64(want[i]))) || math.IsNaN(d) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestUpsampleConv2DWorkerCountInvariance checks that the fused layer's
// outputs and gradients are bitwise the same with one worker and with
// four.
func TestUpsampleConv2DWorkerCountInvariance(t *testing.T) {
	run := func(procs int) [][]float32 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		rng := rand.New(rand.NewPCG(81, 82))
		l := NewUpsampleConv2D("up", 24, 32, true, rng)
		x := randTensor(rng, 13, 6, 10, 24)
		y := l.Forward(x, true)
		dx := l.Backward(randTensor(rng, y.Shape...))
		return [][]float32{slices.Clone(y.Data), slices.Clone(dx.Data), slices.Clone(l.Weight.Grad.Data), slices.Clone(l.Bias.Grad.Data)}
	}
	one, four := run(1), run(4)
	for i, name := range []string{"output", "input gradient", "weight gradient", "bias gradient"} {
		if !slices.Equal(one[i], four[i]) {
			t.Errorf("%s differs between GOMAXPROCS 1 and 4", name)
		}
	}
}

// TestUpsampleConv2DPanics checks the messages for misuse.
func TestUpsampleConv2DPanics(t *testing.T) {
	mustPanic := func(name string, fn func()) {
		t.Helper()
		defer func() {
			if recover() == nil {
				t.Errorf("%s: no panic", name)
			}
		}()
		fn()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	mustPanic("zero channels", func() { NewUpsampleConv2D("up", 0, 3, false, rng) })
	l := NewUpsampleConv2D("up", 2, 3, false, rng)
	mustPanic("wrong channels", func() { l.Forward(NewTensor(1, 2, 2, 3), false) })
	l.Forward(NewTensor(1, 2, 2, 2), true)
	mustPanic("wrong gradient shape", func() { l.Backward(NewTensor(1, 2, 2, 3)) })
}

// BenchmarkUpsampleConv2D times a training pass (forward and backward) of
// the mirrored autoencoder's decoder convolutions at batch 128 on 32×32
// images, fused and as Upsample2D then Conv2D.
func BenchmarkUpsampleConv2D(b *testing.B) {
	for _, s := range []struct{ h, in, out int }{{2, 256, 128}, {4, 128, 64}, {8, 64, 32}, {16, 32, 32}} {
		const n = 128
		for _, fused := range []bool{true, false} {
			name := fmt.Sprintf("%dx%dx%d_to_%d/fused", s.h, s.h, s.in, s.out)
			if !fused {
				name = name[:len(name)-len("fused")] + "unfused"
			}
			b.Run(name, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				var l Layer = NewUpsampleConv2D("c", s.in, s.out, false, rng)
				if !fused {
					l = NewSequential(NewUpsample2D(2), NewConv2D("c", s.in, s.out, 3, 1, 1, false, rng))
				}
				x := randTensor(rng, n, s.h, s.h, s.in)
				dy := randTensor(rng, n, 2*s.h, 2*s.h, s.out)
				b.ResetTimer()
				for range b.N {
					l.Forward(x, true)
					l.Backward(dy)
				}
			})
		}
	}
}

// TestUpsampleConv2DFLOPs checks the count of each pass, on packed (short
// rows) and in-place (long rows) runs: 2·N·(2H)·(2W)·4·InC·OutC, 4 taps
// per output pixel.
func TestUpsampleConv2DFLOPs(t *testing.T) {
	for _, s := range []struct{ n, h, w, in, out int }{{3, 2, 2, 8, 16}, {2, 4, 16, 16, 32}} {
		rng := rand.New(rand.NewPCG(1, 2))
		l := NewUpsampleConv2D("up", s.in, s.out, false, rng)
		x := randTensor(rng, s.n, s.h, s.w, s.in)
		want := int64(2 * s.n * 4 * s.h * s.w * 4 * s.in * s.out)
		var y *Tensor
		if got := kernel.CountFLOPs(func() { y = l.Forward(x, true) }); got != want {
			t.Errorf("%+v: forward counts %d, want %d", s, got, want)
		}
		if got := kernel.CountFLOPs(func() { l.Backward(randTensor(rng, y.Shape...)) }); got != 2*want {
			t.Errorf("%+v: backward counts %d, want %d", s, got, 2*want)
		}
	}
}

// TestTiedUpsampleConv2D checks the tied layer against Upsample2D(2) then
// the tied transposed convolution of the same Conv2D: outputs, input
// gradients and the shared weight's gradient, with and without a bias;
// and its gradients against finite differences.
func TestTiedUpsampleConv2D(t *testing.T) {
	for _, s := range upconvShapes[:6] {
		t.Run(fmt.Sprintf("%+v", s), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(9, 10))
			// The decoder maps s.in → s.out, so the encoder conv maps s.out → s.in.
			conv := NewConv2D("enc", s.out, s.in, 3, 1, 1, false, rng)
			fused := NewTiedUpsampleConv2D("dec", conv, true)
			Uniform(fused.Bias.Value, 1, rng)
			deconv := NewTiedConvTranspose2D("dec", conv, 0, true)
			copy(deconv.Bias.Value.Data, fused.Bias.Value.Data)
			if fused.Weight != conv.Weight || fused.InC != s.in || fused.OutC != s.out {
				t.Fatalf("tied layer %d→%d does not share %s", fused.InC, fused.OutC, conv.Weight.Name)
			}
			pair := NewSequential(NewUpsample2D(2), deconv)
			x := randTensor(rng, s.n, s.h, s.w, s.in)
			y := fused.Forward(x, true)
			near(t, "output", y.Data, pair.Forward(x, true).Data, 9*s.in)
			dy := randTensor(rng, y.Shape...)
			ZeroGrads(pair.Params())
			dx := slices.Clone(pair.Backward(dy).Data)
			want := slices.Clone(conv.Weight.Grad.Data)
			ZeroGrads(fused.Params())
			near(t, "input gradient", fused.Backward(dy).Data, dx, 9*s.out)
			near(t, "weight gradient", conv.Weight.Grad.Data, want, 4*s.n*s.h*s.w)
			if s.n*s.h*s.w*s.in <= 100 {
				checkLayer(t, fused, x, true, checkOpts{})
			}
		})
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a strided convolution")
		}
	}()
	NewTiedUpsampleConv2D("dec", NewConv2D("enc", 2, 3, 3, 2, 1, false, rand.New(rand.NewPCG(1, 1))), false)
}

// TestUpsampleConv2DShapeChanges checks that a layer reused on batches of
// other sizes gives what a fresh layer gives.
func TestUpsampleConv2DShapeChanges(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	l := NewUpsampleConv2D("up", 16, 32, true, rng)
	for _, shape := range [][]int{{2, 8, 8, 16}, {3, 4, 6, 16}, {2, 8, 8, 16}, {1, 2, 2, 16}, {2, 8, 8, 16}} {
		x := randTensor(rng, shape...)
		dy := randTensor(rng, shape[0], 2*shape[1], 2*shape[2], 32)
		fresh := &UpsampleConv2D{InC: 16, OutC: 32, Weight: newParam("w", true, 32, 3, 3, 16), Bias: newParam("b", false, 32)}
		copy(fresh.Weight.Value.Data, l.Weight.Value.Data)
		copy(fresh.Bias.Value.Data, l.Bias.Value.Data)
		ZeroGrads(l.Params())
		y := slices.Clone(l.Forward(x, true).Data)
		dx := slices.Clone(l.Backward(dy).Data)
		if !slices.Equal(y, fresh.Forward(x, true).Data) || !slices.Equal(dx, fresh.Backward(dy).Data) ||
			!slices.Equal(l.Weight.Grad.Data, fresh.Weight.Grad.Data) {
			t.Fatalf("shape %v: a reused layer differs from a fresh one", shape)
		}
	}
}
