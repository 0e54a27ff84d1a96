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
//   - Jitter is SimCLR's colour jitter (brightness, contrast, saturation,
//     hue in a random order), each adjustment also a function.
//   - A Sampler says what a pretext's sample is made of — views, each a
//     number of S×S images, and labels — and draws samples from images:
//     PairSampler (the two crops of a pair and their direction),
//     ImageSampler (one image, with random crops and flips in training)
//     and ViewSampler (two independently augmented views of one image:
//     RandomResizedCrop, flip, Jitter, grayscale), RotationSampler (the
//     four quarter turns of an image) and JigsawSampler (the nine tiles of
//     a 3×3 grid with gap and jitter, shuffled by one of a set of
//     permutations; MaxHammingPermutations draws a set far apart) are
//     five; a pretext can bring its own.
//   - SampleSheet draws any Sampler's views of a few images, for
//     'patchwise views'.
//   - Loader makes batches of any Sampler's samples (Batch: one
//     [N·Count, S, S, C] slice per view, and the labels) with a pool of
//     workers, bounded prefetch and reused buffers, deterministic per
//     (seed, epoch, index) whatever the number of workers.
//   - PairSheet draws sampled pairs on their images, for 'patchwise pairs'.
package augment
