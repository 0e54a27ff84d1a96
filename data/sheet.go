package data

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"strconv"

	"github.com/patchwise-ml/patchwise/internal/fsutil"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Contact sheet geometry, in pixels.
const (
	sheetMargin   = 4   // around and between cells
	sheetMinCell  = 64  // images are scaled up by whole factors to at least this side
	sheetCaption  = 15  // caption strip below each image: 13-pixel text and 2 above it
	sheetMaxChars = 16  // captions are cut to this many characters
	sheetBg       = 255 // background grey level
)

// ContactSheet lays out the images of recs in a grid, row by row, cols to a
// row, on a white background. Each record holds a size×size image of
// channels (1 or 3) bytes a pixel, channels-last, as in Record.Pixels; a
// grey one is drawn grey (R = G = B). Images are scaled up by the smallest
// whole factor k that makes them at least 64 pixels wide (k = ceil(64/size)),
// each pixel becoming a k×k block, and have their class name written below
// them in black in basicfont.Face7x13: classes[Label], or "-" when Label is
// -1, or the label number when it is not an index into classes. Names are
// cut to 16 characters.
//
// Layout: with cell = size·k, a column is as wide as max(cell, 7 × the
// longest caption in characters); margins of 4 pixels surround and separate
// the cells; a row is cell + 15 pixels tall (the caption strip). So the sheet
// is 4 + cols·(column+4) wide and 4 + rows·(cell+15+4) tall, and image i sits
// at column i%cols, row i/cols, centred in its column, its top-left pixel at
// (4 + col·(column+4) + (column−cell)/2, 4 + row·(cell+19)).
//
// cols ≤ 0 means ceil(√len(recs)); cols is reduced to len(recs) when larger.
// With no records the sheet is a blank 4×4 square. ContactSheet panics if
// size < 1, channels is not 1 or 3, or a record's Pixels do not hold
// size·size·channels bytes.
func ContactSheet(recs []Record, size, channels int, classes []string, cols int) *image.NRGBA {
	if size < 1 {
		panic(fmt.Sprintf("data: ContactSheet: size %d < 1", size))
	}
	if channels != 1 && channels != 3 {
		panic(fmt.Sprintf("data: ContactSheet: channels %d, want 1 or 3", channels))
	}
	for i, r := range recs {
		if len(r.Pixels) != size*size*channels {
			panic(fmt.Sprintf("data: ContactSheet: record %d (%s) has %d bytes, want %d×%d×%d",
				i, r.Origin, len(r.Pixels), size, size, channels))
		}
	}
	n := len(recs)
	if n == 0 {
		return sheetBlank(sheetMargin, sheetMargin)
	}
	if cols <= 0 {
		cols = int(math.Ceil(math.Sqrt(float64(n))))
	}
	cols = min(cols, n)
	rows := (n + cols - 1) / cols

	k := (sheetMinCell + size - 1) / size
	cell := size * k
	captions := make([]string, n)
	colW := cell
	for i, r := range recs {
		captions[i] = sheetCaptionText(r.Label, classes)
		colW = max(colW, 7*len([]rune(captions[i])))
	}
	rowH := cell + sheetCaption
	img := sheetBlank(sheetMargin+cols*(colW+sheetMargin), sheetMargin+rows*(rowH+sheetMargin))

	face := basicfont.Face7x13
	d := font.Drawer{Dst: img, Src: image.NewUniform(color.Black), Face: face}
	for i, r := range recs {
		col, row := i%cols, i/cols
		x0 := sheetMargin + col*(colW+sheetMargin)
		y0 := sheetMargin + row*(rowH+sheetMargin)
		ix := x0 + (colW-cell)/2
		for y := range cell {
			dst := img.Pix[(y0+y)*img.Stride+4*ix:]
			src := r.Pixels[(y/k)*size*channels:]
			for x := range cell {
				p := src[(x/k)*channels:]
				q := dst[4*x : 4*x+4]
				if channels == 1 {
					q[0], q[1], q[2] = p[0], p[0], p[0]
				} else {
					q[0], q[1], q[2] = p[0], p[1], p[2]
				}
				q[3] = 255
			}
		}
		w := d.MeasureString(captions[i]).Ceil()
		d.Dot = fixed.P(x0+(colW-w)/2, y0+cell+2+face.Ascent)
		d.DrawString(captions[i])
	}
	return img
}

// sheetCaptionText is the caption for label.
func sheetCaptionText(label int, classes []string) string {
	s := strconv.Itoa(label)
	switch {
	case label == -1:
		return "-"
	case label >= 0 && label < len(classes) && classes[label] != "":
		s = classes[label]
	}
	if r := []rune(s); len(r) > sheetMaxChars {
		s = string(r[:sheetMaxChars])
	}
	return s
}

// sheetBlank returns a w×h image filled with the background.
func sheetBlank(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.NRGBA{sheetBg, sheetBg, sheetBg, 255}), image.Point{}, draw.Src)
	return img
}

// WritePNG encodes img as PNG to path atomically: it writes a temporary file
// in the same folder, syncs it to disk and renames it to path, so path holds
// either its old contents or the complete new image, never part of one. An
// existing file at path is replaced. The file gets mode 0644. On error
// nothing is left behind but path's old contents.
func WritePNG(path string, img image.Image) error {
	err := fsutil.Replace(path, func(f io.Writer) error {
		w := bufio.NewWriterSize(f, 1<<16)
		if err := png.Encode(w, img); err != nil {
			return err
		}
		return w.Flush()
	})
	if err != nil {
		return fmt.Errorf("data: write %q: %w", path, err)
	}
	return nil
}
