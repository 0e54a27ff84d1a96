package augment

import (
	"fmt"
	"math/rand/v2"
)

// Rotations is the number of rotated copies a RotationSampler makes of
// each image: 0°, 90°, 180° and 270°.
const Rotations = 4

// RotationSampler makes the samples of rotation prediction (Gidaris,
// Singh & Komodakis 2018): one view of Rotations images per sample — the
// image an ImageSampler draws (with its random crop and flip in
// training), then that image rotated counter-clockwise by 90°, 180° and
// 270° — and Rotations labels, 0, 1, 2, 3: the quarter turns of each
// image. The images are square, so every rotation is exact, a permutation
// of the pixels; the generator is used by the ImageSampler alone.
type RotationSampler struct {
	img *ImageSampler
}

// NewRotationSampler checks cfg for side×side images of c channels and
// returns the sampler of their rotations. It returns every problem at
// once, as NewImageSampler does.
func NewRotationSampler(cfg ImageSamplerConfig, side, c int) (*RotationSampler, error) {
	img, err := NewImageSampler(cfg, side, c)
	if err != nil {
		return nil, err
	}
	return &RotationSampler{img: img}, nil
}

// Config returns the configuration of the images rotated, with its
// defaults filled in.
func (s *RotationSampler) Config() ImageSamplerConfig { return s.img.Config() }

// Views returns the one view of the Rotations rotated images.
func (s *RotationSampler) Views() []View {
	return []View{{Name: "rotations", Count: Rotations, Side: s.img.cfg.Size}}
}

// Labels returns Rotations: the quarter turns of each image.
func (s *RotationSampler) Labels() int { return Rotations }

// NewDrawer returns a drawer with its own image drawer.
func (s *RotationSampler) NewDrawer() Drawer {
	return &rotationDrawer{img: s.img.NewDrawer(), size: s.img.cfg.Size, c: s.img.c}
}

type rotationDrawer struct {
	img     Drawer
	size, c int
	view    [1][]float32 // the upright image's slot, for img
	label   [1]int       // the dataset's class, dropped
}

func (d *rotationDrawer) Draw(img Image, rng *rand.Rand, s Sample) error {
	n := d.size * d.size * d.c
	v := s.Views[0]
	d.view[0] = v[:n]
	if err := d.img.Draw(img, rng, Sample{Views: d.view[:], Labels: d.label[:]}); err != nil {
		return err
	}
	up := Patch{Pix: v[:n], W: d.size, H: d.size, C: d.c}
	for k := 1; k < Rotations; k++ {
		Rotate90(Patch{Pix: v[k*n : (k+1)*n], W: d.size, H: d.size, C: d.c}, up, k)
	}
	for k := range Rotations {
		s.Labels[k] = k
	}
	return nil
}

// Rotate90 writes src rotated counter-clockwise by k quarter turns (k
// taken modulo 4, so −1 turns clockwise) into dst: for k = 1 the top row
// of src becomes the left column of dst, read bottom to top. src must be
// square and dst of its shape, not overlapping it; it panics otherwise.
func Rotate90(dst, src Patch, k int) {
	s, c := src.W, src.C
	if src.H != s || dst.W != s || dst.H != s || dst.C != c || len(src.Pix) != s*s*c || len(dst.Pix) != s*s*c {
		panic(fmt.Sprintf("augment: Rotate90 of %d×%d×%d into %d×%d×%d: want square patches of one shape",
			src.H, src.W, src.C, dst.H, dst.W, dst.C))
	}
	k = (k%4 + 4) % 4
	for y := range s {
		for x := range s {
			// dst(x, y) = src(sx, sy)
			var sx, sy int
			switch k {
			case 0:
				sx, sy = x, y
			case 1:
				sx, sy = s-1-y, x
			case 2:
				sx, sy = s-1-x, s-1-y
			case 3:
				sx, sy = y, s-1-x
			}
			copy(dst.Pix[(y*s+x)*c:(y*s+x+1)*c], src.Pix[(sy*s+sx)*c:(sy*s+sx+1)*c])
		}
	}
}
