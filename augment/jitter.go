package augment

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Jitter is the colour jitter of SimCLR (Chen et al. 2020), with the
// semantics of torchvision's ColorJitter: a random order of the four
// adjustments, each with its own random strength. Brightness, Contrast
// and Saturation s make a factor drawn uniformly from [max(0, 1−s), 1+s];
// Hue h makes a shift drawn uniformly from [−h, h] of a full turn of the
// colour wheel. A strength of 0 leaves that adjustment out. The values of
// a patch are taken to lie in [0, 1] (pixels made from uint8 values) and
// every adjustment clips its result to [0, 1].
//
// Grey (C = 1) patches have no saturation or hue: only brightness and
// contrast apply to them.
type Jitter struct {
	Brightness float64 `json:"brightness,omitempty"`
	Contrast   float64 `json:"contrast,omitempty"`
	Saturation float64 `json:"saturation,omitempty"`
	Hue        float64 `json:"hue,omitempty"` // at most 0.5 (half a turn)
}

// SimCLRJitter returns the jitter of SimCLR at colour strength s (the
// paper's s = 1 for ImageNet, 0.5 for CIFAR-10): brightness, contrast and
// saturation 0.8·s, hue 0.2·s.
func SimCLRJitter(s float64) Jitter {
	return Jitter{Brightness: 0.8 * s, Contrast: 0.8 * s, Saturation: 0.8 * s, Hue: 0.2 * s}
}

// Validate returns every problem with j at once.
func (j Jitter) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    float64
	}{{"brightness", j.Brightness}, {"contrast", j.Contrast}, {"saturation", j.Saturation}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			errs = append(errs, fmt.Errorf("augment: jitter: %s %v: want a finite strength ≥ 0", f.name, f.v))
		}
	}
	if !(j.Hue >= 0 && j.Hue <= 0.5) {
		errs = append(errs, fmt.Errorf("augment: jitter: hue %v: want a shift in [0, 0.5] of a turn", j.Hue))
	}
	return errors.Join(errs...)
}

// The adjustments of a Jitter, in the order of its fields.
const (
	jitterBrightness = iota
	jitterContrast
	jitterSaturation
	jitterHue
	jitterKinds
)

// Apply adjusts p in place, drawing from rng: first the order of the four
// adjustments (a permutation, rng.Perm(4)), then, in that order, the
// factor or shift of each that has a strength and applies to p's
// channels, each drawn just before it is applied. It panics if p.C is not
// 1 or 3 or len(p.Pix) ≠ W·H·C; j should have passed Validate.
func (j Jitter) Apply(p Patch, rng *rand.Rand) {
	checkPatch(p)
	factor := func(s float64) float64 {
		lo := max(0, 1-s)
		return lo + (1+s-lo)*rng.Float64()
	}
	for _, k := range rng.Perm(jitterKinds) {
		switch {
		case k == jitterBrightness && j.Brightness > 0:
			Brightness(p, factor(j.Brightness))
		case k == jitterContrast && j.Contrast > 0:
			Contrast(p, factor(j.Contrast))
		case k == jitterSaturation && j.Saturation > 0 && p.C == 3:
			Saturation(p, factor(j.Saturation))
		case k == jitterHue && j.Hue > 0 && p.C == 3:
			Hue(p, j.Hue*(2*rng.Float64()-1))
		}
	}
}

// clip01 clips v to [0, 1].
func clip01(v float32) float32 { return min(max(v, 0), 1) }

// Brightness multiplies every value of p by f ≥ 0 and clips to [0, 1]
// (torchvision's adjust_brightness: a blend with black).
func Brightness(p Patch, f float64) {
	ff := float32(f)
	for i, v := range p.Pix {
		p.Pix[i] = clip01(v * ff)
	}
}

