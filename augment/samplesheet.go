package augment

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/patchwise-ml/patchwise/data"
)

// sampleViewSide is the least side, in pixels, a view's image is drawn at
// on a SampleSheet: smaller ones are scaled up by a whole factor.
const sampleViewSide = 48

// SampleSheet draws the first n samples that a shuffled Loader of s with
// this seed makes in epoch 0 (PerImage 1): sample i comes from image
// perm[i] of recs, drawn with NewRand(seed, 0, i), exactly as pretraining
// draws it. Each image of recs holds side×side×c bytes, channels-last; n
// is cut to len(recs).
//
// Each sample is a row: the source image, then the images of every view
// in order, each scaled up by a whole factor to at least 48 pixels, with a
// gap between views; under them a caption with the sample's number, its
// image and its labels. A header names the views. Values are shown as
// they are when they lie in [0, 1]; an image with values outside (a
// normalised crop) is stretched from its minimum to its maximum.
func SampleSheet(recs []data.Record, side, c int, s Sampler, seed uint64, n int) (*image.NRGBA, error) {
	if c != 1 && c != 3 {
		return nil, fmt.Errorf("augment: SampleSheet: %d channels, want 1 or 3", c)
	}
	n = min(n, len(recs))
	if n <= 0 {
		return nil, fmt.Errorf("augment: SampleSheet: no images")
	}
	views := s.Views()
	scale := func(v int) int { return max(1, (sampleViewSide+v-1)/v) }
	srcK := scale(side)
	const gap, viewGap, text = 4, 12, 15
	width := gap + side*srcK + viewGap
	rowH := side * srcK
	for _, v := range views {
		k := scale(v.Side)
		width += v.Count*(v.Side*k+gap) + viewGap
		rowH = max(rowH, v.Side*k)
	}
	rowH += text + gap
	img := image.NewNRGBA(image.Rect(0, 0, width, text+gap+n*rowH))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	face := basicfont.Face7x13
	write := func(x, y int, s string) {
		d := font.Drawer{Dst: img, Src: image.Black, Face: face, Dot: fixed.P(x, y+face.Ascent)}
		d.DrawString(s)
	}

	x := gap
	write(x, 1, "image")
	x += side*srcK + viewGap
	for _, v := range views {
		write(x, 1, v.Name)
		x += v.Count*(v.Side*scale(v.Side)+gap) + viewGap
	}

	perm := NewRand(seed, 0, -1).Perm(len(recs))
	d := s.NewDrawer()
	smp := Sample{Views: make([][]float32, len(views)), Labels: make([]int, s.Labels())}
	for k, v := range views {
		smp.Views[k] = make([]float32, v.Len(c))
	}
	for i := range n {
		y0 := text + gap + i*rowH
		r := recs[perm[i]]
		if len(r.Pixels) != side*side*c {
			return nil, fmt.Errorf("augment: SampleSheet: image %d has %d bytes, want %d×%d×%d", perm[i], len(r.Pixels), side, side, c)
		}
		if err := d.Draw(Image{Pix: r.Pixels, Side: side, C: c, Label: r.Label}, NewRand(seed, 0, i), smp); err != nil {
			return nil, fmt.Errorf("augment: SampleSheet: sample %d (image %d, %q): %w", i, perm[i], r.Origin, err)
		}
		x := gap
		for y := range side * srcK {
			for xx := range side * srcK {
				o := ((y/srcK)*side + xx/srcK) * c
				img.SetNRGBA(x+xx, y0+y, rgb(r.Pixels[o:o+c]))
			}
		}
		x += side*srcK + viewGap
		for k, v := range views {
			sk := scale(v.Side)
			per := v.Side * v.Side * c
			for j := range v.Count {
				drawFloat(img, x, y0, smp.Views[k][j*per:(j+1)*per], v.Side, c, sk)
				x += v.Side*sk + gap
			}
			x += viewGap
		}
		labels := make([]string, len(smp.Labels))
		for j, l := range smp.Labels {
			labels[j] = fmt.Sprint(l)
		}
		write(gap, y0+rowH-text-gap+1, fmt.Sprintf("#%d img %d labels %s", i, perm[i], strings.Join(labels, " ")))
	}
	return img, nil
}

// drawFloat draws the side×side×c image p at (x, y), each pixel k×k,
// stretching its values to [0, 1] when any lies outside.
func drawFloat(img *image.NRGBA, x, y int, p []float32, side, c, k int) {
	lo, hi := float32(0), float32(1)
	mn, mx := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, v := range p {
		mn, mx = min(mn, v), max(mx, v)
	}
	if mn < 0 || mx > 1 {
		lo, hi = mn, max(mx, mn+1e-6)
	}
	q := func(v float32) uint8 { return uint8(math.Round(float64((v-lo)/(hi-lo)) * 255)) }
	for yy := range side * k {
		for xx := range side * k {
			o := ((yy/k)*side + xx/k) * c
			var col color.NRGBA
			if c == 1 {
				v := q(p[o])
				col = color.NRGBA{v, v, v, 255}
			} else {
				col = color.NRGBA{q(p[o]), q(p[o+1]), q(p[o+2]), 255}
			}
			img.SetNRGBA(x+xx, y+yy, col)
		}
	}
}
