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
	// Size is the encoder's input side in pixels for whole images: the
	// views of the pretexts that see whole images, and the images of
	// probes and exports, are resized to Size×Size. Default: the image
	// side rounded up to a multiple of 2^blocks (EncoderConfig.InputSize),
	// so that 28×28 Fashion-MNIST becomes 32×32 with 4 blocks. Relpos
	// crops (PairSize) and jigsaw tiles (JigsawConfig.Size) go in at their
	// own side where they are large enough.
	Size int `json:"size"`

	// Hidden is the relpos head's width; default DefaultHidden.
	Hidden int `json:"hidden"`
	// Pairs and Transform: how relpos draws and transforms its crop
	// pairs. Transform defaults (nil) to augment.ModernDefaults(), or to
	// PhotoTransform() (none) where the crops go in at their own size.
	Pairs     augment.PairConfig `json:"pairs"`
	Transform *augment.Transform `json:"transform,omitempty"`
	// PairSize is the side, in pixels, that relpos resizes each crop of a
	// pair to for the encoder. Default (0): the crop's own side, so that
	// crops go in at their native resolution, where that side is at least
	// the encoder's least input side (EncoderConfig.MinSize: 16 pixels
	// for 4 blocks; 21-pixel crops of 96×96 images go in at 21); Size
	// where the crops are smaller (the 6-pixel crops of 28×28 images are
	// enlarged to 32). A resolved config records the native side and
	// leaves 0 for Size. Omitted from JSON when 0, so that configs that
	// do not set it keep their hashes.
	PairSize int `json:"pair_size,omitzero"`

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
