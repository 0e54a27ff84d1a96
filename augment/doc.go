// Package augment turns dataset images into training batches: crops, crop
// pairs on a grid or at a free distance (with gap, jitter and minimum and
// maximum distance), flips, the colour transforms that stop shortcuts
// (colour dropping and projection, grayscale, pixelation, per-patch
// normalisation), and the worker pool that fills channels-last [N, H, W, C] float32
// batches. Every draw derives from (seed, epoch, sample index), so a batch
// does not depend on the number of workers. It builds on package data and
// knows nothing of nn.
package augment
