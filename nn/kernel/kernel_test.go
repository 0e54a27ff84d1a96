package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(2*rng.Float64() - 1)
	}
	return s
}

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

// absDot is Σ|aᵢbᵢ|, the scale against which a dot product's rounding is judged.
func absDot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += math.Abs(float64(a[i]) * float64(b[i]))
	}
	return s
}

func TestConvOut(t *testing.T) {
	for _, tc := range []struct{ in, k, stride, pad, want int }{
		{in: 8, k: 3, stride: 1, pad: 1, want: 8},
		{in: 8, k: 3, stride: 1, pad: 0, want: 6},
		{in: 8, k: 3, stride: 2, pad: 1, want: 4},
		{in: 7, k: 3, stride: 2, pad: 1, want: 4},
		{in: 7, k: 2, stride: 2, pad: 0, want: 3},
		{in: 5, k: 5, stride: 3, pad: 0, want: 1},
		{in: 1, k: 5, stride: 1, pad: 2, want: 1},
		{in: 1, k: 1, stride: 1, pad: 0, want: 1},
		{in: 2, k: 3, stride: 1, pad: 0, want: 0},
		{in: 1, k: 5, stride: 1, pad: 1, want: 0},
	} {
		t.Run(fmt.Sprintf("in%d_k%d_s%d_p%d", tc.in, tc.k, tc.stride, tc.pad), func(t *testing.T) {
			if got := ConvOut(tc.in, tc.k, tc.stride, tc.pad); got != tc.want {
				t.Errorf("ConvOut = %d, want %d", got, tc.want)
			}
		})
	}
}

// naiveIm2col is Im2col straight from its definition: for the channels-last
// image img [h, w, c], row oy·ow + ox, column (ki·k + kj)·c + ci holds
// channel ci of pixel (oy·stride − pad + ki, ox·stride − pad + kj), or 0
// in the padding.
func naiveIm2col(img []float32, h, w, c, k, stride, pad int) []float32 {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	kkc := k * k * c
	col := make([]float32, oh*ow*kkc)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for ki := 0; ki < k; ki++ {
				for kj := 0; kj < k; kj++ {
					iy, ix := oy*stride-pad+ki, ox*stride-pad+kj
					if iy < 0 || iy >= h || ix < 0 || ix >= w {
						continue
					}
					for ci := 0; ci < c; ci++ {
						col[(oy*ow+ox)*kkc+(ki*k+kj)*c+ci] = img[(iy*w+ix)*c+ci]
					}
				}
			}
		}
	}
	return col
}

type imGeom struct{ c, h, w, k, stride, pad int }

func (g imGeom) String() string {
	return fmt.Sprintf("c%d_%dx%d_k%d_s%d_p%d", g.c, g.h, g.w, g.k, g.stride, g.pad)
}

var imGeoms = []imGeom{
	{1, 5, 5, 3, 1, 1},
	{2, 6, 7, 3, 1, 0},
	{3, 7, 5, 3, 2, 1},
	{2, 8, 8, 1, 1, 0},
	{2, 9, 6, 5, 2, 2},
	{1, 10, 7, 3, 3, 2},
	{2, 6, 6, 2, 2, 0},
	{1, 4, 4, 4, 1, 0},
	// Padding wider than the image on the far side of the kernel: a 5×5
	// "same" convolution of a one-pixel-wide map, and pad ≥ k.
	{2, 4, 1, 5, 1, 2},
	{1, 1, 1, 5, 1, 2},
	{1, 2, 2, 7, 1, 3},
	{1, 3, 2, 3, 1, 3},
	{1, 3, 2, 3, 2, 3},
	// Enough channels that a kernel row (k·c values) or its padded part
	// takes the long copy and clear paths.
	{16, 5, 6, 3, 1, 1},
	{32, 3, 3, 3, 1, 1},
	{33, 4, 3, 3, 2, 1},
}

