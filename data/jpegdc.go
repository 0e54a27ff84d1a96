package data

// A reduced-scale JPEG decoder: it decodes only the DC coefficient of each
// 8×8 block, which (ITU T.81, A.3.3: the inverse DCT's (0,0) basis function
// is the constant 1/8) makes each block's sample mean DC·Q[0]/8 (+128 for
// the level shift). The result is the image at 1/8 scale, as libjpeg's
// scale_denom=8 gives, for a fraction of the cost of a full decode: a
// sequential scan still has to Huffman-decode every AC symbol to find where
// each block ends, but no dequantisation or IDCT is done, and a progressive
// file's AC scans are skipped without decoding them at all.
//
// Supported: 8-bit Huffman-coded sequential (SOF0, SOF1) and progressive
// (SOF2) frames of one component (grey) or three (YCbCr) with chroma
// subsampling 4:4:4, 4:2:2, 4:2:0 or 4:4:0; restart intervals; 16-bit
// quantisation tables. Anything else (CMYK/YCCK, RGB-coded, arithmetic
// coding, 12-bit, lossless, hierarchical, 4:1:1 and other sampling factors,
// DNL) yields errUnsupportedDC so that the caller can use the full decoder.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"io"
)

// errUnsupportedDC reports a JPEG that decodeJPEGDC does not handle but
// that is not necessarily malformed: use the full decoder.
var errUnsupportedDC = errors.New("jpeg: not supported by the DC-only decoder")

// dcFormatError is malformed JPEG data found by the DC-only decoder.
type dcFormatError string

func (e dcFormatError) Error() string { return "invalid JPEG format: " + string(e) }

// decodeJPEGDC decodes the JPEG image read from r at 1/8 scale: each 8×8
// block becomes one pixel, its mean (before clamping to 0..255). The result
// is an *image.YCbCr (SubsampleRatio 4:4:4, 4:2:2, 4:2:0 or 4:4:0) or an
// *image.Gray of ⌈width/8⌉×⌈height/8⌉ pixels. It returns errUnsupportedDC
// for JPEGs it does not handle; other errors mean malformed or truncated
// data. It does not check the image size: call image.DecodeConfig first.
func decodeJPEGDC(r io.Reader) (image.Image, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return decodeJPEGDCBytes(b)
}

// huffLUTBits is the number of bits the Huffman fast lookup peeks at.
const huffLUTBits = 9

// dcHuff is a Huffman table (T.81, C.2 and F.2.2.3), with a lookup table
// for codes of at most huffLUTBits bits.
type dcHuff struct {
	defined bool
	// lut[peek] is code length<<8 | value, or 0 for a longer code.
	lut     [1 << huffLUTBits]uint16
	maxCode [17]int32 // largest code of each length, -1 if none
	valPtr  [17]int32 // index in vals of the first code of each length
	minCode [17]int32 // smallest code of each length
	vals    [256]uint8
}

// build sets h from a DHT table's 16 code counts and its values.
func (h *dcHuff) build(counts []byte, vals []byte) error {
	*h = dcHuff{defined: true}
	copy(h.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		n := int32(counts[l-1])
		h.minCode[l] = code
		h.valPtr[l] = k
		h.maxCode[l] = -1
		if n > 0 {
			h.maxCode[l] = code + n - 1
		}
		if code+n > 1<<l {
			return dcFormatError("bad Huffman table")
		}
		if l <= huffLUTBits {
			for c := code; c < code+n; c++ {
				v := uint16(l)<<8 | uint16(vals[k+c-code])
				lo := c << (huffLUTBits - l)
				for j := lo; j < lo+1<<(huffLUTBits-l); j++ {
					h.lut[j] = v
				}
			}
		}
		code = (code + n) << 1
		k += n
	}
	return nil
}

