package pretext

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/patchwise-ml/patchwise/nn"
)

func TestAdaptiveAvgPool(t *testing.T) {
	// By hand: 3×3 to 2×2 gives the overlapping bins [0, 2) and [1, 3) on
	// each side, as PyTorch's AdaptiveAvgPool2d does.
	x := nn.FromData([]float32{0, 1, 2, 3, 4, 5, 6, 7, 8}, 1, 3, 3, 1)
	if got, want := adaptiveAvgPool(x, 2).Data, []float32{2, 3, 5, 6}; !slices.Equal(got, want) {
		t.Errorf("3×3 → 2×2: %v, want %v", got, want)
	}
	// Against a naive loop that visits every input pixel and adds it to
	// every bin whose range holds it.
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ h, w, p int }{{4, 4, 1}, {4, 4, 2}, {5, 7, 2}, {5, 7, 3}, {7, 5, 4}, {3, 3, 5}, {6, 6, 6}, {1, 1, 2}} {
		const n, c = 2, 3
		x := nn.NewTensor(n, tc.h, tc.w, c)
		for i := range x.Data {
			x.Data[i] = float32(rng.NormFloat64())
		}
		got := adaptiveAvgPool(x, tc.p)
		if want := []int{n, tc.p * tc.p * c}; !slices.Equal(got.Shape, want) {
			t.Fatalf("%+v: shape %v, want %v", tc, got.Shape, want)
		}
		sum := make([]float64, n*tc.p*tc.p*c)
		cnt := make([]float64, len(sum))
		for s := 0; s < n; s++ {
			for y := 0; y < tc.h; y++ {
				for xx := 0; xx < tc.w; xx++ {
					for i := 0; i < tc.p; i++ {
						lo, hi := math.Floor(float64(i*tc.h)/float64(tc.p)), math.Ceil(float64((i+1)*tc.h)/float64(tc.p))
						if float64(y) < lo || float64(y) >= hi {
							continue
						}
						for j := 0; j < tc.p; j++ {
							lo, hi := math.Floor(float64(j*tc.w)/float64(tc.p)), math.Ceil(float64((j+1)*tc.w)/float64(tc.p))
							if float64(xx) < lo || float64(xx) >= hi {
								continue
							}
							for k := 0; k < c; k++ {
								o := ((s*tc.p+i)*tc.p+j)*c + k
								sum[o] += float64(x.Data[((s*tc.h+y)*tc.w+xx)*c+k])
								cnt[o]++
							}
						}
					}
				}
			}
		}
		for o := range sum {
			if want := sum[o] / cnt[o]; math.Abs(float64(got.Data[o])-want) > 1e-6 {
				t.Fatalf("%+v: output %d is %v, want %v", tc, o, got.Data[o], want)
			}
		}
	}
}

func TestStageFeatures(t *testing.T) {
	rng, _ := nn.NewRNG(1)
	e := NewEncoder("encoder", EncoderConfig{Channels: 1, Widths: []int{4, 8}}, rng)
	x := randImages(rng, 3, 16, 1)
	// A training pass moves the running statistics away from their start.
	e.Forward(x, true)
	for _, tc := range []struct {
		stage, pooled int
		want          []int
	}{
		{1, 1, []int{3, 4}},
		{1, 2, []int{3, 16}},
		{1, 3, []int{3, 36}},
		{2, 1, []int{3, 8}},
		{2, 3, []int{3, 72}},
		{2, 4, []int{3, 128}},
	} {
		f := e.StageFeatures(x, tc.stage, tc.pooled)
		if !slices.Equal(f.Shape, tc.want) {
			t.Errorf("stage %d pooled %d: shape %v, want %v", tc.stage, tc.pooled, f.Shape, tc.want)
		}
	}
	// The last stage pooled to 1 is Features.
	if got, want := e.StageFeatures(x, 2, 1).Data, e.Features(x).Data; !close32(got, want, 1e-5) {
		t.Errorf("StageFeatures(x, 2, 1) = %v, Features = %v", got, want)
	}
	// Pooled to the map's own size, stage 1 is block 1's evaluation output.
	m := e.Blocks[0].Forward(x, false)
	if got := e.StageFeatures(x, 1, 8).Data; !close32(got, m.Data, 0) {
		t.Error("StageFeatures(x, 1, 8) is not block 1's output")
	}
	for _, bad := range [][2]int{{0, 1}, {3, 1}, {1, 0}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("StageFeatures(x, %d, %d) did not panic", bad[0], bad[1])
				}
			}()
			e.StageFeatures(x, bad[0], bad[1])
		}()
	}
}

func close32(a, b []float32, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > tol {
			return false
		}
	}
	return true
}
