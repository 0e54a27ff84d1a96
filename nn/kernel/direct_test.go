package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestDirectConv checks every micro-kernel's direct convolution against
// a naive loop, over geometries with partial tiles in both directions and
// with the minimum slack after the input.
func TestDirectConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, mk := range kernels {
		for _, g := range []struct{ n, hp, wp, c, k, cols int }{
			{1, 3, 3, 1, 3, 1},
			{2, 6, 8, 3, 3, 16},
			{2, 10, 19, 5, 3, 20},
			{1, 9, 9, 16, 5, 32},
			{3, 4, 22, 8, 1, 17},
			{2, 18, 18, 32, 3, 3},
			// Few output channels: several pixels per tile row (narrowGroup).
			{2, 6, 34, 32, 3, 3},
			{1, 5, 18, 5, 3, 2},
			{2, 7, 20, 3, 5, 4},
			// Short rows and enough samples: tiles across samples, with a
			// partial group.
			{9, 6, 6, 16, 3, 32},
			{10, 4, 4, 5, 3, 20},
		} {
			t.Run(fmt.Sprintf("%s/%+v", mk.name, g), func(t *testing.T) {
				oh, ow, kk := g.hp-g.k+1, g.wp-g.k+1, g.k*g.k*g.c
				size := g.n * g.hp * g.wp * g.c
				xp := randSlice(rng, size+8*g.c)[:size]
				b := randSlice(rng, kk*g.cols)
				out := make([]float32, g.n*oh*ow*g.cols+5)
				for i := range out {
					out[i] = float32(math.NaN())
				}
				directConv(mk, out, xp, g.n, g.hp, g.wp, g.c, g.k, b, g.cols)
				for i := 0; i < g.n; i++ {
					for oy := 0; oy < oh; oy++ {
						for ox := 0; ox < ow; ox++ {
							for j := 0; j < g.cols; j++ {
								var s float64
								for ki := 0; ki < g.k; ki++ {
									for kj := 0; kj < g.k; kj++ {
										for ci := 0; ci < g.c; ci++ {
											s += float64(xp[((i*g.hp+oy+ki)*g.wp+ox+kj)*g.c+ci]) * float64(b[((ki*g.k+kj)*g.c+ci)*g.cols+j])
										}
									}
								}
								got := out[((i*oh+oy)*ow+ox)*g.cols+j]
								if math.Abs(float64(got)-s) > 1e-4*(1+math.Abs(s)) {
									t.Fatalf("out[%d,%d,%d,%d] = %v, want %v", i, oy, ox, j, got, s)
								}
							}
						}
					}
				}
				for _, v := range out[g.n*oh*ow*g.cols:] {
					if !math.IsNaN(float64(v)) {
						t.Fatalf("wrote past the output")
					}
				}
			})
		}
	}
}

// TestDirectConvUnpadded checks that padding on the fly gives DirectConv's
// result on the padded images bit for bit, on every path, with runs of
// rows that cross samples, partial tiles, and the tilings that fall back
// to a padded copy (few output channels, short rows).
func TestDirectConvUnpadded(t *testing.T) {
	forPaths(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, g := range []struct{ n, h, w, c, k, pad, cols int }{
			{3, 7, 16, 16, 3, 1, 32},
			{2, 5, 19, 8, 3, 2, 20},
			{1, 9, 17, 5, 5, 2, 48},
			{2, 6, 32, 32, 3, 1, 3},
			{9, 4, 4, 16, 3, 1, 32},
			{2, 16, 16, 3, 3, 0, 16},
		} {
			t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
				hp, wp := g.h+2*g.pad, g.w+2*g.pad
				oh, ow := hp-g.k+1, wp-g.k+1
				x := randSlice(rng, g.n*g.h*g.w*g.c)
				b := randSlice(rng, g.k*g.k*g.c*g.cols)
				xp := make([]float32, g.n*hp*wp*g.c+Slack*g.c)
				for i := 0; i < g.n; i++ {
					for y := 0; y < g.h; y++ {
						copy(xp[((i*hp+y+g.pad)*wp+g.pad)*g.c:], x[(i*g.h+y)*g.w*g.c:(i*g.h+y+1)*g.w*g.c])
					}
				}
				want := make([]float32, g.n*oh*ow*g.cols)
				DirectConv(want, xp[:g.n*hp*wp*g.c], g.n, hp, wp, g.c, g.k, b, g.cols)
				got := make([]float32, len(want)+3)
				DirectConvUnpadded(got, x, g.n, g.h, g.w, g.c, g.k, g.pad, b, g.cols)
				if i := bitsEqual(got[:len(want)], want); i >= 0 {
					t.Fatalf("out[%d] = %v, want %v", i, got[i], want[i])
				}
				for _, v := range got[len(want):] {
					if v != 0 {
						t.Fatal("wrote past the output")
					}
				}
			})
		}
	})
}

