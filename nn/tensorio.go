package nn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"unicode/utf8"
)

// The tensor container written by WriteTensors and read by ReadTensors holds
// named float32 tensors. All integers are little-endian:
//
//	offset  size       field
//	0       8          magic "PWTENSOR"
//	8       4          uint32 format version (TensorsFormatVersion, 1)
//	12      4          uint32 count: the number of tensors
//	16      ...        count tensors, each:
//	                     uint16 name length L (1 to MaxTensorNameLen)
//	                     L bytes of name (UTF-8; unique in the file)
//	                     uint8 rank R (0 to MaxTensorRank)
//	                     R × uint32 dimensions, outermost first
//	                     product(dims) × float32 values (IEEE 754 bits, row-major)
//	end-4   4          uint32 CRC-32C (Castagnoli) of every byte before it
//
// Nothing follows the checksum. A rank-0 tensor holds one value; a tensor
// with a zero dimension holds none. The file holds at most MaxTensorElements
// values in all. Values are stored bit for bit, NaN payloads included, so a
// file that ReadTensors accepts re-encodes to the same bytes.
const (
	// TensorsFormatVersion is the container format version that
	// WriteTensors writes and the only one ReadTensors reads.
	TensorsFormatVersion = 1

	// MaxTensorNameLen is the longest tensor name, in bytes.
	MaxTensorNameLen = 1024

	// MaxTensorRank is the largest number of dimensions of a tensor.
	MaxTensorRank = 8

	// MaxTensorElements is the largest number of float32 values in one
	// file, summed over its tensors (8 GiB of data).
	MaxTensorElements = 1 << 31
)

const tensorsMagic = "PWTENSOR"

// maxElems is MaxTensorElements, or less where int is 32 bits wide.
const maxElems = min(MaxTensorElements, math.MaxInt)

// tensorsChunk is the size, in bytes, of the chunks in which values are
// encoded, checksummed and decoded. It is a multiple of 4.
const tensorsChunk = 64 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// NamedTensor is a tensor with its key, such as "encoder.block1.conv.weight".
type NamedTensor struct {
	Name string
	T    *Tensor
}

// TensorFormatError reports that the bytes given to ReadTensors are not a
// valid tensor container: a bad magic number, an unsupported format version,
// a malformed or duplicate name, a rank or size out of bounds, truncation, a
// checksum mismatch or trailing bytes. Test for it with errors.As.
type TensorFormatError struct {
	Offset int64  // byte offset of the offending field in the stream
	Msg    string // what is wrong
}

func (e *TensorFormatError) Error() string {
	return fmt.Sprintf("nn: tensors: offset %d: %s", e.Offset, e.Msg)
}

// WriteTensors encodes ts to w in the container format described above,
// through a buffer that it flushes before returning. It checks every tensor
// before writing anything and returns an error, writing nothing, if a name is
// empty, longer than MaxTensorNameLen bytes, not valid UTF-8 or repeated, if
// a tensor is nil, has a negative dimension, a rank over MaxTensorRank or a
// Data length that does not match its Shape, or if the tensors hold more than
// MaxTensorElements values in all. Errors from w are returned wrapped.
//
// WriteTensors only streams bytes: to replace a file safely, write to a
// temporary file in the same directory, sync it and rename it over the old
// one.
func WriteTensors(w io.Writer, ts []NamedTensor) error {
	if err := checkTensors(ts); err != nil {
		return err
	}
	tw := &tensorWriter{bw: bufio.NewWriterSize(w, tensorsChunk)}
	var head [16]byte
	copy(head[:], tensorsMagic)
	binary.LittleEndian.PutUint32(head[8:], TensorsFormatVersion)
	binary.LittleEndian.PutUint32(head[12:], uint32(len(ts)))
	tw.write(head[:])
	buf := make([]byte, 0, tensorsChunk)
	for _, nt := range ts {
		buf = binary.LittleEndian.AppendUint16(buf[:0], uint16(len(nt.Name)))
		buf = append(buf, nt.Name...)
		buf = append(buf, uint8(len(nt.T.Shape)))
		for _, d := range nt.T.Shape {
			buf = binary.LittleEndian.AppendUint32(buf, uint32(d))
		}
		tw.write(buf)
		data := nt.T.Data
		for len(data) > 0 && tw.err == nil {
			k := min(len(data), tensorsChunk/4)
			buf = buf[:4*k]
			for i, v := range data[:k] {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
			tw.write(buf)
			data = data[k:]
		}
		if tw.err != nil {
			break
		}
	}
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], tw.crc)
	tw.write(sum[:]) // the checksum covers only the bytes before it
	if tw.err == nil {
		tw.err = tw.bw.Flush()
	}
	if tw.err != nil {
		return fmt.Errorf("nn: WriteTensors: %w", tw.err)
	}
	return nil
}

