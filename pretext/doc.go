// Package pretext holds the models that pretraining fits: the shared
// convolutional encoder, the pretext heads and decoders around it, and
// their losses.
//
// The reference models (DESIGN.md §4) are:
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
//     trained with cross-entropy (Doersch et al. 2015).
//
// Every model implements Model: one call runs the forward pass, the loss
// and the backward pass of a batch, leaving the gradients in the
// parameters for an nn.Optimizer.
package pretext