// dcBits reads the entropy-coded segment of a scan MSB first, removing
// stuffed zero bytes. At a marker or the end of data it supplies zero bits
// and counts them, so that running past the real data can be detected.
type dcBits struct {
	b    []byte
	pos  int    // next byte of b to read
	acc  uint64 // bits, MSB first
	n    uint   // valid bits in acc
	stop bool   // pos is at a marker or the end of b
	fake uint   // zero bits supplied after stop
}

func (br *dcBits) reset(b []byte, pos int) {
	*br = dcBits{b: b, pos: pos}
}

// fill tops acc up to more than 56 bits.
func (br *dcBits) fill() {
	for br.n <= 56 {
		var c byte
		if !br.stop {
			if br.pos >= len(br.b) {
				br.stop = true
			} else if c = br.b[br.pos]; c != 0xff {
				br.pos++
			} else if br.pos+1 < len(br.b) && br.b[br.pos+1] == 0 {
				br.pos += 2 // stuffed 0xFF 0x00
			} else {
				br.stop = true // a marker (or fill bytes before one)
			}
		}
		if br.stop {
			c = 0
			br.fake += 8
		}
		br.acc |= uint64(c) << (56 - br.n)
		br.n += 8
	}
}

// overrun reports whether bits past the end of the segment were used.
func (br *dcBits) overrun() bool { return br.fake > br.n }

// bits returns the next n ≤ 16 bits; acc must hold at least n.
func (br *dcBits) bits(n uint) int32 {
	if n == 0 {
		return 0
	}
	v := int32(br.acc >> (64 - n))
	br.acc <<= n
	br.n -= n
	return v
}

// decode returns the next Huffman-coded value. acc must hold ≥ 16 bits.
func (br *dcBits) decode(h *dcHuff) (uint8, error) {
	if e := h.lut[br.acc>>(64-huffLUTBits)]; e != 0 {
		l := uint(e >> 8)
		br.acc <<= l
		br.n -= l
		return uint8(e), nil
	}
	code := int32(0)
	for l := 1; l <= 16; l++ {
		code = code<<1 | int32(br.acc>>63)
		br.acc <<= 1
		br.n--
		if code <= h.maxCode[l] {
			i := h.valPtr[l] + code - h.minCode[l]
			if i < 0 || i > 255 {
				break
			}
			return h.vals[i], nil
		}
	}
	return 0, dcFormatError("bad Huffman code")
}

// extend turns the s received bits v into a signed value (T.81, F.2.2.1).
func extend(v int32, s uint) int32 {
	if s == 0 {
		return 0
	}
	if v < 1<<(s-1) {
		v += -1<<s + 1
	}
	return v
}

// dcComp is a frame component.
type dcComp struct {
	id      uint8
	h, v    int // sampling factors
	tq      int // quantisation table
	bw, bh  int // blocks across and down of the component itself
	stride  int // blocks across in dc, covering whole MCUs
	dc      []int32
	pred    int32
	td, ta  int // scan's Huffman tables
	scanned bool
}

type dcDecoder struct {
	b           []byte
	progressive bool
	frame       bool
	width       int
	height      int
	comps       []dcComp
	hmax, vmax  int
	mcusX       int
	mcusY       int
	quant       [4]int32 // DC quantiser of each table; 0 if undefined
	quantSet    [4]bool
	dcTab       [4]dcHuff
	acTab       [4]dcHuff
	restart     int
	jfif        bool
	adobe       bool
	adobeXform  uint8
	br          dcBits
	sawScan     bool
}

func decodeJPEGDCBytes(b []byte) (image.Image, error) {
	d := &dcDecoder{b: b}
	if err := d.run(); err != nil {
		return nil, err
	}
	return d.image()
}