// checkTensors returns an error describing the first tensor of ts that
// WriteTensors cannot encode, or nil.
func checkTensors(ts []NamedTensor) error {
	if uint64(len(ts)) > math.MaxUint32 {
		return fmt.Errorf("nn: WriteTensors: %d tensors: the format holds at most %d", len(ts), uint64(math.MaxUint32))
	}
	seen := make(map[string]int, len(ts))
	var total uint64
	for i, nt := range ts {
		fail := func(format string, args ...any) error {
			return fmt.Errorf("nn: WriteTensors: tensor %d %q: %s", i, nt.Name, fmt.Sprintf(format, args...))
		}
		if msg := checkName(nt.Name); msg != "" {
			return fail("%s", msg)
		}
		if j, ok := seen[nt.Name]; ok {
			return fail("duplicate name (also tensor %d)", j)
		}
		seen[nt.Name] = i
		if nt.T == nil {
			return fail("nil tensor")
		}
		shape := nt.T.Shape
		if len(shape) > MaxTensorRank {
			return fail("rank %d exceeds %d", len(shape), MaxTensorRank)
		}
		for _, d := range shape {
			if d < 0 || uint64(d) > maxElems {
				return fail("dimension %d out of range in shape %v", d, shape)
			}
		}
		// As in ReadTensors, a zero dimension makes an empty tensor
		// whatever the others are.
		n := uint64(0)
		if !slices.Contains(shape, 0) {
			n = 1
			for _, d := range shape {
				n *= uint64(d) // no overflow: n <= maxElems before each step
				if n > maxElems {
					return fail("shape %v has over %d elements", shape, uint64(maxElems))
				}
			}
		}
		if uint64(len(nt.T.Data)) != n {
			return fail("%d values for shape %v", len(nt.T.Data), shape)
		}
		total += n
		if total > maxElems {
			return fail("the tensors hold over %d values in all", uint64(maxElems))
		}
	}
	return nil
}

// checkName returns what is wrong with name as a tensor name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "empty name"
	case len(name) > MaxTensorNameLen:
		return fmt.Sprintf("name of %d bytes exceeds %d", len(name), MaxTensorNameLen)
	case !utf8.ValidString(name):
		return "name is not valid UTF-8"
	}
	return ""
}

// tensorWriter writes through a buffer, checksumming what it writes and
// keeping the first error.
type tensorWriter struct {
	bw  *bufio.Writer
	crc uint32
	err error
}

func (tw *tensorWriter) write(p []byte) {
	if tw.err != nil {
		return
	}
	tw.crc = crc32.Update(tw.crc, castagnoli, p)
	_, tw.err = tw.bw.Write(p)
}