// TestDirectConvNeedsSlack checks the panic on an input without slack.
func TestDirectConvNeedsSlack(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an input without slack")
		}
	}()
	DirectConv(make([]float32, 16), make([]float32, 4*4*2), 1, 4, 4, 2, 3, make([]float32, 18), 1)
}

// TestDirectConvWeightGrad checks every micro-kernel's direct weight
// gradient against a naive sum, with partial channel panels (c not a
// multiple of 6), fewer channels than a tile's rows, and several samples;
// the sums across samples for small images; and the transposed form for
// few output channels, with c the tile's width.
func TestDirectConvWeightGrad(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	type geometry struct{ n, hp, wp, c, k, cols int }
	for _, mk := range kernels {
		for _, g := range []geometry{
			{1, 4, 4, 1, 3, 16},
			{2, 6, 8, 3, 3, 16},
			{3, 10, 19, 8, 3, 32},
			{1, 9, 20, 16, 5, 16},
			{2, 5, 22, 7, 1, 16},
		} {
			t.Run(fmt.Sprintf("%s/%+v", mk.name, g), func(t *testing.T) {
				checkWeightGrad(t, rng, g.n, g.hp, g.wp, g.c, g.k, g.cols, func(got, xp, dy []float32) {
					directConvWeightGrad(mk, got, xp, g.n, g.hp, g.wp, g.c, g.k, dy, g.cols)
				})
			})
		}
		for _, g := range []geometry{
			{2, 6, 8, 3, 3, 16},
			{9, 6, 6, 16, 3, 32},
			{10, 4, 4, 5, 3, 20},
		} {
			t.Run(fmt.Sprintf("%s/across/%+v", mk.name, g), func(t *testing.T) {
				checkWeightGrad(t, rng, g.n, g.hp, g.wp, g.c, g.k, g.cols, func(got, xp, dy []float32) {
					directConvWeightGradAcross(mk, got, xp, g.n, g.hp, g.wp, g.c, g.k, dy, g.cols)
				})
			})
		}
		for _, g := range []geometry{
			{2, 6, 9, mk.nr, 3, 3},
			{1, 5, 7, mk.nr, 3, 1},
			{3, 4, 6, mk.nr, 1, mk.mr / 2},
		} {
			t.Run(fmt.Sprintf("%s/narrow/%+v", mk.name, g), func(t *testing.T) {
				checkWeightGrad(t, rng, g.n, g.hp, g.wp, g.c, g.k, g.cols, func(got, xp, dy []float32) {
					directConvWeightGradNarrow(mk, got, xp, g.n, g.hp, g.wp, g.c, g.k, dy, g.cols)
				})
			})
		}
	}
}

// checkWeightGrad runs grad on random inputs of the geometry, with the
// minimum slack after xp, and compares what it writes with a naive sum.
func checkWeightGrad(t *testing.T, rng *rand.Rand, n, hp, wp, c, k, cols int, grad func(got, xp, dy []float32)) {
	t.Helper()
	oh, ow, kk := hp-k+1, wp-k+1, k*k*c
	size := n * hp * wp * c
	xp := randSlice(rng, size+Slack*c)[:size]
	dy := randSlice(rng, n*oh*ow*cols)
	got := randSlice(rng, kk*cols) // overwritten
	grad(got, xp, dy)
	for ki := 0; ki < k; ki++ {
		for kj := 0; kj < k; kj++ {
			for ci := 0; ci < c; ci++ {
				for j := 0; j < cols; j++ {
					var s float64
					for i := 0; i < n; i++ {
						for oy := 0; oy < oh; oy++ {
							for ox := 0; ox < ow; ox++ {
								s += float64(xp[((i*hp+oy+ki)*wp+ox+kj)*c+ci]) * float64(dy[((i*oh+oy)*ow+ox)*cols+j])
							}
						}
					}
					v := got[((ki*k+kj)*c+ci)*cols+j]
					if math.Abs(float64(v)-s) > 1e-3*(1+math.Abs(s)) {
						t.Fatalf("g[tap %d,%d ci %d, %d] = %v, want %v", ki, kj, ci, j, v, s)
					}
				}
			}
		}
	}
}

// TestNarrowGroup checks which convolutions put several output pixels in
// a tile row: few output channels and rows that split into whole tiles.
func TestNarrowGroup(t *testing.T) {
	for _, c := range []struct{ cols, ow, want int }{
		{3, 32, 4},  // 8 groups of 4 pixels, 2 tiles of the 4-row kernel
		{3, 30, 1},  // no group size splits 30 pixels into whole tiles
		{2, 16, 4},  // 8 columns of 16 in use
		{16, 32, 1}, // a whole tile of channels already
		{1, 64, 16},
	} {
		if got := narrowGroup(genericKernel, c.cols, c.ow); got != c.want {
			t.Errorf("narrowGroup(generic, cols %d, ow %d) = %d, want %d", c.cols, c.ow, got, c.want)
		}
	}
}
