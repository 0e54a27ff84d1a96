package data

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/disintegration/imaging"
	"golang.org/x/image/bmp"
	"golang.org/x/image/tiff"
)

// halves returns a w×h image whose left half is red and right half blue.
func halves(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.NRGBA{255, 0, 0, 255}
			if x >= w/2 {
				c = color.NRGBA{0, 0, 255, 255}
			}
			m.SetNRGBA(x, y, c)
		}
	}
	return m
}

func encodeImage(t testing.TB, format string, m image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&b, m)
	case "jpeg":
		err = jpeg.Encode(&b, m, &jpeg.Options{Quality: 95})
	case "gif":
		err = gif.Encode(&b, m, nil)
	case "bmp":
		err = bmp.Encode(&b, m)
	case "tiff":
		err = tiff.Encode(&b, m, nil)
	default:
		t.Fatalf("unknown format %q", format)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func writeImageFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// px returns the channels of pixel (x, y) of Size×Size×channels pixels.
func px(pix []uint8, size, ch, x, y int) []uint8 {
	i := (y*size + x) * ch
	return pix[i : i+ch]
}

func near(got []uint8, want []uint8, tol int) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		d := int(got[i]) - int(want[i])
		if d < -tol || d > tol {
			return false
		}
	}
	return true
}

var (
	red   = []uint8{255, 0, 0}
	blue  = []uint8{0, 0, 255}
	green = []uint8{0, 255, 0}
	white = []uint8{255, 255, 255}
)

// TestDecodeFormats decodes every format, from committed files and from
// files written by Go's encoders: the left half must be red, the right blue.
func TestDecodeFormats(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		path string
		tol  int
	}{
		{"testdata/jpeg", "testdata/images/halves.jpg", 40},
		{"testdata/png", "testdata/images/halves.png", 0},
		{"testdata/gif", "testdata/images/halves.gif", 0},
		{"testdata/bmp", "testdata/images/halves.bmp", 0},
		{"testdata/tiff", "testdata/images/halves.tiff", 0},
		{"testdata/webp-lossless", "testdata/images/halves.webp", 0},
		{"testdata/webp-lossy", "testdata/images/halves-lossy.webp", 40},
	}
	for _, f := range []string{"png", "jpeg", "gif", "bmp", "tiff"} {
		tol := 0
		if f == "jpeg" {
			tol = 40
		}
		// Misleading extension: formats are recognised by content.
		p := writeImageFile(t, dir, "halves-"+f+".img", encodeImage(t, f, halves(32, 16)))
		cases = append(cases, struct {
			name string
			path string
			tol  int
		}{"generated/" + f, p, tol})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pix, err := DecodeFile(c.path, Preprocess{Size: 8, Resize: ResizeStretch})
			if err != nil {
				t.Fatal(err)
			}
			if len(pix) != 8*8*3 {
				t.Fatalf("got %d bytes, want %d", len(pix), 8*8*3)
			}
			for y := 0; y < 8; y++ {
				if got := px(pix, 8, 3, 1, y); !near(got, red, c.tol) {
					t.Errorf("pixel (1,%d) = %v, want red", y, got)
				}
				if got := px(pix, 8, 3, 6, y); !near(got, blue, c.tol) {
					t.Errorf("pixel (6,%d) = %v, want blue", y, got)
				}
			}
		})
	}
}

func TestDecodeCMYKJPEG(t *testing.T) {
	pix, err := DecodeFile("testdata/images/cmyk.jpg", Preprocess{Size: 4})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		if got := pix[3*i : 3*i+3]; !near(got, red, 10) {
			t.Fatalf("pixel %d = %v, want red", i, got)
		}
	}
}

