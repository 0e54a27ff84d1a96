package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// upGeoms are the geometries of the upsampled-convolution tests: single
// pixels, rows shorter and longer than every tile, odd sides, channel
// counts that leave partial panels and partial channel tiles, and enough
// samples on small images for tiles across samples, with a partial group.
var upGeoms = []struct{ n, h, w, c, cols int }{
	{1, 1, 1, 1, 1},
	{9, 2, 2, 5, 20},
	{13, 3, 4, 16, 35},
	{2, 2, 2, 3, 16},
	{1, 3, 5, 7, 20},
	{2, 4, 4, 16, 32},
	{1, 2, 9, 9, 3},
	{2, 8, 8, 8, 48},
	{1, 5, 16, 16, 33},
	{1, 3, 17, 5, 64},
}

// upVariant is one way of running the three passes: in place with one
// micro-kernel (tiles along rows, or across samples on small images; the
// weight gradient summing along rows, or across samples), or packed (by
// Gemm, on the path in use).
type upVariant struct {
	name string
	fwd  func(out, xp []float32, n, h, w, c int, wk []float32, cols int)
	dx   func(dx, dys []float32, n, h, w, cols int, bx []float32, c int)
	dw   func(g, xp []float32, n, h, w, c int, dys []float32, cols int)
}

func upVariants() []upVariant {
	vs := []upVariant{{"packed", upConvPacked, upConvInputGradPacked, upConvWeightGradPacked}}
	for _, mk := range kernels {
		vs = append(vs, upVariant{mk.name,
			func(out, xp []float32, n, h, w, c int, wk []float32, cols int) {
				upConv(mk, out, xp, n, h, w, c, wk, cols)
			},
			func(dx, dys []float32, n, h, w, cols int, bx []float32, c int) {
				upConvInputGrad(mk, dx, dys, n, h, w, cols, bx, c)
			},
			func(g, xp []float32, n, h, w, c int, dys []float32, cols int) {
				upConvWeightGrad(mk, g, xp, n, h, w, c, dys, cols)
			}})
		vs = append(vs, upVariant{mk.name + "/across",
			func(out, xp []float32, n, h, w, c int, wk []float32, cols int) {
				upConv(mk, out, xp, n, h, w, c, wk, cols)
			},
			func(dx, dys []float32, n, h, w, cols int, bx []float32, c int) {
				upConvInputGrad(mk, dx, dys, n, h, w, cols, bx, c)
			},
			func(g, xp []float32, n, h, w, c int, dys []float32, cols int) {
				upConvWeightGradAcross(mk, g, xp, n, h, w, c, dys, cols)
			}})
	}
	return vs
}

// upNaive returns the 3×3, pad-1 convolution of x [n, h, w, c] upsampled
// 2× by nearest neighbour, with w3 [cols, 3, 3, c], in float64.
func upNaive(x, w3 []float32, n, h, w, c, cols int) []float64 {
	H, W := 2*h, 2*w
	out := make([]float64, n*H*W*cols)
	for i := 0; i < n; i++ {
		for Y := 0; Y < H; Y++ {
			for X := 0; X < W; X++ {
				for o := 0; o < cols; o++ {
					var s float64
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							yy, xx := Y+ky-1, X+kx-1
							if yy < 0 || yy >= H || xx < 0 || xx >= W {
								continue
							}
							for ci := 0; ci < c; ci++ {
								s += float64(x[((i*h+yy/2)*w+xx/2)*c+ci]) * float64(w3[((o*3+ky)*3+kx)*c+ci])
							}
						}
					}
					out[((i*H+Y)*W+X)*cols+o] = s
				}
			}
		}
	}
	return out
}

// padOne pads x [n, h, w, c] by one zero pixel on each side and adds
// Slack·c floats of zeros.
func padOne(x []float32, n, h, w, c int) []float32 {
	hp, wp := h+2, w+2
	xp := make([]float32, n*hp*wp*c+Slack*c)
	for i := 0; i < n; i++ {
		for y := 0; y < h; y++ {
			copy(xp[((i*hp+y+1)*wp+1)*c:], x[((i*h+y)*w)*c:((i*h+y+1)*w)*c])
		}
	}
	return xp[:n*hp*wp*c]
}

