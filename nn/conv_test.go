package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// naiveConv2D is Conv2D's forward pass from the definition, in float64, on
// channels-last x [N, H, W, InC] with the weight [OutC, K, K, InC]: output
// [N, OH, OW, OutC].
func naiveConv2D(l *Conv2D, x *Tensor) (y []float64, oh, ow int) {
	n, h, w, c := dims4("naive", x)
	k, s, p := l.K, l.Stride, l.Pad
	oh, ow = (h+2*p-k)/s+1, (w+2*p-k)/s+1
	wt := l.Weight.Value.Data
	y = make([]float64, n*l.OutC*oh*ow)
	for b := 0; b < n; b++ {
		for o := 0; o < l.OutC; o++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					var sum float64
					if l.Bias != nil {
						sum = float64(l.Bias.Value.Data[o])
					}
					for ci := 0; ci < c; ci++ {
						for ki := 0; ki < k; ki++ {
							for kj := 0; kj < k; kj++ {
								iy, ix := oy*s-p+ki, ox*s-p+kj
								if iy < 0 || iy >= h || ix < 0 || ix >= w {
									continue
								}
								sum += float64(x.Data[((b*h+iy)*w+ix)*c+ci]) * float64(wt[((o*k+ki)*k+kj)*c+ci])
							}
						}
					}
					y[((b*oh+oy)*ow+ox)*l.OutC+o] = sum
				}
			}
		}
	}
	return y, oh, ow
}

// naiveConvTranspose2D is ConvTranspose2D's forward pass from the
// definition, in float64: each input pixel scatters its kernel-weighted
// value into the output. x is [N, H, W, InC], the weight [InC, K, K, OutC],
// the output [N, OH, OW, OutC].
func naiveConvTranspose2D(l *ConvTranspose2D, x *Tensor) (y []float64, oh, ow int) {
	n, h, w, c := dims4("naive", x)
	k, s, p := l.K, l.Stride, l.Pad
	oh, ow = (h-1)*s-2*p+k+l.OutPad, (w-1)*s-2*p+k+l.OutPad
	wt := l.Weight.Value.Data
	y = make([]float64, n*l.OutC*oh*ow)
	for b := 0; b < n; b++ {
		for i := 0; i < oh*ow; i++ {
			for o := 0; o < l.OutC; o++ {
				if l.Bias != nil {
					y[(b*oh*ow+i)*l.OutC+o] = float64(l.Bias.Value.Data[o])
				}
			}
		}
		for ci := 0; ci < c; ci++ {
			for iy := 0; iy < h; iy++ {
				for ix := 0; ix < w; ix++ {
					v := float64(x.Data[((b*h+iy)*w+ix)*c+ci])
					for o := 0; o < l.OutC; o++ {
						for ki := 0; ki < k; ki++ {
							for kj := 0; kj < k; kj++ {
								oy, ox := iy*s-p+ki, ix*s-p+kj
								if oy < 0 || oy >= oh || ox < 0 || ox >= ow {
									continue
								}
								y[((b*oh+oy)*ow+ox)*l.OutC+o] += v * float64(wt[((ci*k+ki)*k+kj)*l.OutC+o])
							}
						}
					}
				}
			}
		}
	}
	return y, oh, ow
}

// compareTensor checks got against want within a float32 tolerance.
func compareTensor(t *testing.T, got *Tensor, want []float64, shape ...int) {
	t.Helper()
	if fmt.Sprint(got.Shape) != fmt.Sprint(shape) {
		t.Fatalf("shape %v, want %v", got.Shape, shape)
	}
	for i, w := range want {
		if d := math.Abs(float64(got.Data[i]) - w); d > 1e-5+1e-5*math.Abs(w) || math.IsNaN(float64(got.Data[i])) {
			t.Fatalf("y[%d] = %v, want %v", i, got.Data[i], w)
		}
	}
}

type convGeom struct {
	n, c, h, w, outC, k, stride, pad int
}

func (g convGeom) String() string {
	return fmt.Sprintf("N%d_C%d_%dx%d_O%d_k%d_s%d_p%d", g.n, g.c, g.h, g.w, g.outC, g.k, g.stride, g.pad)
}