// run parses the markers and scans (T.81, B.2).
func (d *dcDecoder) run() error {
	b := d.b
	if len(b) < 2 || b[0] != 0xff || b[1] != 0xd8 {
		return dcFormatError("missing SOI marker")
	}
	i := 2
	for {
		// Find the marker: 0xFF, optional 0xFF fill bytes, a code.
		if i >= len(b) {
			return io.ErrUnexpectedEOF
		}
		if b[i] != 0xff {
			return dcFormatError(fmt.Sprintf("missing marker at offset %d", i))
		}
		for i < len(b) && b[i] == 0xff {
			i++
		}
		if i >= len(b) {
			return io.ErrUnexpectedEOF
		}
		m := b[i]
		i++
		switch {
		case m == 0xd9: // EOI
			if !d.sawScan {
				return dcFormatError("no image data")
			}
			return nil
		case m >= 0xd0 && m <= 0xd7, m == 0x01, m == 0x00:
			continue // stray RSTn, TEM: no length
		}
		if i+2 > len(b) {
			return io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint16(b[i:]))
		if n < 2 {
			return dcFormatError("bad segment length")
		}
		if i+n > len(b) {
			return io.ErrUnexpectedEOF
		}
		seg := b[i+2 : i+n]
		i += n
		var err error
		switch {
		case m == 0xc0 || m == 0xc1 || m == 0xc2:
			err = d.sof(m, seg)
		case m == 0xc4:
			err = d.dht(seg)
		case m == 0xdb:
			err = d.dqt(seg)
		case m == 0xdd:
			if len(seg) < 2 {
				err = dcFormatError("bad DRI length")
			} else {
				d.restart = int(binary.BigEndian.Uint16(seg))
			}
		case m == 0xda:
			i, err = d.sos(seg, i)
		case m == 0xdc: // DNL
			err = errUnsupportedDC
		case m >= 0xc3 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			err = errUnsupportedDC // lossless, hierarchical, arithmetic
		case m == 0xcc: // DAC: arithmetic coding
			err = errUnsupportedDC
		case m == 0xe0:
			if len(seg) >= 5 && string(seg[:5]) == "JFIF\x00" {
				d.jfif = true
			}
		case m == 0xee:
			if len(seg) >= 12 && string(seg[:5]) == "Adobe" {
				d.adobe = true
				d.adobeXform = seg[11]
			}
		}
		if err != nil {
			return err
		}
	}
}

// sof parses a frame header (T.81, B.2.2).
func (d *dcDecoder) sof(m byte, seg []byte) error {
	if d.frame {
		return dcFormatError("more than one frame")
	}
	if len(seg) < 6 {
		return dcFormatError("bad SOF length")
	}
	if seg[0] != 8 {
		return errUnsupportedDC // 12-bit
	}
	d.progressive = m == 0xc2
	d.height = int(binary.BigEndian.Uint16(seg[1:]))
	d.width = int(binary.BigEndian.Uint16(seg[3:]))
	nf := int(seg[5])
	if d.width == 0 || d.height == 0 {
		if d.height == 0 {
			return errUnsupportedDC // height given by a DNL marker
		}
		return dcFormatError("zero width")
	}
	if nf != 1 && nf != 3 {
		return errUnsupportedDC
	}
	if len(seg) != 6+3*nf {
		return dcFormatError("bad SOF length")
	}
	d.comps = make([]dcComp, nf)
	for k := range d.comps {
		c := &d.comps[k]
		p := seg[6+3*k:]
		c.id, c.h, c.v, c.tq = p[0], int(p[1]>>4), int(p[1]&15), int(p[2])
		for j := 0; j < k; j++ {
			if d.comps[j].id == c.id {
				return dcFormatError("repeated component id")
			}
		}
		if c.h < 1 || c.h > 4 || c.v < 1 || c.v > 4 || c.tq > 3 {
			return dcFormatError("bad component parameters")
		}
		d.hmax, d.vmax = max(d.hmax, c.h), max(d.vmax, c.v)
	}
	if nf == 1 {
		// A single component is never interleaved: its blocks are its own.
		d.comps[0].h, d.comps[0].v, d.hmax, d.vmax = 1, 1, 1, 1
	} else {
		y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
		if cb.h != cr.h || cb.v != cr.v || y.h != d.hmax || y.v != d.vmax ||
			y.h%cb.h != 0 || y.v%cb.v != 0 || y.h/cb.h > 2 || y.v/cb.v > 2 {
			return errUnsupportedDC // 4:1:1 and other odd sampling
		}
	}
	d.mcusX = (d.width + 8*d.hmax - 1) / (8 * d.hmax)
	d.mcusY = (d.height + 8*d.vmax - 1) / (8 * d.vmax)
	for k := range d.comps {
		c := &d.comps[k]
		cw := (d.width*c.h + d.hmax - 1) / d.hmax
		ch := (d.height*c.v + d.vmax - 1) / d.vmax
		c.bw, c.bh = (cw+7)/8, (ch+7)/8
		c.stride = d.mcusX * c.h
		c.dc = make([]int32, c.stride*d.mcusY*c.v)
	}
	d.frame = true
	return nil
}

