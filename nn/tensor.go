package nn

import (
	"fmt"
	"slices"
)

// Tensor is a dense row-major float32 array with a shape.
type Tensor struct {
	Shape []int
	Data  []float32
}

// NewTensor returns a zero tensor of the given shape. It panics if a
// dimension is negative.
func NewTensor(shape ...int) *Tensor {
	return &Tensor{Shape: slices.Clone(shape), Data: make([]float32, numel(shape))}
}

// FromData wraps data as a tensor of the given shape without copying. It
// panics if len(data) does not match the shape.
func FromData(data []float32, shape ...int) *Tensor {
	if len(data) != numel(shape) {
		panic(fmt.Sprintf("nn: FromData: %d values for shape %v", len(data), shape))
	}
	return &Tensor{Shape: slices.Clone(shape), Data: data}
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("nn: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// Len returns the number of elements.
func (t *Tensor) Len() int { return len(t.Data) }

// Rows returns a view of items lo..hi along the first axis, sharing t's data.
func (t *Tensor) Rows(lo, hi int) *Tensor {
	per := numel(t.Shape[1:])
	shape := slices.Clone(t.Shape)
	shape[0] = hi - lo
	return &Tensor{Shape: shape, Data: t.Data[lo*per : hi*per]}
}

// Reshape returns a view of t with another shape of the same size.
// It panics if the sizes differ.
func (t *Tensor) Reshape(shape ...int) *Tensor {
	return FromData(t.Data, shape...)
}

// Zero sets every element to 0.
func (t *Tensor) Zero() { clear(t.Data) }

// Clone returns a deep copy of t.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
}

// String describes the tensor's shape, for messages.
func (t *Tensor) String() string { return fmt.Sprintf("Tensor%v", t.Shape) }

// reuse returns t reshaped to shape if its storage is large enough, or a new
// tensor otherwise; the contents are unspecified. Layers use it to keep their
// buffers from one step to the next.
func reuse(t *Tensor, shape ...int) *Tensor {
	n := numel(shape)
	if t == nil || cap(t.Data) < n {
		return NewTensor(shape...)
	}
	t.Shape = append(t.Shape[:0], shape...)
	t.Data = t.Data[:n]
	return t
}

// reuseSlice is reuse for plain slices.
func reuseSlice[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// mustRank panics unless t has the given rank.
func mustRank(op string, t *Tensor, rank int) {
	if len(t.Shape) != rank {
		panic(fmt.Sprintf("nn: %s: want a rank-%d tensor, got %v", op, rank, t.Shape))
	}
}