func closeTo(got float32, want, scale float64) bool {
	return math.Abs(float64(got)-want) <= 1e-4*(1+scale)
}

// upNaiveAdjoint returns the gradients of Σ dy·upNaive(x, w3) with
// respect to x and w3, in float64, by running the naive convolution's
// loops and adding each product's factors' partner into the gradients.
func upNaiveAdjoint(x, w3, dy []float32, n, h, w, c, cols int) (dx, dw []float64) {
	H, W := 2*h, 2*w
	dx, dw = make([]float64, len(x)), make([]float64, len(w3))
	for i := 0; i < n; i++ {
		for Y := 0; Y < H; Y++ {
			for X := 0; X < W; X++ {
				for o := 0; o < cols; o++ {
					g := float64(dy[((i*H+Y)*W+X)*cols+o])
					for ky := 0; ky < 3; ky++ {
						for kx := 0; kx < 3; kx++ {
							yy, xx := Y+ky-1, X+kx-1
							if yy < 0 || yy >= H || xx < 0 || xx >= W {
								continue
							}
							xi, wi := ((i*h+yy/2)*w+xx/2)*c, ((o*3+ky)*3+kx)*c
							for ci := 0; ci < c; ci++ {
								dx[xi+ci] += g * float64(w3[wi+ci])
								dw[wi+ci] += g * float64(x[xi+ci])
							}
						}
					}
				}
			}
		}
	}
	return dx, dw
}

// TestUpConv checks the forward pass of every micro-kernel against a
// naive upsampling and convolution, and that nothing past the output is
// written.
func TestUpConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, v := range upVariants() {
		for _, g := range upGeoms {
			t.Run(fmt.Sprintf("%s/%+v", v.name, g), func(t *testing.T) {
				x := randSlice(rng, g.n*g.h*g.w*g.c)
				w3 := randSlice(rng, g.cols*9*g.c)
				wk := make([]float32, 16*g.c*g.cols)
				UpConvWeights(wk, w3, g.cols, g.c)
				size := g.n * 4 * g.h * g.w * g.cols
				out := make([]float32, size+5)
				for i := range out {
					out[i] = float32(math.NaN())
				}
				v.fwd(out, padOne(x, g.n, g.h, g.w, g.c), g.n, g.h, g.w, g.c, wk, g.cols)
				want := upNaive(x, w3, g.n, g.h, g.w, g.c, g.cols)
				for i, v := range want {
					if !closeTo(out[i], v, math.Abs(v)+float64(9*g.c)) {
						t.Fatalf("out[%d] = %v, want %v", i, out[i], v)
					}
				}
				for _, v := range out[size:] {
					if !math.IsNaN(float64(v)) {
						t.Fatal("wrote past the output")
					}
				}
			})
		}
	}
}

