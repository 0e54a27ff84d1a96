package pretext

import (
	"math/rand/v2"

	"github.com/patchwise-ml/patchwise/augment"
)

// rotationSpec is rotation prediction (Gidaris, Singh & Komodakis 2018):
// every image of a batch in its four rotations, drawn by an
// augment.RotationSampler (with the shared Crop and Flip in training), and
// the model NewRotation returns. The encoder sees the four rotations of
// each image in the same batch, so its batch is 4× the configured batch of
// images (512 encoder inputs for a batch of 128): a step costs about four
// classifier steps.
var rotationSpec = Spec{
	Name:      "rotation",
	Summary:   "by how many quarter turns an image was rotated",
	Reference: "Gidaris, Singh & Komodakis 2018",
	Metrics:   []Metric{withChance(accuracy, 1.0/augment.Rotations)},
	Sampler: func(c Config, side, ch int, train bool) (augment.Sampler, error) {
		return augment.NewRotationSampler(augment.ImageSamplerConfig{Size: c.Size, Crop: c.Crop, Flip: c.Flip, Random: train}, side, ch)
	},
	New: func(c Config, rng *rand.Rand) (Model, error) {
		return NewRotation(c.Encoder, rng), nil
	},
}

// NewRotation returns the rotation-prediction model: encoder → global
// average pool → Linear(Dim, 4), cross-entropy over the quarter turns
// (augment.Rotations), the Classifier with one class per rotation. Its
// Step takes b.Views[0] as [4N, S, S, C], the rotations of each of N
// images next to each other, and b.Labels as their 4N turns; batch norm's
// statistics are over all 4N. Parameters are named "encoder.…" and
// "head.weight", "head.bias".
func NewRotation(cfg EncoderConfig, rng *rand.Rand) *Classifier {
	return NewClassifier(cfg, augment.Rotations, rng)
}