// ReadTensors decodes a tensor container written by WriteTensors from r and
// reads r to its end. The tensors come back in file order, each with its own
// storage.
//
// ReadTensors is safe on untrusted input: every size is checked against the
// limits (MaxTensorNameLen, MaxTensorRank, MaxTensorElements) before use,
// and values are read in bounded chunks into storage that grows only as
// bytes arrive, so a header that claims gigabytes of data in a short stream
// fails as truncated having allocated about as much as the stream held.
//
// Malformed input — a bad magic number, a format version other than
// TensorsFormatVersion, a bad or duplicate name, a rank or size over the
// limits, truncation, a checksum mismatch, bytes after the checksum — gives a
// *TensorFormatError. Other errors from r are returned wrapped, naming the
// offset.
func ReadTensors(r io.Reader) ([]NamedTensor, error) {
	tr := &tensorReader{r: bufio.NewReaderSize(r, tensorsChunk)}
	var head [16]byte
	if err := tr.readFull(head[:8], "magic"); err != nil {
		return nil, err
	}
	if string(head[:8]) != tensorsMagic {
		return nil, tr.fail(0, "bad magic %q: want %q", head[:8], tensorsMagic)
	}
	if err := tr.readFull(head[8:12], "format version"); err != nil {
		return nil, err
	}
	if v := binary.LittleEndian.Uint32(head[8:]); v != TensorsFormatVersion {
		return nil, tr.fail(8, "format version %d not supported (this build reads version %d)", v, TensorsFormatVersion)
	}
	if err := tr.readFull(head[12:16], "tensor count"); err != nil {
		return nil, err
	}
	count := binary.LittleEndian.Uint32(head[12:])
	ts := make([]NamedTensor, 0, min(count, 64))
	seen := make(map[string]uint32, min(count, 64))
	var total uint64
	var scratch [4 * MaxTensorRank]byte
	for i := uint32(0); i < count; i++ {
		start := tr.off
		if err := tr.readFull(scratch[:2], fmt.Sprintf("tensor %d's name length", i)); err != nil {
			return nil, err
		}
		nameLen := int(binary.LittleEndian.Uint16(scratch[:]))
		if nameLen == 0 || nameLen > MaxTensorNameLen {
			return nil, tr.fail(start, "tensor %d: name length %d: want 1 to %d", i, nameLen, MaxTensorNameLen)
		}
		nameBuf := make([]byte, nameLen)
		if err := tr.readFull(nameBuf, fmt.Sprintf("tensor %d's name", i)); err != nil {
			return nil, err
		}
		name := string(nameBuf)
		if !utf8.ValidString(name) {
			return nil, tr.fail(start+2, "tensor %d: name %q is not valid UTF-8", i, name)
		}
		if j, ok := seen[name]; ok {
			return nil, tr.fail(start+2, "tensor %d: duplicate name %q (also tensor %d)", i, name, j)
		}
		seen[name] = i
		what := fmt.Sprintf("tensor %d %q", i, name)

		rankOff := tr.off
		if err := tr.readFull(scratch[:1], what+"'s rank"); err != nil {
			return nil, err
		}
		rank := int(scratch[0])
		if rank > MaxTensorRank {
			return nil, tr.fail(rankOff, "%s: rank %d exceeds %d", what, rank, MaxTensorRank)
		}
		dimsOff := tr.off
		if err := tr.readFull(scratch[:4*rank], what+"'s dimensions"); err != nil {
			return nil, err
		}
		shape := make([]int, rank)
		dims := make([]uint64, rank)
		hasZero := false
		for k := range dims {
			dims[k] = uint64(binary.LittleEndian.Uint32(scratch[4*k:]))
			hasZero = hasZero || dims[k] == 0
		}
		n := uint64(1)
		for k, d := range dims {
			if d > maxElems {
				return nil, tr.fail(dimsOff+4*int64(k), "%s: dimension %d of shape %v exceeds %d", what, k, dims, uint64(maxElems))
			}
			shape[k] = int(d)
			if !hasZero {
				n *= d // no overflow: n <= MaxTensorElements before each step
				if n > maxElems {
					return nil, tr.fail(dimsOff, "%s: shape %v has over %d elements", what, dims, uint64(maxElems))
				}
			}
		}
		if hasZero {
			n = 0
		}
		if total+n > maxElems {
			return nil, tr.fail(dimsOff, "%s: shape %v brings the file over %d values in all", what, dims, uint64(maxElems))
		}
		total += n
		data, err := tr.readFloats(int(n), what)
		if err != nil {
			return nil, err
		}
		ts = append(ts, NamedTensor{Name: name, T: &Tensor{Shape: shape, Data: data}})
	}

	sumOff := tr.off
	want := tr.crc
	var sum [4]byte
	if err := tr.readFull(sum[:], "checksum"); err != nil {
		return nil, err
	}
	if got := binary.LittleEndian.Uint32(sum[:]); got != want {
		return nil, tr.fail(sumOff, "checksum mismatch: file says 0x%08x, contents give 0x%08x", got, want)
	}
	switch n, err := io.ReadFull(tr.r, sum[:1]); {
	case n > 0:
		return nil, tr.fail(tr.off, "trailing bytes after the checksum")
	case err != nil && err != io.EOF:
		return nil, fmt.Errorf("nn: tensors: offset %d: after the checksum: %w", tr.off, err)
	}
	return ts, nil
}

// tensorReader reads the container, tracking the offset and the checksum of
// what it has read.
type tensorReader struct {
	r   *bufio.Reader
	off int64
	crc uint32
	buf []byte // chunk buffer for values, allocated on first use
}

func (tr *tensorReader) fail(off int64, format string, args ...any) error {
	return &TensorFormatError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// readFull fills p, or returns an error naming what it was reading: a
// *TensorFormatError if the stream ends first.
func (tr *tensorReader) readFull(p []byte, what string) error {
	start := tr.off
	n, err := tr.readChunk(p)
	if err != nil {
		return tr.readErr(start, err, fmt.Sprintf("truncated: want %d bytes of %s, got %d", len(p), what, n))
	}
	return nil
}

// readChunk reads len(p) bytes into p, checksumming and counting them.
func (tr *tensorReader) readChunk(p []byte) (int, error) {
	n, err := io.ReadFull(tr.r, p)
	tr.crc = crc32.Update(tr.crc, castagnoli, p[:n])
	tr.off += int64(n)
	return n, err
}

// readErr turns err from a read that started at off into a
// *TensorFormatError with message truncMsg if the stream ended, and wraps it
// otherwise.
func (tr *tensorReader) readErr(off int64, err error, truncMsg string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &TensorFormatError{Offset: off, Msg: truncMsg}
	}
	return fmt.Errorf("nn: tensors: offset %d: %w", off, err)
}

