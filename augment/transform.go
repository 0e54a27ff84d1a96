package augment

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Patch is a float32 image, channels-last [H, W, C]: the value of channel c
// of pixel (x, y) is Pix[(y*W+x)*C+c]. Pixels made from a dataset's uint8
// values lie in [0, 1]; some transforms (projection, noise, normalisation)
// take them outside it. C is 1 (grey) or 3 (RGB).
type Patch struct {
	Pix     []float32
	W, H, C int
}

// NewPatch returns a zeroed w×h patch of c channels.
func NewPatch(w, h, c int) Patch {
	return Patch{Pix: make([]float32, w*h*c), W: w, H: h, C: c}
}

// Colour transforms, the defences against chromatic aberration.
const (
	ColorNone    = ""        // leave colour alone (also "none")
	ColorDrop    = "drop"    // keep one random channel, fill the others with low noise (Doersch)
	ColorProject = "project" // remove the green–magenta axis from every pixel (Doersch)
	ColorGray    = "gray"    // replace every channel by the luma (modern re-implementations)
)

// Per-patch normalisations, applied after the colour transforms and
// pixelation.
const (
	NormNone        = ""     // none (also "none")
	NormMean        = "mean" // subtract each channel's mean over the patch (Doersch)
	NormStandardize = "std"  // subtract each channel's mean and divide by its standard deviation
)

// Transform is the random augmentation applied to each patch, in this
// order: horizontal flip, colour, pixelation, normalisation, additive
// noise, masking. Its zero value changes nothing; DoerschDefaults and
// ModernDefaults give the published recipes. Zero fields mean the
// defaults given on each; probabilities of 0 mean never.
type Transform struct {
	// Color is one of the Color* transforms, applied with probability
	// ColorProb (0 means: 1 for drop and project, 0.66 for gray). It does
	// nothing to grey (C = 1) patches.
	Color     string  `json:"color"`
	ColorProb float64 `json:"color_prob"`
	// DropNoise is the standard deviation of the Gaussian noise, around
	// 0.5, that replaces the dropped channels, in units of the value range
	// [0, 1]; default 0.01 (Doersch: 1/100 of the channel's spread).
	DropNoise float64 `json:"drop_noise"`

	// Pixelate is the probability of pixelation: the patch is shrunk to
	// a random side in [PixelMin, PixelMax] by averaging boxes of pixels,
	// then enlarged back by repeating pixels. The sides are pixels or
	// fractions of the patch side (see Length); defaults 0.1 (Doersch: as
	// little as 100 pixels of a 96×96 patch) and 0.5.
	Pixelate float64 `json:"pixelate"`
	PixelMin Length  `json:"pixel_min"`
	PixelMax Length  `json:"pixel_max"`

	// Normalize is one of the Norm* normalisations.
	Normalize string `json:"normalize"`

	// For autoencoders.
	Flip     float64 `json:"flip"`      // probability of a horizontal flip
	Noise    float64 `json:"noise"`     // standard deviation of additive Gaussian noise; 0 for none
	Masks    int     `json:"masks"`     // number of squares set to 0 (they may overlap)
	MaskSize Length  `json:"mask_size"` // side of each square, pixels or fraction of the patch side; default 0.25
}

// Default transform settings.
const (
	DefaultGrayProb  = 0.66
	DefaultDropNoise = 0.01
	DefaultPixelMin  = Length(0.1)
	DefaultPixelMax  = Length(0.5)
	DefaultMaskSize  = Length(0.25)
)

// DoerschDefaults returns the anti-shortcut recipe of Doersch et al. 2015:
// colour dropping, pixelation with probability 0.33 and per-patch mean
// subtraction.
func DoerschDefaults() Transform {
	return Transform{Color: ColorDrop, Pixelate: 0.33, Normalize: NormMean}
}

// ModernDefaults returns the recipe of later re-implementations (such as
// Kolesnikov et al. 2019): grayscale with probability 0.66 and per-patch
// standardisation.
func ModernDefaults() Transform {
	return Transform{Color: ColorGray, ColorProb: DefaultGrayProb, Normalize: NormStandardize}
}

