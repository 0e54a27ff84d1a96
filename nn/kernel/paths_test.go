package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The tests below run each elementwise, pooling and optimiser kernel on
// every path this CPU runs, at lengths and channel counts around the
// vector widths, and check it against a reference: the same bits as the
// portable path for the kernels that promise them, and float64 sums for
// the others.

var vecLengths = []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 1000}

// specialValues returns n values in [−2, 2) with zeros of both signs,
// infinities and NaNs of both signs sprinkled in.
func specialValues(rng *rand.Rand, n int) []float32 {
	s := rowValues(rng, n)
	specials := []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0xffc00000), math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32}
	for i := range s {
		if rng.IntN(10) == 0 {
			s[i] = specials[rng.IntN(len(specials))]
		}
	}
	return s
}

func bitsEqual(a, b []float32) int {
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

// onPurego runs fn on the portable path and restores the path in use.
func onPurego(t *testing.T, fn func()) {
	t.Helper()
	old := Path()
	if err := SetPath(PathPurego); err != nil {
		t.Fatal(err)
	}
	defer SetPath(old)
	fn()
}

func TestReluPaths(t *testing.T) {
	forPaths(t, func(t *testing.T) {
		for _, n := range vecLengths {
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			x, dy := specialValues(rng, n), specialValues(rng, n)
			var want, wantG []float32
			onPurego(t, func() {
				want, wantG = make([]float32, n), make([]float32, n)
				Relu(want, x)
				ReluGrad(wantG, dy, want)
			})
			for i, v := range x {
				// The portable reference against the definition.
				b := math.Float32bits(v)
				if w := want[i]; b>>31 == 1 && math.Float32bits(w) != 0 || b>>31 == 0 && math.Float32bits(w) != b {
					t.Fatalf("portable Relu(%v) = %v", v, w)
				}
			}
			got, gotG := guarded(n, 16), guarded(n, 16)
			Relu(got, x)
			checkGuard(t, "Relu", got, 16)
			ReluGrad(gotG, dy, got)
			checkGuard(t, "ReluGrad", gotG, 16)
			if i := bitsEqual(got, want); i >= 0 {
				t.Fatalf("n=%d: Relu(%v) = %v, portable %v", n, x[i], got[i], want[i])
			}
			if i := bitsEqual(gotG, wantG); i >= 0 {
				t.Fatalf("n=%d: ReluGrad at %d = %v, portable %v", n, i, gotG[i], wantG[i])
			}
			// In place.
			in := slices.Clone(x)
			Relu(in, in)
			if i := bitsEqual(in, want); i >= 0 {
				t.Fatalf("n=%d: Relu in place differs at %d", n, i)
			}
		}
	})
}

func TestScaleAndSquaredDiffPaths(t *testing.T) {
	forPaths(t, func(t *testing.T) {
		for _, n := range vecLengths {
			rng := rand.New(rand.NewPCG(2, uint64(n)))
			a, b := rowValues(rng, n), rowValues(rng, n)
			got := guarded(n, 16)
			Scale(got, a, -0.375)
			checkGuard(t, "Scale", got, 16)
			for i := range a {
				if got[i] != -0.375*a[i] {
					t.Fatalf("Scale: [%d] = %v, want %v", i, got[i], -0.375*a[i])
				}
			}
			diff := guarded(n, 16)
			s := SquaredDiff(diff, a, b)
			checkGuard(t, "SquaredDiff", diff, 16)
			var want, norm float64
			for i := range a {
				d := a[i] - b[i]
				if diff[i] != d {
					t.Fatalf("SquaredDiff: diff[%d] = %v, want %v", i, diff[i], d)
				}
				want += float64(d) * float64(d)
				norm += float64(a[i]) * float64(a[i])
			}
			if math.Abs(s-want) > 1e-12*(1+want) {
				t.Errorf("n=%d: SquaredDiff = %v, want %v", n, s, want)
			}
			if got := SquaredDiff(nil, a, nil); math.Abs(got-norm) > 1e-12*(1+norm) {
				t.Errorf("n=%d: SquaredDiff(nil, a, nil) = %v, want %v", n, got, norm)
			}
		}
	})
}

func TestAxpyDotPaths(t *testing.T) {
	forPaths(t, func(t *testing.T) {
		for _, n := range vecLengths {
			rng := rand.New(rand.NewPCG(3, uint64(n)))
			x, y := rowValues(rng, n), rowValues(rng, n)
			var want, scale float64
			for i := range x {
				want += float64(x[i]) * float64(y[i])
				scale += math.Abs(float64(x[i]) * float64(y[i]))
			}
			if got := Dot(x, y); math.Abs(float64(got)-want) > 1e-6*(1+scale) {
				t.Errorf("n=%d: Dot = %v, want %v", n, got, want)
			}
			acc := append(slices.Clone(y), guardValue)
			Axpy(1.5, x, acc[:n])
			if acc[n] != guardValue {
				t.Fatalf("Axpy wrote past y")
			}
			for i := range x {
				w := float64(y[i]) + 1.5*float64(x[i])
				if math.Abs(float64(acc[i])-w) > 1e-6*(1+math.Abs(w)) {
					t.Fatalf("n=%d: Axpy [%d] = %v, want %v", n, i, acc[i], w)
				}
			}
		}
	})
}

// naiveMaxPool is MaxPool from its definition for inputs without NaNs:
// the largest value of each window and the first position holding it.
func naiveMaxPool(src []float32, h, w, c, k, stride int) ([]float32, []int32) {
	oh, ow := ConvOut(h, k, stride, 0), ConvOut(w, k, stride, 0)
	dst, arg := make([]float32, oh*ow*c), make([]int32, oh*ow*c)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for j := 0; j < c; j++ {
				best, at := float32(math.Inf(-1)), int32(-1)
				for ky := 0; ky < k; ky++ {
					for kx := 0; kx < k; kx++ {
						v := src[((oy*stride+ky)*w+ox*stride+kx)*c+j]
						if at < 0 || v > best {
							best, at = v, int32(ky*k+kx)
						}
					}
				}
				dst[(oy*ow+ox)*c+j], arg[(oy*ow+ox)*c+j] = best, at
			}
		}
	}
	return dst, arg
}