// readFloats reads n little-endian float32 values. Its storage grows by at
// most doubling as data arrives, so it never holds much more than twice the
// bytes actually read.
func (tr *tensorReader) readFloats(n int, what string) ([]float32, error) {
	start := tr.off
	if tr.buf == nil && n > 0 {
		tr.buf = make([]byte, tensorsChunk)
	}
	data := make([]float32, 0, min(n, tensorsChunk/4))
	for len(data) < n {
		k := min(n-len(data), tensorsChunk/4)
		got, err := tr.readChunk(tr.buf[:4*k])
		if err != nil {
			total := int64(4*len(data)) + int64(got)
			return nil, tr.readErr(start, err, fmt.Sprintf("truncated: want %d bytes of %s's data, got %d", 4*int64(n), what, total))
		}
		if cap(data)-len(data) < k {
			grown := make([]float32, len(data), min(n, max(2*cap(data), len(data)+k)))
			copy(grown, data)
			data = grown
		}
		m := len(data)
		data = data[:m+k]
		for i := range k {
			data[m+i] = math.Float32frombits(binary.LittleEndian.Uint32(tr.buf[4*i:]))
		}
	}
	return data, nil
}

// StateOf returns the names and values of ps, in order. The tensors are
// shared with ps, not copied: encode them before the next training step.
func StateOf(ps []*Param) []NamedTensor {
	ts := make([]NamedTensor, len(ps))
	for i, p := range ps {
		ts[i] = NamedTensor{Name: p.Name, T: p.Value}
	}
	return ts
}

// LoadState copies the values of ts into the parameters of ps with the same
// names. Every parameter must have exactly one tensor of its shape in ts, and
// every tensor of ts must name a parameter; the same *Param may appear more
// than once in ps (tied weights).
//
// If anything does not fit, LoadState modifies no parameter and returns an
// errors.Join of one error per problem: each parameter missing from ts, each
// tensor of ts that names no parameter, each shape mismatch (such as
// "encoder.block1.conv.weight: shape [32 3 3 3] in file, [64 3 3 3] in
// model"), each duplicate or malformed tensor of ts, and distinct parameters
// sharing a name. Parameters are reported in the order of ps, then tensors in
// the order of ts.
func LoadState(ps []*Param, ts []NamedTensor) error {
	var errs []error
	byName := make(map[string]*Tensor, len(ts))
	for _, nt := range ts {
		switch _, dup := byName[nt.Name]; {
		case dup:
			errs = append(errs, fmt.Errorf("%s: appears more than once in file", nt.Name))
		case nt.T == nil:
			errs = append(errs, fmt.Errorf("%s: nil tensor in file", nt.Name))
		case !validShape(nt.T):
			errs = append(errs, fmt.Errorf("%s: %d values for shape %v in file", nt.Name, len(nt.T.Data), nt.T.Shape))
		}
		byName[nt.Name] = nt.T
	}
	params := make(map[string]*Param, len(ps))
	for _, p := range ps {
		if q, ok := params[p.Name]; ok {
			if q != p {
				errs = append(errs, fmt.Errorf("%s: two distinct parameters in model share this name", p.Name))
			}
			continue
		}
		params[p.Name] = p
		t, ok := byName[p.Name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s: in model but not in file", p.Name))
		case t != nil && !slices.Equal(t.Shape, p.Value.Shape):
			errs = append(errs, fmt.Errorf("%s: shape %v in file, %v in model", p.Name, t.Shape, p.Value.Shape))
		}
	}
	for _, nt := range ts {
		if _, ok := params[nt.Name]; !ok {
			errs = append(errs, fmt.Errorf("%s: in file but not in model", nt.Name))
			params[nt.Name] = nil // report each name once
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for name, p := range params {
		copy(p.Value.Data, byName[name].Data)
	}
	return nil
}

// validShape reports whether t's shape has no negative dimension and
// describes exactly len(t.Data) values.
func validShape(t *Tensor) bool {
	n := 1
	for _, d := range t.Shape {
		if d < 0 || (d > 0 && n > math.MaxInt/d) {
			return false
		}
		n *= d
	}
	return n == len(t.Data)
}
