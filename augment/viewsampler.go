package augment

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ViewConfig is the augmentation that makes each view of a contrastive
// pretext (SimCLR, Chen et al. 2020), applied in this order: a random
// resized crop, a horizontal flip, the colour jitter with probability
// JitterProb, grayscale with probability Gray. Zero fields mean the
// defaults given on each; probabilities of 0 mean never, jitter strengths
// of 0 no adjustment. SimCLRViews gives the recipe as Patchwise uses it.
type ViewConfig struct {
	// Scale is the range of the crop's area, as fractions of the image's
	// area; default DefaultViewScale. Ratio is the range of its aspect
	// ratio, width over height, drawn log-uniformly; default 3/4 to 4/3.
	// See RandomResizedCrop.
	Scale [2]float64 `json:"scale"`
	Ratio [2]float64 `json:"ratio"`

	// Flip is the probability of a horizontal flip.
	Flip float64 `json:"flip"`

	// Jitter is the colour jitter, applied with probability JitterProb.
	Jitter     Jitter  `json:"jitter"`
	JitterProb float64 `json:"jitter_prob"`

	// Gray is the probability of replacing an RGB view by its luma
	// (Grayscale).
	Gray float64 `json:"gray"`
}

// Default view settings.
var (
	// DefaultViewScale is the default range of a view's crop area. The
	// paper's 0.08–1 was chosen for ImageNet's large photos; on 28×28
	// Fashion-MNIST a crop of 8 % is an 8×8 scrap of a garment, and 0.2–1
	// probed a little better than 0.08–1 or 0.4–1 after the same training
	// (one seed; docs/design.md §5).
	DefaultViewScale = [2]float64{0.2, 1}
	// DefaultViewRatio is the paper's range of aspect ratios.
	DefaultViewRatio = [2]float64{3.0 / 4, 4.0 / 3}
)

// SimCLRViews returns SimCLR's view augmentation as Patchwise uses it: a
// random resized crop of DefaultViewScale and DefaultViewRatio, a flip
// with probability 1/2, the paper's colour jitter at strength 1
// (SimCLRJitter(1)) with probability 0.8 and grayscale with probability
// 0.2. The paper's Gaussian blur, which it did not use on CIFAR-10's
// small images, is left out.
func SimCLRViews() ViewConfig {
	return ViewConfig{Scale: DefaultViewScale, Ratio: DefaultViewRatio, Flip: 0.5,
		Jitter: SimCLRJitter(1), JitterProb: 0.8, Gray: 0.2}
}

func (c ViewConfig) withDefaults() ViewConfig {
	if c.Scale == [2]float64{} {
		c.Scale = DefaultViewScale
	}
	if c.Ratio == [2]float64{} {
		c.Ratio = DefaultViewRatio
	}
	return c
}

// Validate returns every problem with c at once.
func (c ViewConfig) Validate() error {
	var errs []error
	if s := c.Scale; s != [2]float64{} && !(s[0] > 0 && s[0] <= s[1] && s[1] <= 1) {
		errs = append(errs, fmt.Errorf("augment: views: scale %v: want 0 < min ≤ max ≤ 1, or [0, 0] for the default", s))
	}
	if r := c.Ratio; r != [2]float64{} && !(r[0] > 0 && r[0] <= r[1] && !math.IsInf(r[1], 0)) {
		errs = append(errs, fmt.Errorf("augment: views: ratio %v: want 0 < min ≤ max, finite, or [0, 0] for the default", r))
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"flip", c.Flip}, {"jitter_prob", c.JitterProb}, {"gray", c.Gray}} {
		if !(p.v >= 0 && p.v <= 1) {
			errs = append(errs, fmt.Errorf("augment: views: %s %v: want a probability in [0, 1]", p.name, p.v))
		}
	}
	if err := c.Jitter.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Rect is a rectangle of pixels: W×H with its top-left corner at (X, Y).
type Rect struct {
	X, Y, W, H int
}

// RandomResizedCrop draws the crop of torchvision's RandomResizedCrop from
// a w×h image: up to 10 tries of an area drawn uniformly from
// scale·w·h and an aspect ratio (width over height) drawn log-uniformly
// from ratio, the crop's sides rounded to whole pixels; the first that
// fits is placed uniformly in the image. When none fits, the central crop
// of the largest rectangle whose aspect ratio lies in ratio. It panics
// unless w, h ≥ 1, 0 < scale[0] ≤ scale[1] and 0 < ratio[0] ≤ ratio[1].
func RandomResizedCrop(w, h int, scale, ratio [2]float64, rng *rand.Rand) Rect {
	if w < 1 || h < 1 || !(scale[0] > 0 && scale[0] <= scale[1]) || !(ratio[0] > 0 && ratio[0] <= ratio[1]) {
		panic(fmt.Sprintf("augment: RandomResizedCrop from %d×%d, scale %v, ratio %v", w, h, scale, ratio))
	}
	area := float64(w * h)
	lr0, lr1 := math.Log(ratio[0]), math.Log(ratio[1])
	for range 10 {
		a := area * (scale[0] + (scale[1]-scale[0])*rng.Float64())
		r := math.Exp(lr0 + (lr1-lr0)*rng.Float64())
		cw := int(math.Round(math.Sqrt(a * r)))
		ch := int(math.Round(math.Sqrt(a / r)))
		if cw > 0 && cw <= w && ch > 0 && ch <= h {
			return Rect{X: rng.IntN(w - cw + 1), Y: rng.IntN(h - ch + 1), W: cw, H: ch}
		}
	}
	cw, ch := w, h
	switch in := float64(w) / float64(h); {
	case in < ratio[0]:
		ch = max(1, int(math.Round(float64(cw)/ratio[0])))
	case in > ratio[1]:
		cw = max(1, int(math.Round(float64(ch)*ratio[1])))
	}
	return Rect{X: (w - cw) / 2, Y: (h - ch) / 2, W: cw, H: ch}
}