// convGeoms covers strides 1–3, paddings 0–2, kernels 1, 3 and 5,
// non-square inputs and batches of 1 and 5, plus inputs narrower than the
// kernel's reach.
func convGeoms() []convGeom {
	var gs []convGeom
	for _, n := range []int{1, 5} {
		for _, k := range []int{1, 3, 5} {
			for _, s := range []int{1, 2, 3} {
				for _, p := range []int{0, 1, 2} {
					h, w := 7, 9
					if n == 5 {
						h, w = 6, 5
					}
					if h+2*p < k || w+2*p < k {
						continue
					}
					gs = append(gs, convGeom{n: n, c: 2, h: h, w: w, outC: 3, k: k, stride: s, pad: p})
				}
			}
		}
	}
	return append(gs,
		convGeom{n: 2, c: 3, h: 4, w: 1, outC: 2, k: 5, stride: 1, pad: 2},
		convGeom{n: 1, c: 1, h: 1, w: 1, outC: 2, k: 5, stride: 1, pad: 2},
		convGeom{n: 3, c: 2, h: 2, w: 3, outC: 2, k: 7, stride: 1, pad: 3},
		convGeom{n: 9, c: 1, h: 3, w: 3, outC: 2, k: 3, stride: 1, pad: 1}, // several samples per chunk
		// Direct convolutions (stride 1, rows of ≥ 16 pixels, ≥ 16 input
		// and a multiple of 16 output channels), with partial row tiles.
		convGeom{n: 2, c: 16, h: 3, w: 17, outC: 16, k: 3, stride: 1, pad: 1},
		convGeom{n: 1, c: 16, h: 4, w: 20, outC: 32, k: 5, stride: 1, pad: 2},
		convGeom{n: 1, c: 24, h: 4, w: 18, outC: 16, k: 3, stride: 1, pad: 0},
		convGeom{n: 2, c: 16, h: 3, w: 17, outC: 3, k: 3, stride: 1, pad: 1}, // few output channels
	)
}

func TestConv2DForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, g := range convGeoms() {
		for _, bias := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v_bias%v", g, bias), func(t *testing.T) {
				l := NewConv2D("c", g.c, g.outC, g.k, g.stride, g.pad, bias, rng)
				if bias {
					Uniform(l.Bias.Value, 1, rng)
				}
				x := randTensor(rng, g.n, g.h, g.w, g.c)
				want, oh, ow := naiveConv2D(l, x)
				compareTensor(t, l.Forward(x, true), want, g.n, oh, ow, g.outC)
			})
		}
	}
}

func TestConvTranspose2DForward(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, g := range convGeoms() {
		outPads := []int{0}
		if g.stride > 1 {
			outPads = append(outPads, g.stride-1)
		}
		for _, outPad := range outPads {
			if (g.h-1)*g.stride-2*g.pad+g.k+outPad < 1 || (g.w-1)*g.stride-2*g.pad+g.k+outPad < 1 {
				continue // empty output
			}
			t.Run(fmt.Sprintf("%v_outpad%d", g, outPad), func(t *testing.T) {
				bias := outPad == 0
				l := NewConvTranspose2D("ct", g.c, g.outC, g.k, g.stride, g.pad, outPad, bias, rng)
				if bias {
					Uniform(l.Bias.Value, 1, rng)
				}
				x := randTensor(rng, g.n, g.h, g.w, g.c)
				want, oh, ow := naiveConvTranspose2D(l, x)
				compareTensor(t, l.Forward(x, true), want, g.n, oh, ow, g.outC)
			})
		}
	}
}

