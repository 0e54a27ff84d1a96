// Package pretext holds the models that pretraining fits: the shared
// convolutional encoder, the pretext heads and decoders around it, and
// their losses.
//
// The reference models (docs/design.md §4) are:
//   - Encoder: blocks of [conv3×3 pad 1 → BatchNorm → ReLU → maxpool 2]
//     (widths 32, 64, 128, 256 by default), then a global average pool to
//     a feature of the last width; or, by EncoderConfig.Arch, ResNet-18
//     or ResNet-34 (basic blocks, a small or an ImageNet stem, a width
//     multiplier), with torchvision's parameter names;
//   - Classifier: the encoder's feature → Linear to the classes, trained
//     with labels (the supervised upper bound);
//   - MirroredAE: the encoder's last map → blocks of [upsample ×2 →
//     conv3×3 → BatchNorm → ReLU] mirroring the encoder → conv3×3 to the
//     input channels, trained with mean-squared error;
//   - RelPos: two crops through the one shared encoder, the features
//     concatenated → Linear → ReLU → Linear to the 8 relative positions,
//     trained with cross-entropy (Doersch et al. 2015);
//   - Rotation (NewRotation): the classifier over the four quarter turns of
//     each image, all four in the same batch (Gidaris et al. 2018);
//   - Jigsaw: the nine tiles of a 3×3 grid through the shared encoder, the
//     features concatenated → Linear → ReLU → Linear to the permutation
//     of a fixed set that shuffled them (Noroozi & Favaro 2016);
//   - Inpaint: the mirrored autoencoder fed an image with a region masked,
//     its loss the squared error on the masked region only (Pathak et al.
//     2016, without the adversarial loss);
//   - SimCLR: two augmented views of each image through the encoder as one
//     batch, the features → Linear → ReLU → Linear projection head,
//     trained with the NT-Xent contrastive loss (Chen et al. 2020);
//   - LinearAE: the encoder's feature → one Linear layer to the image (the
//     F·W decoder);
//   - TiedAE: a decoder made of the encoder's convolutions transposed,
//     sharing their kernels, with upsampling undoing the pools;
//   - Denoising: any of the autoencoders trained on a corrupted input
//     (Gaussian noise or masked squares) against the clean image, the
//     corruption drawn from Batch.Seed, with batch-norm running
//     statistics kept apart for clean and for corrupted inputs.
//
// Each pretext is described by a Spec, registered under its name (Names,
// Lookup): the augment.Sampler that makes its samples, the constructor of
// its model, the metrics it reports, its default optimiser, the
// normalisation of its encoder's inputs, and which pretexts the default
// comparison holds. Spec.Resolve fills in a Config's defaults for a
// dataset and checks it as a whole. A pretext defined elsewhere joins with
// Register, and the pipeline treats it like these.
//
// Every model implements Model: one call runs the forward pass, the loss
// and the backward pass of a batch of the sampler's views, leaving the
// gradients in the parameters for an nn.Optimizer; Model.Encoder gives its
// shared encoder, for checkpoints, probes and export, and
// Encoder.StageFeatures an earlier block's pooled features.
package pretext
