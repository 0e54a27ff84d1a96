package data

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// textured returns a w×h image of smooth waves and fine texture that stays
// within 20..235 in every channel, so that no 8×8 block of its JPEG decode
// clips: then the block means of the full decode equal the DC samples up
// to rounding.
func textured(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x), float64(y)
			r := 128 + 60*math.Sin(fx/23) + 30*math.Sin((fx+fy)/5)
			g := 128 + 70*math.Cos(fy/17) + 25*math.Sin(fx*fy/900)
			b := 128 + 50*math.Sin((fx-fy)/31) + 35*math.Cos(fx/3.7)
			m.SetNRGBA(x, y, color.NRGBA{uint8(r), uint8(g), uint8(b), 255})
		}
	}
	return m
}

func encodeJPEG(t testing.TB, m image.Image, q int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, m, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// dcPlane is one component plane, for comparing a DC image with a full
// decode.
type dcPlane struct {
	name   string
	pix    []uint8
	stride int
	w, h   int
}

// planes returns the component planes of a decoded JPEG.
func planes(t *testing.T, m image.Image) []dcPlane {
	t.Helper()
	switch m := m.(type) {
	case *image.Gray:
		return []dcPlane{{"Y", m.Pix, m.Stride, m.Rect.Dx(), m.Rect.Dy()}}
	case *image.YCbCr:
		w, h := m.Rect.Dx(), m.Rect.Dy()
		cw, ch := w, h
		switch m.SubsampleRatio {
		case image.YCbCrSubsampleRatio422:
			cw = (w + 1) / 2
		case image.YCbCrSubsampleRatio420:
			cw, ch = (w+1)/2, (h+1)/2
		case image.YCbCrSubsampleRatio440:
			ch = (h + 1) / 2
		}
		return []dcPlane{
			{"Y", m.Y, m.YStride, w, h},
			{"Cb", m.Cb, m.CStride, cw, ch},
			{"Cr", m.Cr, m.CStride, cw, ch},
		}
	}
	t.Fatalf("decoded %T, want *image.Gray or *image.YCbCr", m)
	return nil
}

// compareDC compares the DC image dc with the full decode full: every
// sample of dc whose 8×8 block lies wholly inside the full plane must be
// within tol of the block's mean. It returns the number of samples
// compared, how many were off by more than tol, and the largest
// difference.
func compareDC(t *testing.T, dc, full image.Image, tol int) (n, bad, worst int) {
	t.Helper()
	if reflectType(dc) != reflectType(full) {
		t.Fatalf("DC image is %T, full decode %T", dc, full)
	}
	if a, ok := dc.(*image.YCbCr); ok && a.SubsampleRatio != full.(*image.YCbCr).SubsampleRatio {
		t.Fatalf("DC image has subsampling %v, full decode %v", a.SubsampleRatio, full.(*image.YCbCr).SubsampleRatio)
	}
	fb := full.Bounds()
	if got, want := dc.Bounds(), image.Rect(0, 0, (fb.Dx()+7)/8, (fb.Dy()+7)/8); got != want {
		t.Fatalf("DC image bounds %v, want %v", got, want)
	}
	dp, fp := planes(t, dc), planes(t, full)
	for k := range dp {
		d, f := dp[k], fp[k]
		if d.w != (f.w+7)/8 || d.h != (f.h+7)/8 {
			t.Fatalf("%s plane %d×%d, full plane %d×%d", d.name, d.w, d.h, f.w, f.h)
		}
		for by := 0; by+1 <= f.h/8; by++ {
			for bx := 0; bx+1 <= f.w/8; bx++ {
				sum := 0
				for y := 8 * by; y < 8*by+8; y++ {
					for _, v := range f.pix[y*f.stride+8*bx : y*f.stride+8*bx+8] {
						sum += int(v)
					}
				}
				mean := (sum + 32) / 64
				diff := int(d.pix[by*d.stride+bx]) - mean
				diff = max(diff, -diff)
				n++
				worst = max(worst, diff)
				if diff > tol {
					bad++
					if bad <= 3 {
						t.Logf("%s block (%d, %d): DC %d, mean %d", d.name, bx, by, d.pix[by*d.stride+bx], mean)
					}
				}
			}
		}
	}
	return n, bad, worst
}

func reflectType(m image.Image) string { return fmt.Sprintf("%T", m) }

// dcTestFiles returns the JPEGs the DC decoder must handle: files encoded
// by image/jpeg and committed files written by libjpeg (Pillow, cjpeg,
// jpegtran): progressive and sequential, 4:4:4, 4:2:2, 4:2:0, 4:4:0 and
// grey, with restart intervals, non-interleaved and refined DC scans,
// sides that are not multiples of the block size.
func dcTestFiles(t *testing.T) map[string][]byte {
	files := map[string][]byte{
		"go-420":     encodeJPEG(t, textured(256, 192), 90),
		"go-420-odd": encodeJPEG(t, textured(203, 157), 75),
		"go-gray":    encodeJPEG(t, grey(textured(200, 120)), 90),
	}
	paths, err := filepath.Glob("testdata/images/dc-*.jpg")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no test images: %v", err)
	}
	for _, p := range paths {
		if strings.Contains(p, "411") { // unsupported
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	return files
}

func grey(m image.Image) *image.Gray {
	g := image.NewGray(m.Bounds())
	for y := m.Bounds().Min.Y; y < m.Bounds().Max.Y; y++ {
		for x := m.Bounds().Min.X; x < m.Bounds().Max.X; x++ {
			g.Set(x, y, m.At(x, y))
		}
	}
	return g
}

// TestJPEGDC compares the DC decoder with the block means of image/jpeg's
// full decode, per component before colour conversion.
func TestJPEGDC(t *testing.T) {
	wantRatio := map[string]image.YCbCrSubsampleRatio{
		"dc-p444.jpg":     image.YCbCrSubsampleRatio444,
		"dc-b444-odd.jpg": image.YCbCrSubsampleRatio444,
		"dc-p422.jpg":     image.YCbCrSubsampleRatio422,
		"dc-b422-rst.jpg": image.YCbCrSubsampleRatio422,
		"dc-p420.jpg":     image.YCbCrSubsampleRatio420,
		"dc-b440-rst.jpg": image.YCbCrSubsampleRatio440,
		"go-420":          image.YCbCrSubsampleRatio420,
	}
	for name, b := range dcTestFiles(t) {
		t.Run(name, func(t *testing.T) {
			dc, err := decodeJPEGDC(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			full, err := jpeg.Decode(bytes.NewReader(b))
			if goFails[name] {
				if err == nil {
					t.Errorf("image/jpeg now decodes %s: compare with it", name)
				}
				return // TestJPEGDCLossless covers it
			}
			if err != nil {
				t.Fatal(err)
			}
			if r, ok := wantRatio[name]; ok {
				if m, ok := dc.(*image.YCbCr); !ok || m.SubsampleRatio != r {
					t.Errorf("got %T with ratio %v, want *image.YCbCr with %v", dc, ratioOf(dc), r)
				}
			}
			n, bad, worst := compareDC(t, dc, full, 2)
			if n == 0 || bad > 0 {
				t.Errorf("%d of %d samples differ from the block mean by more than 2 (at most %d)", bad, n, worst)
			}
		})
	}
}

func ratioOf(m image.Image) any {
	if y, ok := m.(*image.YCbCr); ok {
		return y.SubsampleRatio
	}
	return nil
}

// goFails lists the test files that image/jpeg (Go 1.26) fails to decode
// ("missing 0xff00 sequence") though libjpeg decodes them: restart markers
// in a progressive file and in a sequential file of several scans.
var goFails = map[string]bool{"dc-p420-rst.jpg": true, "dc-s420-multiscan-rst.jpg": true}

// TestJPEGDCLossless checks that files that jpegtran made losslessly from
// dc-b420.jpg (progressive with restarts, non-interleaved and refined DC
// scans, sequential in one scan per component with restarts), whose DC
// coefficients are the same, give the same image.
func TestJPEGDCLossless(t *testing.T) {
	decode := func(name string) *image.YCbCr {
		b, err := os.ReadFile(filepath.Join("testdata/images", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := decodeJPEGDC(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m.(*image.YCbCr)
	}
	want := decode("dc-b420.jpg")
	for _, name := range []string{"dc-p420-rst.jpg", "dc-p420-nonint.jpg", "dc-s420-multiscan-rst.jpg"} {
		got := decode(name)
		if got.Rect != want.Rect || got.SubsampleRatio != want.SubsampleRatio ||
			!bytes.Equal(got.Y, want.Y) || !bytes.Equal(got.Cb, want.Cb) || !bytes.Equal(got.Cr, want.Cr) {
			t.Errorf("%s differs from dc-b420.jpg", name)
		}
	}
}

// TestJPEGDCUnsupported checks that what the DC decoder does not handle
// is reported as errUnsupportedDC, and that DecodeFile then uses the full
// decoder.
func TestJPEGDCUnsupported(t *testing.T) {
	for _, name := range []string{"cmyk.jpg", "dc-b411.jpg"} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join("testdata/images", name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeJPEGDC(bytes.NewReader(b)); !errors.Is(err, errUnsupportedDC) {
				t.Errorf("decodeJPEGDC: got %v, want errUnsupportedDC", err)
			}
			if _, err := DecodeFile(p, Preprocess{Size: 2}); err != nil {
				t.Errorf("DecodeFile: %v", err)
			}
		})
	}
	// Headers the DC decoder leaves to the full decoder.
	base := encodeJPEG(t, textured(64, 48), 90)
	sof := bytes.Index(base, []byte{0xff, 0xc0})
	for _, c := range []struct {
		name string
		edit func(b []byte)
	}{
		{"12-bit", func(b []byte) { b[sof+4] = 12 }},
		{"arithmetic", func(b []byte) { b[sof+1] = 0xc9 }},
		{"lossless", func(b []byte) { b[sof+1] = 0xc3 }},
		{"rgb-ids", func(b []byte) {
			b[sof+10], b[sof+13], b[sof+16] = 'R', 'G', 'B'
			sos := bytes.Index(b, []byte{0xff, 0xda})
			b[sos+5], b[sos+7], b[sos+9] = 'R', 'G', 'B'
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(base)
			c.edit(b)
			if _, err := decodeJPEGDC(bytes.NewReader(b)); !errors.Is(err, errUnsupportedDC) {
				t.Errorf("got %v, want errUnsupportedDC", err)
			}
		})
	}
}

// smooth returns a w×h image of gradients, slow waves and a sharp edge,
// more like a photo at the scale of the output than textured.
func smooth(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x), float64(y)
			r := 30 + 190*fx/float64(w) + 20*math.Sin(fy/40)
			g := 128 + 90*math.Cos(fy/57)*math.Sin(fx/71)
			b := 40 + 170*fy/float64(h)
			if x > w/3 && y > h/2 {
				r, g, b = 240, 230, 20
			}
			m.SetNRGBA(x, y, color.NRGBA{uint8(r), uint8(g), uint8(b), 255})
		}
	}
	return m
}

// TestDecodeFileJPEGDC compares DecodeFile, which takes the DC path for
// these files, with the full decode converted the same way.
func TestDecodeFileJPEGDC(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"420":      encodeJPEG(t, smooth(640, 480), 90),
		"420-odd":  encodeJPEG(t, smooth(637, 479), 90),
		"gray":     encodeJPEG(t, grey(smooth(480, 640)), 90),
		"gray-odd": encodeJPEG(t, grey(smooth(333, 517)), 90),
	}
	for name, b := range files {
		for _, p := range []Preprocess{
			{Size: 32},
			{Size: 40, Resize: ResizePad},
			{Size: 16, Channels: 1, Resize: ResizeStretch},
		} {
			t.Run(fmt.Sprintf("%s/%d", name, p.Size), func(t *testing.T) {
				path := writeImageFile(t, dir, name+".jpg", b)
				got, err := DecodeFile(path, p)
				if err != nil {
					t.Fatal(err)
				}
				full, err := jpeg.Decode(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if mad := meanAbsDiff(t, got, Convert(full, p)); mad > 3 {
					t.Errorf("mean absolute difference from the full decode %.2f, want ≤ 3", mad)
				}
			})
		}
	}
}

func meanAbsDiff(t *testing.T, got, want []uint8) float64 {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d bytes, want %d", len(got), len(want))
	}
	sum := 0
	for i := range got {
		d := int(got[i]) - int(want[i])
		sum += max(d, -d)
	}
	return float64(sum) / float64(len(got))
}