// TestConvTransposeIsAdjoint checks <conv(x), y> == <x, convT(y)> for a
// conv and a transposed conv sharing one weight, without biases.
func TestConvTransposeIsAdjoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	for _, g := range convGeoms() {
		// Give W the same rounding residue as H, so one outPad undoes the
		// rounding of the strided convolution in both dimensions.
		g.w = g.h + g.stride
		if g.h+2*g.pad < g.k {
			continue
		}
		t.Run(g.String(), func(t *testing.T) {
			conv := NewConv2D("c", g.c, g.outC, g.k, g.stride, g.pad, false, rng)
			outPad := (g.h + 2*g.pad - g.k) % g.stride
			tr := NewTiedConvTranspose2D("ct", conv, outPad, false)
			x := randTensor(rng, g.n, g.h, g.w, g.c)
			cx := conv.Forward(x, true)
			y := randTensor(rng, cx.Shape...)
			ty := tr.Forward(y, true)
			if fmt.Sprint(ty.Shape) != fmt.Sprint(x.Shape) {
				t.Fatalf("convT maps %v back to %v, want %v", y.Shape, ty.Shape, x.Shape)
			}
			lhs, rhs := dot32(cx.Data, y.Data), dot32(x.Data, ty.Data)
			var scale float64
			for i := range y.Data {
				scale += math.Abs(float64(cx.Data[i]) * float64(y.Data[i]))
			}
			if math.Abs(lhs-rhs) > 1e-5*(1+scale) {
				t.Errorf("<conv(x), y> = %.8g, <x, convT(y)> = %.8g", lhs, rhs)
			}
		})
	}
}

// TestConvTransposeBackwardIsConv checks that the input gradient of a
// transposed conv is the forward pass of the conv it is tied to.
func TestConvTransposeBackwardIsConv(t *testing.T) {
	rng := rand.New(rand.NewPCG(27, 28))
	conv := NewConv2D("c", 3, 4, 3, 2, 1, false, rng)
	tr := NewTiedConvTranspose2D("ct", conv, 1, false)
	x := randTensor(rng, 2, 3, 4, 4)
	y := tr.Forward(x, true)
	dy := randTensor(rng, y.Shape...)
	dx := tr.Backward(dy)
	want := conv.Forward(dy, true)
	for i := range want.Data {
		if math.Abs(float64(dx.Data[i]-want.Data[i])) > 1e-5 {
			t.Fatalf("convT.Backward(dy)[%d] = %v, conv.Forward(dy) = %v", i, dx.Data[i], want.Data[i])
		}
	}
}

