// Package nn is a small neural-network engine on float32 tensors.
//
// Images are channels-last tensors of shape [N, H, W, C] (batch, height,
// width, channels), stored row-major; features are [N, D]. Channels-last
// was chosen by measurement: a convolution's im2col matrix then has one row
// per output position, the GEMM reads it in place instead of packing it,
// and batch norm, pooling and the channel loops all run over contiguous
// memory (about 1.7× faster GEMMs at the reference shapes than
// [N, C, H, W]); stride-1 convolutions with long rows run directly on the
// padded input, and a decoder's 2× upsampling and 3×3 convolution run as
// one layer (UpsampleConv2D) that never makes the upsampled image.
//
// A Layer computes Forward on a batch and, given the gradient of the loss
// with respect to its output, Backward
// returns the gradient with respect to its input and adds the gradients of
// its parameters into their Grad tensors. Gradients accumulate until
// ZeroGrads, so a parameter shared by two layers (a siamese encoder, tied
// encoder and decoder weights) collects both contributions.
//
// Layers own their output and gradient buffers and reuse them from one step
// to the next: a tensor returned by Forward or Backward stays valid only
// until the next call of the same method on the same layer. Inside a
// Sequential, an input gradient that the layer before has consumed goes
// back to a shared scratch pool, as do transient im2col matrices, so a
// model holds about one of each rather than one per layer.
//
// Every parameter has a stable dotted name such as
// "encoder.block1.conv.weight", so weights can be saved, loaded and exported
// by key. Every random draw comes from an explicit seeded source (NewRNG).
//
// The arithmetic on tensor data lives in package kernel (GEMM,
// convolutions, batch-norm rows and statistics, pooling, elementwise
// work, losses, optimiser updates, the parallel loop), with vector paths
// chosen at start-up (see kernel's documentation and PATCHWISE_CPU); nn
// itself only moves data (padding, flips, concatenation, I/O), draws
// initial weights, and computes per-channel coefficients. nn knows
// nothing of images as files or of pretext tasks.
//
// Methods panic on programmer errors such as mismatched shapes; they never
// return errors, because nothing here reads outside data except ReadTensors.
package nn
