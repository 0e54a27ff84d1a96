package augment

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// PairSampler draws the crop pairs of the relative-position pretext: two
// views of one crop each — the first and the second crop of a pair, both
// resized to Size×Size and transformed independently — and one label, the
// direction from the first to the second (0–7, see the Label* constants).
// The pair is drawn first, then the transform of the first crop, then of
// the second, all from the sample's generator.
type PairSampler struct {
	geom      Geometry
	transform Transform
	size, c   int
}

// NewPairSampler resolves the pair geometry cfg for side×side images of c
// channels and returns its sampler, with crops resized to size×size (0:
// the patch side) and transformed by t. It returns every problem at once:
// a geometry that does not fit (a *GeometryError), a bad transform, a
// negative size.
func NewPairSampler(cfg PairConfig, t Transform, side, c, size int) (*PairSampler, error) {
	var errs []error
	g, err := cfg.Geometry(side, side)
	if err != nil {
		errs = append(errs, err)
	}
	if err := t.Validate(); err != nil {
		errs = append(errs, err)
	}
	if size < 0 {
		errs = append(errs, fmt.Errorf("augment: pairs: size %d: want ≥ 1, or 0 for the patch size", size))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if size == 0 {
		size = g.Patch
	}
	return &PairSampler{geom: g, transform: t, size: size, c: c}, nil
}

// Geometry returns the pair geometry resolved for the images.
func (p *PairSampler) Geometry() Geometry { return p.geom }

// Views returns the two crops' views.
func (p *PairSampler) Views() []View {
	return []View{{Name: "first crop", Count: 1, Side: p.size}, {Name: "second crop", Count: 1, Side: p.size}}
}

// Labels returns 1: the direction.
func (p *PairSampler) Labels() int { return 1 }

// NewDrawer returns a drawer with its own crop buffer and resizer.
func (p *PairSampler) NewDrawer() Drawer {
	patch := p.geom.Patch
	d := &pairDrawer{p: p, crop: NewPatch(patch, patch, p.c)}
	if patch != p.size {
		d.resize = newResizer(patch, patch, p.size, p.size, p.c)
	}
	return d
}

type pairDrawer struct {
	p      *PairSampler
	crop   Patch    // patch × patch × C
	resize *resizer // nil when the patch is already the output size
}

func (d *pairDrawer) Draw(img Image, rng *rand.Rand, s Sample) error {
	pair, err := d.p.geom.Sample(rng)
	if err != nil {
		return err
	}
	s.Labels[0] = pair.Label
	for k, cr := range []Crop{pair.A, pair.B} {
		out := Patch{Pix: s.Views[k], W: d.p.size, H: d.p.size, C: img.C}
		cropResized(out, d.crop, d.resize, img, cr)
		d.p.transform.Apply(out, rng)
	}
	return nil
}

// cropResized writes the crop cr of img into out, through the scratch
// patch tmp and the resizer r when r is not nil (tmp then has cr's size).
func cropResized(out, tmp Patch, r *resizer, img Image, cr Crop) {
	if r == nil {
		CropPatch(out, img.Pix, img.Side, img.Side, img.C, cr)
		return
	}
	CropPatch(tmp, img.Pix, img.Side, img.Side, img.C, cr)
	r.resize(out, tmp)
}