// ViewSampler makes the samples of a contrastive pretext: two views of one
// image, each augmented independently by a ViewConfig and resized to
// Size×Size, in one view of Count 2 (so a batch of N samples is
// [2N, S, S, C], the views of sample i at rows 2i and 2i+1), and no
// labels. The first view is drawn entirely before the second, each in the
// order of ViewConfig, from the sample's generator.
//
// Training and evaluation alike draw random views: a contrastive task has
// nothing to measure on identical views, and the Loader's seeds make an
// evaluation's views the same every time.
type ViewSampler struct {
	cfg     ViewConfig
	side, c int
	size    int
}

// NewViewSampler checks cfg for side×side images of c channels and
// returns its sampler, with views resized to size×size (0: the image
// side). It returns every problem at once.
func NewViewSampler(cfg ViewConfig, side, c, size int) (*ViewSampler, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if side < 1 {
		errs = append(errs, fmt.Errorf("augment: views: image side %d: want ≥ 1", side))
	}
	if c != 1 && c != 3 {
		errs = append(errs, fmt.Errorf("augment: views: %d channels: want 1 or 3", c))
	}
	if size < 0 {
		errs = append(errs, fmt.Errorf("augment: views: size %d: want ≥ 1, or 0 for the image side", size))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if size == 0 {
		size = side
	}
	return &ViewSampler{cfg: cfg.withDefaults(), side: side, c: c, size: size}, nil
}

// Config returns the sampler's configuration with its defaults filled in.
func (s *ViewSampler) Config() ViewConfig { return s.cfg }

// Views returns the one view of two augmented images.
func (s *ViewSampler) Views() []View {
	return []View{{Name: "augmented views", Count: 2, Side: s.size}}
}

// Labels returns 0: a view pair has no label.
func (s *ViewSampler) Labels() int { return 0 }

// NewDrawer returns a drawer with its own crop buffer and resize weights.
func (s *ViewSampler) NewDrawer() Drawer {
	return &viewDrawer{s: s, crop: make([]float32, s.side*s.side*s.c),
		xs: make([][][]tap, s.side+1), ys: make([][][]tap, s.side+1),
		row: make([]float32, s.side*s.c), out: make([]float32, s.size*s.c)}
}

type viewDrawer struct {
	s    *ViewSampler
	crop []float32 // a crop's pixels, up to side×side×C
	// xs[w] and ys[h] are the box weights from w (h) source pixels to
	// size, made on first use.
	xs, ys   [][][]tap
	row, out []float32 // the resizer's scratch rows
}

func (d *viewDrawer) Draw(img Image, rng *rand.Rand, smp Sample) error {
	s := d.s
	if img.Side != s.side || img.C != s.c || len(img.Pix) != s.side*s.side*s.c {
		return fmt.Errorf("augment: views: a %d×%d image of %d channels (%d values), the sampler's are %d×%d of %d",
			img.Side, img.Side, img.C, len(img.Pix), s.side, s.side, s.c)
	}
	per := s.size * s.size * s.c
	for k := range 2 {
		out := Patch{Pix: smp.Views[0][k*per : (k+1)*per], W: s.size, H: s.size, C: s.c}
		d.view(out, img, rng)
	}
	return nil
}

// view draws one augmented view of img into out.
func (d *viewDrawer) view(out Patch, img Image, rng *rand.Rand) {
	cfg, c := d.s.cfg, d.s.c
	r := RandomResizedCrop(img.Side, img.Side, cfg.Scale, cfg.Ratio, rng)
	crop := Patch{Pix: d.crop[:r.W*r.H*c], W: r.W, H: r.H, C: c}
	n := r.W * c
	for y := range r.H {
		src := img.Pix[((r.Y+y)*img.Side+r.X)*c:][:n]
		dst := crop.Pix[y*n:][:n]
		for i, v := range src {
			dst[i] = float32(v) * (1.0 / 255)
		}
	}
	if d.xs[r.W] == nil {
		d.xs[r.W] = boxWeights(r.W, d.s.size)
	}
	if d.ys[r.H] == nil {
		d.ys[r.H] = boxWeights(r.H, d.s.size)
	}
	z := resizer{xs: d.xs[r.W], ys: d.ys[r.H], row: d.row[:n], out: d.out, sw: r.W, c: c}
	z.resize(out, crop)
	if cfg.Flip > 0 && rng.Float64() < cfg.Flip {
		FlipH(out)
	}
	if cfg.JitterProb > 0 && rng.Float64() < cfg.JitterProb {
		cfg.Jitter.Apply(out, rng)
	}
	if cfg.Gray > 0 && rng.Float64() < cfg.Gray {
		Grayscale(out)
	}
}
