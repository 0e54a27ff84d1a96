package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Residual is a residual block: y = max(Main(x) + Shortcut(x), 0), with
// the identity as the shortcut when Shortcut is nil. Main and Shortcut
// must map the input [N, H, W, C] to outputs of one shape.
type Residual struct {
	Main     *Sequential
	Shortcut *Sequential // nil: the identity

	y, g, dx *Tensor
}

// NewBasicBlock returns ResNet's basic block (He et al. 2016) from in to
// out channels, named as torchvision names it: Main is conv1 (3×3,
// stride, pad 1) → bn1 → ReLU → conv2 (3×3, pad 1) → bn2, the
// convolutions without bias (name+".conv1.weight", name+".bn1.weight", …);
// the shortcut is the identity when stride is 1 and in = out, otherwise a
// 1×1 convolution with that stride → batch norm (name+".downsample.0.weight",
// name+".downsample.1.weight", …). The output is [N, ⌈H/stride⌉,
// ⌈W/stride⌉, out]. It panics if a size is not positive.
func NewBasicBlock(name string, in, out, stride int, rng *rand.Rand) *Residual {
	if in < 1 || out < 1 || stride < 1 {
		panic(fmt.Sprintf("nn: NewBasicBlock %q: bad geometry in=%d out=%d stride=%d", name, in, out, stride))
	}
	r := &Residual{Main: NewSequential(
		NewConv2D(name+".conv1", in, out, 3, stride, 1, false, rng),
		NewBatchNorm2D(name+".bn1", out).WithReLU(),
		NewConv2D(name+".conv2", out, out, 3, 1, 1, false, rng),
		NewBatchNorm2D(name+".bn2", out),
	)}
	if stride != 1 || in != out {
		r.Shortcut = NewSequential(
			NewConv2D(name+".downsample.0", in, out, 1, stride, 0, false, rng),
			NewBatchNorm2D(name+".downsample.1", out),
		)
	}
	return r
}

// Forward returns max(Main(x) + Shortcut(x), 0). It panics if the two
// branches' outputs differ in shape.
func (l *Residual) Forward(x *Tensor, train bool) *Tensor {
	a := l.Main.Forward(x, train)
	s := x
	if l.Shortcut != nil {
		s = l.Shortcut.Forward(x, train)
	}
	if len(a.Shape) != len(s.Shape) || a.Len() != s.Len() {
		panic(fmt.Sprintf("nn: Residual: main branch gives %v, shortcut %v", a, s))
	}
	for i := range a.Shape {
		if a.Shape[i] != s.Shape[i] {
			panic(fmt.Sprintf("nn: Residual: main branch gives %v, shortcut %v", a, s))
		}
	}
	l.y = reuse(l.y, a.Shape...)
	kernel.ForElems(a.Len(), func(lo, hi int) { kernel.AddRelu(l.y.Data[lo:hi], a.Data[lo:hi], s.Data[lo:hi]) })
	return l.y
}

// Backward returns ∂loss/∂x, the sum of the two branches' input
// gradients, and accumulates their parameters' gradients.
func (l *Residual) Backward(dy *Tensor) *Tensor {
	l.g = gradBuffer(l.g, l.y.Shape...)
	kernel.ForElems(dy.Len(), func(lo, hi int) { kernel.ReluGrad(l.g.Data[lo:hi], dy.Data[lo:hi], l.y.Data[lo:hi]) })
	dm := l.Main.Backward(l.g)
	ds := l.g
	if l.Shortcut != nil {
		ds = l.Shortcut.Backward(l.g)
	}
	if dm == nil {
		panic("nn: Residual: the main branch computes no input gradient")
	}
	l.dx = gradBuffer(l.dx, dm.Shape...)
	kernel.ForElems(dm.Len(), func(lo, hi int) { kernel.Add(l.dx.Data[lo:hi], dm.Data[lo:hi], ds.Data[lo:hi]) })
	l.Main.releaseGrad()
	if l.Shortcut != nil {
		l.Shortcut.releaseGrad()
	}
	releaseGrad(l.g)
	return l.dx
}

// Params lists Main's parameters, then Shortcut's.
func (l *Residual) Params() []*Param {
	ps := l.Main.Params()
	if l.Shortcut != nil {
		ps = append(ps, l.Shortcut.Params()...)
	}
	return ps
}

// Buffers lists Main's buffers, then Shortcut's.
func (l *Residual) Buffers() []*Param {
	bs := l.Main.Buffers()
	if l.Shortcut != nil {
		bs = append(bs, l.Shortcut.Buffers()...)
	}
	return bs
}

func (l *Residual) releaseGrad() { releaseGrad(l.dx) }
