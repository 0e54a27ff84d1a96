package nn

import (
	"fmt"
	"slices"
)

// Reshape views each sample in another shape of the same size:
// [N, ...] → [N, Shape...]. An empty Shape flattens: [N, ...] → [N, D].
type Reshape struct {
	Shape []int

	inShape []int
}

// NewFlatten returns a Reshape that flattens [N, ...] to [N, D].
func NewFlatten() *Reshape { return &Reshape{} }

// NewReshape returns a Reshape to [N, shape...].
func NewReshape(shape ...int) *Reshape { return &Reshape{Shape: slices.Clone(shape)} }

// Params returns nil.
func (l *Reshape) Params() []*Param { return nil }

// Forward returns a view of x in the new shape; it panics if the sizes differ.
func (l *Reshape) Forward(x *Tensor, train bool) *Tensor {
	l.inShape = append(l.inShape[:0], x.Shape...)
	n := x.Shape[0]
	if len(l.Shape) == 0 {
		return x.Reshape(n, numel(x.Shape[1:]))
	}
	return x.Reshape(append([]int{n}, l.Shape...)...)
}

// Backward returns a view of dy in the input's shape.
func (l *Reshape) Backward(dy *Tensor) *Tensor { return dy.Reshape(l.inShape...) }

// Concat joins tensors along their last axis (features of [N, D], or
// channels of channels-last [N, H, W, C]); all other dimensions must agree.
type Concat struct {
	shapes [][]int
	y      *Tensor
	dxs    []*Tensor
}

// Forward concatenates xs along the last axis; it panics if their shapes
// disagree elsewhere.
func (l *Concat) Forward(xs ...*Tensor) *Tensor {
	if len(xs) == 0 {
		panic("nn: Concat: no inputs")
	}
	out := slices.Clone(xs[0].Shape)
	last := len(out) - 1
	out[last] = 0
	l.shapes = l.shapes[:0]
	for _, x := range xs {
		if len(x.Shape) != len(out) || !slices.Equal(x.Shape[:last], out[:last]) {
			panic(fmt.Sprintf("nn: Concat: shapes %v and %v do not agree off the last axis", xs[0].Shape, x.Shape))
		}
		out[last] += x.Shape[last]
		l.shapes = append(l.shapes, slices.Clone(x.Shape))
	}
	l.y = reuse(l.y, out...)
	rows, width := numel(out[:last]), out[last]
	for r := 0; r < rows; r++ {
		off := r * width
		for _, x := range xs {
			m := x.Shape[last]
			copy(l.y.Data[off:off+m], x.Data[r*m:(r+1)*m])
			off += m
		}
	}
	return l.y
}

// Backward splits dy into the gradients of the inputs, in order.
func (l *Concat) Backward(dy *Tensor) []*Tensor {
	for len(l.dxs) < len(l.shapes) {
		l.dxs = append(l.dxs, nil)
	}
	last := len(dy.Shape) - 1
	rows, width := numel(dy.Shape[:last]), dy.Shape[last]
	off := 0
	for k, s := range l.shapes {
		l.dxs[k] = reuse(l.dxs[k], s...)
		m := s[last]
		for r := 0; r < rows; r++ {
			copy(l.dxs[k].Data[r*m:(r+1)*m], dy.Data[r*width+off:r*width+off+m])
		}
		off += m
	}
	return l.dxs[:len(l.shapes)]
}
