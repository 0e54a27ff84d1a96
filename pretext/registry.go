package pretext

import (
	"github.com/patchwise-ml/patchwise/augment"
)

// Config holds the settings of every registered pretext; each reads its
// own (Spec.Prepare fills in their defaults, Spec.Check checks them) and
// ignores the others. Its zero value means the documented defaults, once
// resolved for a dataset (Spec.Resolve). Classes and MeanImage come from
// the dataset; MeanImage is not written to JSON.
type Config struct {
	// Encoder shapes the encoder; Channels defaults to the images'.
	Encoder EncoderConfig `json:"encoder"`
	// Size is the encoder's input side in pixels: every view is resized
	// to Size×Size. Default: the image side rounded up to a multiple of
	// 2^blocks (EncoderConfig.InputSize), so that 28×28 Fashion-MNIST
	// becomes 32×32 with 4 blocks, and crops of a few pixels are enlarged
	// to the same 32×32.
	Size int `json:"size"`

	// Hidden is the relpos head's width; default DefaultHidden.
	Hidden int `json:"hidden"`
	// Pairs and Transform: how relpos draws and transforms its crop
	// pairs. Transform defaults (nil) to augment.ModernDefaults().
	Pairs     augment.PairConfig `json:"pairs"`
	Transform *augment.Transform `json:"transform,omitempty"`

	// Crop and Flip: the training augmentation of the pretexts that see
	// whole images (see augment.ImageSamplerConfig); default whole images,
	// no flips.
	Crop augment.Length `json:"crop"`
	Flip bool           `json:"flip"`

	// Corruption is the input corruption of the dae-* pretexts.
	Corruption Corruption `json:"corruption"`

	// Inpaint is the mask of the inpaint pretext.
	Inpaint InpaintConfig `json:"inpaint,omitzero"`

	// Jigsaw holds the jigsaw pretext's settings (omitted from JSON when
	// unset, so that other pretexts' configs and run hashes stay as they
	// were).
	Jigsaw JigsawConfig `json:"jigsaw,omitzero"`

	// SimCLR holds the contrastive pretext's settings (omitted from JSON
	// when unset, like the jigsaw's).
	SimCLR SimCLRConfig `json:"simclr,omitzero"`

	// Classes is the dataset's number of classes, for pretexts that
	// train on labels; a resolved config records it.
	Classes int `json:"classes,omitempty"`
	// MeanImage is the training split's mean image [Size, Size, C], for
	// pretexts that ask for it (Spec.MeanImage).
	MeanImage []float32 `json:"-"`
}

func init() {
	for _, s := range []Spec{relposSpec, rotationSpec, jigsawSpec, inpaintSpec, simclrSpec, mirroredSpec, linearSpec, tiedSpec,
		denoisingSpec(mirroredSpec), denoisingSpec(linearSpec), denoisingSpec(tiedSpec), supervisedSpec} {
		Register(s)
	}
}

// imageSampler returns the sampler of whole images (or crops of them) at
// the encoder's input side, shared by the pretexts that see one image.
func imageSampler(c Config, side, ch int, train bool) (augment.Sampler, error) {
	return augment.NewImageSampler(augment.ImageSamplerConfig{Size: c.Size, Crop: c.Crop, Flip: c.Flip, Random: train}, side, ch)
}
