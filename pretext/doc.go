// Package pretext holds the models that pretraining fits: the shared
// convolutional encoder, the pretext heads and decoders around it, and
// their losses.
//
// The reference models (docs/design.md §4) are:
//   - Encoder: blocks of [conv3×3 pad 1 → BatchNorm → ReLU → maxpool 2]
//     (widths 32, 64, 128, 256 by default), then a global average pool to
//     a feature of the last width;
//   - Classifier: the encoder's feature → Linear to the classes, trained
//     with labels (the supervised upper bound);
//   - MirroredAE: the encoder's last map → blocks of [upsample ×2 →
//     conv3×3 → BatchNorm → ReLU] mirroring the encoder → conv3×3 to the
//     input channels, trained with mean-squared error;
//   - RelPos: two crops through the one shared encoder, the features
//     concatenated → Linear → ReLU → Linear to the 8 relative positions,
//     trained with cross-entropy (Doersch et al. 2015);
//   - LinearAE: the encoder's feature → one Linear layer to the image (the
//     F·W decoder);
//   - TiedAE: a decoder made of the encoder's convolutions transposed,
//     sharing their kernels, with upsampling undoing the pools;
//   - Denoising: any of the autoencoders trained on a corrupted input
//     (Gaussian noise or masked squares) against the clean image, the
//     corruption drawn from Batch.Seed, with batch-norm running
//     statistics kept apart for clean and for corrupted inputs.
//
// New builds them by the names in Names ("relpos", "ae-mirrored",
// "ae-linear", "ae-tied", "dae-mirrored", "dae-linear", "dae-tied",
// "supervised") from a Config that Validate checks as a whole; EncoderOf
// gives any model's shared encoder, for checkpoints, probes and export,
// and Encoder.StageFeatures an earlier block's pooled features.
//
// Every model implements Model: one call runs the forward pass, the loss
// and the backward pass of a batch, leaving the gradients in the
// parameters for an nn.Optimizer.
package pretext
