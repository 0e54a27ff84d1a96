package kernel

import "math"

// The elementwise kernels run their vector path over the longest prefix
// that is a multiple of the vector width (16 floats on AVX-512, 8 on
// AVX2) and Go loops over the rest. Relu, ReluGrad and Scale give the
// same bits on every path; Axpy, Dot and SquaredDiff add in another order
// on each.

// vecPrefix returns the row level to use for n elements and how many of
// them, a multiple of that level's vector width, its vector kernel takes.
func vecPrefix(n int) (l, head int) {
	switch l = rowLevel(); {
	case l >= levelAVX512:
		return l, n &^ 15
	case l >= levelAVX2:
		return l, n &^ 7
	}
	return levelPurego, 0
}

// Relu sets y[i] = max(x[i], 0) (and 0 for −0). y and x have the same
// length and may alias. It works on the bits, without branches: the signs
// of activations are random, and a branch per element mispredicts half the
// time. A NaN with the sign bit clear stays NaN.
func Relu(y, x []float32) {
	y = y[:len(x)]
	l, h := vecPrefix(len(x))
	if h > 0 {
		if l == levelAVX512 {
			reluAVX512(&y[0], &x[0], h)
		} else {
			reluAVX2(&y[0], &x[0], h)
		}
	}
	for i := h; i < len(x); i++ {
		b := math.Float32bits(x[i])
		y[i] = math.Float32frombits(b &^ uint32(int32(b)>>31))
	}
}

// ReluGrad sets dx[i] = dy[i] where y[i] ≠ 0 and 0 elsewhere, y being
// Relu's output (never negative, so ≠ 0 means > 0). dx may alias dy.
func ReluGrad(dx, dy, y []float32) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	l, h := vecPrefix(len(y))
	if h > 0 {
		if l == levelAVX512 {
			reluGradAVX512(&dx[0], &dy[0], &y[0], h)
		} else {
			reluGradAVX2(&dx[0], &dy[0], &y[0], h)
		}
	}
	for i := h; i < len(y); i++ {
		b := math.Float32bits(y[i])
		nonzero := uint32(int32(b|-b) >> 31) // all ones when b ≠ 0
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & nonzero)
	}
}

// Axpy adds alpha·x to y elementwise. y is at least as long as x.
func Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
	switch l := rowLevel(); {
	case l >= levelAVX512 && len(x) >= 16:
		axpyAVX512(alpha, &x[0], &y[0], len(x))
		return
	case l >= levelAVX2 && len(x) >= 8:
		axpyAVX2(alpha, &x[0], &y[0], len(x))
		return
	}
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Add sets dst[i] = a[i] + b[i]. dst, a and b have the same length; dst
// may alias a or b. It gives the same bits on every path for inputs
// without NaNs (Axpy with alpha 1 rounds once, like the sum; a NaN's
// payload may come from either operand).
func Add(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	if len(a) > 0 && &dst[0] == &b[0] {
		a, b = b, a
	}
	if len(a) > 0 && &dst[0] != &a[0] {
		copy(dst, a)
	}
	Axpy(1, b, dst)
}

// AddRelu sets dst[i] = max(a[i] + b[i], 0), the join of a residual
// block: its two branches summed, then ReLU. dst may alias a or b. It
// gives the same bits on every path for inputs without NaNs.
func AddRelu(dst, a, b []float32) {
	Add(dst, a, b)
	Relu(dst, dst)
}

// Scale sets dst[i] = alpha·x[i]. dst is at least as long as x and may
// alias it.
func Scale(dst, x []float32, alpha float32) {
	dst = dst[:len(x)]
	l, h := vecPrefix(len(x))
	if h > 0 {
		if l == levelAVX512 {
			scaleAVX512(&dst[0], &x[0], h, alpha)
		} else {
			scaleAVX2(&dst[0], &x[0], h, alpha)
		}
	}
	for i := h; i < len(x); i++ {
		dst[i] = alpha * x[i]
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

// SquaredDiff returns Σ (a[i] − b[i])², the squares of the float32
// differences summed in float64, and stores the differences in diff
// unless diff is nil. With b nil it returns Σ a[i]² (a squared norm).
// b and diff, when not nil, are at least as long as a; diff may alias a
// or b. The sum's order depends on the path, not on anything else.
func SquaredDiff(diff, a, b []float32) float64 {
	if b != nil {
		b = b[:len(a)]
	}
	if diff != nil {
		diff = diff[:len(a)]
	}
	l, h := vecPrefix(len(a))
	var s float64
	if h > 0 {
		var dp, bp *float32
		if diff != nil {
			dp = &diff[0]
		}
		if b != nil {
			bp = &b[0]
		}
		if l == levelAVX512 {
			s = sqDiffAVX512(dp, &a[0], bp, h)
		} else {
			s = sqDiffAVX2(dp, &a[0], bp, h)
		}
	}
	for i := h; i < len(a); i++ {
		d := a[i]
		if b != nil {
			d -= b[i]
		}
		if diff != nil {
			diff[i] = d
		}
		s += float64(d) * float64(d)
	}
	return s
}

// AllFinite reports whether no element of x is infinite or NaN.
func AllFinite(x []float32) bool {
	for _, v := range x {
		if math.Float32bits(v)&0x7f800000 == 0x7f800000 {
			return false
		}
	}
	return true
}

// Dot returns Σ x[i]·y[i] in float32. y is at least as long as x.
func Dot(x, y []float32) float32 {
	y = y[:len(x)]
	switch l := rowLevel(); {
	case l >= levelAVX512 && len(x) >= 16:
		return dotAVX512(&x[0], &y[0], len(x))
	case l >= levelAVX2 && len(x) >= 8:
		return dotAVX2(&x[0], &y[0], len(x))
	}
	var s float32
	for i, v := range x {
		s += v * y[i]
	}
	return s
}
