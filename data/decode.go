package data

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"

	// Decoders registered with package image.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"

	"github.com/disintegration/imaging"
)

// ImageError reports that an image file cannot be used: it cannot be
// read, its format is unknown, it is too large, or its bytes are malformed.
// Test for it with errors.As; the cause (such as io.ErrUnexpectedEOF,
// fs.ErrNotExist, ErrUnknownFormat or ErrTooLarge) with errors.Is.
type ImageError struct {
	Path string // the file, as given to DecodeFile; empty for in-memory input
	Err  error  // what is wrong
}

func (e *ImageError) Error() string {
	if e.Path == "" {
		return "data: image: " + e.Err.Error()
	}
	return fmt.Sprintf("data: image %q: %v", e.Path, e.Err)
}

// Unwrap returns the cause.
func (e *ImageError) Unwrap() error { return e.Err }

// Causes of an ImageError, for errors.Is.
var (
	ErrUnknownFormat = errors.New("unknown image format (want JPEG, PNG, GIF, BMP, TIFF or WebP)")
	ErrTooLarge      = errors.New("image too large")
	ErrNoPixels      = errors.New("image has no pixels")
)

// reducingGap is the resize's pre-reduction threshold, as Pillow's
// reducing_gap: when an image shrinks by a factor f ≥ 2·reducingGap along
// an axis, it is first averaged over blocks of ⌊f/reducingGap⌋ pixels along
// that axis (a box filter, cheap and exact for integer factors), and only
// the remaining factor (between reducingGap and 2·reducingGap) is done by
// the linear filter. bench/ingest_pillow.py uses the same value.
const reducingGap = 2.0

// resampleFilter is the filter of every resize: the triangle ("linear",
// Pillow's BILINEAR) kernel, widened by the scale factor when shrinking so
// that it averages every source pixel (antialiased, as Pillow does). It is
// about three times cheaper than Lanczos on large downscales, and at the
// small output sizes of pretraining the sharper Lanczos kernel mostly adds
// ringing.
var resampleFilter = imaging.Linear

