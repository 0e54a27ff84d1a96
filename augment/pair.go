package augment

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Length is a size in pixels when it is 1 or more, or a fraction of the
// image's shorter side when it lies strictly between 0 and 1. Pixel counts
// and fractions alike are rounded to the nearest whole pixel. In a config,
// 0 means the field's default; None asks for a length of zero where zero
// would mean the default. Other negative values are invalid.
type Length float64

// None is the Length that means zero pixels.
const None Length = -1

// Pixels returns l in pixels for an image whose shorter side is side:
// l itself when l ≥ 1, l·side when 0 < l < 1, and 0 for 0 and None; all
// rounded to the nearest whole pixel.
func (l Length) Pixels(side int) int {
	switch {
	case l >= 1:
		return int(math.Round(float64(l)))
	case l > 0:
		return int(math.Round(float64(l) * float64(side)))
	}
	return 0
}

// String formats l as it would be typed: "0.25", "12" or "none".
func (l Length) String() string {
	if l == None {
		return "none"
	}
	return fmt.Sprintf("%g", float64(l))
}

// valid reports whether l is 0, None, or a finite positive number.
func (l Length) valid() bool {
	f := float64(l)
	return l == None || (f >= 0 && !math.IsInf(f, 0) && !math.IsNaN(f))
}

// or returns l, or def when l is 0.
func (l Length) or(def Length) Length {
	if l == 0 {
		return def
	}
	return l
}

// Samplers.
const (
	SamplerGrid = "grid" // Doersch's 3×3 grid: the centre patch and one of its 8 neighbours
	SamplerFree = "free" // two crops at a centre distance in [MinDist, MaxDist], direction in 8 bins
)

// Default geometry, as fractions of the image's shorter side. Doersch et al.
// used 96-pixel patches with a 48-pixel gap and up to 7 pixels of jitter:
// a gap of half a patch and a jitter of about 7 % of a patch. Scaled so that
// the whole jittered grid (3·patch + 2·gap + 2·jitter) covers 94 % of the
// side, leaving some room for the random grid origin:
const (
	DefaultGridPatch  Length = 0.22 // 14 px at 64, 7 at 32
	DefaultGridGap    Length = 0.11 // half the patch, as 48/96
	DefaultGridJitter Length = 0.03 // 2 px at 64, 1 at 32 (Doersch: 7/255 ≈ 0.027)
	DefaultFreePatch  Length = 0.3
	DefaultMinDist    Length = 0.4
	DefaultMaxDist    Length = 0.7
)

// PairConfig says how crop pairs are drawn. Its zero value means the
// defaults given on each field: a grid sampler with the Default* geometry,
// scaled to the image. Lengths are pixels or fractions of the image's
// shorter side (see Length). Fields that do not apply to the chosen
// sampler are ignored.
type PairConfig struct {
	Sampler string `json:"sampler"` // SamplerGrid (default, also for "") or SamplerFree

	// Patch is the side of both (square) crops; default DefaultGridPatch
	// (or the largest patch that fits with the gap and jitter, where
	// rounding makes that one pixel too big) for the grid, DefaultFreePatch
	// for the free sampler.
	Patch Length `json:"patch"`

	// Grid sampler.
	Gap    Length `json:"gap"`    // pixels between neighbouring grid cells; default DefaultGridGap
	Jitter Length `json:"jitter"` // each patch moves by up to ±Jitter on each axis; default DefaultGridJitter

	// Free sampler.
	MinDist Length `json:"min_dist"` // least distance between the crops' centres; default DefaultMinDist
	MaxDist Length `json:"max_dist"` // greatest distance between the crops' centres; default DefaultMaxDist
	// MinGap is the least gap between the crops' borders: the larger of
	// the horizontal and vertical gaps, max(|dx|, |dy|) − patch for a
	// centre offset (dx, dy). Default 0: the crops never overlap but may
	// touch.
	MinGap Length `json:"min_gap"`
}

// Geometry is a PairConfig resolved for one image size: every length in
// pixels, checked to fit. Make one with PairConfig.Geometry.
type Geometry struct {
	Sampler       string
	Width, Height int // the image size it was resolved for
	Patch         int
	Gap, Jitter   int // grid
	MinDist       int // free
	MaxDist       int // free
	MinGap        int // free
}

// GeometryError reports a pair geometry that cannot fit the image. Its
// message states the largest geometry that would. Test for it with
// errors.As.
type GeometryError struct {
	Width, Height int    // the image size
	Msg           string // what does not fit, and what would
}

func (e *GeometryError) Error() string {
	return fmt.Sprintf("augment: pairs on %d×%d images: %s", e.Width, e.Height, e.Msg)
}

// Crop is a square region of an image: its top-left pixel and its side, in
// pixels.
type Crop struct {
	X, Y, Size int
}

