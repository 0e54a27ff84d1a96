package data

import (
	"errors"
	"fmt"
	"hash/fnv"
	"image"
	"math"
	mrand "math/rand/v2"
)

// Crops says how ingest cuts each input image into random crops, so that a
// few hundred high-resolution photos make a pool of tens of thousands of
// training images (as STL-10's unlabelled split was cut from ImageNet).
// Its zero value means no crops: each input is one record, resized by the
// Resize policy. A crop is drawn as torchvision's RandomResizedCrop draws
// one: an area uniform in Scale times the image's, a width/height ratio
// log-uniform in Ratio, a position uniform among those that fit (ten
// tries, then the largest centred crop of a ratio in range); the crop is
// then resized to Size×Size, its ratio stretched to a square (draw
// undistorted square crops with Ratio [1, 1]). Crops are placed in the
// image as displayed, after its EXIF orientation.
//
// The draws come from a generator seeded by Seed and a hash of the input's
// origin, so the crops of an image do not depend on the other inputs, the
// order or the number of workers. Each crop is a record whose origin is
// the input's origin followed by "#crop" and the crop's number and
// geometry (see CropOrigin); the crops of one input go to the same split.
type Crops struct {
	// N is the number of crops per input image; 0: no crops.
	N int `json:"n"`
	// Scale is the range of the crop's area as a fraction of the image's
	// area; default DefaultCropScale.
	Scale [2]float64 `json:"scale"`
	// Ratio is the range of the crop's width/height; default
	// DefaultCropRatio.
	Ratio [2]float64 `json:"ratio"`
	// Seed seeds the draws, with each input's origin.
	Seed uint64 `json:"seed"`
}

// Defaults of Crops. The scale is RandomResizedCrop's [0.08, 1] with its
// lower end raised to 0.25, so that a crop keeps the layout of the photo
// (sky above, ground below) rather than a patch of its texture: on random
// crops of 90 Debian wallpapers at 96 pixels, relative position learnt
// from crops of 0.25–1 and 0.5–1 of the area alike (validation accuracy
// 0.14–0.18 after 300 steps, within the runs' spread) and barely at all
// from small ones (sides 10–40 % of the shorter side: 0.13–0.16, chance
// 0.125), while 0.5–1 left 11 % of the crops of 16:9 wallpapers as
// copies of the centre crop that RandomResizedCrop falls back to when no
// draw fits. A crop of a 512×512 image keeps 256 pixels a side, one of a
// 1920×1080 wallpaper 720. The ratio is RandomResizedCrop's.
var (
	DefaultCropScale = [2]float64{0.25, 1}
	DefaultCropRatio = [2]float64{3.0 / 4, 4.0 / 3}
)

// MaxCrops is the largest Crops.N.
const MaxCrops = 100000

// withDefaults fills in c's defaults when it makes crops.
func (c Crops) withDefaults() Crops {
	if c.N == 0 {
		return c
	}
	if c.Scale == [2]float64{} {
		c.Scale = DefaultCropScale
	}
	if c.Ratio == [2]float64{} {
		c.Ratio = DefaultCropRatio
	}
	return c
}

// validate reports every problem with c (defaults filled in) at once.
func (c Crops) validate() []error {
	var errs []error
	switch {
	case c.N < 0 || c.N > MaxCrops:
		errs = append(errs, fmt.Errorf("data: crops per image %d: want 0 (none) to %d", c.N, MaxCrops))
	case c.N == 0:
		if c != (Crops{}) {
			errs = append(errs, errors.New("data: crop scale, ratio or seed given without a number of crops"))
		}
		return errs
	}
	if s := c.Scale; !(s[0] > 0 && s[0] <= s[1] && s[1] <= 1) {
		errs = append(errs, fmt.Errorf("data: crop scale [%v, %v]: want 0 < min ≤ max ≤ 1 (fractions of the image's area)", s[0], s[1]))
	}
	if r := c.Ratio; !(r[0] > 0 && r[0] <= r[1] && !math.IsInf(r[1], 0)) {
		errs = append(errs, fmt.Errorf("data: crop ratio [%v, %v]: want 0 < min ≤ max (width/height)", r[0], r[1]))
	}
	return errs
}

