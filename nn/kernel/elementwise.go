package kernel

// Relu sets y[i] = max(x[i], 0). y and x have the same length and may alias.
func Relu(y, x []float32) {
	y = y[:len(x)]
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		y[i] = v
	}
}

// ReluGrad sets dx[i] = dy[i] where y[i] > 0 and 0 elsewhere, y being Relu's
// output. dx may alias dy.
func ReluGrad(dx, dy, y []float32) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	for i, v := range y {
		if v > 0 {
			dx[i] = dy[i]
		} else {
			dx[i] = 0
		}
	}
}

// Axpy adds alpha·x to y elementwise. y and x have the same length.
func Axpy(alpha float32, x, y []float32) {
	y = y[:len(x)]
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