// Centre returns the crop's centre, in pixels (x + size/2, y + size/2).
func (c Crop) Centre() (x, y float64) {
	return float64(c.X) + float64(c.Size)/2, float64(c.Y) + float64(c.Size)/2
}

// Pair is two crops of one image and the direction from A to B as a label
// in 0–7, in the order of the Label* constants.
type Pair struct {
	A, B  Crop
	Label int
}

// Labels: the direction from crop A to crop B, in image coordinates (y
// grows downwards). For the grid sampler A is the centre cell and B the
// neighbour in that direction; the neighbours are numbered row by row, as
// they are read. For the free sampler the label is the 45° bin, centred on
// the same direction, that the angle of B's centre seen from A's falls in.
const (
	LabelTopLeft     = 0 // dx < 0, dy < 0
	LabelTop         = 1 // dx = 0, dy < 0
	LabelTopRight    = 2
	LabelLeft        = 3
	LabelRight       = 4
	LabelBottomLeft  = 5
	LabelBottom      = 6
	LabelBottomRight = 7
	NumLabels        = 8
)

// Direction returns the grid step (dx, dy ∈ {−1, 0, 1}) from crop A to
// crop B for label. It panics if label is not in [0, 8).
func Direction(label int) (dx, dy int) {
	if label < 0 || label >= NumLabels {
		panic(fmt.Sprintf("augment: Direction: label %d not in [0, 8)", label))
	}
	k := label
	if k >= 4 {
		k++ // skip the centre cell
	}
	return k%3 - 1, k/3 - 1
}

// octantLabel maps octant k (the direction at angle k·45°, y down, so 1 is
// bottom-right) to its label.
var octantLabel = [8]int{LabelRight, LabelBottomRight, LabelBottom, LabelBottomLeft, LabelLeft, LabelTopLeft, LabelTop, LabelTopRight}

// labelOctant is the inverse of octantLabel.
var labelOctant = [8]int{5, 6, 7, 4, 0, 3, 2, 1}

// AngleLabel returns the label of the direction (dx, dy) in image
// coordinates (y down): the 45° bin [c − 22.5°, c + 22.5°) around each
// label's direction c that atan2(dy, dx) falls in. (0, 0) gives
// LabelRight.
func AngleLabel(dx, dy float64) int {
	a := math.Atan2(dy, dx) // (−π, π]
	k := int(math.Floor(a/(math.Pi/4)+0.5)) & 7
	return octantLabel[k]
}