// Rects returns the N crops of an image of w×h pixels (as displayed) whose
// origin is origin, drawn as the Crops doc says. c must be valid, with
// N > 0, and w and h positive.
func (c Crops) Rects(w, h int, origin string) []image.Rectangle {
	c = c.withDefaults()
	f := fnv.New64a()
	f.Write([]byte(origin))
	rng := mrand.New(mrand.NewPCG(c.Seed, f.Sum64()))
	area := float64(w) * float64(h)
	lr0, lr1 := math.Log(c.Ratio[0]), math.Log(c.Ratio[1])
	out := make([]image.Rectangle, c.N)
	for k := range out {
		out[k] = cropRect(rng, w, h, area, c.Scale, lr0, lr1, c.Ratio)
	}
	return out
}

// cropRect draws one crop as torchvision's RandomResizedCrop.get_params.
func cropRect(rng *mrand.Rand, w, h int, area float64, scale [2]float64, lr0, lr1 float64, ratio [2]float64) image.Rectangle {
	for range 10 {
		a := area * (scale[0] + (scale[1]-scale[0])*rng.Float64())
		r := math.Exp(lr0 + (lr1-lr0)*rng.Float64())
		cw := int(math.Round(math.Sqrt(a * r)))
		ch := int(math.Round(math.Sqrt(a / r)))
		if cw > 0 && ch > 0 && cw <= w && ch <= h {
			x, y := rng.IntN(w-cw+1), rng.IntN(h-ch+1)
			return image.Rect(x, y, x+cw, y+ch)
		}
	}
	// The largest centred crop whose ratio is in range.
	cw, ch := w, h
	switch in := float64(w) / float64(h); {
	case in < ratio[0]:
		ch = max(1, min(h, int(math.Round(float64(w)/ratio[0]))))
	case in > ratio[1]:
		cw = max(1, min(w, int(math.Round(float64(h)*ratio[1]))))
	}
	x, y := (w-cw)/2, (h-ch)/2
	return image.Rect(x, y, x+cw, y+ch)
}

// CropOrigin is the origin of crop k (from 0), at r in the displayed
// image, of the input whose origin is origin: "photos/a.jpg#crop7=320x240+12+40"
// (the crop's width×height+x+y, as X11 geometry writes it).
func CropOrigin(origin string, k int, r image.Rectangle) string {
	return fmt.Sprintf("%s#crop%d=%dx%d+%d+%d", origin, k, r.Dx(), r.Dy(), r.Min.X, r.Min.Y)
}

// Crop is one crop of an image: where it is in the displayed image, and
// its pixels after preprocessing.
type Crop struct {
	Rect   image.Rectangle
	Pixels []uint8 // Size×Size×Channels, channels-last
}

// ConvertCrops returns the p.Crops.N crops of img (as displayed) whose
// origin is origin, each resized to p.Size×p.Size, with the colour
// handling of Convert. It panics if p is invalid, makes no crops, or img
// has no pixels.
func ConvertCrops(img image.Image, p Preprocess, origin string) []Crop {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	p = p.WithDefaults()
	if p.Crops.N == 0 {
		panic("data: ConvertCrops without crops")
	}
	b := img.Bounds()
	if b.Empty() {
		panic("data: ConvertCrops of an image with no pixels")
	}
	return cropAll(img, b.Dx(), b.Dy(), p, p.Crops.Rects(b.Dx(), b.Dy(), origin), 1)
}

