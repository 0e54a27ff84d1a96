package augment

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/patchwise-ml/patchwise/data"
)

// Colours of the pair sheet.
var (
	sheetColorA = color.NRGBA{0, 140, 255, 255} // crop A: blue
	sheetColorB = color.NRGBA{255, 120, 0, 255} // crop B: orange
)

const (
	sheetMinSide = 128 // source images are scaled up by whole factors to at least this side
	sheetMargin  = 6
	sheetText    = 15 // caption strip: 13-pixel text and 2 above it
	sheetLine    = 2  // outline width in pixels
)

// PairSheet draws the first n pairs that a PairLoader with this pair
// config, transform and seed makes in epoch 0 (PerImage 1, Size the
// patch): pair i is drawn from image perm[i] of recs with the draws of
// NewRand(seed, 0, i). Each image of recs holds size×size×channels bytes,
// channels-last (data.Record.Pixels); n is cut to len(recs).
//
// Each pair is a panel: the source image scaled up by the smallest whole
// factor k that makes it at least 128 pixels wide, with crop A outlined in
// blue and crop B in orange, B's label number written in its corner; then
// the two crops after the transform, at the same scale, framed in the same
// colours (values clamped to [0, 1] for display); under them a caption
// "#i img j label l". Panels are laid out cols to a row (cols ≤ 0: about
// √(n/2)). A geometry that does not fit the images, or a transform that
// does not validate, is an error.
func PairSheet(recs []data.Record, size, channels int, cfg PairConfig, tr Transform, seed uint64, n, cols int) (*image.NRGBA, error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("augment: PairSheet: %d channels, want 1 or 3", channels)
	}
	g, err := cfg.Geometry(size, size)
	if err2 := tr.Validate(); err2 != nil {
		if err == nil {
			return nil, err2
		}
		return nil, fmt.Errorf("%w\n%w", err, err2)
	}
	if err != nil {
		return nil, err
	}
	n = min(n, len(recs))
	if n <= 0 {
		return nil, fmt.Errorf("augment: PairSheet: no images")
	}
	if cols <= 0 {
		cols = max(1, int(math.Round(math.Sqrt(float64(n)/2))))
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols

	k := (sheetMinSide + size - 1) / size
	src := size * k
	crop := g.Patch * k
	panelW := src + 2*(sheetMargin+crop+2*sheetLine)
	panelH := src + sheetText
	img := image.NewNRGBA(image.Rect(0, 0, sheetMargin+cols*(panelW+2*sheetMargin), sheetMargin+rows*(panelH+sheetMargin)))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	face := basicfont.Face7x13

	perm := NewRand(seed, 0, -1).Perm(len(recs))
	pa, pb := NewPatch(g.Patch, g.Patch, channels), NewPatch(g.Patch, g.Patch, channels)
	for i := range n {
		x0 := sheetMargin + (i%cols)*(panelW+2*sheetMargin)
		y0 := sheetMargin + (i/cols)*(panelH+sheetMargin)
		im := perm[i]
		pix := recs[im].Pixels
		if len(pix) != size*size*channels {
			return nil, fmt.Errorf("augment: PairSheet: image %d has %d bytes, want %d×%d×%d", im, len(pix), size, size, channels)
		}
		rng := NewRand(seed, 0, i)
		p, err := g.Sample(rng)
		if err != nil {
			return nil, err
		}
		CropPatch(pa, pix, size, size, channels, p.A)
		tr.Apply(pa, rng)
		CropPatch(pb, pix, size, size, channels, p.B)
		tr.Apply(pb, rng)

		// The source, scaled, with the crops outlined.
		for y := range src {
			for x := range src {
				o := ((y/k)*size + x/k) * channels
				img.SetNRGBA(x0+x, y0+y, rgb(pix[o:o+channels]))
			}
		}
		outline(img, x0+p.A.X*k, y0+p.A.Y*k, crop, sheetColorA)
		outline(img, x0+p.B.X*k, y0+p.B.Y*k, crop, sheetColorB)
		label := strconv.Itoa(p.Label)
		lx, ly := x0+p.B.X*k+sheetLine, y0+p.B.Y*k+sheetLine
		draw.Draw(img, image.Rect(lx, ly, lx+8, ly+13), image.NewUniform(sheetColorB), image.Point{}, draw.Src)
		d := font.Drawer{Dst: img, Src: image.White, Face: face, Dot: fixed.P(lx+1, ly+face.Ascent)}
		d.DrawString(label)

		// The transformed crops.
		cx := x0 + src + sheetMargin + sheetLine
		cy := y0 + sheetLine
		for j, pt := range []Patch{pa, pb} {
			c := sheetColorA
			if j == 1 {
				c = sheetColorB
			}
			draw.Draw(img, image.Rect(cx-sheetLine, cy-sheetLine, cx+crop+sheetLine, cy+crop+sheetLine), image.NewUniform(c), image.Point{}, draw.Src)
			for y := range crop {
				for x := range crop {
					o := ((y/k)*pt.W + x/k) * channels
					img.SetNRGBA(cx+x, cy+y, rgbf(pt.Pix[o:o+channels]))
				}
			}
			cx += crop + sheetMargin + 2*sheetLine
		}
		d = font.Drawer{Dst: img, Src: image.Black, Face: face, Dot: fixed.P(x0, y0+src+2+face.Ascent)}
		d.DrawString(fmt.Sprintf("#%d img %d label %d", i, im, p.Label))
	}
	return img, nil
}

// outline draws a square frame of side s at (x, y), sheetLine pixels wide,
// inside the square.
func outline(img *image.NRGBA, x, y, s int, c color.NRGBA) {
	u := image.NewUniform(c)
	w := min(sheetLine, s)
	for _, r := range []image.Rectangle{
		image.Rect(x, y, x+s, y+w), image.Rect(x, y+s-w, x+s, y+s),
		image.Rect(x, y, x+w, y+s), image.Rect(x+s-w, y, x+s, y+s),
	} {
		draw.Draw(img, r, u, image.Point{}, draw.Over)
	}
}

func rgb(p []uint8) color.NRGBA {
	if len(p) == 1 {
		return color.NRGBA{p[0], p[0], p[0], 255}
	}
	return color.NRGBA{p[0], p[1], p[2], 255}
}

func rgbf(p []float32) color.NRGBA {
	q := func(v float32) uint8 { return uint8(math.Round(float64(min(1, max(0, v))) * 255)) }
	if len(p) == 1 {
		v := q(p[0])
		return color.NRGBA{v, v, v, 255}
	}
	return color.NRGBA{q(p[0]), q(p[1]), q(p[2]), 255}
}