// DecodeFile reads the image file at path and returns its pixels after
// preprocessing, as Convert does: p.Size×p.Size×p.Channels bytes,
// channels-last. Zero fields of p mean their defaults.
//
// It reads the header first and refuses an image with a zero side or more
// than p.MaxPixels pixels before decoding it. It knows JPEG, PNG, GIF
// (the first frame), BMP, TIFF and WebP, recognised by their contents, not
// the file name, and applies a JPEG's EXIF orientation. Problems with the
// file are returned as an *ImageError naming path; invalid settings in p as
// a plain error. DecodeFile is safe for concurrent use and never panics on
// malformed bytes.
func DecodeFile(path string, p Preprocess) ([]uint8, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.WithDefaults()
	f, size, err := openImage(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decodeAt(path, f, size, p)
}

// DecodeCrops reads the image file at path, as DecodeFile does, and
// returns its p.Crops.N crops (see Crops), each p.Size×p.Size×p.Channels
// bytes, for the input whose origin is origin. A JPEG whose crops all
// keep p.Size pixels on their shorter side at 1/8 scale is decoded at
// that scale (see DecodeFile); any smaller crop needs the full
// resolution. Errors are as DecodeFile's; p without crops is an invalid
// setting.
func DecodeCrops(path string, p Preprocess, origin string) ([]Crop, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p = p.WithDefaults()
	if p.Crops.N == 0 {
		return nil, errors.New("data: DecodeCrops: the preprocessing makes no crops")
	}
	f, size, err := openImage(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decodeCropsAt(path, f, size, p, origin)
}

// openImage opens the regular file path and returns its size.
func openImage(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, &ImageError{Path: path, Err: unwrapPathError(err)}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, &ImageError{Path: path, Err: unwrapPathError(err)}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, &ImageError{Path: path, Err: errors.New("not a regular file")}
	}
	return f, fi.Size(), nil
}

// unwrapPathError drops the *fs.PathError around err, whose message would
// repeat the path that ImageError already names.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// decodeAt decodes the size bytes of r as DecodeFile does; p has its
// defaults set.
func decodeAt(path string, r io.ReaderAt, size int64, p Preprocess) ([]uint8, error) {
	// Reduced-scale JPEG path (jpegdc.go): when the 1/8-scale image
	// still has p.Size pixels on its shorter side, decode only each 8×8
	// block's DC coefficient (its mean); the resize averages over at
	// least that much anyway.
	img, _, orient, err := readImage(path, r, size, p, func(w, h, _ int) bool { return min(w, h)/8 >= p.Size })
	if err != nil {
		return nil, err
	}
	return convert(img, p, orient), nil
}

// decodeCropsAt decodes the size bytes of r as DecodeCrops does; p has its
// defaults set.
func decodeCropsAt(path string, r io.ReaderAt, size int64, p Preprocess, origin string) ([]Crop, error) {
	var rects []image.Rectangle
	img, cfg, orient, err := readImage(path, r, size, p, func(w, h, orient int) bool {
		if orient >= 5 {
			w, h = h, w // displayed on its side
		}
		rects = p.Crops.Rects(w, h, origin)
		for _, c := range rects {
			if min(c.Dx(), c.Dy())/8 < p.Size {
				return false
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return cropAll(img, cfg.Width, cfg.Height, p, rects, orient), nil
}

// readImage decodes the size bytes of r (the file path) with its
// orientation (EXIF, for a JPEG; else 1) and its header's image.Config,
// after checking the size against p.MaxPixels. reduce is called with the
// stored image's size and orientation before decoding; when it returns
// true, a JPEG is decoded at 1/8 scale by the DC-only decoder, where that
// decoder handles it.
func readImage(path string, r io.ReaderAt, size int64, p Preprocess, reduce func(w, h, orient int) bool) (image.Image, image.Config, int, error) {
	fail := func(err error) (image.Image, image.Config, int, error) {
		return nil, image.Config{}, 0, &ImageError{Path: path, Err: err}
	}
	if size == 0 {
		return fail(errors.New("empty file"))
	}
	cfg, format, err := safeDecodeConfig(bufio.NewReader(io.NewSectionReader(r, 0, size)))
	if err != nil {
		return fail(err)
	}
	if err := checkPixels(cfg.Width, cfg.Height, p.MaxPixels); err != nil {
		return fail(err)
	}
	// The file is read whole; no image within the pixel limit needs more
	// than 8 bytes a pixel (16-bit RGBA, uncompressed) plus its metadata.
	if limit := 8*int64(p.MaxPixels) + 16<<20; size > limit {
		return fail(fmt.Errorf("%w: file of %d bytes, more than any image of at most %d pixels needs (max_pixels)", ErrTooLarge, size, p.MaxPixels))
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(r, 0, size), b); err != nil {
		return fail(err)
	}
	orient := 1
	if format == "jpeg" {
		orient = jpegOrientation(b)
	}
	// JPEGs the DC-only decoder does not handle fall back to the full
	// decoder; malformed ones are reported.
	var img image.Image
	if reduce(cfg.Width, cfg.Height, orient) && format == "jpeg" {
		img, err = decodeJPEGDCBytes(b)
		if errors.Is(err, errUnsupportedDC) {
			img = nil
		} else if err != nil {
			return fail(err)
		}
	}
	if img == nil {
		img, err = safeDecode(b)
		if err != nil {
			return fail(err)
		}
	}
	bd := img.Bounds()
	if err := checkPixels(bd.Dx(), bd.Dy(), p.MaxPixels); err != nil {
		return fail(err)
	}
	return img, cfg, orient, nil
}

func checkPixels(w, h, max int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%w: %d×%d", ErrNoPixels, w, h)
	}
	if int64(w)*int64(h) > int64(max) {
		return fmt.Errorf("%w: %d×%d is %d pixels, more than the limit of %d (max_pixels)",
			ErrTooLarge, w, h, int64(w)*int64(h), max)
	}
	return nil
}

// decodeErr maps the standard library's errors to ImageError causes.
func decodeErr(err error) error {
	switch {
	case errors.Is(err, image.ErrFormat):
		return ErrUnknownFormat
	case err == io.EOF:
		return io.ErrUnexpectedEOF
	}
	return err
}

// safeDecodeConfig and safeDecode call the registered image decoders (the
// standard library's and golang.org/x/image's), turning a panic of theirs
// on malformed input into an error. Patchwise's own decoders (jpegdc.go,
// the dataset readers) are not wrapped: their panics are bugs, and their
// fuzzers look for them.
func safeDecodeConfig(r io.Reader) (cfg image.Config, format string, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("malformed image (decoder panicked: %v)", v)
		}
	}()
	cfg, format, err = image.DecodeConfig(r)
	return cfg, format, decodeErr(err)
}

func safeDecode(b []byte) (img image.Image, err error) {
	defer func() {
		if v := recover(); v != nil {
			img, err = nil, fmt.Errorf("malformed image (decoder panicked: %v)", v)
		}
	}()
	img, _, err = image.Decode(bytes.NewReader(b))
	return img, decodeErr(err)
}

// jpegOrientation returns the EXIF orientation (1 to 8) of the JPEG file b,
// or 1 when it has none or it cannot be read. It looks at every APP1
// segment before the image data.
func jpegOrientation(b []byte) int {
	if len(b) < 4 || b[0] != 0xff || b[1] != 0xd8 {
		return 1
	}
	i := 2
	for i+4 <= len(b) {
		if b[i] != 0xff {
			return 1
		}
		marker := b[i+1]
		switch {
		case marker == 0xff: // fill byte
			i++
			continue
		case marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7):
			i += 2
			continue
		case marker == 0xda || marker == 0xd9: // start of scan, end of image
			return 1
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return 1
		}
		seg := b[i+4 : i+2+n]
		if marker == 0xe1 && len(seg) > 6 && string(seg[:6]) == "Exif\x00\x00" {
			if o := exifOrientation(seg[6:]); o != 0 {
				return o
			}
		}
		i += 2 + n
	}
	return 1
}

// exifOrientation reads the orientation tag of IFD0 in the TIFF-structured
// EXIF data t, or returns 0.
func exifOrientation(t []byte) int {
	if len(t) < 8 {
		return 0
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 0
	}
	if bo.Uint16(t[2:]) != 42 {
		return 0
	}
	off := int64(bo.Uint32(t[4:]))
	if off < 8 || off+2 > int64(len(t)) {
		return 0
	}
	n := int64(bo.Uint16(t[off:]))
	for k := int64(0); k < n; k++ {
		e := off + 2 + 12*k
		if e+12 > int64(len(t)) {
			return 0
		}
		if bo.Uint16(t[e:]) != 0x0112 {
			continue
		}
		if bo.Uint16(t[e+2:]) != 3 { // SHORT
			return 0
		}
		if o := int(bo.Uint16(t[e+8:])); o >= 1 && o <= 8 {
			return o
		}
		return 0
	}
	return 0
}

// Convert returns the pixels of img after preprocessing:
// p.Size×p.Size×p.Channels bytes, channels-last (row by row, the channels
// of each pixel together). Zero fields of p mean their defaults.
//
// Any colour model is accepted. Transparent pixels are composited onto
// white. The image is resized by the policy p.Resize (ResizeCrop: the
// shorter side to p.Size, then the centre square; ResizePad: the longer
// side to p.Size, centred on a white square; ResizeStretch: both sides to
// p.Size) with an antialiased linear (triangle) filter, after averaging
// over integer blocks for large reductions, as Pillow does with
// Image.BILINEAR and reducing_gap=2. One channel is the ITU-R BT.601 luma
// 0.299 R + 0.587 G + 0.114 B, rounded.
//
// Convert panics if p is invalid (see Preprocess.Validate) or img has no
// pixels.
func Convert(img image.Image, p Preprocess) []uint8 {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	if img.Bounds().Empty() {
		panic("data: Convert of an image with no pixels")
	}
	return convert(img, p.WithDefaults(), 1)
}

// convert is Convert for valid p with defaults set, applying the EXIF
// orientation orient (1 to 8). Because orientation and resizing commute,
// the image is resized first and only the small result is reoriented.
func convert(img image.Image, p Preprocess, orient int) []uint8 {
	s := p.Size
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()

	// The source rectangle and the resized size, in source orientation.
	rect, tw, th := b, s, s
	switch p.Resize {
	case ResizeCrop:
		m := min(w, h)
		rect = image.Rect(0, 0, m, m).Add(b.Min).Add(image.Pt((w-m)/2, (h-m)/2))
	case ResizePad:
		if w >= h {
			th = max(1, int((int64(h)*int64(s)+int64(w)/2)/int64(w)))
		} else {
			tw = max(1, int((int64(w)*int64(s)+int64(h)/2)/int64(h)))
		}
	}

	small := resizeRect(img, rect, tw, th)
	return pixelsOf(orientNRGBA(small, orient), s, p.Channels)
}

// resizeRect returns the rectangle rect of img resized to tw×th: averaged
// over integer blocks first for large reductions (see reducingGap), then
// resampled with resampleFilter.
func resizeRect(img image.Image, rect image.Rectangle, tw, th int) *image.NRGBA {
	kx := max(1, int(float64(rect.Dx())/float64(tw)/reducingGap))
	ky := max(1, int(float64(rect.Dy())/float64(th)/reducingGap))
	var src image.Image
	if kx > 1 || ky > 1 {
		// Trim to whole blocks, keeping the centre.
		dx, dy := rect.Dx()%kx, rect.Dy()%ky
		rect.Min.X += dx / 2
		rect.Max.X -= dx - dx/2
		rect.Min.Y += dy / 2
		rect.Max.Y -= dy - dy/2
		src = boxReduce(img, rect, kx, ky)
	} else {
		src = subImage(img, rect)
	}
	return imaging.Resize(src, tw, th, resampleFilter)
}

// pixelsOf returns the s×s×channels record pixels of small (at most s×s,
// centred on white), with alpha composited on white and one channel the
// BT.601 luma.
func pixelsOf(small *image.NRGBA, s, channels int) []uint8 {
	out := make([]uint8, s*s*channels)
	sb := small.Bounds()
	ox, oy := (s-sb.Dx())/2, (s-sb.Dy())/2
	if ox > 0 || oy > 0 {
		for i := range out {
			out[i] = 255
		}
	}
	for y := 0; y < sb.Dy(); y++ {
		row := small.Pix[y*small.Stride : y*small.Stride+4*sb.Dx()]
		o := ((oy+y)*s + ox) * channels
		for x := 0; x < len(row); x += 4 {
			r, g, bl, a := uint32(row[x]), uint32(row[x+1]), uint32(row[x+2]), uint32(row[x+3])
			if a != 255 {
				// Composite onto white: c·a + 255·(1−a), in 0..255 units.
				bg := 255 * (255 - a)
				r = (r*a + bg + 127) / 255
				g = (g*a + bg + 127) / 255
				bl = (bl*a + bg + 127) / 255
			}
			if channels == 1 {
				out[o] = uint8((299*r + 587*g + 114*bl + 500) / 1000)
				o++
			} else {
				out[o], out[o+1], out[o+2] = uint8(r), uint8(g), uint8(bl)
				o += 3
			}
		}
	}
	return out
}

// subImage returns the part r of img, without copying when img can.
func subImage(img image.Image, r image.Rectangle) image.Image {
	if r == img.Bounds() {
		return img
	}
	if si, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok {
		return si.SubImage(r)
	}
	return imaging.Crop(img, r)
}

// orientNRGBA returns m transformed to display as EXIF orientation o says.
func orientNRGBA(m *image.NRGBA, o int) *image.NRGBA {
	switch o {
	case 2:
		return imaging.FlipH(m)
	case 3:
		return imaging.Rotate180(m)
	case 4:
		return imaging.FlipV(m)
	case 5:
		return imaging.Transpose(m)
	case 6:
		return imaging.Rotate270(m)
	case 7:
		return imaging.Transverse(m)
	case 8:
		return imaging.Rotate90(m)
	}
	return m
}

// boxReduce returns the rectangle r of img averaged over blocks of kx×ky
// pixels, as non-premultiplied RGBA with alpha-weighted colours. r's sides
// are multiples of kx and ky. YCbCr (JPEG, lossy WebP), grey, RGBA and NRGBA
// images are read directly; others are converted to NRGBA first.
func boxReduce(img image.Image, r image.Rectangle, kx, ky int) *image.NRGBA {
	w, h := r.Dx()/kx, r.Dy()/ky
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	n := uint32(kx * ky)
	half := n / 2
	switch m := img.(type) {
	case *image.YCbCr:
		// Average Y, Cb and Cr, then convert: the conversion is affine, so
		// this equals averaging RGB except where RGB would clip.
		hs, vs, ok := chromaShifts(m.SubsampleRatio)
		if !ok || m.Rect.Min.X < 0 || m.Rect.Min.Y < 0 {
			break
		}
		sy := make([]uint32, w)
		scb := make([]uint32, w)
		scr := make([]uint32, w)
		cx0 := m.Rect.Min.X >> hs
		for oy := 0; oy < h; oy++ {
			clear(sy)
			clear(scb)
			clear(scr)
			for y := r.Min.Y + oy*ky; y < r.Min.Y+(oy+1)*ky; y++ {
				yrow := m.Y[m.YOffset(r.Min.X, y):]
				crow := (y>>vs - m.Rect.Min.Y>>vs) * m.CStride
				cbRow, crRow := m.Cb[crow:], m.Cr[crow:]
				for ox := 0; ox < w; ox++ {
					var a, cb, cr uint32
					x0 := r.Min.X + ox*kx
					for _, v := range yrow[ox*kx : ox*kx+kx] {
						a += uint32(v)
					}
					for x := x0; x < x0+kx; x++ {
						ci := x>>hs - cx0
						cb += uint32(cbRow[ci])
						cr += uint32(crRow[ci])
					}
					sy[ox] += a
					scb[ox] += cb
					scr[ox] += cr
				}
			}
			row := dst.Pix[oy*dst.Stride:]
			for ox := 0; ox < w; ox++ {
				rr, gg, bb := ycbcrToRGB(uint8((sy[ox]+half)/n), uint8((scb[ox]+half)/n), uint8((scr[ox]+half)/n))
				row[4*ox], row[4*ox+1], row[4*ox+2], row[4*ox+3] = rr, gg, bb, 255
			}
		}
		return dst
	case *image.Gray:
		sum := make([]uint32, w)
		for oy := 0; oy < h; oy++ {
			clear(sum)
			for y := r.Min.Y + oy*ky; y < r.Min.Y+(oy+1)*ky; y++ {
				g := m.Pix[m.PixOffset(r.Min.X, y):]
				for ox := 0; ox < w; ox++ {
					var a uint32
					for _, v := range g[ox*kx : ox*kx+kx] {
						a += uint32(v)
					}
					sum[ox] += a
				}
			}
			row := dst.Pix[oy*dst.Stride:]
			for ox := 0; ox < w; ox++ {
				v := uint8((sum[ox] + half) / n)
				row[4*ox], row[4*ox+1], row[4*ox+2], row[4*ox+3] = v, v, v, 255
			}
		}
		return dst
	case *image.RGBA:
		return reduceRGBA(m.Pix, m.Stride, m.PixOffset(r.Min.X, r.Min.Y), true, w, h, kx, ky, dst)
	case *image.NRGBA:
		return reduceRGBA(m.Pix, m.Stride, m.PixOffset(r.Min.X, r.Min.Y), false, w, h, kx, ky, dst)
	}
	c := imaging.Crop(img, r) // any colour model to NRGBA
	return reduceRGBA(c.Pix, c.Stride, 0, false, w, h, kx, ky, dst)
}

// chromaShifts returns the horizontal and vertical chroma subsampling of r
// as shifts.
func chromaShifts(r image.YCbCrSubsampleRatio) (h, v uint, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio411:
		return 2, 0, true
	case image.YCbCrSubsampleRatio410:
		return 2, 1, true
	}
	return 0, 0, false
}