func BenchmarkConv2D(b *testing.B) {
	for _, g := range []convGeom{
		{n: 8, c: 16, h: 32, w: 32, outC: 32, k: 3, stride: 1, pad: 1},
		{n: 32, c: 3, h: 32, w: 32, outC: 32, k: 3, stride: 1, pad: 1},
	} {
		b.Run(fmt.Sprintf("N%d_C%d_O%d_%dx%d", g.n, g.c, g.outC, g.h, g.w), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			l := NewConv2D("c", g.c, g.outC, g.k, g.stride, g.pad, true, rng)
			x := randTensor(rng, g.n, g.h, g.w, g.c)
			dy := randTensor(rng, l.Forward(x, true).Shape...)
			for b.Loop() {
				l.Forward(x, true)
				l.Backward(dy)
			}
			flop := 3 * 2 * float64(g.n*g.outC*g.h*g.w*g.c*g.k*g.k)
			b.ReportMetric(flop*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// ExampleNewTiedConvTranspose2D builds a decoder that reuses an encoder's
// kernels: a strided convolution and its transpose, sharing one weight.
func ExampleNewTiedConvTranspose2D() {
	rng, _ := NewRNG(1)
	enc := NewConv2D("enc", 3, 16, 3, 2, 1, true, rng)
	dec := NewTiedConvTranspose2D("dec", enc, 1, true)
	x := NewTensor(4, 32, 32, 3) // channels-last: [N, H, W, C]
	h := enc.Forward(x, true)
	y := dec.Forward(h, true)
	fmt.Println(h.Shape, y.Shape)
	fmt.Println(enc.Weight == dec.Weight, len(Unique(append(enc.Params(), dec.Params()...))))
	// Output:
	// [4 16 16 16] [4 32 32 3]
	// true 3
}

// smallInts fills t with integers in [−2, 2]: products and sums of a few
// hundred thousand of them are exact in float32, in any order, so results
// computed in different groupings must agree bit for bit.
func smallInts(t *Tensor, rng *rand.Rand) *Tensor {
	for i := range t.Data {
		t.Data[i] = float32(rng.IntN(5) - 2)
	}
	return t
}

// TestConvChunks checks Conv2D and ConvTranspose2D on a batch too large
// for one GEMM (so it is split into chunks of samples, the last one short)
// against the same layer run one sample at a time: the outputs and input
// gradients must match sample by sample, and the parameter gradients must
// be the sums of the per-sample ones. With small integer values every
// result is exact, so they must agree exactly.
func TestConvChunks(t *testing.T) {
	rng := rand.New(rand.NewPCG(29, 30))
	for _, tc := range []struct {
		name      string
		l         Layer
		in        []int
		perSample int // im2col floats per sample, see convScratch.size
	}{
		{"Conv2D", NewConv2D("c", 16, 3, 3, 1, 1, true, rng), []int{30, 32, 32, 16}, 32 * 32 * 3 * 3 * 16},
		{"ConvTranspose2D", NewConvTranspose2D("ct", 3, 64, 3, 2, 1, 1, true, rng), []int{30, 16, 16, 3}, 16 * 16 * 3 * 3 * 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The layers put as many samples in one GEMM as fit 4<<20 floats
			// of im2col matrix (colBudget in conv.go); this batch needs a
			// second, shorter chunk. An evaluation pass, so that Conv2D does
			// not keep the whole batch's matrix for Backward (see
			// TestConvKeptIm2col for that path).
			n := tc.in[0]
			if cs := (4 << 20) / tc.perSample; cs >= n || n%cs == 0 {
				t.Fatalf("%d samples fit %d per GEMM: want several chunks, the last one short", n, cs)
			}
			ps := tc.l.Params()
			for _, p := range ps {
				smallInts(p.Value, rng)
			}
			x := smallInts(NewTensor(tc.in...), rng)
			y := tc.l.Forward(x, false).Clone()
			dy := smallInts(NewTensor(y.Shape...), rng)
			ZeroGrads(ps)
			dx := tc.l.Backward(dy).Clone()
			grads := make([]*Tensor, len(ps))
			for i, p := range ps {
				grads[i] = p.Grad.Clone()
			}

			ZeroGrads(ps)
			for i := 0; i < n; i++ {
				yi := tc.l.Forward(x.Rows(i, i+1), true)
				if !slices.Equal(yi.Data, y.Rows(i, i+1).Data) {
					t.Fatalf("sample %d: output differs from the batched one", i)
				}
				dxi := tc.l.Backward(dy.Rows(i, i+1))
				if !slices.Equal(dxi.Data, dx.Rows(i, i+1).Data) {
					t.Fatalf("sample %d: input gradient differs from the batched one", i)
				}
			}
			for i, p := range ps {
				if !slices.Equal(p.Grad.Data, grads[i].Data) {
					t.Errorf("%s: batched gradient differs from the sum over samples", p.Name)
				}
			}
		})
	}
}

// TestDirectPaddedKept checks a direct layer's gradients when the padded
// input kept by a training Forward is used, dropped by an evaluation
// Forward in between, or never kept.
func TestDirectPaddedKept(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	nrng, _ := NewRNG(3)
	l := NewConv2D("c", 16, 16, 3, 1, 1, false, nrng)
	x := randTensor(rng, 2, 3, 17, 16)
	dy := randTensor(rng, 2, 3, 17, 16)
	grads := func(modes ...bool) ([]float32, []float32) {
		ZeroGrads(l.Params())
		for _, train := range modes {
			l.Forward(x, train)
		}
		dx := l.Backward(dy)
		return slices.Clone(dx.Data), slices.Clone(l.Weight.Grad.Data)
	}
	dx0, dw0 := grads(false)       // padded made in Backward
	dx1, dw1 := grads(true)        // kept from the training Forward
	dx2, dw2 := grads(true, false) // kept, then dropped by an evaluation Forward
	if !slices.Equal(dx0, dx1) || !slices.Equal(dw0, dw1) || !slices.Equal(dx0, dx2) || !slices.Equal(dw0, dw2) {
		t.Fatal("gradients depend on whether the padded input was kept")
	}
	if l.padded != nil {
		t.Fatal("padded input still held after Backward")
	}
}
