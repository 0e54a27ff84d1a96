package nn

import "sync"

// Layers run one after another, so the large temporary buffers of one
// layer's pass (a convolution's im2col matrix, an input gradient that the
// layer before has consumed) can be the same memory as the next layer's.
// The pool below keeps them, largest first, so a model holds about as many
// such buffers as are in use at once rather than one per layer.
var scratch struct {
	sync.Mutex
	free [][]float32
}

// getScratch returns a buffer of n floats with unspecified contents,
// reusing a free one when one is large enough.
func getScratch(n int) []float32 {
	scratch.Lock()
	defer scratch.Unlock()
	// Best fit: the smallest free buffer that is large enough.
	for i := len(scratch.free) - 1; i >= 0; i-- {
		if b := scratch.free[i]; cap(b) >= n {
			scratch.free = append(scratch.free[:i], scratch.free[i+1:]...)
			return b[:n]
		}
	}
	// None is large enough: drop the largest smaller one, so that the pool
	// converges on as many buffers as are in use at once, each of the
	// largest size asked for.
	if len(scratch.free) > 0 {
		scratch.free = scratch.free[1:]
	}
	return make([]float32, n)
}

// putScratch returns b to the pool.
func putScratch(b []float32) {
	scratch.Lock()
	defer scratch.Unlock()
	i := 0
	for i < len(scratch.free) && cap(scratch.free[i]) >= cap(b) {
		i++
	}
	scratch.free = append(scratch.free, nil)
	copy(scratch.free[i+1:], scratch.free[i:])
	scratch.free[i] = b[:cap(b)]
}

// gradBuffer returns t shaped as shape for a layer's input gradient,
// keeping its storage when the layer still holds it and taking storage
// from the pool when releaseGrad gave it back.
func gradBuffer(t *Tensor, shape ...int) *Tensor {
	if t != nil && t.Data != nil {
		return reuse(t, shape...)
	}
	if t == nil {
		t = &Tensor{}
	}
	t.Shape = append(t.Shape[:0], shape...)
	t.Data = getScratch(numel(shape))
	return t
}

// releaseGrad gives a layer's input-gradient storage back to the pool.
func releaseGrad(t *Tensor) {
	if t != nil && t.Data != nil {
		putScratch(t.Data)
		t.Data = nil
	}
}

// gradReleaser is implemented by layers that can give their input-gradient
// buffer back to the scratch pool once the layer before them has used it;
// Sequential does so during Backward.
type gradReleaser interface {
	releaseGrad()
}