// dht parses Huffman tables (T.81, B.2.4.2).
func (d *dcDecoder) dht(seg []byte) error {
	for len(seg) > 0 {
		if len(seg) < 17 {
			return dcFormatError("bad DHT length")
		}
		tc, th := seg[0]>>4, int(seg[0]&15)
		if tc > 1 || th > 3 {
			return dcFormatError("bad Huffman table class or id")
		}
		total := 0
		for _, c := range seg[1:17] {
			total += int(c)
		}
		if total > 256 || len(seg) < 17+total {
			return dcFormatError("bad DHT length")
		}
		t := &d.dcTab[th]
		if tc == 1 {
			t = &d.acTab[th]
		}
		if err := t.build(seg[1:17], seg[17:17+total]); err != nil {
			return err
		}
		seg = seg[17+total:]
	}
	return nil
}

// dqt parses quantisation tables (T.81, B.2.4.1), keeping only the DC
// quantiser (the first value, in zigzag order).
func (d *dcDecoder) dqt(seg []byte) error {
	for len(seg) > 0 {
		pq, tq := seg[0]>>4, int(seg[0]&15)
		if pq > 1 || tq > 3 {
			return dcFormatError("bad quantisation table precision or id")
		}
		size := 65
		if pq == 1 {
			size = 129
		}
		if len(seg) < size {
			return dcFormatError("bad DQT length")
		}
		if pq == 0 {
			d.quant[tq] = int32(seg[1])
		} else {
			d.quant[tq] = int32(binary.BigEndian.Uint16(seg[1:]))
		}
		d.quantSet[tq] = true
		seg = seg[size:]
	}
	return nil
}

// sos parses a scan header (T.81, B.2.3) and decodes the scan whose
// entropy-coded data starts at b[i]; it returns the offset of the marker
// after the scan.
func (d *dcDecoder) sos(seg []byte, i int) (int, error) {
	if !d.frame {
		return 0, dcFormatError("scan before frame header")
	}
	if len(seg) < 1 {
		return 0, dcFormatError("bad SOS length")
	}
	ns := int(seg[0])
	if ns < 1 || ns > len(d.comps) || len(seg) != 4+2*ns {
		return 0, dcFormatError("bad SOS length")
	}
	var sc [4]*dcComp
	for k := 0; k < ns; k++ {
		id := seg[1+2*k]
		var c *dcComp
		for j := range d.comps {
			if d.comps[j].id == id {
				c = &d.comps[j]
			}
		}
		if c == nil {
			return 0, dcFormatError("unknown component in scan")
		}
		for j := 0; j < k; j++ {
			if sc[j] == c {
				return 0, dcFormatError("repeated component in scan")
			}
		}
		c.td, c.ta = int(seg[2+2*k]>>4), int(seg[2+2*k]&15)
		if c.td > 3 || c.ta > 3 {
			return 0, dcFormatError("bad Huffman table id")
		}
		sc[k] = c
	}
	p := seg[1+2*ns:]
	ss, se, ah, al := int(p[0]), int(p[1]), int(p[2]>>4), uint(p[2]&15)
	d.sawScan = true
	if d.progressive {
		if ss > se || se > 63 || ah > 13 || al > 13 || ss == 0 && se != 0 || ss > 0 && ns != 1 {
			return 0, dcFormatError("bad progressive scan parameters")
		}
		if ss > 0 {
			// An AC scan: skip its entropy-coded data.
			return d.skipScan(i)
		}
	} else if ss != 0 || se != 63 || ah != 0 || al != 0 {
		return 0, errUnsupportedDC // odd, but leave it to the full decoder
	}
	for _, c := range sc[:ns] {
		if !d.quantSet[c.tq] {
			return 0, dcFormatError("undefined quantisation table")
		}
		if ah == 0 && !d.dcTab[c.td].defined || !d.progressive && !d.acTab[c.ta].defined {
			return 0, dcFormatError("undefined Huffman table")
		}
		c.pred = 0
		c.scanned = true
	}
	return d.scan(sc[:ns], i, ah, al)
}