// withOrientation returns the JPEG b with an EXIF APP1 segment giving
// orientation o inserted after SOI.
func withOrientation(b []byte, o uint16) []byte {
	tiff := []byte{'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, byte(o), byte(o >> 8), 0, 0, 0, 0, 0, 0}
	seg := append([]byte("Exif\x00\x00"), tiff...)
	n := len(seg) + 2
	out := append([]byte{0xff, 0xd8, 0xff, 0xe1, byte(n >> 8), byte(n)}, seg...)
	return append(out, b[2:]...)
}

// TestJPEGDCOrientation checks that the EXIF orientation still applies on
// the DC path.
func TestJPEGDCOrientation(t *testing.T) {
	b := withOrientation(encodeJPEG(t, halves(256, 128), 95), 6)
	path := writeImageFile(t, t.TempDir(), "o6.jpg", b)
	if _, err := decodeJPEGDC(bytes.NewReader(b)); err != nil {
		t.Fatalf("DC path not taken: %v", err)
	}
	pix, err := DecodeFile(path, Preprocess{Size: 8, Resize: ResizeStretch})
	if err != nil {
		t.Fatal(err)
	}
	// Stored left red, right blue; displayed rotated 90° clockwise.
	if !near(px(pix, 8, 3, 7, 0), red, 40) || !near(px(pix, 8, 3, 0, 7), blue, 40) {
		t.Errorf("top-right %v, bottom-left %v; want red, blue", px(pix, 8, 3, 7, 0), px(pix, 8, 3, 0, 7))
	}
}

// TestJPEGDCBadFiles checks that truncated and damaged files give errors
// and no panic.
func TestJPEGDCBadFiles(t *testing.T) {
	for name, b := range dcTestFiles(t) {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{0, 1, 2, 3, 20, len(b) / 7, len(b) / 3, len(b) / 2, len(b) - 100, len(b) - 2, len(b) - 1} {
				if _, err := decodeJPEGDC(bytes.NewReader(b[:n])); err == nil {
					t.Errorf("truncated to %d of %d bytes: no error", n, len(b))
				}
			}
			// Damaged bytes: any result, but no panic.
			for i := 2; i < len(b); i += 37 {
				c := bytes.Clone(b)
				c[i] ^= 0x5a
				decodeJPEGDC(bytes.NewReader(c))
				decodeJPEGDC(bytes.NewReader(c[:len(c)*2/3]))
			}
		})
	}
	for _, b := range [][]byte{nil, []byte("not a picture"), {0xff, 0xd8, 0xff}, {0xff, 0xd8, 0xff, 0xd9}} {
		if _, err := decodeJPEGDC(bytes.NewReader(b)); err == nil || errors.Is(err, errUnsupportedDC) {
			t.Errorf("%q: got %v, want a format error", b, err)
		}
	}
	// A restart interval whose RST marker is missing.
	b, err := os.ReadFile("testdata/images/dc-b422-rst.jpg")
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.Index(b, []byte{0xff, 0xd3}); i > 0 {
		c := append(bytes.Clone(b[:i]), b[i+2:]...)
		decodeJPEGDC(bytes.NewReader(c)) // any result, no panic
	}
}