// Geometry resolves c for width×height images and checks it, returning
// every problem at once (errors.Join): unknown sampler, invalid lengths,
// and geometry that cannot fit (a *GeometryError that states the largest
// geometry that would).
func (c PairConfig) Geometry(width, height int) (Geometry, error) {
	var errs []error
	if width < 1 || height < 1 {
		return Geometry{}, fmt.Errorf("augment: pairs: image size %d×%d: want at least 1×1", width, height)
	}
	side := min(width, height)
	g := Geometry{Sampler: c.Sampler, Width: width, Height: height}
	if g.Sampler == "" {
		g.Sampler = SamplerGrid
	}
	for _, f := range []struct {
		name string
		l    Length
	}{{"patch", c.Patch}, {"gap", c.Gap}, {"jitter", c.Jitter}, {"min_dist", c.MinDist}, {"max_dist", c.MaxDist}, {"min_gap", c.MinGap}} {
		if !f.l.valid() {
			errs = append(errs, fmt.Errorf("augment: pairs: %s %v: want pixels (≥ 1), a fraction of the side (0 to 1), 0 for the default or none", f.name, float64(f.l)))
		}
	}
	if c.Patch == None {
		errs = append(errs, errors.New("augment: pairs: patch none: the patch must have a size"))
	}
	if c.MaxDist == None {
		errs = append(errs, errors.New("augment: pairs: max_dist none: the maximum distance must be positive"))
	}
	if len(errs) > 0 {
		return Geometry{}, errors.Join(errs...)
	}
	geomErr := func(format string, args ...any) {
		errs = append(errs, &GeometryError{Width: width, Height: height, Msg: fmt.Sprintf(format, args...)})
	}
	switch g.Sampler {
	case SamplerGrid:
		g.Patch = c.Patch.or(DefaultGridPatch).Pixels(side)
		g.Gap = c.Gap.or(DefaultGridGap).Pixels(side)
		g.Jitter = c.Jitter.or(DefaultGridJitter).Pixels(side)
		if c.Patch == 0 {
			// Rounding can make the default grid a pixel too big.
			g.Patch = min(g.Patch, (side-2*g.Gap-2*g.Jitter)/3)
		}
		if g.Patch < 1 {
			geomErr("patch of %v rounds to 0 px", c.Patch)
			break
		}
		need := 3*g.Patch + 2*g.Gap + 2*g.Jitter
		if need > side {
			msg := fmt.Sprintf("grid of 3 patches of %d px with gap %d and jitter %d needs %d px, image is %d", g.Patch, g.Gap, g.Jitter, need, side)
			if p := (side - 2*g.Gap - 2*g.Jitter) / 3; p >= 1 {
				msg += fmt.Sprintf(": largest patch that fits with this gap and jitter is %d px", p)
			} else {
				msg += fmt.Sprintf(": the gap and jitter alone need %d px", 2*g.Gap+2*g.Jitter+3)
			}
			if gap := (side - 3*g.Patch - 2*g.Jitter) / 2; gap >= 0 {
				msg += fmt.Sprintf("; largest gap with this patch and jitter is %d px", gap)
			}
			geomErr("%s", msg)
		}
	case SamplerFree:
		g.Patch = c.Patch.or(DefaultFreePatch).Pixels(side)
		g.MinDist = c.MinDist.or(DefaultMinDist).Pixels(side)
		g.MaxDist = c.MaxDist.or(DefaultMaxDist).Pixels(side)
		g.MinGap = c.MinGap.Pixels(side)
		if g.Patch < 1 {
			geomErr("patch of %v rounds to 0 px", c.Patch)
			break
		}
		room := side - g.Patch // greatest centre offset on one axis
		if room < 1 {
			geomErr("crops of %d px leave no room to move in an image of %d: largest patch is %d px", g.Patch, side, side-1)
			break
		}
		if g.MinDist > g.MaxDist {
			errs = append(errs, fmt.Errorf("augment: pairs: min_dist %d px > max_dist %d px", g.MinDist, g.MaxDist))
		} else if g.MaxDist-g.MinDist < 1 {
			errs = append(errs, fmt.Errorf("augment: pairs: min_dist %d px and max_dist %d px: want max_dist ≥ min_dist + 1 so that whole-pixel offsets exist", g.MinDist, g.MaxDist))
		}
		// Every direction must be possible at the least distance: along an
		// axis a centre can move by at most side − patch.
		if g.MinDist > room {
			geomErr("min_dist %d px with crops of %d px: centres can be at most %d px apart along an axis: largest min_dist is %d px (or largest patch %d px)",
				g.MinDist, g.Patch, room, room, side-g.MinDist)
		}
		// The border gap max(|dx|,|dy|) − patch ≥ min_gap must be possible:
		// along an axis the offset reaches side − patch.
		if sep := g.Patch + g.MinGap; sep > room {
			geomErr("min_gap %d px with crops of %d px needs %d px, image is %d: largest min_gap is %d px, largest patch %d px",
				g.MinGap, g.Patch, 2*g.Patch+g.MinGap, side, room-g.Patch, (side-g.MinGap)/2)
		} else if d := math.Ceil(math.Sqrt2 * float64(sep)); d > float64(g.MaxDist) {
			// On a diagonal the gap needs a centre distance of √2·(patch + gap).
			geomErr("min_gap %d px with crops of %d px needs centres %.0f px apart on a diagonal, max_dist is %d px: smallest max_dist is %.0f px",
				g.MinGap, g.Patch, d, g.MaxDist, d)
		}
	default:
		errs = append(errs, fmt.Errorf("augment: pairs: unknown sampler %q: want %q or %q", c.Sampler, SamplerGrid, SamplerFree))
	}
	if len(errs) > 0 {
		return Geometry{}, errors.Join(errs...)
	}
	return g, nil
}

// Validate checks c for width×height images, returning every problem at
// once, as Geometry does.
func (c PairConfig) Validate(width, height int) error {
	_, err := c.Geometry(width, height)
	return err
}

// SamplePair draws one pair of crops of a width×height image from rng: it
// resolves c (see Geometry) and calls Geometry.Sample.
func SamplePair(c PairConfig, width, height int, rng *rand.Rand) (Pair, error) {
	g, err := c.Geometry(width, height)
	if err != nil {
		return Pair{}, err
	}
	return g.Sample(rng)
}

// maxTries bounds the rejection sampling of the free sampler.
const maxTries = 1000