func TestIm2col(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, g := range imGeoms {
		t.Run(g.String(), func(t *testing.T) {
			img := randSlice(rng, g.h*g.w*g.c)
			want := naiveIm2col(img, g.h, g.w, g.c, g.k, g.stride, g.pad)
			// A buffer with spare capacity full of sentinels: Im2col must
			// write exactly its length, and never past it.
			buf := make([]float32, len(want)+64)
			for i := range buf {
				buf[i] = float32(math.NaN())
			}
			col := buf[:len(want)]
			Im2col(col, img, g.h, g.w, g.c, g.k, g.stride, g.pad)
			for i := range want {
				if col[i] != want[i] {
					t.Fatalf("col[%d] = %v, want %v", i, col[i], want[i])
				}
			}
			for i, v := range buf[len(want):] {
				if !math.IsNaN(float64(v)) {
					t.Fatalf("Im2col wrote %v past the end of col, at len+%d", v, i)
				}
			}
		})
	}
}

// TestCol2imAdjoint checks <Im2col(x), c> == <x, Col2im(c)> and that Col2im
// adds into img rather than overwriting it.
func TestCol2imAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, g := range imGeoms {
		t.Run(g.String(), func(t *testing.T) {
			oh, ow := ConvOut(g.h, g.k, g.stride, g.pad), ConvOut(g.w, g.k, g.stride, g.pad)
			x := randSlice(rng, g.h*g.w*g.c)
			c := randSlice(rng, oh*ow*g.k*g.k*g.c)
			col := make([]float32, len(c))
			Im2col(col, x, g.h, g.w, g.c, g.k, g.stride, g.pad)
			img := make([]float32, len(x))
			Col2im(img, c, g.h, g.w, g.c, g.k, g.stride, g.pad)
			lhs, rhs := dot(col, c), dot(x, img)
			if d := math.Abs(lhs - rhs); d > 1e-5*(1+absDot(col, c)) {
				t.Errorf("<im2col(x), c> = %.8g, <x, col2im(c)> = %.8g", lhs, rhs)
			}

			// Accumulation: starting from ones gives ones + Col2im(c).
			acc := make([]float32, len(x))
			for i := range acc {
				acc[i] = 1
			}
			Col2im(acc, c, g.h, g.w, g.c, g.k, g.stride, g.pad)
			for i := range acc {
				if d := math.Abs(float64(acc[i]) - (1 + float64(img[i]))); d > 1e-5 {
					t.Fatalf("Col2im does not accumulate: img[%d] = %v, want 1 + %v", i, acc[i], img[i])
				}
			}
		})
	}
}

func TestGemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	type dims struct{ m, n, k int }
	sizes := []dims{{1, 1, 1}, {3, 5, 7}, {7, 3, 1}, {17, 13, 11}, {4, 6, 0}, {0, 4, 3}, {130, 70, 5}}
	scalars := []struct{ alpha, beta float32 }{{1, 0}, {0.5, 2}, {-1.5, 1}, {2, -0.25}, {0, 0.5}}
	for _, d := range sizes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, sc := range scalars {
					name := fmt.Sprintf("m%d_n%d_k%d_tA%v_tB%v_a%g_b%g", d.m, d.n, d.k, tA, tB, sc.alpha, sc.beta)
					t.Run(name, func(t *testing.T) {
						checkGemm(t, rng, d.m, d.n, d.k, tA, tB, sc.alpha, sc.beta)
					})
				}
			}
		}
	}
}

