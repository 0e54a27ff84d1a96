package pretext

import "github.com/patchwise-ml/patchwise/nn"

// Batch is one training batch, as a pretext's sampler made it.
type Batch struct {
	// Views holds the sampler's views: view k is [N·Count_k, S, S, C],
	// the Count_k images of each sample next to each other.
	Views []*nn.Tensor
	// Labels holds the sampler's labels, sample by sample (nil when it
	// makes none).
	Labels []int
	// Seed drives the batch's own random draws (the input corruption of
	// the denoising autoencoders), so that they are reproducible from
	// (run seed, step) alone, with no generator state to checkpoint. Give
	// every batch its own, e.g. BatchSeed(runSeed, step); models that draw
	// nothing ignore it.
	Seed uint64
}

// Metrics are one batch's results.
type Metrics struct {
	Loss float64 // mean loss over the batch
	// Values holds the Spec's other metrics by key (Metric.Key), such as
	// "acc"; nil when there are none.
	Values map[string]float64
}

// Model is a pretext model with its loss.
type Model interface {
	// Step runs the forward pass and the loss on b and, when train is
	// true, the backward pass, adding into the parameters' gradients
	// (call nn.ZeroGrads before and an optimiser after). With train false
	// it runs in evaluation mode (batch norm's running statistics).
	Step(b Batch, train bool) Metrics
	// Params lists the trainable parameters, each once, by stable name.
	Params() []*nn.Param
	// Buffers lists the saved but untrained state.
	Buffers() []*nn.Param
	// Encoder returns the shared encoder: the part that is probed and
	// exported. Its parameters are among Params.
	Encoder() *Encoder
}