// skipScan returns the offset of the first marker other than RSTn at or
// after b[i]: entropy-coded data has every 0xFF byte followed by 0x00.
func (d *dcDecoder) skipScan(i int) (int, error) {
	b := d.b
	for {
		j := bytes.IndexByte(b[i:], 0xff)
		if j < 0 {
			return 0, io.ErrUnexpectedEOF
		}
		i += j
		k := i + 1
		for k < len(b) && b[k] == 0xff {
			k++
		}
		if k >= len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		if c := b[k]; c != 0 && (c < 0xd0 || c > 0xd7) {
			return i, nil
		}
		i = k + 1
	}
}

// scan decodes one scan's entropy-coded data starting at b[i]: for a
// sequential scan every block's DC and (skipped) AC coefficients; for a
// progressive DC scan the first bits (ah = 0) or one refinement bit.
func (d *dcDecoder) scan(sc []*dcComp, i int, ah int, al uint) (int, error) {
	// Non-interleaved: each block an MCU, in the component's own grid.
	mx, my := d.mcusX, d.mcusY
	if len(sc) == 1 {
		mx, my = sc[0].bw, sc[0].bh
	}
	total := mx * my
	br := &d.br
	br.reset(d.b, i)
	left := d.restart // MCUs left in the restart interval
	for mcu := 0; mcu < total; mcu++ {
		if d.restart > 0 {
			if left == 0 {
				var err error
				if i, err = d.nextRestart(); err != nil {
					return 0, err
				}
				br.reset(d.b, i)
				for _, c := range sc {
					c.pred = 0
				}
				left = d.restart
			}
			left--
		}
		x, y := mcu%mx, mcu/mx
		for _, c := range sc {
			bx, by, nh, nv := x, y, 1, 1
			if len(sc) > 1 {
				bx, by, nh, nv = x*c.h, y*c.v, c.h, c.v
			}
			for v := 0; v < nv; v++ {
				row := c.dc[(by+v)*c.stride+bx:]
				for h := 0; h < nh; h++ {
					if br.n < 32 {
						br.fill()
					}
					if ah > 0 {
						row[h] |= br.bits(1) << al
						continue
					}
					s, err := br.decode(&d.dcTab[c.td])
					if err != nil {
						return 0, err
					}
					if s > 11 {
						return 0, dcFormatError("bad DC difference size")
					}
					c.pred += extend(br.bits(uint(s)), uint(s))
					row[h] = c.pred << al
					if d.progressive {
						continue
					}
					if err := br.skipAC(&d.acTab[c.ta]); err != nil {
						return 0, err
					}
				}
			}
		}
		if br.fake > 0 && br.overrun() {
			if br.pos >= len(br.b) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, dcFormatError("short scan data")
		}
	}
	// Resume at the marker that ends the scan.
	return d.skipScan(br.pos)
}

