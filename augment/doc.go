// Package augment turns dataset images into training batches: crops, crop
// pairs on a grid or at a free distance (with gap, jitter and minimum and
// maximum distance), flips, the colour transforms that stop shortcuts
// (colour dropping and projection, grayscale, pixelation, per-patch
// normalisation), and the worker pool that fills channels-last [N, H, W, C] float32
// batches. Every draw derives from (seed, epoch, sample index), so a batch
// does not depend on the number of workers. It builds on package data and
// knows nothing of nn.
//
// The pieces:
//   - PairConfig says how pairs are drawn (SamplerGrid or SamplerFree; sizes
//     as Length, pixels or fractions of the image side; its zero value is
//     the Default* geometry). PairConfig.Geometry resolves it for an image
//     size and reports geometry that cannot fit as a *GeometryError naming
//     the largest that would; Geometry.Sample draws a Pair of Crops with a
//     label 0–7 (Label*, Direction, AngleLabel).
//   - NewRand(seed, epoch, index) is the only source of randomness for a
//     sample.
//   - Transform applies the per-patch augmentations to a Patch (float32
//     [H, W, C]); DoerschDefaults and ModernDefaults are the published
//     recipes. Each step is also a function: DropColor, Project, Grayscale,
//     Pixelate, SubtractMean, Standardize, FlipH, AddNoise, Mask, Resize.
//   - PairLoader makes batches of pairs (PairBatch: A, B [N, S, S, C] and
//     labels) with a pool of workers, bounded prefetch and reused buffers.
//   - ImageLoader makes batches of single images (ImageBatch: X [N, S, S, C]
//     and labels) for the autoencoders and the supervised model, with
//     random crops and flips in training, in the same deterministic way.
//   - PairSheet draws sampled pairs on their images, for 'patchwise pairs'.
package augment