// Validate returns every problem with t at once.
func (t Transform) Validate() error {
	var errs []error
	prob := func(name string, p float64) {
		if !(p >= 0 && p <= 1) {
			errs = append(errs, fmt.Errorf("augment: transform: %s %v: want a probability in [0, 1]", name, p))
		}
	}
	switch t.Color {
	case ColorNone, "none", ColorDrop, ColorProject, ColorGray:
	default:
		errs = append(errs, fmt.Errorf("augment: transform: unknown color %q: want none, %s, %s or %s", t.Color, ColorDrop, ColorProject, ColorGray))
	}
	switch t.Normalize {
	case NormNone, "none", NormMean, NormStandardize:
	default:
		errs = append(errs, fmt.Errorf("augment: transform: unknown normalize %q: want none, %s or %s", t.Normalize, NormMean, NormStandardize))
	}
	prob("color_prob", t.ColorProb)
	prob("pixelate", t.Pixelate)
	prob("flip", t.Flip)
	if !(t.DropNoise >= 0 && t.DropNoise < 1) {
		errs = append(errs, fmt.Errorf("augment: transform: drop_noise %v: want [0, 1)", t.DropNoise))
	}
	if !(t.Noise >= 0 && !math.IsInf(t.Noise, 0)) {
		errs = append(errs, fmt.Errorf("augment: transform: noise %v: want ≥ 0", t.Noise))
	}
	if t.Masks < 0 {
		errs = append(errs, fmt.Errorf("augment: transform: masks %d: want ≥ 0", t.Masks))
	}
	for _, l := range []struct {
		name string
		l    Length
	}{{"pixel_min", t.PixelMin}, {"pixel_max", t.PixelMax}, {"mask_size", t.MaskSize}} {
		if !l.l.valid() || l.l == None {
			errs = append(errs, fmt.Errorf("augment: transform: %s %v: want pixels (≥ 1), a fraction of the patch side, or 0 for the default", l.name, float64(l.l)))
		}
	}
	if t.PixelMin > 0 && t.PixelMax > 0 && (t.PixelMin >= 1) == (t.PixelMax >= 1) && t.PixelMin > t.PixelMax {
		errs = append(errs, fmt.Errorf("augment: transform: pixel_min %v > pixel_max %v", t.PixelMin, t.PixelMax))
	}
	return errors.Join(errs...)
}

// Apply transforms p in place, drawing from rng. It panics if p.C is not 1
// or 3 or len(p.Pix) ≠ W·H·C; t should have passed Validate.
func (t Transform) Apply(p Patch, rng *rand.Rand) {
	checkPatch(p)
	if t.Flip > 0 && rng.Float64() < t.Flip {
		FlipH(p)
	}
	if t.Color != ColorNone && t.Color != "none" {
		prob := t.ColorProb
		if prob == 0 {
			prob = 1
			if t.Color == ColorGray {
				prob = DefaultGrayProb
			}
		}
		if rng.Float64() < prob {
			switch t.Color {
			case ColorDrop:
				std := t.DropNoise
				if std == 0 {
					std = DefaultDropNoise
				}
				DropColor(p, rng.IntN(3), std, rng)
			case ColorProject:
				Project(p)
			case ColorGray:
				Grayscale(p)
			}
		}
	}
	if t.Pixelate > 0 && rng.Float64() < t.Pixelate {
		side := min(p.W, p.H)
		lo := max(1, t.PixelMin.or(DefaultPixelMin).Pixels(side))
		hi := max(lo, t.PixelMax.or(DefaultPixelMax).Pixels(side))
		s := lo + rng.IntN(hi-lo+1)
		Pixelate(p, s, s)
	}
	switch t.Normalize {
	case NormMean:
		SubtractMean(p)
	case NormStandardize:
		Standardize(p)
	}
	if t.Noise > 0 {
		AddNoise(p, t.Noise, rng)
	}
	if t.Masks > 0 {
		s := max(1, t.MaskSize.or(DefaultMaskSize).Pixels(min(p.W, p.H)))
		for range t.Masks {
			Mask(p, RandomCrop(p.W, p.H, s, rng))
		}
	}
}

func checkPatch(p Patch) {
	if p.C != 1 && p.C != 3 {
		panic(fmt.Sprintf("augment: patch with %d channels, want 1 or 3", p.C))
	}
	if p.W < 0 || p.H < 0 || len(p.Pix) != p.W*p.H*p.C {
		panic(fmt.Sprintf("augment: patch %d×%d×%d holds %d values", p.H, p.W, p.C, len(p.Pix)))
	}
}

// DropColor keeps channel keep of an RGB patch and replaces the other two
// with Gaussian noise of standard deviation std around 0.5. Grey patches
// are left alone.
func DropColor(p Patch, keep int, std float64, rng *rand.Rand) {
	if p.C != 3 {
		return
	}
	for i := 0; i < len(p.Pix); i += 3 {
		for c := range 3 {
			if c != keep {
				p.Pix[i+c] = float32(0.5 + std*rng.NormFloat64())
			}
		}
	}
}

