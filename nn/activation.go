package nn

import "github.com/patchwise-ml/patchwise/nn/kernel"

// ReLU is max(x, 0), elementwise, on a tensor of any shape.
type ReLU struct {
	y, dx *Tensor
}

// NewReLU returns a ReLU layer.
func NewReLU() *ReLU { return &ReLU{} }

// Params returns nil: ReLU has no parameters.
func (l *ReLU) Params() []*Param { return nil }

// Forward returns max(x, 0).
func (l *ReLU) Forward(x *Tensor, train bool) *Tensor {
	l.y = reuse(l.y, x.Shape...)
	kernel.ForElems(x.Len(), func(lo, hi int) { kernel.Relu(l.y.Data[lo:hi], x.Data[lo:hi]) })
	return l.y
}

// Backward passes dy where the output was positive and 0 elsewhere.
func (l *ReLU) Backward(dy *Tensor) *Tensor {
	l.dx = gradBuffer(l.dx, l.y.Shape...)
	kernel.ForElems(dy.Len(), func(lo, hi int) {
		kernel.ReluGrad(l.dx.Data[lo:hi], dy.Data[lo:hi], l.y.Data[lo:hi])
	})
	return l.dx
}

func (l *ReLU) releaseGrad() { releaseGrad(l.dx) }