// TestUpConvGrads checks the input and weight gradients of every
// micro-kernel against the naive adjoint of the upsampling and
// convolution, with PadSpaceToDepth's output and the weight folds.
func TestUpConvGrads(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, v := range upVariants() {
		for _, g := range upGeoms {
			t.Run(fmt.Sprintf("%s/%+v", v.name, g), func(t *testing.T) {
				nx, nw := g.n*g.h*g.w*g.c, g.cols*9*g.c
				x, w3 := randSlice(rng, nx), randSlice(rng, nw)
				dy := randSlice(rng, g.n*4*g.h*g.w*g.cols)
				dys := make([]float32, g.n*(g.h+2)*(g.w+2)*4*g.cols+Slack*4*g.cols)
				for i := range dys {
					dys[i] = float32(math.NaN()) // PadSpaceToDepth writes every float
				}
				PadSpaceToDepth(dys, dy, g.n, g.h, g.w, g.cols, true)
				wk := make([]float32, 16*g.c*g.cols)
				UpConvWeights(wk, w3, g.cols, g.c)
				bx := make([]float32, 16*g.c*g.cols)
				UpConvInputWeights(bx, wk, g.cols, g.c)
				dx := randSlice(rng, nx) // overwritten
				v.dx(dx, dys, g.n, g.h, g.w, g.cols, bx, g.c)
				gk := randSlice(rng, 16*g.c*g.cols) // overwritten
				v.dw(gk, padOne(x, g.n, g.h, g.w, g.c), g.n, g.h, g.w, g.c, dys, g.cols)
				gw := make([]float32, nw)
				AddUpConvWeightGrad(gw, gk, g.cols, g.c)

				wantX, wantW := upNaiveAdjoint(x, w3, dy, g.n, g.h, g.w, g.c, g.cols)
				for j, v := range wantX {
					if !closeTo(dx[j], v, math.Abs(v)+float64(16*g.cols)) {
						t.Fatalf("dx[%d] = %v, want %v", j, dx[j], v)
					}
				}
				for j, v := range wantW {
					if !closeTo(gw[j], v, math.Abs(v)+float64(4*g.n*g.h*g.w)) {
						t.Fatalf("dw[%d] = %v, want %v", j, gw[j], v)
					}
				}
			})
		}
	}
}

// TestUpConvCoreCountInvariant checks that the three passes give the same
// bits for any number of goroutines.
func TestUpConvCoreCountInvariant(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	const n, h, w, c, cols = 9, 6, 10, 24, 40
	xp := padOne(randSlice(rng, n*h*w*c), n, h, w, c)
	wk := randSlice(rng, 16*c*cols) // also as the input-gradient weights
	dys := make([]float32, n*(h+2)*(w+2)*4*cols+Slack*4*cols)
	PadSpaceToDepth(dys, randSlice(rng, n*4*h*w*cols), n, h, w, cols, true)
	for _, v := range upVariants() {
		var ref [][]float32
		for _, procs := range []int{1, 2, 3, 8} {
			old := runtime.GOMAXPROCS(procs)
			out := make([]float32, n*4*h*w*cols)
			v.fwd(out, xp, n, h, w, c, wk, cols)
			dx := make([]float32, n*h*w*c)
			v.dx(dx, dys, n, h, w, cols, wk, c)
			g := make([]float32, 16*c*cols)
			v.dw(g, xp, n, h, w, c, dys, cols)
			runtime.GOMAXPROCS(old)
			got := [][]float32{out, dx, g}
			if ref == nil {
				ref = got
				continue
			}
			for i, name := range []string{"forward", "input gradient", "weight gradient"} {
				if !slices.Equal(ref[i], got[i]) {
					t.Errorf("%s %s: GOMAXPROCS=%d gives other bits than GOMAXPROCS=1", v.name, name, procs)
				}
			}
		}
	}
}

// TestUpConvNeedsSlack checks the panic on an input without slack.
func TestUpConvNeedsSlack(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for an input without slack")
		}
	}()
	UpConv(make([]float32, 64), make([]float32, 4*4*2), 1, 2, 2, 2, make([]float32, 32), 1)
}

// TestPadSpaceToDepthInterior checks that a call without the border
// rewrites every interior value and leaves the border of an earlier call.
func TestPadSpaceToDepthInterior(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	const n, h, w, cols = 2, 3, 5, 4
	size := n*(h+2)*(w+2)*4*cols + Slack*4*cols
	want, got := make([]float32, size), make([]float32, size)
	PadSpaceToDepth(got, randSlice(rng, n*4*h*w*cols), n, h, w, cols, true)
	dy := randSlice(rng, n*4*h*w*cols)
	PadSpaceToDepth(want, dy, n, h, w, cols, true)
	PadSpaceToDepth(got, dy, n, h, w, cols, false)
	if !slices.Equal(got, want) {
		t.Error("the interior-only call differs from a full one")
	}
}