// Project removes the green–magenta component of every pixel of an RGB
// patch: x ← x − a·(a·x)/(a·a) with a = [−1, 2, −1], the projection
// B = I − aᵀa/(a·aᵀ) of Doersch et al. Grey patches are left alone.
func Project(p Patch) {
	if p.C != 3 {
		return
	}
	for i := 0; i < len(p.Pix); i += 3 {
		r, g, b := p.Pix[i], p.Pix[i+1], p.Pix[i+2]
		k := (-r + 2*g - b) / 6
		p.Pix[i] = r + k
		p.Pix[i+1] = g - 2*k
		p.Pix[i+2] = b + k
	}
}

// Luma weights (ITU-R BT.601), as image/color's grey conversion.
const (
	lumaR = 0.299
	lumaG = 0.587
	lumaB = 0.114
)

// Grayscale sets every channel of an RGB patch to the pixel's luma,
// 0.299·R + 0.587·G + 0.114·B. Grey patches are left alone.
func Grayscale(p Patch) {
	if p.C != 3 {
		return
	}
	for i := 0; i < len(p.Pix); i += 3 {
		y := lumaR*p.Pix[i] + lumaG*p.Pix[i+1] + lumaB*p.Pix[i+2]
		p.Pix[i], p.Pix[i+1], p.Pix[i+2] = y, y, y
	}
}

// Pixelate shrinks p to sw×sh by averaging boxes of pixels (each small
// pixel the area-weighted mean of the pixels it covers) and enlarges it
// back by repeating pixels: pixel (x, y) takes small pixel
// (x·sw/W, y·sh/H), rounded down, so the result is constant over those
// blocks. It panics unless 1 ≤ sw ≤ W and 1 ≤ sh ≤ H.
func Pixelate(p Patch, sw, sh int) {
	if sw < 1 || sw > p.W || sh < 1 || sh > p.H {
		panic(fmt.Sprintf("augment: Pixelate %d×%d to %d×%d", p.W, p.H, sw, sh))
	}
	small := NewPatch(sw, sh, p.C)
	Resize(small, p)
	c := p.C
	for y := range p.H {
		sy := y * sh / p.H
		for x := range p.W {
			sx := x * sw / p.W
			copy(p.Pix[(y*p.W+x)*c:(y*p.W+x+1)*c], small.Pix[(sy*sw+sx)*c:])
		}
	}
}

// Resize fills dst from src with a box filter: each destination pixel is
// the area-weighted mean of the source pixels its footprint covers, which
// is exact averaging when shrinking and bilinear-like blending when
// enlarging. dst and src must have the same channels; it panics otherwise.
func Resize(dst, src Patch) {
	if dst.C != src.C {
		panic(fmt.Sprintf("augment: Resize %d channels into %d", src.C, dst.C))
	}
	if dst.W == src.W && dst.H == src.H {
		copy(dst.Pix, src.Pix)
		return
	}
	newResizer(src.W, src.H, dst.W, dst.H, src.C).resize(dst, src)
}

// resizer holds Resize's weights and scratch rows for one pair of sizes.
type resizer struct {
	xs, ys   [][]tap
	row, out []float32
	sw, c    int
}

func newResizer(sw, sh, dw, dh, c int) *resizer {
	return &resizer{xs: boxWeights(sw, dw), ys: boxWeights(sh, dh),
		row: make([]float32, sw*c), out: make([]float32, dw*c), sw: sw, c: c}
}

func (z *resizer) resize(dst, src Patch) {
	c, row, out := z.c, z.row, z.out
	for y, wy := range z.ys {
		clear(row)
		for _, t := range wy {
			s := src.Pix[t.i*z.sw*c : (t.i+1)*z.sw*c]
			for k, v := range s {
				row[k] += t.w * v
			}
		}
		clear(out)
		for x, wx := range z.xs {
			o := out[x*c : (x+1)*c]
			for _, t := range wx {
				r := row[t.i*c : (t.i+1)*c]
				for k := range o {
					o[k] += t.w * r[k]
				}
			}
		}
		copy(dst.Pix[y*len(out):], out)
	}
}

type tap struct {
	i int
	w float32
}

