package augment

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// ImageSamplerConfig configures an ImageSampler. Its zero value means
// whole images at their own side, no flips.
type ImageSamplerConfig struct {
	// Size is the side S of the images made, in pixels: images (or their
	// crops) are resized to S×S with a box filter (Resize) when their
	// side is not S. Default: the dataset's image side.
	Size int `json:"size"`

	// Crop is the side of a square crop taken before resizing, in pixels
	// or as a fraction of the image side (see Length): with Random a
	// uniformly placed random crop, without it the centre crop. 0 (or
	// None) means the whole image.
	Crop Length `json:"crop"`

	// Flip, with Random, mirrors each image left to right with
	// probability 1/2.
	Flip bool `json:"flip"`

	// Random selects training samples: random crops and flips. Without
	// it samples take no random draw at all.
	Random bool `json:"random"`
}

// ImageSampler makes single images (or crops of them): one view of one
// image, and one label, the dataset's class (-1 when unlabelled). With
// Random, the crop's place and then the flip are drawn from the sample's
// generator, and only when the image is cropped or flipped.
type ImageSampler struct {
	cfg        ImageSamplerConfig
	side, crop int // image side; crop side (side when not cropping)
	c          int
}

// NewImageSampler checks cfg for side×side images of c channels and
// returns its sampler. It returns every problem at once.
func NewImageSampler(cfg ImageSamplerConfig, side, c int) (*ImageSampler, error) {
	var errs []error
	if cfg.Size < 0 {
		errs = append(errs, fmt.Errorf("augment: images: size %d: want ≥ 1, or 0 for the image side", cfg.Size))
	}
	crop := side
	switch px := cfg.Crop.Pixels(side); {
	case !cfg.Crop.valid():
		errs = append(errs, fmt.Errorf("augment: images: crop %v: want pixels (≥ 1), a fraction of the image side, or 0 for the whole image", float64(cfg.Crop)))
	case cfg.Crop == 0 || cfg.Crop == None:
	case px < 1 || px > side:
		errs = append(errs, fmt.Errorf("augment: images: crop %v is %d px: want 1 to %d px on %d×%d images", cfg.Crop, px, side, side, side))
	default:
		crop = px
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Size == 0 {
		cfg.Size = side
	}
	return &ImageSampler{cfg: cfg, side: side, crop: crop, c: c}, nil
}

// Config returns the sampler's configuration with its defaults filled in.
func (s *ImageSampler) Config() ImageSamplerConfig { return s.cfg }

// Views returns the one image's view.
func (s *ImageSampler) Views() []View { return []View{{Name: "image", Count: 1, Side: s.cfg.Size}} }

// Labels returns 1: the dataset's class.
func (s *ImageSampler) Labels() int { return 1 }

// NewDrawer returns a drawer with its own crop buffer and resizer.
func (s *ImageSampler) NewDrawer() Drawer {
	d := &imageDrawer{s: s}
	if s.crop != s.cfg.Size {
		d.crop = NewPatch(s.crop, s.crop, s.c)
		d.resize = newResizer(s.crop, s.crop, s.cfg.Size, s.cfg.Size, s.c)
	}
	return d
}

type imageDrawer struct {
	s      *ImageSampler
	crop   Patch    // crop × crop × C, used when resizing
	resize *resizer // nil when the crop is already the output size
}

func (d *imageDrawer) Draw(img Image, rng *rand.Rand, smp Sample) error {
	s := d.s
	side, cs := s.side, s.crop
	cr := Crop{X: (side - cs) / 2, Y: (side - cs) / 2, Size: cs}
	flip := false
	if s.cfg.Random {
		if cs < side {
			cr = RandomCrop(side, side, cs, rng)
		}
		flip = s.cfg.Flip && rng.IntN(2) == 1
	}
	smp.Labels[0] = img.Label
	out := Patch{Pix: smp.Views[0], W: s.cfg.Size, H: s.cfg.Size, C: img.C}
	cropResized(out, d.crop, d.resize, img, cr)
	if flip {
		FlipH(out)
	}
	return nil
}