func TestMaxPoolPaths(t *testing.T) {
	type geom struct{ h, w, c, k, stride int }
	geoms := []geom{{4, 4, 1, 2, 2}, {5, 7, 3, 2, 2}, {8, 8, 8, 2, 2}, {6, 6, 16, 2, 2}, {7, 5, 24, 2, 2},
		{4, 6, 32, 2, 2}, {2, 2, 48, 2, 2}, {7, 7, 8, 3, 2}, {6, 5, 16, 3, 1}, {5, 5, 4, 2, 1}, {6, 6, 16, 3, 3}}
	forPaths(t, func(t *testing.T) {
		for _, g := range geoms {
			t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(g.c), uint64(g.h*g.w)))
				src := rowValues(rng, g.h*g.w*g.c)
				for i := range src {
					if rng.IntN(4) == 0 { // ties
						src[i] = float32(rng.IntN(3)) / 2
					}
				}
				want, wantArg := naiveMaxPool(src, g.h, g.w, g.c, g.k, g.stride)
				dst, arg := guarded(len(want), 16), make([]int32, len(want))
				MaxPool(dst, arg, src, g.h, g.w, g.c, g.k, g.stride)
				checkGuard(t, "MaxPool", dst, 16)
				for i := range want {
					if dst[i] != want[i] || arg[i] != wantArg[i] {
						t.Fatalf("out %d: %v at %d, want %v at %d", i, dst[i], arg[i], want[i], wantArg[i])
					}
				}
				// The gradient: each dy to the input its arg names,
				// summed; everything else +0, overwriting what dx held.
				dy := rowValues(rng, len(want))
				wantDx := make([]float32, len(src))
				ow := ConvOut(g.w, g.k, g.stride, 0)
				for o, a := range wantArg {
					pix, j := o/g.c, o%g.c
					oy, ox := pix/ow, pix%ow
					ky, kx := int(a)/g.k, int(a)%g.k
					wantDx[((oy*g.stride+ky)*g.w+ox*g.stride+kx)*g.c+j] += dy[o]
				}
				dx := guarded(len(src), 16)
				MaxPoolGrad(dx, dy, arg, g.h, g.w, g.c, g.k, g.stride)
				checkGuard(t, "MaxPoolGrad", dx, 16)
				for i := range dx {
					if dx[i] != wantDx[i] || math.IsNaN(float64(dx[i])) {
						t.Fatalf("dx[%d] = %v, want %v", i, dx[i], wantDx[i])
					}
				}
			})
		}
	})
}

// TestMaxPool2SameBits checks that the 2×2 pooling gives every path's
// bits for inputs with NaNs, infinities and signed zeros.
func TestMaxPool2SameBits(t *testing.T) {
	for _, c := range []int{8, 16, 32, 40} {
		rng := rand.New(rand.NewPCG(9, uint64(c)))
		const h, w = 6, 8
		src := specialValues(rng, h*w*c)
		n := (h / 2) * (w / 2) * c
		var want []float32
		var wantArg []int32
		onPurego(t, func() {
			want, wantArg = make([]float32, n), make([]int32, n)
			MaxPool(want, wantArg, src, h, w, c, 2, 2)
		})
		forPaths(t, func(t *testing.T) {
			got, arg := make([]float32, n), make([]int32, n)
			MaxPool(got, arg, src, h, w, c, 2, 2)
			if i := bitsEqual(got, want); i >= 0 || !slices.Equal(arg, wantArg) {
				t.Fatalf("c=%d: differs from the portable path (first value at %d)", c, i)
			}
		})
	}
}

