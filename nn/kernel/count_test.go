package kernel

import "testing"

func TestCountFLOPs(t *testing.T) {
	a := make([]float32, 6*5)
	b := make([]float32, 5*7)
	c := make([]float32, 6*7)
	if got := CountFLOPs(func() { Gemm(false, false, 6, 7, 5, 1, a, 5, b, 7, 0, c, 7) }); got != 2*6*7*5 {
		t.Errorf("Gemm 6×7×5: counted %d, want %d", got, 2*6*7*5)
	}
	// A 3×3 convolution of 2 images 18×18 (padded 20×20) from 4 to 16
	// channels: 2·18·18 positions, each 16 sums of 36 terms.
	n, hp, wp, ch, k, cols := 2, 20, 20, 4, 3, 16
	xp := make([]float32, n*hp*wp*ch, n*hp*wp*ch+Slack*ch)
	w := make([]float32, k*k*ch*cols)
	out := make([]float32, n*18*18*cols)
	want := int64(2 * n * 18 * 18 * cols * k * k * ch)
	if got := CountFLOPs(func() { DirectConv(out, xp, n, hp, wp, ch, k, w, cols) }); got != want {
		t.Errorf("DirectConv: counted %d, want %d", got, want)
	}
	if got := CountFLOPs(func() { DirectConvWeightGrad(w, xp, n, hp, wp, ch, k, out, cols) }); got != want {
		t.Errorf("DirectConvWeightGrad: counted %d, want %d", got, want)
	}
	// Outside CountFLOPs nothing is counted, and a count starts at 0.
	Gemm(false, false, 6, 7, 5, 1, a, 5, b, 7, 0, c, 7)
	if got := CountFLOPs(func() {}); got != 0 {
		t.Errorf("nothing run: counted %d", got)
	}
}