// Sample draws one pair of crops from rng. The label is uniform over the
// 8 directions and every crop lies inside the image.
//
// Grid sampler: the whole 3×3 grid of patches, each able to move by the
// jitter, fits the image (3·patch + 2·gap + 2·jitter ≤ side); its origin is
// uniform over the positions where it does, so where the centre patch lies
// says nothing about the label. A is the centre cell, B the neighbour of
// the label; each is moved independently by a uniform whole number of
// pixels in [−jitter, jitter] on each axis. So B − A is (patch+gap)·
// Direction(label) ± 2·jitter on each axis.
//
// Free sampler: the label is drawn first, then a direction uniform within
// its 45° bin and a centre distance uniform over the part of [MinDist,
// MaxDist] at which the crops fit the image and keep MinGap between their
// borders at that direction; the offset is rounded to whole pixels and
// drawn again (at most 1000 times, then an error) if rounding breaks a
// constraint. A is then placed uniformly among the positions where both
// crops fit. Because A must leave room for B, A's position is not
// independent of the label near the image border; the grid sampler does
// not have this bias.
func (g Geometry) Sample(rng *rand.Rand) (Pair, error) {
	label := rng.IntN(NumLabels)
	switch g.Sampler {
	case SamplerGrid:
		step := g.Patch + g.Gap
		span := 3*g.Patch + 2*g.Gap + 2*g.Jitter
		ox := g.Jitter + rng.IntN(g.Width-span+1)
		oy := g.Jitter + rng.IntN(g.Height-span+1)
		dx, dy := Direction(label)
		j := 2*g.Jitter + 1
		a := Crop{X: ox + step + rng.IntN(j) - g.Jitter, Y: oy + step + rng.IntN(j) - g.Jitter, Size: g.Patch}
		b := Crop{X: ox + (1+dx)*step + rng.IntN(j) - g.Jitter, Y: oy + (1+dy)*step + rng.IntN(j) - g.Jitter, Size: g.Patch}
		return Pair{A: a, B: b, Label: label}, nil
	case SamplerFree:
		centre := float64(labelOctant[label]) * math.Pi / 4
		roomX, roomY := float64(g.Width-g.Patch), float64(g.Height-g.Patch)
		sep := float64(g.Patch + g.MinGap)
		for range maxTries {
			theta := centre + (rng.Float64()-0.5)*math.Pi/4
			c, s := math.Cos(theta), math.Sin(theta)
			ac, as := math.Abs(c), math.Abs(s)
			lo, hi := float64(g.MinDist), float64(g.MaxDist)
			if ac > 0 {
				hi = min(hi, roomX/ac)
			}
			if as > 0 {
				hi = min(hi, roomY/as)
			}
			lo = max(lo, sep/max(ac, as))
			if lo > hi {
				continue
			}
			d := lo + rng.Float64()*(hi-lo)
			dx, dy := int(math.Round(d*c)), int(math.Round(d*s))
			if !g.freeOK(dx, dy, label) {
				continue
			}
			a := Crop{Size: g.Patch}
			a.X = max(0, -dx) + rng.IntN(g.Width-g.Patch-abs(dx)+1)
			a.Y = max(0, -dy) + rng.IntN(g.Height-g.Patch-abs(dy)+1)
			b := Crop{X: a.X + dx, Y: a.Y + dy, Size: g.Patch}
			return Pair{A: a, B: b, Label: label}, nil
		}
		return Pair{}, &GeometryError{Width: g.Width, Height: g.Height,
			Msg: fmt.Sprintf("no whole-pixel offset for label %d found in %d tries with patch %d, min_dist %d, max_dist %d, min_gap %d: widen [min_dist, max_dist]",
				label, maxTries, g.Patch, g.MinDist, g.MaxDist, g.MinGap)}
	}
	panic(fmt.Sprintf("augment: Sample: Geometry with sampler %q: make Geometries with PairConfig.Geometry", g.Sampler))
}

// freeOK reports whether the whole-pixel offset (dx, dy) from A to B meets
// every constraint of the free sampler for label.
func (g Geometry) freeOK(dx, dy, label int) bool {
	if abs(dx) > g.Width-g.Patch || abs(dy) > g.Height-g.Patch {
		return false
	}
	if max(abs(dx), abs(dy))-g.Patch < g.MinGap {
		return false
	}
	d2 := dx*dx + dy*dy
	if d2 < g.MinDist*g.MinDist || d2 > g.MaxDist*g.MaxDist {
		return false
	}
	return AngleLabel(float64(dx), float64(dy)) == label
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// NewRand returns the random source for sample index of epoch under seed:
// a PCG generator seeded by a hash of the three. Every random draw for one
// sample comes from its own source, so a sample does not depend on which
// worker makes it or in what order. Index −1 is the conventional stream for
// draws that belong to the epoch as a whole (its shuffle).
func NewRand(seed uint64, epoch, index int) *rand.Rand {
	h := mix(seed ^ 0x7061697273) // "pairs"
	h = mix(h ^ uint64(int64(epoch)))
	h = mix(h ^ mix(uint64(int64(index))))
	return rand.New(rand.NewPCG(h, mix(h^0x9e3779b97f4a7c15)))
}

// mix is splitmix64's finaliser.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
