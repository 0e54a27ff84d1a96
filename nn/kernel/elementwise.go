package kernel

import "math"

// Relu sets y[i] = max(x[i], 0) (and 0 for −0). y and x have the same
// length and may alias. It works on the bits, without branches: the signs
// of activations are random, and a branch per element mispredicts half the
// time.
func Relu(y, x []float32) {
	y = y[:len(x)]
	for i, v := range x {
		b := math.Float32bits(v)
		y[i] = math.Float32frombits(b &^ uint32(int32(b)>>31))
	}
}

// ReluGrad sets dx[i] = dy[i] where y[i] ≠ 0 and 0 elsewhere, y being
// Relu's output (never negative, so ≠ 0 means > 0). dx may alias dy.
func ReluGrad(dx, dy, y []float32) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	for i, v := range y {
		b := math.Float32bits(v)
		nonzero := uint32(int32(b|-b) >> 31) // all ones when b ≠ 0
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & nonzero)
	}
}

// Axpy adds alpha·x to y elementwise. y is at least as long as x.
func Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	if rowLevel() >= levelAVX2 && len(x) >= 8 {
		axpyAVX2(alpha, &x[0], &y[0], len(x))
		return
	}
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Sum returns the sum of x, accumulated in float64.
func Sum(x []float32) float64 {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	return s
}

// Dot returns Σ x[i]·y[i] in float32. y is at least as long as x.
func Dot(x, y []float32) float32 {
	y = y[:len(x)]
	if rowLevel() >= levelAVX2 && len(x) >= 8 {
		return dotAVX2(&x[0], &y[0], len(x))
	}
	var s float32
	for i, v := range x {
		s += v * y[i]
	}
	return s
}