func checkGemm(t *testing.T, rng *rand.Rand, m, n, k int, tA, tB bool, alpha, beta float32) {
	// Stored shapes and padded leading dimensions.
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	lda, ldb, ldc := ac+3, bc+2, n+5
	a := randSlice(rng, max(1, ar*lda))
	b := randSlice(rng, max(1, br*ldb))
	c := randSlice(rng, max(1, m*ldc))
	if beta == 0 {
		// With beta == 0, C need not be initialised: NaNs must not leak.
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	orig := append([]float32(nil), c...)
	at := func(i, l int) float64 {
		if tA {
			return float64(a[l*lda+i])
		}
		return float64(a[i*lda+l])
	}
	bt := func(l, j int) float64 {
		if tB {
			return float64(b[j*ldb+l])
		}
		return float64(b[l*ldb+j])
	}
	Gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
	for i := 0; i < m; i++ {
		for j := 0; j < ldc; j++ {
			got := c[i*ldc+j]
			if j >= n {
				// Padding between rows is not part of C.
				if !(got == orig[i*ldc+j] || math.IsNaN(float64(got)) && math.IsNaN(float64(orig[i*ldc+j]))) {
					t.Fatalf("C padding [%d,%d] changed: %v → %v", i, j, orig[i*ldc+j], got)
				}
				continue
			}
			var s, sa float64
			for l := 0; l < k; l++ {
				s += at(i, l) * bt(l, j)
				sa += math.Abs(at(i, l) * bt(l, j))
			}
			want := float64(alpha) * s
			if beta != 0 {
				want += float64(beta) * float64(orig[i*ldc+j])
			}
			tol := 1e-5 * (1 + math.Abs(float64(alpha))*sa + math.Abs(float64(beta)))
			if math.IsNaN(float64(got)) || math.Abs(float64(got)-want) > tol {
				t.Fatalf("C[%d,%d] = %v, want %v", i, j, got, want)
			}
		}
	}
}

func TestChunks(t *testing.T) {
	for _, tc := range []struct{ n, size, want int }{
		{0, 4, 0}, {-3, 4, 0}, {1, 4, 1}, {4, 4, 1}, {5, 4, 2}, {8, 4, 2}, {9, 1, 9},
	} {
		if got := Chunks(tc.n, tc.size); got != tc.want {
			t.Errorf("Chunks(%d, %d) = %d, want %d", tc.n, tc.size, got, tc.want)
		}
	}
}

// TestFor checks that For visits every index exactly once, in chunks whose
// bounds depend only on n and size.
func TestFor(t *testing.T) {
	for _, tc := range []struct{ n, size int }{
		{0, 1}, {1, 1}, {1, 8}, {7, 1}, {7, 3}, {8, 4}, {100, 7}, {1000, 1}, {1000, 1000}, {1001, 10},
	} {
		t.Run(fmt.Sprintf("n%d_size%d", tc.n, tc.size), func(t *testing.T) {
			visits := make([]atomic.Int32, tc.n)
			chunks := make([]atomic.Int32, Chunks(tc.n, tc.size))
			For(tc.n, tc.size, func(c, lo, hi int) {
				if c < 0 || c >= len(chunks) {
					t.Errorf("chunk %d out of range [0, %d)", c, len(chunks))
					return
				}
				chunks[c].Add(1)
				if lo != c*tc.size || hi != min(tc.n, (c+1)*tc.size) {
					t.Errorf("chunk %d covers [%d, %d), want [%d, %d)", c, lo, hi, c*tc.size, min(tc.n, (c+1)*tc.size))
				}
				for i := lo; i < hi; i++ {
					visits[i].Add(1)
				}
			})
			for c := range chunks {
				if v := chunks[c].Load(); v != 1 {
					t.Errorf("chunk %d called %d times", c, v)
				}
			}
			for i := range visits {
				if v := visits[i].Load(); v != 1 {
					t.Fatalf("index %d visited %d times", i, v)
				}
			}
		})
	}
}

func TestForPanicsOnBadSize(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("For(10, 0, …) did not panic")
		}
	}()
	For(10, 0, func(int, int, int) {})
}

func TestForElems(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 1 << 15, 1<<15 + 1, 1<<17 + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			visits := make([]atomic.Int32, n)
			ForElems(n, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					visits[i].Add(1)
				}
			})
			for i := range visits {
				if v := visits[i].Load(); v != 1 {
					t.Fatalf("index %d visited %d times", i, v)
				}
			}
		})
	}
}