// TestConvertColorModels converts a solid image of every colour model,
// small (no pre-reduction) and large (block-averaged first).
func TestConvertColorModels(t *testing.T) {
	pal := color.Palette{color.RGBA{0, 0, 0, 255}, color.RGBA{10, 200, 30, 255}}
	y, cb, cr := color.RGBToYCbCr(40, 80, 160)
	models := []struct {
		name string
		make func(r image.Rectangle) image.Image
		want []uint8
		tol  int
	}{
		{"gray", func(r image.Rectangle) image.Image {
			m := image.NewGray(r)
			for i := range m.Pix {
				m.Pix[i] = 100
			}
			return m
		}, []uint8{100, 100, 100}, 0},
		{"gray16", func(r image.Rectangle) image.Image {
			m := image.NewGray16(r)
			for i := 0; i < len(m.Pix); i += 2 {
				m.Pix[i], m.Pix[i+1] = 0x80, 0x80
			}
			return m
		}, []uint8{128, 128, 128}, 0},
		{"paletted", func(r image.Rectangle) image.Image {
			m := image.NewPaletted(r, pal)
			for i := range m.Pix {
				m.Pix[i] = 1
			}
			return m
		}, []uint8{10, 200, 30}, 0},
		{"cmyk", func(r image.Rectangle) image.Image {
			m := image.NewCMYK(r)
			for i := 0; i < len(m.Pix); i += 4 {
				copy(m.Pix[i:], []uint8{0, 255, 255, 0})
			}
			return m
		}, red, 0},
		{"ycbcr420", func(r image.Rectangle) image.Image {
			m := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
			for i := range m.Y {
				m.Y[i] = y
			}
			for i := range m.Cb {
				m.Cb[i], m.Cr[i] = cb, cr
			}
			return m
		}, []uint8{40, 80, 160}, 2},
		{"nrgba-opaque", func(r image.Rectangle) image.Image {
			m := image.NewNRGBA(r)
			for i := 0; i < len(m.Pix); i += 4 {
				copy(m.Pix[i:], []uint8{1, 2, 3, 255})
			}
			return m
		}, []uint8{1, 2, 3}, 0},
		{"nrgba-transparent", func(r image.Rectangle) image.Image {
			return image.NewNRGBA(r) // all zero: fully transparent black
		}, white, 0},
		{"nrgba-half", func(r image.Rectangle) image.Image {
			m := image.NewNRGBA(r)
			for i := 0; i < len(m.Pix); i += 4 {
				copy(m.Pix[i:], []uint8{255, 0, 0, 128})
			}
			return m
		}, []uint8{255, 127, 127}, 1},
		{"rgba-premultiplied-half", func(r image.Rectangle) image.Image {
			m := image.NewRGBA(r)
			for i := 0; i < len(m.Pix); i += 4 {
				copy(m.Pix[i:], []uint8{128, 0, 0, 128})
			}
			return m
		}, []uint8{255, 127, 127}, 1},
		{"rgba64", func(r image.Rectangle) image.Image {
			m := image.NewRGBA64(r)
			for y := r.Min.Y; y < r.Max.Y; y++ {
				for x := r.Min.X; x < r.Max.X; x++ {
					m.SetRGBA64(x, y, color.RGBA64{0, 0xffff, 0, 0xffff})
				}
			}
			return m
		}, green, 0},
	}
	for _, m := range models {
		for _, side := range []int{6, 300} {
			// A non-zero origin checks that bounds are honoured.
			r := image.Rect(5, 7, 5+side, 7+side/2)
			for _, resize := range []string{ResizeCrop, ResizePad, ResizeStretch} {
				t.Run(fmt.Sprintf("%s/%s/%dx%d", m.name, resize, side, side/2), func(t *testing.T) {
					pix := Convert(m.make(r), Preprocess{Size: 4, Resize: resize})
					if len(pix) != 4*4*3 {
						t.Fatalf("got %d bytes, want 48", len(pix))
					}
					// The centre row is image for every policy.
					for x := 0; x < 4; x++ {
						if got := px(pix, 4, 3, x, 2); !near(got, m.want, m.tol) {
							t.Fatalf("pixel (%d,2) = %v, want %v", x, got, m.want)
						}
					}
				})
			}
		}
	}
}

