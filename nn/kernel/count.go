package kernel

import (
	"sync"
	"sync/atomic"
)

// FLOP counting. While CountFLOPs runs, the product kernels add the
// floating-point operations of every call to one counter; otherwise they
// pay one atomic load.
var (
	countMu  sync.Mutex
	counting atomic.Bool
	counted  atomic.Int64
)

// CountFLOPs runs fn and returns the floating-point operations of the
// products that the kernels carried out while it ran, a multiply and an add
// for every term of their sums:
//
//	Gemm                  2·m·n·k
//	DirectConv            2·n·oh·ow·k²·c·cols   (oh = hp−k+1, ow = wp−k+1)
//	DirectConvWeightGrad  2·n·oh·ow·k²·c·cols
//	UpConv                2·n·2h·2w·4·c·cols   (each pass: forward, input and weight gradients)
//
// These are the nominal counts of the operations, whichever path runs
// them: the zero padding a path adds to fill a tile, or the padding
// columns that DirectConvWeightGrad sums over, are not counted, so the
// count of a convolution is 2·N·Ho·Wo·K²·Cin·Cout for every way nn runs
// it. An upsampling convolution (nn.UpsampleConv2D: 2× nearest upsampling,
// then 3×3) runs 4 taps per output pixel instead of 9, and is counted so. The elementwise, row, pooling, loss and optimiser kernels are not
// counted: their work grows with the activations, not with the weights,
// and is a few per cent of a convolutional network's.
//
// Every kernel call in the process while fn runs is counted, from any
// goroutine: count where nothing else computes. One CountFLOPs runs at a
// time; a second call waits for the first to return. It must not be
// called from fn.
func CountFLOPs(fn func()) int64 {
	countMu.Lock()
	defer countMu.Unlock()
	counted.Store(0)
	counting.Store(true)
	defer counting.Store(false)
	fn()
	return counted.Load()
}

// countProduct adds the operations of a product of m·n sums of k terms
// while CountFLOPs runs.
func countProduct(m, n, k int) {
	if counting.Load() {
		counted.Add(2 * int64(m) * int64(n) * int64(k))
	}
}