func TestOptimizerStepPaths(t *testing.T) {
	type state struct{ w, g, m, v []float32 }
	fresh := func(n int) state {
		rng := rand.New(rand.NewPCG(4, uint64(n)))
		return state{rowValues(rng, n), rowValues(rng, n), rowValues(rng, n), rowValues(rng, n)}
	}
	abs := func(s []float32) []float32 {
		for i, v := range s {
			s[i] = float32(math.Abs(float64(v)))
		}
		return s
	}
	type step struct {
		name string
		run  func(s state)
	}
	steps := []step{
		{"sgd", func(s state) { SGDStep(s.w, s.g, nil, 0.1, 5e-4, 0, false) }},
		{"sgd-momentum", func(s state) { SGDStep(s.w, s.g, s.m, 0.1, 5e-4, 0.9, false) }},
		{"sgd-nesterov", func(s state) { SGDStep(s.w, s.g, s.m, 0.1, 5e-4, 0.9, true) }},
		{"adamw", func(s state) { AdamWStep(s.w, s.g, s.m, abs(s.v), 0.9, 0.999, 0.1, 0.001, 0.01, 0.9999, 0.05, 1e-8) }},
	}
	for _, st := range steps {
		for _, n := range vecLengths {
			ref := fresh(n)
			onPurego(t, func() { st.run(ref) })
			// The portable path against float64 arithmetic, to a
			// float32 rounding or so.
			chk := fresh(n)
			for i := range chk.w {
				w, g, m, v := float64(chk.w[i]), float64(chk.g[i]), float64(chk.m[i]), math.Abs(float64(chk.v[i]))
				var want float64
				switch st.name {
				case "sgd":
					want = w - 0.1*(g+5e-4*w)
				case "sgd-momentum":
					want = w - 0.1*(0.9*m+g+5e-4*w)
				case "sgd-nesterov":
					d := g + 5e-4*w
					want = w - 0.1*(d+0.9*(0.9*m+d))
				case "adamw":
					m = 0.9*m + 0.1*g
					v = 0.999*v + 0.001*g*g
					want = w*0.9999 - 0.01*m/(math.Sqrt(v)/0.05+1e-8)
				}
				if math.Abs(float64(ref.w[i])-want) > 1e-5*(1+math.Abs(want)) {
					t.Fatalf("%s n=%d: portable w[%d] = %v, want %v", st.name, n, i, ref.w[i], want)
				}
			}
			forPaths(t, func(t *testing.T) {
				got := fresh(n)
				st.run(got)
				for _, p := range [][2][]float32{{got.w, ref.w}, {got.m, ref.m}, {got.v, ref.v}} {
					if i := bitsEqual(p[0], p[1]); i >= 0 {
						t.Fatalf("%s n=%d: [%d] = %v, portable %v", st.name, n, i, p[0][i], p[1][i])
					}
				}
			})
		}
	}
}

func TestAdaptiveAvgPool(t *testing.T) {
	// A 3×4 image of one channel, values 1..12, into 2×2 bins: rows
	// [0, 2) and [1, 3), columns [0, 2) and [2, 4).
	src := make([]float32, 12)
	for i := range src {
		src[i] = float32(i + 1)
	}
	dst := make([]float32, 4)
	AdaptiveAvgPool(dst, src, 3, 4, 1, 2)
	want := []float32{(1 + 2 + 5 + 6) / 4., (3 + 4 + 7 + 8) / 4., (5 + 6 + 9 + 10) / 4., (7 + 8 + 11 + 12) / 4.}
	if !slices.Equal(dst, want) {
		t.Errorf("AdaptiveAvgPool = %v, want %v", dst, want)
	}
	// p = 1 is the global mean, per channel.
	two := []float32{1, 10, 2, 20, 3, 30, 4, 40}
	g := make([]float32, 2)
	AdaptiveAvgPool(g, two, 2, 2, 2, 1)
	if g[0] != 2.5 || g[1] != 25 {
		t.Errorf("global mean = %v, want [2.5 25]", g)
	}
}

func TestAllFinite(t *testing.T) {
	for _, tc := range []struct {
		x    []float32
		want bool
	}{
		{nil, true},
		{[]float32{0, -1, math.MaxFloat32, math.SmallestNonzeroFloat32}, true},
		{[]float32{1, float32(math.Inf(-1))}, false},
		{[]float32{float32(math.NaN()), 2}, false},
	} {
		if got := AllFinite(tc.x); got != tc.want {
			t.Errorf("AllFinite(%v) = %v", tc.x, got)
		}
	}
}