// cropAll cuts rects (in the displayed image) out of img, the stored
// image of fw×fh pixels in source orientation orient, decoded whole or at
// a reduced scale (the DC-only JPEG decoder's 1/8), and converts each; p
// has its defaults.
//
// A crop much larger than p.Size is cut from a copy of the image reduced
// by a power of two (2×2 box averages of 2×2 box averages, built once a
// photo) that keeps at least pyramidMargin·p.Size pixels on the crop's
// shorter side, so the resize still averages each output pixel over a
// block of at least reducingGap pixels: the same filter within a block's
// rounding (a mean absolute difference of 0.2 to 0.7 levels from cutting
// from the full image, on the Debian wallpapers), for less work: the
// default 200 crops of a 3700×2400 photo at 96 pixels take 0.4 to 0.6 of
// the time.
func cropAll(img image.Image, fw, fh int, p Preprocess, rects []image.Rectangle, orient int) []Crop {
	levels := []image.Image{img} // levels[l]: img reduced by 2^l
	level := func(l int) image.Image {
		for len(levels) <= l {
			b := levels[len(levels)-1].Bounds()
			w, h := b.Dx()/2, b.Dy()/2
			levels = append(levels, boxReduce(levels[len(levels)-1], image.Rect(b.Min.X, b.Min.Y, b.Min.X+2*w, b.Min.Y+2*h), 2, 2))
		}
		return levels[l]
	}
	b := img.Bounds()
	out := make([]Crop, len(rects))
	for k, r := range rects {
		src := scaleRect(sourceRect(r, fw, fh, orient), fw, fh, b.Dx(), b.Dy())
		l := 0
		for min(src.Dx(), src.Dy())>>(l+1) >= int(pyramidMargin)*p.Size {
			l++
		}
		m := level(l)
		mb := m.Bounds()
		src = scaleRect(src, b.Dx(), b.Dy(), mb.Dx(), mb.Dy())
		small := resizeRect(m, src.Add(mb.Min), p.Size, p.Size)
		out[k] = Crop{Rect: r, Pixels: pixelsOf(orientNRGBA(small, orient), p.Size, p.Channels)}
	}
	return out
}

// pyramidMargin is how many times the output side a crop keeps on its
// shorter side in the reduced copy it is cut from (see cropAll).
const pyramidMargin = 2 * reducingGap

// scaleRect maps r, in an image of fw×fh pixels, to an image of the same
// picture at gw×gh pixels, rounding, at least one pixel, inside it.
func scaleRect(r image.Rectangle, fw, fh, gw, gh int) image.Rectangle {
	if fw == gw && fh == gh {
		return r
	}
	scale := func(v, full, got int) int { return int((int64(v)*int64(got) + int64(full)/2) / int64(full)) }
	x0, y0 := min(scale(r.Min.X, fw, gw), gw-1), min(scale(r.Min.Y, fh, gh), gh-1)
	return image.Rect(x0, y0, min(max(scale(r.Max.X, fw, gw), x0+1), gw), min(max(scale(r.Max.Y, fh, gh), y0+1), gh))
}

// sourceRect maps the rectangle r of an image as displayed to the same
// pixels in the stored image of w×h pixels (source orientation) whose
// EXIF orientation is o (1 to 8); see orientNRGBA.
func sourceRect(r image.Rectangle, w, h, o int) image.Rectangle {
	x0, y0, x1, y1 := r.Min.X, r.Min.Y, r.Max.X, r.Max.Y
	switch o {
	case 2: // flipped left to right
		return image.Rect(w-x1, y0, w-x0, y1)
	case 3: // rotated 180°
		return image.Rect(w-x1, h-y1, w-x0, h-y0)
	case 4: // flipped top to bottom
		return image.Rect(x0, h-y1, x1, h-y0)
	case 5: // transposed
		return image.Rect(y0, x0, y1, x1)
	case 6: // displayed rotated 90° clockwise
		return image.Rect(y0, h-x1, y1, h-x0)
	case 7: // transversed
		return image.Rect(w-y1, h-x1, w-y0, h-x0)
	case 8: // displayed rotated 90° counter-clockwise
		return image.Rect(w-y1, x0, w-y0, x1)
	}
	return r
}