// reduceRGBA box-averages 8-bit RGBA pixels (premultiplied or not) starting
// at pix[off] into dst (w×h, non-premultiplied).
func reduceRGBA(pix []uint8, stride, off int, premul bool, w, h, kx, ky int, dst *image.NRGBA) *image.NRGBA {
	n := uint64(kx * ky)
	sum := make([]uint64, 4*w)
	for oy := 0; oy < h; oy++ {
		clear(sum)
		for y := oy * ky; y < (oy+1)*ky; y++ {
			p := pix[off+y*stride:]
			for ox := 0; ox < w; ox++ {
				var r, g, b, a uint64
				for x := ox * kx; x < ox*kx+kx; x++ {
					s := p[4*x : 4*x+4 : 4*x+4]
					al := uint64(s[3])
					if premul {
						r += uint64(s[0]) * 255
						g += uint64(s[1]) * 255
						b += uint64(s[2]) * 255
					} else {
						r += uint64(s[0]) * al
						g += uint64(s[1]) * al
						b += uint64(s[2]) * al
					}
					a += al
				}
				q := sum[4*ox : 4*ox+4 : 4*ox+4]
				q[0] += r
				q[1] += g
				q[2] += b
				q[3] += a
			}
		}
		row := dst.Pix[oy*dst.Stride:]
		for ox := 0; ox < w; ox++ {
			q := sum[4*ox : 4*ox+4 : 4*ox+4]
			d := row[4*ox : 4*ox+4 : 4*ox+4]
			if q[3] == 0 {
				d[0], d[1], d[2], d[3] = 0, 0, 0, 0
				continue
			}
			d[0] = uint8((q[0] + q[3]/2) / q[3])
			d[1] = uint8((q[1] + q[3]/2) / q[3])
			d[2] = uint8((q[2] + q[3]/2) / q[3])
			d[3] = uint8((q[3] + n/2) / n)
		}
	}
	return dst
}

// ycbcrToRGB is color.YCbCrToRGB, inlined here so the compiler can.
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy1 := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy1 + 91881*cr1
	if uint32(r)&0xff000000 == 0 {
		r >>= 16
	} else {
		r = ^(r >> 31)
	}
	g := yy1 - 22554*cb1 - 46802*cr1
	if uint32(g)&0xff000000 == 0 {
		g >>= 16
	} else {
		g = ^(g >> 31)
	}
	b := yy1 + 116130*cb1
	if uint32(b)&0xff000000 == 0 {
		b >>= 16
	} else {
		b = ^(b >> 31)
	}
	return uint8(r), uint8(g), uint8(b)
}