func TestResizePolicies(t *testing.T) {
	// 40×20: a green centre square (x in [10,30)) between red bands.
	band := func(scale int) image.Image {
		m := image.NewNRGBA(image.Rect(0, 0, 40*scale, 20*scale))
		for y := 0; y < 20*scale; y++ {
			for x := 0; x < 40*scale; x++ {
				c := color.NRGBA{255, 0, 0, 255}
				if x >= 10*scale && x < 30*scale {
					c = color.NRGBA{0, 255, 0, 255}
				}
				m.SetNRGBA(x, y, c)
			}
		}
		return m
	}
	for _, scale := range []int{1, 25} { // 25: 1000×500, pre-reduced by blocks
		t.Run("crop", func(t *testing.T) {
			pix := Convert(band(scale), Preprocess{Size: 8})
			for i := 0; i < 64; i++ {
				if got := pix[3*i : 3*i+3]; !near(got, green, 0) {
					t.Fatalf("scale %d: pixel %d = %v, want green (the centre square only)", scale, i, got)
				}
			}
		})
		t.Run("pad", func(t *testing.T) {
			pix := Convert(band(scale), Preprocess{Size: 8, Resize: ResizePad})
			// 40×20 → 8×4, rows 2..5.
			for _, c := range []struct {
				x, y int
				want []uint8
			}{{0, 0, white}, {7, 1, white}, {0, 3, red}, {4, 3, green}, {7, 4, red}, {3, 6, white}, {7, 7, white}} {
				if got := px(pix, 8, 3, c.x, c.y); !near(got, c.want, 0) {
					t.Errorf("scale %d: pixel (%d,%d) = %v, want %v", scale, c.x, c.y, got, c.want)
				}
			}
		})
		t.Run("stretch", func(t *testing.T) {
			pix := Convert(band(scale), Preprocess{Size: 8, Resize: ResizeStretch, Channels: 3})
			for _, c := range []struct {
				x, y int
				want []uint8
			}{{0, 0, red}, {7, 7, red}, {3, 4, green}, {4, 0, green}} {
				if got := px(pix, 8, 3, c.x, c.y); !near(got, c.want, 0) {
					t.Errorf("scale %d: pixel (%d,%d) = %v, want %v", scale, c.x, c.y, got, c.want)
				}
			}
		})
	}
	t.Run("upscale", func(t *testing.T) {
		pix := Convert(halves(2, 2), Preprocess{Size: 32, Resize: ResizeStretch})
		if len(pix) != 32*32*3 || !near(px(pix, 32, 3, 0, 0), red, 0) || !near(px(pix, 32, 3, 31, 31), blue, 0) {
			t.Fatalf("upscaled corners %v %v", px(pix, 32, 3, 0, 0), px(pix, 32, 3, 31, 31))
		}
	})
	t.Run("defaults", func(t *testing.T) {
		if n := len(Convert(halves(50, 40), Preprocess{})); n != 32*32*3 {
			t.Fatalf("default output has %d bytes, want 32×32×3", n)
		}
	})
}

func TestGrey(t *testing.T) {
	cases := []struct {
		c    color.NRGBA
		want uint8
	}{
		{color.NRGBA{255, 0, 0, 255}, 76},  // 76.245
		{color.NRGBA{0, 255, 0, 255}, 150}, // 149.685
		{color.NRGBA{0, 0, 255, 255}, 29},  // 29.07
		{color.NRGBA{10, 20, 30, 255}, 18}, // 18.15
		{color.NRGBA{200, 200, 200, 255}, 200},
		{color.NRGBA{0, 0, 0, 0}, 255}, // transparent: white
	}
	for _, c := range cases {
		t.Run("", func(t *testing.T) {
			m := image.NewNRGBA(image.Rect(0, 0, 3, 3))
			for i := 0; i < len(m.Pix); i += 4 {
				m.Pix[i], m.Pix[i+1], m.Pix[i+2], m.Pix[i+3] = c.c.R, c.c.G, c.c.B, c.c.A
			}
			pix := Convert(m, Preprocess{Size: 2, Channels: 1})
			if len(pix) != 4 {
				t.Fatalf("got %d bytes, want 4", len(pix))
			}
			for _, v := range pix {
				if v != c.want {
					t.Fatalf("grey of %v = %d, want %d", c.c, v, c.want)
				}
			}
		})
	}
}

func TestOrientation(t *testing.T) {
	p := Preprocess{Size: 8, Resize: ResizeStretch}
	plain, err := DecodeFile("testdata/images/halves.jpg", p)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := DecodeFile("testdata/images/orient6.jpg", p)
	if err != nil {
		t.Fatal(err)
	}
	// Stored 32×16, left red, right blue; orientation 6 rotates it 90°
	// clockwise for display: 16×32, top red, bottom blue.
	if !near(px(plain, 8, 3, 0, 7), red, 40) || !near(px(plain, 8, 3, 7, 0), blue, 40) {
		t.Errorf("plain: bottom-left %v, top-right %v; want red, blue", px(plain, 8, 3, 0, 7), px(plain, 8, 3, 7, 0))
	}
	if !near(px(rotated, 8, 3, 7, 0), red, 40) || !near(px(rotated, 8, 3, 0, 7), blue, 40) {
		t.Errorf("orientation 6: top-right %v, bottom-left %v; want red, blue", px(rotated, 8, 3, 7, 0), px(rotated, 8, 3, 0, 7))
	}
	b, err := os.ReadFile("testdata/images/orient6.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if o := jpegOrientation(b); o != 6 {
		t.Errorf("jpegOrientation = %d, want 6", o)
	}
}

