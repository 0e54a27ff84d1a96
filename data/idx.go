package data

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// MaxIDXSize is the largest data section, in bytes, that ReadIDX and OpenIDX
// accept. Headers declaring more are rejected before anything is allocated.
const MaxIDXSize = 1 << 31

// maxIDXDims is the largest number of dimensions accepted.
const maxIDXDims = 4

// FormatError reports that the bytes of a source file are malformed: for an
// IDX file a bad header, an unsupported element type, sizes out of bounds,
// truncated or trailing data, a corrupt gzip stream, or (from LoadIDXPair)
// files of the wrong rank or with disagreeing counts; for CIFAR and STL-10
// files, sizes or labels that do not fit the format. Test for it with
// errors.As.
type FormatError struct {
	Format string // "idx" when empty, "cifar10", "stl10", …
	Path   string // file name; empty when reading from an io.Reader
	Offset int64  // byte offset in the decompressed IDX stream; negative when unknown
	Msg    string // what is wrong
	Err    error  // underlying cause, such as gzip.ErrChecksum; may be nil
}

func (e *FormatError) Error() string {
	var b strings.Builder
	format := e.Format
	if format == "" {
		format = "idx"
	}
	b.WriteString(formatPrefix(format, e.Path))
	if e.Offset >= 0 {
		fmt.Fprintf(&b, "offset %d: ", e.Offset)
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause, if any.
func (e *FormatError) Unwrap() error { return e.Err }

func idxPrefix(path string) string { return formatPrefix("idx", path) }

func formatPrefix(format, path string) string {
	if path == "" {
		return "data: " + format + ": "
	}
	return fmt.Sprintf("data: %s %q: ", format, path)
}

// IDX is a decoded IDX file of unsigned bytes (element type 0x08).
type IDX struct {
	Dims []int   // shape, outermost first, e.g. [N, H, W] for images, [N] for labels
	Data []uint8 // product(Dims) elements in row-major order
}

// idxTypes names the element type codes of the IDX format.
var idxTypes = map[byte]string{
	0x08: "unsigned byte", 0x09: "signed byte", 0x0b: "int16",
	0x0c: "int32", 0x0d: "float32", 0x0e: "float64",
}

// ReadIDX decodes an uncompressed IDX stream from r: the magic (two zero
// bytes, an element type code and the number of dimensions), one big-endian
// uint32 per dimension, then the data, and nothing after it.
//
// Only element type 0x08 (unsigned byte) is supported, with 1 to 4
// dimensions, none of them zero, and at most MaxIDXSize bytes of data.
// Malformed input gives a *FormatError; other read errors are returned
// wrapped. ReadIDX reads r to its end.
func ReadIDX(r io.Reader) (*IDX, error) {
	return readIDX(r, "")
}

// OpenIDX opens and decodes the IDX file at path, gunzipping it first if it
// starts with the gzip magic (1f 8b), whatever its name. Malformed or corrupt
// input gives a *FormatError whose Path is path; other errors (such as a
// missing file, testable with errors.Is(err, fs.ErrNotExist)) are returned
// wrapped, also naming path.
func OpenIDX(path string) (*IDX, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s%w", idxPrefix(path), err)
	}
	defer f.Close()
	return decodeIDX(f, path)
}

// decodeIDX reads an IDX stream from r, gunzipping it if it starts with the
// gzip magic. Errors name path.
func decodeIDX(r io.Reader, path string) (*IDX, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s%w", idxPrefix(path), err)
	}
	if len(magic) < 2 || magic[0] != 0x1f || magic[1] != 0x8b {
		return readIDX(br, path)
	}
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, readErr(path, -1, "truncated gzip header", err)
	}
	defer zr.Close()
	return readIDX(zr, path)
}