// boxWeights returns, for each of m output cells over n input cells, the
// input cells its footprint [j·n/m, (j+1)·n/m) overlaps and their weights
// (overlap / footprint length, summing to 1).
func boxWeights(n, m int) [][]tap {
	out := make([][]tap, m)
	scale := float64(n) / float64(m)
	for j := range m {
		lo, hi := float64(j)*scale, float64(j+1)*scale
		for i := int(lo); i < n && float64(i) < hi; i++ {
			w := (min(hi, float64(i+1)) - max(lo, float64(i))) / scale
			if w > 0 {
				out[j] = append(out[j], tap{i, float32(w)})
			}
		}
	}
	return out
}

// SubtractMean subtracts from each channel its mean over the patch.
func SubtractMean(p Patch) { normalize(p, false) }

// Standardize subtracts from each channel its mean over the patch and
// divides by its standard deviation; a constant channel becomes 0.
func Standardize(p Patch) { normalize(p, true) }

func normalize(p Patch, scale bool) {
	n := p.W * p.H
	if n == 0 {
		return
	}
	// One pass for the sums (float64, so E[x²] − mean² keeps its
	// precision), one to apply x·mul + add.
	var sum, ss [3]float64
	c := p.C
	for i := 0; i < len(p.Pix); i += c {
		for k, v := range p.Pix[i : i+c] {
			sum[k] += float64(v)
			ss[k] += float64(v) * float64(v)
		}
	}
	var mul, add [3]float32
	for k := range c {
		mean := sum[k] / float64(n)
		m := 1.0
		if scale {
			m = 0
			if std := math.Sqrt(max(0, ss[k]/float64(n)-mean*mean)); std > 1e-6 {
				m = 1 / std
			}
		}
		mul[k], add[k] = float32(m), float32(-mean*m)
	}
	if c == 1 {
		for i, v := range p.Pix {
			p.Pix[i] = v*mul[0] + add[0]
		}
		return
	}
	for i := 0; i+2 < len(p.Pix); i += 3 {
		q := p.Pix[i : i+3 : i+3]
		q[0] = q[0]*mul[0] + add[0]
		q[1] = q[1]*mul[1] + add[1]
		q[2] = q[2]*mul[2] + add[2]
	}
}

// FlipH mirrors p left to right.
func FlipH(p Patch) {
	c := p.C
	for y := range p.H {
		row := p.Pix[y*p.W*c : (y+1)*p.W*c]
		for l, r := 0, p.W-1; l < r; l, r = l+1, r-1 {
			for k := range c {
				row[l*c+k], row[r*c+k] = row[r*c+k], row[l*c+k]
			}
		}
	}
}

// AddNoise adds Gaussian noise of standard deviation std to every value.
func AddNoise(p Patch, std float64, rng *rand.Rand) {
	for i := range p.Pix {
		p.Pix[i] += float32(std * rng.NormFloat64())
	}
}

// Mask sets every value inside r (clipped to the patch) to 0.
func Mask(p Patch, r Crop) {
	x0, y0 := max(0, r.X), max(0, r.Y)
	x1, y1 := min(p.W, r.X+r.Size), min(p.H, r.Y+r.Size)
	for y := y0; y < y1; y++ {
		if x1 > x0 {
			clear(p.Pix[(y*p.W+x0)*p.C : (y*p.W+x1)*p.C])
		}
	}
}

// RandomCrop returns a size×size crop placed uniformly inside a w×h image.
// It panics unless 1 ≤ size ≤ min(w, h).
func RandomCrop(w, h, size int, rng *rand.Rand) Crop {
	if size < 1 || size > w || size > h {
		panic(fmt.Sprintf("augment: RandomCrop of %d px from %d×%d", size, w, h))
	}
	return Crop{X: rng.IntN(w - size + 1), Y: rng.IntN(h - size + 1), Size: size}
}

// CropPatch copies crop r of a w×h uint8 image of c channels, channels-last
// as in data.Record.Pixels, into dst (r.Size×r.Size×c), scaling values to
// [0, 1]. It panics if the crop leaves the image or dst has the wrong
// shape.
func CropPatch(dst Patch, pix []uint8, w, h, c int, r Crop) {
	if r.X < 0 || r.Y < 0 || r.X+r.Size > w || r.Y+r.Size > h || dst.W != r.Size || dst.H != r.Size || dst.C != c || len(pix) != w*h*c {
		panic(fmt.Sprintf("augment: CropPatch %+v from %d×%d×%d into %d×%d×%d", r, h, w, c, dst.H, dst.W, dst.C))
	}
	n := r.Size * c
	for y := range r.Size {
		src := pix[((r.Y+y)*w+r.X)*c:][:n]
		out := dst.Pix[y*n:][:n]
		for i, v := range src {
			out[i] = float32(v) * (1.0 / 255)
		}
	}
}