// TestOrientNRGBA checks all eight EXIF orientations against their
// definitions: where each displayed pixel comes from in the stored image.
func TestOrientNRGBA(t *testing.T) {
	const w, h = 3, 2
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 0, 255})
		}
	}
	src := []func(x, y int) (int, int){
		nil,
		func(x, y int) (int, int) { return x, y },
		func(x, y int) (int, int) { return w - 1 - x, y },
		func(x, y int) (int, int) { return w - 1 - x, h - 1 - y },
		func(x, y int) (int, int) { return x, h - 1 - y },
		func(x, y int) (int, int) { return y, x },
		func(x, y int) (int, int) { return y, h - 1 - x },
		func(x, y int) (int, int) { return w - 1 - y, h - 1 - x },
		func(x, y int) (int, int) { return w - 1 - y, x },
	}
	for o := 1; o <= 8; o++ {
		got := orientNRGBA(m, o)
		b := got.Bounds()
		if (o >= 5) != (b.Dx() == h) {
			t.Errorf("orientation %d: size %v", o, b.Size())
			continue
		}
		for y := 0; y < b.Dy(); y++ {
			for x := 0; x < b.Dx(); x++ {
				sx, sy := src[o](x, y)
				if c := got.NRGBAAt(x, y); int(c.R) != sx || int(c.G) != sy {
					t.Errorf("orientation %d: displayed (%d,%d) came from (%d,%d), want (%d,%d)", o, x, y, c.R, c.G, sx, sy)
				}
			}
		}
	}
}

// pngHeader returns a PNG signature and IHDR chunk claiming w×h RGB
// pixels, with no image data.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 17)
	copy(ihdr, "IHDR")
	binary.BigEndian.PutUint32(ihdr[4:], w)
	binary.BigEndian.PutUint32(ihdr[8:], h)
	ihdr[12], ihdr[13] = 8, 2 // 8-bit RGB
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(ihdr)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(ihdr))
	return b.Bytes()
}

func TestDecodeRefusesLarge(t *testing.T) {
	dir := t.TempDir()
	huge := writeImageFile(t, dir, "huge.png", pngHeader(100000, 100000))
	start := time.Now()
	_, err := DecodeFile(huge, Preprocess{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v", d)
	}
	want := `data: image "` + huge + `": image too large: 100000×100000 is 10000000000 pixels, more than the limit of 100000000 (max_pixels)`
	if err.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", err, want)
	}
	small := writeImageFile(t, dir, "small.png", encodeImage(t, "png", halves(32, 16)))
	if _, err := DecodeFile(small, Preprocess{MaxPixels: 511}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("32×16 with MaxPixels 511: got %v, want ErrTooLarge", err)
	}
	if _, err := DecodeFile(small, Preprocess{MaxPixels: 512}); err != nil {
		t.Errorf("32×16 with MaxPixels 512: %v", err)
	}
	if err := checkPixels(0, 5, 10); !errors.Is(err, ErrNoPixels) {
		t.Errorf("zero width: got %v, want ErrNoPixels", err)
	}
	if _, err := DecodeFile(small, Preprocess{Channels: 2}); err == nil || errors.As(err, new(*ImageError)) {
		t.Errorf("invalid Preprocess: got %v, want a settings error", err)
	}
}