// skipAC reads a block's 63 AC coefficients, keeping none (T.81, F.2.2.2).
func (br *dcBits) skipAC(t *dcHuff) error {
	for k := 1; k < 64; {
		if br.n < 32 {
			br.fill()
		}
		rs, err := br.decode(t)
		if err != nil {
			return err
		}
		r, s := uint(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				return nil // end of block
			}
			k += 16
			continue
		}
		br.acc <<= s
		br.n -= s
		k += int(r) + 1
	}
	return nil
}

// nextRestart finds the RSTn marker that ends a restart interval, after
// the current position of d.br, and returns the offset after it.
func (d *dcDecoder) nextRestart() (int, error) {
	b := d.b
	i := d.br.pos
	for {
		j := bytes.IndexByte(b[i:], 0xff)
		if j < 0 {
			return 0, io.ErrUnexpectedEOF
		}
		i += j + 1
		for i < len(b) && b[i] == 0xff {
			i++
		}
		if i >= len(b) {
			return 0, io.ErrUnexpectedEOF
		}
		switch c := b[i]; {
		case c == 0:
			i++
		case c >= 0xd0 && c <= 0xd7:
			return i + 1, nil
		default:
			return 0, dcFormatError("missing RST marker")
		}
	}
}

// image builds the 1/8-scale image from the DC coefficients.
func (d *dcDecoder) image() (image.Image, error) {
	if !d.frame {
		return nil, dcFormatError("missing frame header")
	}
	w, h := (d.width+7)/8, (d.height+7)/8
	r := image.Rect(0, 0, w, h)
	if len(d.comps) == 1 {
		m := image.NewGray(r)
		d.plane(&d.comps[0], m.Pix, m.Stride, w, h)
		return m, nil
	}
	// Colour transform: YCbCr unless, without a JFIF marker, an Adobe
	// marker says "unknown" (RGB) or the ids spell RGB (as image/jpeg
	// decides).
	c0, c1, c2 := d.comps[0].id, d.comps[1].id, d.comps[2].id
	if !d.jfif && (d.adobe && d.adobeXform == 0 || c0 == 'R' && c1 == 'G' && c2 == 'B') {
		return nil, errUnsupportedDC
	}
	ratio := image.YCbCrSubsampleRatio444
	switch [2]int{d.comps[0].h / d.comps[1].h, d.comps[0].v / d.comps[1].v} {
	case [2]int{2, 1}:
		ratio = image.YCbCrSubsampleRatio422
	case [2]int{2, 2}:
		ratio = image.YCbCrSubsampleRatio420
	case [2]int{1, 2}:
		ratio = image.YCbCrSubsampleRatio440
	}
	m := image.NewYCbCr(r, ratio)
	d.plane(&d.comps[0], m.Y, m.YStride, w, h)
	cw, ch := w, h
	if ratio == image.YCbCrSubsampleRatio422 || ratio == image.YCbCrSubsampleRatio420 {
		cw = (w + 1) / 2
	}
	if ratio == image.YCbCrSubsampleRatio420 || ratio == image.YCbCrSubsampleRatio440 {
		ch = (h + 1) / 2
	}
	d.plane(&d.comps[1], m.Cb, m.CStride, cw, ch)
	d.plane(&d.comps[2], m.Cr, m.CStride, cw, ch)
	return m, nil
}

// plane writes c's block means into pix, w×h samples (clipped to c's
// blocks; a component without any scan is mid-grey).
func (d *dcDecoder) plane(c *dcComp, pix []uint8, stride, w, h int) {
	q := d.quant[c.tq]
	for y := 0; y < min(h, c.bh); y++ {
		dc := c.dc[y*c.stride:]
		out := pix[y*stride:]
		for x := 0; x < min(w, c.bw); x++ {
			// The mean DC·Q/8, rounded, level-shifted and clamped.
			v := (int64(dc[x])*int64(q)+4)>>3 + 128
			out[x] = uint8(min(max(v, 0), 255))
		}
	}
}
