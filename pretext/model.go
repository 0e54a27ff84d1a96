package pretext

import "github.com/patchwise-ml/patchwise/nn"

// Batch is one training batch.
type Batch struct {
	X      *nn.Tensor // images [N, H, W, C] (first crops for pairs)
	X2     *nn.Tensor // second crops [N, H, W, C] for pair pretexts, else nil
	Labels []int      // class or relative position per sample, or nil for autoencoders
	// Seed drives the batch's own random draws (the input corruption of
	// the denoising autoencoders), so that they are reproducible from
	// (run seed, step) alone, with no generator state to checkpoint. Give
	// every batch its own, e.g. BatchSeed(runSeed, step); models that draw
	// nothing ignore it.
	Seed uint64
}

// Metrics are one batch's results.
type Metrics struct {
	Loss     float64 // mean loss over the batch
	Accuracy float64 // fraction correct for classification pretexts; 0 otherwise
}

// Model is a pretext model with its loss.
type Model interface {
	// Step runs the forward pass and the loss on b and, when train is
	// true, the backward pass, adding into the parameters' gradients
	// (call nn.ZeroGrads before and an optimiser after).
	Step(b Batch, train bool) Metrics
	// Params lists the trainable parameters, each once, by stable name.
	Params() []*nn.Param
	// Buffers lists the saved but untrained state.
	Buffers() []*nn.Param
}