func TestDecodeBadFiles(t *testing.T) {
	dir := t.TempDir()
	jpg, err := os.ReadFile("testdata/images/halves.jpg")
	if err != nil {
		t.Fatal(err)
	}
	pngb := encodeImage(t, "png", halves(32, 16))
	rnd := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rnd {
		rnd[i] = byte(rng.Uint32())
	}
	cases := []struct {
		name  string
		bytes []byte
		is    error  // cause, or nil
		msg   string // in the message
	}{
		{"truncated.jpg", jpg[:len(jpg)/2], nil, "EOF"},
		{"truncated.png", pngb[:len(pngb)-20], nil, "unexpected EOF"},
		{"truncated-header.png", pngb[:20], io.ErrUnexpectedEOF, "unexpected EOF"},
		{"header-only.jpg", jpg[:2], nil, ""},
		{"empty.jpg", nil, nil, "empty file"},
		{"random.jpg", rnd, ErrUnknownFormat, "unknown image format (want JPEG, PNG, GIF, BMP, TIFF or WebP)"},
		{"text.jpg", []byte("this is not a picture\n"), ErrUnknownFormat, "unknown image format"},
		{"missing.jpg", nil, fs.ErrNotExist, "no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name)
			if c.name != "missing.jpg" {
				writeImageFile(t, dir, c.name, c.bytes)
			}
			pix, err := DecodeFile(p, Preprocess{})
			if err == nil {
				t.Fatalf("got %d bytes and no error", len(pix))
			}
			var ie *ImageError
			if !errors.As(err, &ie) || ie.Path != p {
				t.Fatalf("got %T %v, want an *ImageError for %q", err, err, p)
			}
			if !strings.HasPrefix(err.Error(), `data: image "`+p+`": `) {
				t.Errorf("message %q does not name the file", err)
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("got %v, want errors.Is %v", err, c.is)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q lacks %q", err, c.msg)
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, err := DecodeFile(dir, Preprocess{}); !errors.As(err, new(*ImageError)) {
			t.Errorf("got %v, want an *ImageError", err)
		}
	})
}

// testdataImages returns the committed test images' bytes.
func testdataImages(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("testdata/images/*")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test images: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[p] = b
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, b := range testdataImages(f) {
		f.Add(b)
	}
	f.Add(pngHeader(1<<20, 1<<20))
	f.Add(pngHeader(0, 4))
	p := Preprocess{Size: 8, MaxPixels: 1 << 16}.WithDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		pix, err := decodeAt("fuzz", bytes.NewReader(b), int64(len(b)), p)
		if err != nil {
			if !errors.As(err, new(*ImageError)) {
				t.Fatalf("error %T %v is not an *ImageError", err, err)
			}
			return
		}
		if len(pix) != 8*8*3 {
			t.Fatalf("got %d bytes, want 192", len(pix))
		}
	})
}

// BenchmarkDecodeFilePhotos decodes every JPEG in the folder named by
// $PATCHWISE_PHOTOS to 64×64 RGB (ResizeCrop) with 2 goroutines, as
// bench/ingest_pillow.py --size 64 --workers 2 does with Pillow.
func BenchmarkDecodeFilePhotos(b *testing.B) {
	dir := os.Getenv("PATCHWISE_PHOTOS")
	if dir == "" {
		b.Skip("PATCHWISE_PHOTOS is not set")
	}
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if e := strings.ToLower(filepath.Ext(p)); e == ".jpg" || e == ".jpeg" {
				paths = append(paths, p)
			}
		}
		return nil
	})
	if len(paths) == 0 {
		b.Skipf("no JPEG files in %s", dir)
	}
	const workers = 2
	p := Preprocess{Size: 64}
	b.ResetTimer()
	for b.Loop() {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make([]error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= len(paths) {
						return
					}
					if _, err := DecodeFile(paths[i], p); err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(paths))/b.Elapsed().Seconds(), "images/s")
	b.ReportMetric(float64(len(paths)), "images/op")
}

// TestBoxReduceYCbCr checks the YCbCr block averaging, for every chroma
// subsampling and an odd origin, against averaging the RGB pixels.
func TestBoxReduceYCbCr(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ratios := []image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410,
	}
	for _, ratio := range ratios {
		t.Run(ratio.String(), func(t *testing.T) {
			m := image.NewYCbCr(image.Rect(3, 5, 3+61, 5+47), ratio)
			// Smooth content, so that averaging before or after the
			// colour conversion agrees up to rounding.
			for i := range m.Y {
				m.Y[i] = uint8(100 + rng.IntN(40))
			}
			for i := range m.Cb {
				m.Cb[i], m.Cr[i] = uint8(110+rng.IntN(30)), uint8(120+rng.IntN(30))
			}
			r := image.Rect(4, 6, 4+5*12, 6+4*11)
			got := boxReduce(m, r, 5, 4)
			want := boxReduce(imaging.Clone(m.SubImage(r)), image.Rect(0, 0, 60, 44), 5, 4)
			for i := range got.Pix {
				if d := int(got.Pix[i]) - int(want.Pix[i]); d < -3 || d > 3 {
					t.Fatalf("byte %d: %d, want %d", i, got.Pix[i], want.Pix[i])
				}
			}
		})
	}
}
