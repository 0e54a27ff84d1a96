package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naivePaddedMaxPool is MaxPoolPad written out: padding never wins, ties
// go to the first position in row-major window order.
func naivePaddedMaxPool(src []float32, h, w, c, k, stride, pad int) ([]float32, []int32) {
	oh, ow := ConvOut(h, k, stride, pad), ConvOut(w, k, stride, pad)
	dst, arg := make([]float32, oh*ow*c), make([]int32, oh*ow*c)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			for j := 0; j < c; j++ {
				best, at := float32(math.Inf(-1)), int32(-1)
				for ky := 0; ky < k; ky++ {
					for kx := 0; kx < k; kx++ {
						y, x := oy*stride-pad+ky, ox*stride-pad+kx
						if y < 0 || y >= h || x < 0 || x >= w {
							continue
						}
						if v := src[(y*w+x)*c+j]; at < 0 || v > best {
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

func TestMaxPoolPad(t *testing.T) {
	type geom struct{ h, w, c, k, stride, pad int }
	geoms := []geom{{8, 8, 4, 3, 2, 1}, {7, 5, 3, 3, 2, 1}, {16, 16, 16, 3, 2, 1}, {1, 1, 2, 3, 2, 1},
		{2, 3, 2, 3, 2, 1}, {6, 6, 5, 2, 2, 1}, {5, 6, 3, 3, 1, 1}, {9, 9, 2, 5, 2, 2}, {6, 5, 3, 3, 2, 0}}
	forPaths(t, func(t *testing.T) {
		for _, g := range geoms {
			t.Run(fmt.Sprintf("%+v", g), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(g.c), uint64(g.h*g.w+g.pad)))
				src := rowValues(rng, g.h*g.w*g.c)
				for i := range src {
					if rng.IntN(4) == 0 { // ties
						src[i] = float32(rng.IntN(3)) / 2
					}
					src[i] -= 5 // all negative: padding must never win as a 0 would
				}
				want, wantArg := naivePaddedMaxPool(src, g.h, g.w, g.c, g.k, g.stride, g.pad)
				dst, arg := guarded(len(want), 16), make([]int32, len(want))
				MaxPoolPad(dst, arg, src, g.h, g.w, g.c, g.k, g.stride, g.pad)
				checkGuard(t, "MaxPoolPad", dst, 16)
				for i := range want {
					if dst[i] != want[i] || arg[i] != wantArg[i] {
						t.Fatalf("out %d: %v at %d, want %v at %d", i, dst[i], arg[i], want[i], wantArg[i])
					}
				}
				dy := rowValues(rng, len(want))
				wantDx := make([]float32, len(src))
				ow := ConvOut(g.w, g.k, g.stride, g.pad)
				for o, a := range wantArg {
					pix, j := o/g.c, o%g.c
					oy, ox := pix/ow, pix%ow
					y, x := oy*g.stride-g.pad+int(a)/g.k, ox*g.stride-g.pad+int(a)%g.k
					wantDx[(y*g.w+x)*g.c+j] += dy[o]
				}
				dx := guarded(len(src), 16)
				MaxPoolPadGrad(dx, dy, arg, g.h, g.w, g.c, g.k, g.stride, g.pad)
				checkGuard(t, "MaxPoolPadGrad", dx, 16)
				for i := range dx {
					if dx[i] != wantDx[i] {
						t.Fatalf("dx[%d] = %v, want %v", i, dx[i], wantDx[i])
					}
				}
			})
		}
	})
}

func TestMaxPoolPadRefusesWidePadding(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MaxPoolPad with pad 2 > k/2 for k = 3 did not panic")
		}
	}()
	MaxPoolPad(make([]float32, 64), make([]int32, 64), make([]float32, 64), 4, 4, 1, 3, 1, 2)
}

// TestAddPaths checks Add and AddRelu against the scalar sums on every
// path, with dst separate and aliasing either operand, at lengths around
// the vector widths.
func TestAddPaths(t *testing.T) {
	forPaths(t, func(t *testing.T) {
		for _, n := range []int{0, 1, 7, 8, 15, 16, 17, 33, 100} {
			rng := rand.New(rand.NewPCG(uint64(n), 3))
			a, b := specialValues(rng, n), rowValues(rng, n)
			for i, v := range a {
				if math.IsNaN(float64(v)) {
					a[i] = 1.5 // a NaN's payload may come from either operand
				}
			}
			want, wantRelu := make([]float32, n), make([]float32, n)
			for i := range a {
				want[i] = a[i] + b[i]
				wantRelu[i] = want[i]
				if !(want[i] > 0) {
					wantRelu[i] = 0
				}
			}
			same := func(what string, got, want []float32) {
				t.Helper()
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s n=%d [%d]: %v, want %v", what, n, i, got[i], want[i])
					}
				}
			}
			dst := guarded(n, 16)
			Add(dst, a, b)
			checkGuard(t, "Add", dst, 16)
			same("Add", dst, want)
			ac, bc := append([]float32(nil), a...), append([]float32(nil), b...)
			Add(ac, ac, b)
			same("Add into a", ac, want)
			Add(bc, a, bc)
			same("Add into b", bc, want)
			AddRelu(dst, a, b)
			same("AddRelu", dst, wantRelu)
			bc = append(bc[:0], b...)
			AddRelu(bc, a, bc)
			same("AddRelu into b", bc, wantRelu)
		}
	})
}
