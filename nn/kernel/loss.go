package kernel

import (
	"fmt"
	"math"
)

// SoftmaxCrossEntropy computes, for each row i of the logits [n, k]
// (n = len(labels)), the softmax probs[i] and −log probs[i][labels[i]],
// and returns the sum of those losses and the number of rows whose
// largest logit (the first, among equal ones) is the label's. Sums run in
// float64. It panics if a label is outside [0, k) or a slice is short.
// The rows are short (k is a number of classes), so there is no vector
// path.
func SoftmaxCrossEntropy(probs, logits []float32, labels []int, k int) (loss float64, correct int) {
	n := len(labels)
	if len(logits) < n*k || len(probs) < n*k {
		panic(fmt.Sprintf("kernel: SoftmaxCrossEntropy: %d rows of %d need %d values (logits %d, probs %d)", n, k, n*k, len(logits), len(probs)))
	}
	for i, y := range labels {
		if y < 0 || y >= k {
			panic(fmt.Sprintf("kernel: SoftmaxCrossEntropy: label %d outside [0, %d)", y, k))
		}
		row, p := logits[i*k:(i+1)*k], probs[i*k:(i+1)*k]
		top := 0
		for j, v := range row {
			if v > row[top] {
				top = j
			}
		}
		if top == y {
			correct++
		}
		mx := float64(row[top])
		var sum float64
		for j, v := range row {
			e := math.Exp(float64(v) - mx)
			p[j] = float32(e)
			sum += e
		}
		for j := range p {
			p[j] = float32(float64(p[j]) / sum)
		}
		loss += math.Log(sum) + mx - float64(row[y])
	}
	return loss, correct
}

// SoftmaxCrossEntropyGrad sets dx [n, k] to (probs − onehot(labels))·scale,
// the gradient of scale times the summed loss (scale = 1/n for the mean).
func SoftmaxCrossEntropyGrad(dx, probs []float32, labels []int, k int, scale float32) {
	n := len(labels)
	Scale(dx[:n*k], probs[:n*k], scale)
	for i, y := range labels {
		dx[i*k+y] -= scale
	}
}