// TestJPEGDCPhotos compares the DC decoder with the full decode on the
// photos in $PATCHWISE_PHOTOS, allowing for blocks whose pixels clip.
func TestJPEGDCPhotos(t *testing.T) {
	dir := os.Getenv("PATCHWISE_PHOTOS")
	if dir == "" {
		t.Skip("PATCHWISE_PHOTOS not set")
	}
	paths, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			dc, err := decodeJPEGDC(bytes.NewReader(b))
			if errors.Is(err, errUnsupportedDC) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			full, err := jpeg.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			n, bad, worst := compareDC(t, dc, full, 2)
			t.Logf("%v %T %v: %d of %d samples off by more than 2, at most %d", full.Bounds().Size(), dc, ratioOf(dc), bad, n, worst)
			if bad > n/100 {
				t.Errorf("%d of %d samples differ by more than 2", bad, n)
			}
			pp := Preprocess{Size: 64}
			got, err := DecodeFile(p, pp)
			if err != nil {
				t.Fatal(err)
			}
			mad := meanAbsDiff(t, got, convert(full, pp.WithDefaults(), jpegOrientation(b)))
			t.Logf("DecodeFile at 64×64: mean absolute difference from the full decode %.2f", mad)
			// The DC grid is fixed at multiples of 8 pixels while the full
			// path's crop and box grid need not be: up to half a block's
			// shift, which shows on sharp patterns (3.8 on Elephants.jpg).
			if mad > 5 {
				t.Errorf("mean absolute difference %.2f, want ≤ 5", mad)
			}
		})
	}
}

func FuzzJPEGDC(f *testing.F) {
	for p, b := range testdataImages(f) {
		if strings.HasSuffix(p, ".jpg") {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return
		}
		m, err := decodeJPEGDC(bytes.NewReader(b))
		if err != nil {
			return
		}
		if got, want := m.Bounds(), image.Rect(0, 0, (cfg.Width+7)/8, (cfg.Height+7)/8); got != want {
			t.Fatalf("bounds %v, want %v", got, want)
		}
	})
}
