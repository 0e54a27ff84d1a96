package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/nn/kernel"
)

// Linear is a fully connected layer y = x·Wᵀ + b: [N, In] → [N, Out].
type Linear struct {
	In, Out int
	Weight  *Param // [Out, In], PyTorch's layout
	Bias    *Param // [Out]

	x, y, dx *Tensor
}

// NewLinear returns a linear layer named name with Kaiming-normal weights
// and zero bias. It panics if in or out is not positive.
func NewLinear(name string, in, out int, rng *rand.Rand) *Linear {
	if in < 1 || out < 1 {
		panic(fmt.Sprintf("nn: NewLinear %q: bad size %d→%d", name, in, out))
	}
	l := &Linear{In: in, Out: out, Weight: newParam(name+".weight", true, out, in), Bias: newParam(name+".bias", false, out)}
	KaimingNormal(l.Weight.Value, in, rng)
	return l
}

// Params returns the weight and bias.
func (l *Linear) Params() []*Param { return []*Param{l.Weight, l.Bias} }

// Forward maps x [N, In] to [N, Out].
func (l *Linear) Forward(x *Tensor, train bool) *Tensor {
	mustRank("Linear", x, 2)
	n := x.Shape[0]
	if x.Shape[1] != l.In {
		panic(fmt.Sprintf("nn: Linear %s: input has %d features, want %d", l.Weight.Name, x.Shape[1], l.In))
	}
	l.x = x
	l.y = reuse(l.y, n, l.Out)
	kernel.Gemm(false, true, n, l.Out, l.In, 1, x.Data, l.In, l.Weight.Value.Data, l.In, 0, l.y.Data, l.Out)
	for i := 0; i < n; i++ {
		kernel.Axpy(1, l.Bias.Value.Data, l.y.Data[i*l.Out:(i+1)*l.Out])
	}
	return l.y
}

// Backward returns ∂loss/∂x [N, In] and accumulates the gradients.
func (l *Linear) Backward(dy *Tensor) *Tensor {
	n := l.x.Shape[0]
	kernel.Gemm(true, false, l.Out, l.In, n, 1, dy.Data, l.Out, l.x.Data, l.In, 1, l.Weight.Grad.Data, l.In)
	for i := 0; i < n; i++ {
		kernel.Axpy(1, dy.Data[i*l.Out:(i+1)*l.Out], l.Bias.Grad.Data)
	}
	l.dx = gradBuffer(l.dx, n, l.In)
	kernel.Gemm(false, false, n, l.In, l.Out, 1, dy.Data, l.Out, l.Weight.Value.Data, l.In, 0, l.dx.Data, l.In)
	return l.dx
}

func (l *Linear) releaseGrad() { releaseGrad(l.dx) }
