package nn

import (
	"testing"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// TestConvFLOPs checks that a convolution's forward and backward passes
// count 2·N·Ho·Wo·K²·Cin·Cout each (forward, weight gradient, input
// gradient), whichever way the layer runs them: direct (stride 1, wide
// rows) or im2col and GEMM (stride 2), and that a Linear layer counts
// 2·N·In·Out per pass.
func TestConvFLOPs(t *testing.T) {
	rng, _ := NewRNG(1)
	for _, tc := range []struct {
		name                   string
		n, side, in, out, strd int
	}{
		{"direct", 2, 16, 16, 16, 1},
		{"im2col", 2, 16, 8, 12, 2},
		{"few channels", 3, 16, 3, 16, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conv := NewConv2D("c", tc.in, tc.out, 3, tc.strd, 1, true, rng)
			x := NewTensor(tc.n, tc.side, tc.side, tc.in)
			for i := range x.Data {
				x.Data[i] = float32(rng.NormFloat64())
			}
			var y *Tensor
			fwd := kernel.CountFLOPs(func() { y = conv.Forward(x, true) })
			ho := (tc.side+2-3)/tc.strd + 1
			want := int64(2 * tc.n * ho * ho * 9 * tc.in * tc.out)
			if fwd != want {
				t.Errorf("forward: counted %d, want %d", fwd, want)
			}
			dy := NewTensor(y.Shape...)
			for i := range dy.Data {
				dy.Data[i] = 1
			}
			if bwd := kernel.CountFLOPs(func() { conv.Backward(dy) }); bwd != 2*want {
				t.Errorf("backward: counted %d, want %d (weight and input gradients)", bwd, 2*want)
			}
		})
	}
	lin := NewLinear("l", 10, 4, rng)
	x := NewTensor(5, 10)
	var y *Tensor
	if got := kernel.CountFLOPs(func() { y = lin.Forward(x, true) }); got != 2*5*10*4 {
		t.Errorf("linear forward: counted %d, want %d", got, 2*5*10*4)
	}
	if got := kernel.CountFLOPs(func() { lin.Backward(NewTensor(y.Shape...)) }); got != 2*2*5*10*4 {
		t.Errorf("linear backward: counted %d, want %d", got, 2*2*5*10*4)
	}
}
