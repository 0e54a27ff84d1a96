package data

import (
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// sheetRecord makes a size×size record whose pixel (x, y), channel c, is
// binPixel(i, c, x, y) (channel 0 only when grey).
func sheetRecord(i, size, channels, label int) Record {
	pix := make([]byte, 0, size*size*channels)
	for y := range size {
		for x := range size {
			for c := range channels {
				pix = append(pix, binPixel(i, c, x, y))
			}
		}
	}
	return Record{Pixels: pix, Label: label}
}

func TestContactSheet(t *testing.T) {
	classes := []string{"cat", "automobile-and-more-words", "dog"}
	for _, c := range []struct {
		name                 string
		size, channels, cols int
		n                    int
		scale, colW          int // expected
		wantCols             int
	}{
		{"rgb 32", 32, 3, 3, 5, 2, 16 * 7, 3},
		{"grey 28", 28, 1, 2, 3, 3, 16 * 7, 2},
		{"rgb 96 auto cols", 96, 3, 0, 5, 1, 112, 3},
		{"cols beyond n", 10, 3, 9, 2, 7, 21, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			var recs []Record
			for i := range c.n {
				recs = append(recs, sheetRecord(i, c.size, c.channels, i%4-1))
			}
			img := ContactSheet(recs, c.size, c.channels, classes, c.cols)
			cell := c.size * c.scale
			colW := max(cell, c.colW)
			rows := (c.n + c.wantCols - 1) / c.wantCols
			wantW := 4 + c.wantCols*(colW+4)
			wantH := 4 + rows*(cell+15+4)
			if b := img.Bounds(); b != image.Rect(0, 0, wantW, wantH) {
				t.Fatalf("bounds %v, want %d×%d", b, wantW, wantH)
			}
			for i := range c.n {
				col, row := i%c.wantCols, i/c.wantCols
				x0 := 4 + col*(colW+4)
				y0 := 4 + row*(cell+19)
				ix := x0 + (colW-cell)/2
				for y := range cell {
					for x := range cell {
						want := color.NRGBA{binPixel(i, 0, x/c.scale, y/c.scale), 0, 0, 255}
						if c.channels == 3 {
							want.G, want.B = binPixel(i, 1, x/c.scale, y/c.scale), binPixel(i, 2, x/c.scale, y/c.scale)
						} else {
							want.G, want.B = want.R, want.R
						}
						if got := img.NRGBAAt(ix+x, y0+y); got != want {
							t.Fatalf("image %d: sheet pixel (%d, %d) = %v, want %v", i, ix+x, y0+y, got, want)
						}
					}
				}
				// The caption strip holds dark text pixels and nothing else
				// but the white background.
				dark := 0
				for y := y0 + cell; y < y0+cell+15; y++ {
					for x := x0; x < x0+colW; x++ {
						switch p := img.NRGBAAt(x, y); p {
						case color.NRGBA{0, 0, 0, 255}:
							dark++
						case color.NRGBA{255, 255, 255, 255}:
						default:
							t.Fatalf("image %d: caption pixel (%d, %d) = %v", i, x, y, p)
						}
					}
				}
				if dark < 3 {
					t.Errorf("image %d: %d dark pixels in the caption", i, dark)
				}
				// The margin to the right of the column is background.
				if p := img.NRGBAAt(x0+colW+1, y0+1); p != (color.NRGBA{255, 255, 255, 255}) {
					t.Errorf("image %d: margin pixel %v", i, p)
				}
			}
		})
	}
}

func TestContactSheetCaptions(t *testing.T) {
	classes := []string{"a", "b"}
	for _, c := range []struct {
		label int
		want  string
	}{{-1, "-"}, {0, "a"}, {1, "b"}, {2, "2"}, {-3, "-3"}} {
		if got := sheetCaptionText(c.label, classes); got != c.want {
			t.Errorf("label %d: caption %q, want %q", c.label, got, c.want)
		}
	}
	if got := sheetCaptionText(0, []string{"abcdefghijklmnopqrstuvwxyz"}); got != "abcdefghijklmnop" {
		t.Errorf("long name: caption %q", got)
	}
	// "-" and "i" differ in their ink.
	a := ContactSheet([]Record{sheetRecord(0, 4, 1, -1)}, 4, 1, []string{"i"}, 1)
	b := ContactSheet([]Record{sheetRecord(0, 4, 1, 0)}, 4, 1, []string{"i"}, 1)
	if a.Bounds() != b.Bounds() || string(a.Pix) == string(b.Pix) {
		t.Error("captions \"-\" and \"i\" draw the same")
	}
	if got := ContactSheet(nil, 32, 3, nil, 0).Bounds(); got != image.Rect(0, 0, 4, 4) {
		t.Errorf("empty sheet %v", got)
	}
}

func TestContactSheetPanics(t *testing.T) {
	for name, f := range map[string]func(){
		"size":     func() { ContactSheet(nil, 0, 3, nil, 1) },
		"channels": func() { ContactSheet(nil, 4, 2, nil, 1) },
		"pixels":   func() { ContactSheet([]Record{{Pixels: make([]byte, 47)}}, 4, 3, nil, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestWritePNG(t *testing.T) {
	dir := t.TempDir()
	recs := []Record{sheetRecord(0, 8, 3, 0), sheetRecord(1, 8, 1, -1)}
	img := ContactSheet(recs[:1], 8, 3, []string{"x"}, 0)
	path := filepath.Join(dir, "sheet.png")
	writeFile(t, dir, "sheet.png", []byte("old contents"))
	if err := WritePNG(path, img); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	if got.Bounds() != b {
		t.Fatalf("bounds %v, want %v", got.Bounds(), b)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if g, w := color.NRGBAModel.Convert(got.At(x, y)), img.At(x, y); g != w {
				t.Fatalf("pixel (%d, %d) = %v, want %v", x, y, g, w)
			}
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, error %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %v, want only sheet.png", names)
	}

	// A failed write names the path and leaves nothing behind.
	bad := filepath.Join(dir, "no such folder", "sheet.png")
	if err := WritePNG(bad, img); err == nil {
		t.Error("write into a missing folder succeeded")
	}
	if err := WritePNG(filepath.Join(dir, "empty.png"), image.NewNRGBA(image.Rect(0, 0, 0, 0))); err == nil {
		t.Error("PNG of an empty image succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("folder holds %d entries after failed writes", len(entries))
	}
}