// Contrast blends p with its mean grey level m (the mean over the patch of
// the luma, 0.299·R + 0.587·G + 0.114·B, or of the one channel of a grey
// patch): x ← f·x + (1−f)·m, clipped to [0, 1] (torchvision's
// adjust_contrast). f = 0 gives a uniform patch, f = 1 leaves p alone.
func Contrast(p Patch, f float64) {
	n := p.W * p.H
	if n == 0 {
		return
	}
	var sum float64
	if p.C == 3 {
		for i := 0; i+2 < len(p.Pix); i += 3 {
			sum += float64(lumaR*p.Pix[i] + lumaG*p.Pix[i+1] + lumaB*p.Pix[i+2])
		}
	} else {
		for _, v := range p.Pix {
			sum += float64(v)
		}
	}
	ff := float32(f)
	add := float32((1 - f) * sum / float64(n))
	for i, v := range p.Pix {
		p.Pix[i] = clip01(ff*v + add)
	}
}

// Saturation blends every pixel of an RGB patch with its own luma y:
// x ← f·x + (1−f)·y, clipped to [0, 1] (torchvision's adjust_saturation).
// f = 0 gives the grey patch, f = 1 leaves it alone. Grey patches are
// left alone.
func Saturation(p Patch, f float64) {
	if p.C != 3 {
		return
	}
	ff, gf := float32(f), float32(1-f)
	for i := 0; i+2 < len(p.Pix); i += 3 {
		q := p.Pix[i : i+3 : i+3]
		y := gf * (lumaR*q[0] + lumaG*q[1] + lumaB*q[2])
		q[0] = clip01(ff*q[0] + y)
		q[1] = clip01(ff*q[1] + y)
		q[2] = clip01(ff*q[2] + y)
	}
}

// Hue turns the hue of every pixel of an RGB patch by shift, a fraction of
// a full turn (torchvision's adjust_hue: to HSV, the hue moved modulo 1,
// back to RGB), keeping its saturation and value. Grey patches, and grey
// pixels of any patch, are left alone; values are taken to lie in [0, 1].
func Hue(p Patch, shift float64) {
	if p.C != 3 {
		return
	}
	for i := 0; i+2 < len(p.Pix); i += 3 {
		q := p.Pix[i : i+3 : i+3]
		h, s, v := rgbToHSV(float64(q[0]), float64(q[1]), float64(q[2]))
		if s == 0 {
			continue
		}
		h = math.Mod(h+shift, 1)
		if h < 0 {
			h++
		}
		r, g, b := hsvToRGB(h, s, v)
		q[0], q[1], q[2] = float32(r), float32(g), float32(b)
	}
}

// rgbToHSV converts r, g, b in [0, 1] to hue in [0, 1), saturation and
// value, as torchvision's _rgb2hsv.
func rgbToHSV(r, g, b float64) (h, s, v float64) {
	mx, mn := max(r, g, b), min(r, g, b)
	v = mx
	c := mx - mn
	if c <= 0 {
		return 0, 0, v
	}
	s = c / mx
	rc, gc, bc := (mx-r)/c, (mx-g)/c, (mx-b)/c
	switch {
	case mx == r:
		h = bc - gc
	case mx == g:
		h = 2 + rc - bc
	default:
		h = 4 + gc - rc
	}
	h = math.Mod(h/6+1, 1)
	return h, s, v
}

// hsvToRGB is the inverse of rgbToHSV for h in [0, 1), s and v in [0, 1].
func hsvToRGB(h, s, v float64) (r, g, b float64) {
	h6 := h * 6
	i := math.Floor(h6)
	f := h6 - i
	p := min(max(v*(1-s), 0), 1)
	q := min(max(v*(1-s*f), 0), 1)
	t := min(max(v*(1-s*(1-f)), 0), 1)
	switch int(i) % 6 {
	case 0:
		return v, t, p
	case 1:
		return q, v, p
	case 2:
		return p, v, t
	case 3:
		return p, q, v
	case 4:
		return t, p, v
	default:
		return v, p, q
	}
}
