package nn

import (
	"fmt"
	"math"
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
	l.labels = append(l.labels[:0], labels...)
	l.probs = reuse(l.probs, n, k)
	correct := 0
	for i := 0; i < n; i++ {
		row := logits.Data[i*k : (i+1)*k]
		p := l.probs.Data[i*k : (i+1)*k]
		y := labels[i]
		if y < 0 || y >= k {
			panic(fmt.Sprintf("nn: SoftmaxCrossEntropy: label %d outside [0, %d)", y, k))
		}
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
	return loss / float64(n), float64(correct) / float64(n)
}

// Backward returns ∂loss/∂logits = (softmax − onehot)/N, [N, K].
func (l *SoftmaxCrossEntropy) Backward() *Tensor {
	n, k := l.probs.Shape[0], l.probs.Shape[1]
	l.dx = reuse(l.dx, n, k)
	inv := 1 / float32(n)
	for i, p := range l.probs.Data {
		l.dx.Data[i] = p * inv
	}
	for i, y := range l.labels {
		l.dx.Data[i*k+y] -= inv
	}
	return l.dx
}

// MSE is the mean squared error over every element of a tensor.
type MSE struct {
	diff, dx *Tensor
}

// Forward returns mean((pred − target)²); the shapes must have the same size.
func (l *MSE) Forward(pred, target *Tensor) float64 {
	if pred.Len() != target.Len() {
		panic(fmt.Sprintf("nn: MSE: prediction %v and target %v differ in size", pred.Shape, target.Shape))
	}
	l.diff = reuse(l.diff, pred.Shape...)
	var s float64
	for i, p := range pred.Data {
		d := p - target.Data[i]
		l.diff.Data[i] = d
		s += float64(d) * float64(d)
	}
	return s / float64(pred.Len())
}

// Backward returns ∂loss/∂pred = 2(pred − target)/size, in pred's shape.
// It reuses its buffer: the result is valid until the next Backward.
func (l *MSE) Backward() *Tensor {
	l.dx = reuse(l.dx, l.diff.Shape...)
	scale := 2 / float32(l.diff.Len())
	for i, d := range l.diff.Data {
		l.dx.Data[i] = d * scale
	}
	return l.dx
}
