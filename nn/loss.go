package nn

import (
	"fmt"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// SoftmaxCrossEntropy is the mean over a batch of −log softmax(logits)[label].
type SoftmaxCrossEntropy struct {
	probs, dx *Tensor
	labels    []int
}

// Forward takes logits [N, K] and labels in [0, K) and returns the mean loss
// and the fraction of samples whose largest logit is the label's. It panics
// if a label is out of range or the counts differ.
func (l *SoftmaxCrossEntropy) Forward(logits *Tensor, labels []int) (loss, accuracy float64) {
	mustRank("SoftmaxCrossEntropy", logits, 2)
	n, k := logits.Shape[0], logits.Shape[1]
	if len(labels) != n {
		panic(fmt.Sprintf("nn: SoftmaxCrossEntropy: %d labels for %d rows", len(labels), n))
	}
	for _, y := range labels {
		if y < 0 || y >= k {
			panic(fmt.Sprintf("nn: SoftmaxCrossEntropy: label %d outside [0, %d)", y, k))
		}
	}
	l.labels = append(l.labels[:0], labels...)
	l.probs = reuse(l.probs, n, k)
	sum, correct := kernel.SoftmaxCrossEntropy(l.probs.Data, logits.Data, labels, k)
	return sum / float64(n), float64(correct) / float64(n)
}

// Backward returns ∂loss/∂logits = (softmax − onehot)/N, [N, K].
func (l *SoftmaxCrossEntropy) Backward() *Tensor {
	n, k := l.probs.Shape[0], l.probs.Shape[1]
	l.dx = reuse(l.dx, n, k)
	kernel.SoftmaxCrossEntropyGrad(l.dx.Data, l.probs.Data, l.labels, k, 1/float32(n))
	return l.dx
}

// MSE is the mean squared error over every element of a tensor.
type MSE struct {
	diff, dx *Tensor
}

// Forward returns mean((pred − target)²); the shapes must have the same size.
// The squares are summed in float64, in an order that depends on the
// kernel path (see kernel.SquaredDiff).
func (l *MSE) Forward(pred, target *Tensor) float64 {
	if pred.Len() != target.Len() {
		panic(fmt.Sprintf("nn: MSE: prediction %v and target %v differ in size", pred.Shape, target.Shape))
	}
	l.diff = reuse(l.diff, pred.Shape...)
	s := kernel.SquaredDiff(l.diff.Data, pred.Data, target.Data)
	return s / float64(pred.Len())
}

// Backward returns ∂loss/∂pred = 2(pred − target)/size, in pred's shape.
// It reuses its buffer: the result is valid until the next Backward.
func (l *MSE) Backward() *Tensor {
	l.dx = reuse(l.dx, l.diff.Shape...)
	kernel.Scale(l.dx.Data, l.diff.Data, 2/float32(l.diff.Len()))
	return l.dx
}
