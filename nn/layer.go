package nn

// Layer is one differentiable step of a model.
type Layer interface {
	// Forward computes the output for input x; train selects training
	// behaviour (batch statistics in batch norm) over evaluation.
	Forward(x *Tensor, train bool) *Tensor
	// Backward takes ∂loss/∂output of the last Forward, adds the
	// parameters' gradients into their Grad and returns ∂loss/∂input
	// (nil if the layer was told not to compute it).
	Backward(dy *Tensor) *Tensor
	// Params lists the trainable parameters.
	Params() []*Param
}

// Buffered is implemented by layers that keep state which is saved with the
// model but not trained, such as running statistics.
type Buffered interface {
	Buffers() []*Param
}

// Sequential chains layers: the output of each is the input of the next.
type Sequential struct {
	Layers []Layer
}

// NewSequential returns a chain of the given layers.
func NewSequential(layers ...Layer) *Sequential { return &Sequential{Layers: layers} }

// Forward runs the layers in order.
func (s *Sequential) Forward(x *Tensor, train bool) *Tensor {
	for _, l := range s.Layers {
		x = l.Forward(x, train)
	}
	return x
}

// Backward runs the layers' Backward in reverse order. Once a layer has
// used the gradient that the layer after it returned, that gradient's
// memory goes back to the scratch pool for the layers still to run; the
// first layer's input gradient, which Backward returns, stays valid until
// the next Backward.
func (s *Sequential) Backward(dy *Tensor) *Tensor {
	// owner is the layer whose gradient buffer dy is. A layer that returns
	// a view of the gradient it was given (Reshape) leaves that buffer in
	// use, so it goes back only once a layer has made a new one from it.
	var owner gradReleaser
	for i := len(s.Layers) - 1; i >= 0 && dy != nil; i-- {
		in := dy
		dy = s.Layers[i].Backward(in)
		if dy != nil && len(dy.Data) > 0 && len(in.Data) > 0 && &dy.Data[0] == &in.Data[0] {
			continue
		}
		if owner != nil {
			owner.releaseGrad()
		}
		owner, _ = s.Layers[i].(gradReleaser)
	}
	return dy
}

func (s *Sequential) releaseGrad() {
	if len(s.Layers) > 0 {
		if r, ok := s.Layers[0].(gradReleaser); ok {
			r.releaseGrad()
		}
	}
}

// Params lists the layers' parameters in order.
func (s *Sequential) Params() []*Param {
	var ps []*Param
	for _, l := range s.Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Buffers lists the layers' buffers in order.
func (s *Sequential) Buffers() []*Param {
	var bs []*Param
	for _, l := range s.Layers {
		if b, ok := l.(Buffered); ok {
			bs = append(bs, b.Buffers()...)
		}
	}
	return bs
}