func readIDX(r io.Reader, path string) (*IDX, error) {
	fail := func(off int64, format string, args ...any) error {
		return &FormatError{Path: path, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	var head [4]byte
	if n, err := io.ReadFull(r, head[:]); err != nil {
		return nil, readErr(path, 0, fmt.Sprintf("truncated: want 4 bytes of header, got %d", n), err)
	}
	if head[0] != 0 || head[1] != 0 {
		msg := "bad magic 0x%02x%02x: want 0x0000"
		if head[0] == 0x1f && head[1] == 0x8b {
			msg += " (this is gzip data: gunzip it or use OpenIDX)"
		}
		return nil, fail(0, msg, head[0], head[1])
	}
	if head[2] != 0x08 {
		name := idxTypes[head[2]]
		if name == "" {
			name = "unknown"
		}
		return nil, fail(2, "unsupported element type 0x%02x (%s): only 0x08 (unsigned byte) is supported", head[2], name)
	}
	nd := int(head[3])
	if nd < 1 || nd > maxIDXDims {
		return nil, fail(3, "%d dimensions: want 1 to %d", nd, maxIDXDims)
	}
	raw := make([]byte, 4*nd)
	if n, err := io.ReadFull(r, raw); err != nil {
		return nil, readErr(path, 4, fmt.Sprintf("truncated: want %d bytes of dimensions, got %d", len(raw), n), err)
	}
	dims := make([]int, nd)
	size := int64(1)
	for i := range dims {
		d := int64(binary.BigEndian.Uint32(raw[4*i:]))
		off := 4 + 4*int64(i)
		if d == 0 {
			return nil, fail(off, "dimension %d of %d is zero", i, nd)
		}
		size *= d // cannot overflow: size <= MaxIDXSize and d < 1<<32
		if size > MaxIDXSize || size > math.MaxInt {
			return nil, fail(off, "dimensions %v describe over %d bytes of data", dimsUpTo(raw, i), int64(MaxIDXSize))
		}
		dims[i] = int(d)
	}
	start := 4 + 4*int64(nd)
	data, err := readN(r, int(size))
	if err != nil {
		return nil, readErr(path, start, fmt.Sprintf("truncated: want %d bytes of data, got %d", size, len(data)), err)
	}
	var extra [1]byte
	switch n, err := io.ReadFull(r, extra[:]); {
	case n > 0:
		return nil, fail(start+size, "trailing bytes after %d bytes of data", size)
	case !errors.Is(err, io.EOF):
		return nil, readErr(path, start+size, "truncated stream after the data", err)
	}
	return &IDX{Dims: dims, Data: data}, nil
}

// dimsUpTo decodes the first i+1 big-endian dimensions in raw, for messages.
func dimsUpTo(raw []byte, i int) []uint32 {
	ds := make([]uint32, i+1)
	for j := range ds {
		ds[j] = binary.BigEndian.Uint32(raw[4*j:])
	}
	return ds
}

// readN reads exactly n bytes from r. It grows its buffer as data arrives, so
// a header claiming more data than the stream holds costs at most about twice
// the bytes actually present. On error it returns the bytes read so far.
func readN(r io.Reader, n int) ([]byte, error) {
	buf := make([]byte, min(n, 1<<20))
	got := 0
	for {
		m, err := io.ReadFull(r, buf[got:])
		got += m
		if err != nil {
			return buf[:got], err
		}
		if got == n {
			return buf, nil
		}
		buf = append(buf, make([]byte, min(n, 2*len(buf))-len(buf))...)
	}
}

// readErr turns an error from reading the IDX stream into a *FormatError when
// it means the stream is truncated or its gzip encoding is corrupt, and wraps
// it with path and offset otherwise. truncMsg describes a truncation.
func readErr(path string, off int64, truncMsg string, err error) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &FormatError{Path: path, Offset: off, Msg: truncMsg}
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return &FormatError{Path: path, Offset: off, Msg: "corrupt gzip stream", Err: err}
	}
	if off >= 0 {
		return fmt.Errorf("%soffset %d: %w", idxPrefix(path), off, err)
	}
	return fmt.Errorf("%s%w", idxPrefix(path), err)
}

// LabeledImages holds N greyscale images of H×W pixels with one label each.
type LabeledImages struct {
	N, H, W int
	Pixels  []uint8 // N*H*W pixels, [N, H, W] row-major
	Labels  []uint8 // N labels
}

// LoadIDXPair loads an images file of shape [N, H, W] and a labels file of
// shape [N] with OpenIDX (each may be gzipped). A file of the wrong rank, or
// counts that disagree, give a *FormatError; a count mismatch names both
// files.
func LoadIDXPair(imagesPath, labelsPath string) (*LabeledImages, error) {
	im, err := OpenIDX(imagesPath)
	if err != nil {
		return nil, err
	}
	if len(im.Dims) != 3 {
		return nil, &FormatError{Path: imagesPath, Offset: -1,
			Msg: fmt.Sprintf("images: want 3 dimensions [N, H, W], got %d %v", len(im.Dims), im.Dims)}
	}
	lb, err := OpenIDX(labelsPath)
	if err != nil {
		return nil, err
	}
	if len(lb.Dims) != 1 {
		return nil, &FormatError{Path: labelsPath, Offset: -1,
			Msg: fmt.Sprintf("labels: want 1 dimension [N], got %d %v", len(lb.Dims), lb.Dims)}
	}
	if lb.Dims[0] != im.Dims[0] {
		return nil, &FormatError{Path: labelsPath, Offset: -1,
			Msg: fmt.Sprintf("%d labels, but images file %q holds %d images", lb.Dims[0], imagesPath, im.Dims[0])}
	}
	return &LabeledImages{N: im.Dims[0], H: im.Dims[1], W: im.Dims[2], Pixels: im.Data, Labels: lb.Data}, nil
}

// IDXFiles names an images file and its labels file.
type IDXFiles struct {
	Images, Labels string
}

// FindIDX locates the four standard MNIST-family files in dir:
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte
// and t10k-labels-idx1-ubyte, each optionally ending in .gz. When both forms
// exist the .gz one is chosen, since gunzip removes it only after success.
// The returned paths are dir joined with the file names. A missing file gives
// an error, matching fs.ErrNotExist, that lists the expected names and what
// dir holds.
func FindIDX(dir string) (train, test IDXFiles, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return train, test, fmt.Errorf("data: idx folder %q: %w", dir, err)
	}
	var have []string
	for _, e := range entries {
		if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
			have = append(have, e.Name())
		}
	}
	want := []struct {
		name string
		dst  *string
	}{
		{"train-images-idx3-ubyte", &train.Images},
		{"train-labels-idx1-ubyte", &train.Labels},
		{"t10k-images-idx3-ubyte", &test.Images},
		{"t10k-labels-idx1-ubyte", &test.Labels},
	}
	var missing, names []string
	for _, w := range want {
		names = append(names, w.name+"[.gz]")
		switch {
		case slices.Contains(have, w.name+".gz"):
			*w.dst = filepath.Join(dir, w.name+".gz")
		case slices.Contains(have, w.name):
			*w.dst = filepath.Join(dir, w.name)
		default:
			missing = append(missing, w.name+"[.gz]")
		}
	}
	if len(missing) > 0 {
		return IDXFiles{}, IDXFiles{}, fmt.Errorf("data: idx folder %q: missing %s (want %s; folder has %s): %w",
			dir, strings.Join(missing, ", "), strings.Join(names, ", "), listNames(have, 20), fs.ErrNotExist)
	}
	return train, test, nil
}

// listNames lists at most n names for a message.
func listNames(names []string, n int) string {
	switch {
	case len(names) == 0:
		return "no files"
	case len(names) <= n:
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}