func TestElementwise(t *testing.T) {
	x := []float32{-2, -0.5, 0, 0.5, 3}
	y := make([]float32, len(x))
	Relu(y, x)
	if want := []float32{0, 0, 0, 0.5, 3}; !equal(y, want) {
		t.Errorf("Relu = %v, want %v", y, want)
	}
	dy := []float32{1, 2, 3, 4, 5}
	dx := make([]float32, len(x))
	ReluGrad(dx, dy, y)
	if want := []float32{0, 0, 0, 4, 5}; !equal(dx, want) {
		t.Errorf("ReluGrad = %v, want %v", dx, want)
	}
	// In place.
	ReluGrad(dy, dy, y)
	if want := []float32{0, 0, 0, 4, 5}; !equal(dy, want) {
		t.Errorf("ReluGrad in place = %v, want %v", dy, want)
	}
	Relu(x, x)
	if want := []float32{0, 0, 0, 0.5, 3}; !equal(x, want) {
		t.Errorf("Relu in place = %v, want %v", x, want)
	}

	acc := []float32{1, 1, 1}
	Axpy(-2, []float32{1, 2, 3}, acc)
	if want := []float32{-1, -3, -5}; !equal(acc, want) {
		t.Errorf("Axpy = %v, want %v", acc, want)
	}
	// Sum accumulates in float64: in float32, 2²⁴ + 1 rounds back to 2²⁴.
	if got := Sum([]float32{1 << 24, 1, 1, 1}); got != 1<<24+3 {
		t.Errorf("Sum = %v, want %v", got, 1<<24+3)
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkIm2col(b *testing.B) {
	for _, g := range []imGeom{{32, 32, 32, 3, 1, 1}, {64, 16, 16, 3, 1, 1}} {
		b.Run(fmt.Sprintf("C%d_%dx%d_k%d", g.c, g.h, g.w, g.k), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			img := randSlice(rng, g.h*g.w*g.c)
			col := make([]float32, outP(g)*g.k*g.k*g.c)
			b.SetBytes(int64(4 * len(col)))
			for b.Loop() {
				Im2col(col, img, g.h, g.w, g.c, g.k, g.stride, g.pad)
			}
		})
	}
}

// outP is the number of output positions of geometry g.
func outP(g imGeom) int {
	return ConvOut(g.h, g.k, g.stride, g.pad) * ConvOut(g.w, g.k, g.stride, g.pad)
}

// TestIm2colBlocks checks that Im2col and Col2im, given slices of larger
// buffers (as the layers pass them: one sample's image out of a batch, one
// sample's rows out of a chunk's im2col matrix), read and write only within
// their slices' lengths, never in the spare capacity behind them.
func TestIm2colBlocks(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, g := range imGeoms {
		t.Run(g.String(), func(t *testing.T) {
			const sentinel = -7
			in, out := g.h*g.w*g.c, outP(g)*g.k*g.k*g.c
			// Three images side by side; the middle one is ours, the last
			// is NaN so that a read past the end shows.
			imgs := randSlice(rng, 3*in)
			for i := 2 * in; i < 3*in; i++ {
				imgs[i] = float32(math.NaN())
			}
			img := imgs[in : 2*in]
			want := naiveIm2col(img, g.h, g.w, g.c, g.k, g.stride, g.pad)
			cols := make([]float32, 3*out)
			for i := range cols {
				cols[i] = sentinel
			}
			col := cols[out : 2*out]
			Im2col(col, img, g.h, g.w, g.c, g.k, g.stride, g.pad)
			for i, v := range cols {
				inBlock := i >= out && i < 2*out
				if inBlock && v != want[i-out] || !inBlock && v != sentinel {
					t.Fatalf("cols[%d] (block %d) = %v", i, i/max(1, out), v)
				}
			}

			// Col2im of our block into the middle image of three: the
			// neighbours stay as they were.
			back := make([]float32, 3*in)
			for i := range back {
				back[i] = sentinel
			}
			clear(back[in : 2*in])
			Col2im(back[in:2*in], col, g.h, g.w, g.c, g.k, g.stride, g.pad)
			ref := make([]float32, in)
			Col2im(ref, want, g.h, g.w, g.c, g.k, g.stride, g.pad)
			for i, v := range back {
				inBlock := i >= in && i < 2*in
				if inBlock && math.Abs(float64(v-ref[i-in])) > 1e-5 || !inBlock && v != sentinel {
					t.Fatalf("Col2im into a slice: img[%d] (block %d) = %v", i, i/in, v)
				}
			}
		})
	}
}
