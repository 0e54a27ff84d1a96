// Package safetensors reads and writes the safetensors format
// (https://github.com/huggingface/safetensors), the weight format that
// PyTorch, JAX and most model hubs load: an 8-byte little-endian header
// length, a JSON header naming each tensor's dtype, shape and byte range,
// then the tensors' raw little-endian data. Read and Decode check
// everything the reference implementation checks and report a bad file as
// an *Error.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"unicode/utf8"
)

// MaxHeader is the largest JSON header Read and Decode accept, in bytes:
// the limit of the reference implementation.
const MaxHeader = 100_000_000

// dtypeSizes gives the size in bytes of one value of each dtype of
// the safetensors format.
var dtypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// entry is a tensor's entry in a safetensors header.
type entry struct {
	DType   string    `json:"dtype"`
	Shape   []int     `json:"shape"`
	Offsets [2]uint64 `json:"data_offsets"`
}

// Write writes ts and meta to w in the safetensors format: the header's
// length (uint64, little-endian), the JSON header padded with spaces to a
// multiple of 8 bytes, then the tensors' data in sorted key order. It
// returns an error for the reserved key "__metadata__", an unknown dtype
// or data whose length does not match the shape.
func Write(w io.Writer, ts map[string]Tensor, meta map[string]string) error {
	names := slices.Sorted(maps.Keys(ts))
	header := make(map[string]any, len(ts)+1)
	if len(meta) > 0 {
		header["__metadata__"] = meta
	}
	var off uint64
	for _, name := range names {
		t := ts[name]
		size, ok := dtypeSizes[t.DType]
		switch {
		case !ok:
			return fmt.Errorf("safetensors: tensor %q: unknown dtype %q", name, t.DType)
		case name == "__metadata__":
			return fmt.Errorf("safetensors: reserved tensor name %q", name)
		}
		n := uint64(size)
		for _, d := range t.Shape {
			n *= uint64(d)
		}
		if n != uint64(len(t.Data)) {
			return fmt.Errorf("safetensors: tensor %q: %d bytes of data for %s %v", name, len(t.Data), t.DType, t.Shape)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		header[name] = entry{DType: t.DType, Shape: shape, Offsets: [2]uint64{off, off + n}}
		off += n
	}
	var hb bytes.Buffer
	enc := json.NewEncoder(&hb)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(header); err != nil {
		return fmt.Errorf("safetensors: header: %w", err)
	}
	h := bytes.TrimSuffix(hb.Bytes(), []byte("\n"))
	if pad := (8 - len(h)%8) % 8; pad > 0 {
		h = append(h, bytes.Repeat([]byte(" "), pad)...)
	}
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(h)))
	if _, err := w.Write(n[:]); err != nil {
		return err
	}
	if _, err := w.Write(h); err != nil {
		return err
	}
	for _, name := range names {
		if _, err := w.Write(ts[name].Data); err != nil {
			return err
		}
	}
	return nil
}

// F32 returns an F32 tensor of the values v with the given shape (none
// for a scalar).
func F32(v []float32, shape ...int) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{DType: "F32", Shape: shape, Data: b}
}

// I64 returns an I64 tensor of the values v with the given shape (none
// for a scalar).
func I64(v []int64, shape ...int) Tensor {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	return Tensor{DType: "I64", Shape: shape, Data: b}
}

// Tensor is one tensor of a safetensors file.
type Tensor struct {
	DType string // the safetensors dtype, such as "F32" or "I64"
	Shape []int  // outermost first; [] for a scalar
	Data  []byte // the values, row-major, little-endian: Numel × the dtype's size bytes
}

// Numel returns the number of values: the product of Shape (1 for a
// scalar).
func (t Tensor) Numel() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Float32s returns the values of an F32 tensor; it returns an error for
// another dtype.
func (t Tensor) Float32s() ([]float32, error) {
	if t.DType != "F32" {
		return nil, fmt.Errorf("safetensors: dtype %s, not F32", t.DType)
	}
	v := make([]float32, len(t.Data)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return v, nil
}

// Int64s returns the values of an I64 tensor; it returns an error for
// another dtype.
func (t Tensor) Int64s() ([]int64, error) {
	if t.DType != "I64" {
		return nil, fmt.Errorf("safetensors: dtype %s, not I64", t.DType)
	}
	v := make([]int64, len(t.Data)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
	}
	return v, nil
}

// Error reports bytes that are not a valid safetensors file.
// Test for it with errors.As.
type Error struct {
	Path string // the file, or "" for Decode
	Msg  string // what is wrong
}

func (e *Error) Error() string {
	if e.Path == "" {
		return "safetensors: " + e.Msg
	}
	return fmt.Sprintf("safetensors %q: %s", e.Path, e.Msg)
}

// Read reads the safetensors file at path and returns its
// tensors by name and its __metadata__ (nil if it has none). It checks
// the header's length (at most MaxHeader) against the file's
// size before reading the rest, then checks the file as Decode
// does. Errors about the file's contents are *Error.
func Read(path string) (map[string]Tensor, map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("safetensors: %w", err)
	}
	size := fi.Size()
	var n [8]byte
	if _, err := io.ReadFull(f, n[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, &Error{Path: path, Msg: fmt.Sprintf("%d bytes: shorter than the 8-byte header length", size)}
		}
		return nil, nil, fmt.Errorf("safetensors %q: %w", path, err)
	}
	hlen := binary.LittleEndian.Uint64(n[:])
	if err := checkHeaderLen(hlen, uint64(size)); err != nil {
		return nil, nil, &Error{Path: path, Msg: err.Error()}
	}
	b := make([]byte, size)
	copy(b, n[:])
	if _, err := io.ReadFull(f, b[8:]); err != nil {
		return nil, nil, fmt.Errorf("safetensors %q: %w", path, err)
	}
	ts, meta, err := Decode(b)
	var se *Error
	if errors.As(err, &se) {
		se.Path = path
	}
	return ts, meta, err
}

// checkHeaderLen checks a header length against the file size.
func checkHeaderLen(hlen, size uint64) error {
	switch {
	case hlen > MaxHeader:
		return fmt.Errorf("header length %d exceeds the limit of %d bytes", hlen, MaxHeader)
	case hlen < 2:
		return fmt.Errorf("header length %d: too short for a JSON object", hlen)
	case 8+hlen > size:
		return fmt.Errorf("header length %d, but the file has %d bytes after the length: truncated", hlen, size-8)
	}
	return nil
}

// Decode parses b, a whole safetensors file, and returns its
// tensors by name and its __metadata__ (nil if it has none). The tensors'
// Data share b's memory.
//
// It checks what the reference implementation checks, and returns a
// *Error on the first problem: the header's length (at most
// MaxHeader, within b); a header that is one JSON object,
// valid UTF-8, followed by nothing but whitespace, with no duplicate keys
// or unknown fields; __metadata__ a map of strings to strings; for each
// tensor a known dtype, non-negative dimensions and data_offsets [begin,
// end] within the data whose length matches its shape; and the tensors,
// taken in offset order, covering the data exactly, with no overlap and no
// gap.
func Decode(b []byte) (map[string]Tensor, map[string]string, error) {
	bad := func(format string, args ...any) (map[string]Tensor, map[string]string, error) {
		return nil, nil, &Error{Msg: fmt.Sprintf(format, args...)}
	}
	if len(b) < 8 {
		return bad("%d bytes: shorter than the 8-byte header length", len(b))
	}
	hlen := binary.LittleEndian.Uint64(b)
	if err := checkHeaderLen(hlen, uint64(len(b))); err != nil {
		return bad("%v", err)
	}
	header, data := b[8:8+hlen], b[8+hlen:]
	if !utf8.Valid(header) {
		return bad("header is not valid UTF-8")
	}
	if header[0] != '{' {
		return bad("header does not start with '{'")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	dec.DisallowUnknownFields()
	if _, err := dec.Token(); err != nil {
		return bad("header: %v", err)
	}
	type entry struct {
		name    string
		dtype   string
		shape   []int
		offsets [2]uint64
	}
	var entries []entry
	var meta map[string]string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad("header: %v", err)
		}
		name := tok.(string) // object keys are strings
		if seen[name] {
			return bad("header: duplicate key %q", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return bad("header: __metadata__: %v", err)
			}
			if err := json.Unmarshal(raw, &meta); err != nil || meta == nil {
				return bad("header: __metadata__ is not an object of strings to strings")
			}
			if err := checkDuplicateKeys(raw); err != nil {
				return bad("header: __metadata__: %v", err)
			}
			continue
		}
		var e struct {
			DType   *string   `json:"dtype"`
			Shape   *[]int    `json:"shape"`
			Offsets *[]uint64 `json:"data_offsets"`
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return bad("header: tensor %q: %v", name, err)
		}
		if err := checkDuplicateKeys(raw); err != nil {
			return bad("header: tensor %q: %v", name, err)
		}
		inner := json.NewDecoder(bytes.NewReader(raw))
		inner.DisallowUnknownFields()
		if err := inner.Decode(&e); err != nil {
			return bad("header: tensor %q: %v", name, err)
		}
		if e.DType == nil || e.Shape == nil || e.Offsets == nil {
			return bad("header: tensor %q: want dtype, shape and data_offsets", name)
		}
		if len(*e.Offsets) != 2 {
			return bad("header: tensor %q: data_offsets %v: want [begin, end]", name, *e.Offsets)
		}
		entries = append(entries, entry{name: name, dtype: *e.DType, shape: *e.Shape, offsets: [2]uint64((*e.Offsets)[:2])})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return bad("header: %v", err)
	}
	if rest := header[dec.InputOffset():]; len(bytes.TrimLeft(rest, " \t\r\n")) > 0 {
		return bad("header: data after the JSON object")
	}

	ts := make(map[string]Tensor, len(entries))
	for _, e := range entries {
		size, ok := dtypeSizes[e.dtype]
		if !ok {
			return bad("tensor %q: unknown dtype %q", e.name, e.dtype)
		}
		n := uint64(size)
		for _, d := range e.shape {
			if d < 0 {
				return bad("tensor %q: negative dimension in shape %v", e.name, e.shape)
			}
			if d > 0 && n > uint64(len(data))/uint64(d) {
				return bad("tensor %q: shape %v needs more than the %d bytes of data", e.name, e.shape, len(data))
			}
			n *= uint64(d)
		}
		begin, end := e.offsets[0], e.offsets[1]
		switch {
		case begin > end || end > uint64(len(data)):
			return bad("tensor %q: data_offsets [%d, %d] outside the %d bytes of data", e.name, begin, end, len(data))
		case end-begin != n:
			return bad("tensor %q: data_offsets [%d, %d] hold %d bytes: %s %v needs %d", e.name, begin, end, end-begin, e.dtype, e.shape, n)
		}
		shape := e.shape
		if shape == nil {
			shape = []int{}
		}
		ts[e.name] = Tensor{DType: e.dtype, Shape: shape, Data: data[begin:end:end]}
	}
	slices.SortFunc(entries, func(a, b entry) int {
		return cmp.Or(cmp.Compare(a.offsets[0], b.offsets[0]), cmp.Compare(a.offsets[1], b.offsets[1]))
	})
	var at uint64
	for _, e := range entries {
		if e.offsets[0] != at {
			what := "overlaps the one before"
			if e.offsets[0] > at {
				what = "leaves a gap before it"
			}
			return bad("tensor %q: data_offsets [%d, %d] %s (which ends at %d)", e.name, e.offsets[0], e.offsets[1], what, at)
		}
		at = e.offsets[1]
	}
	if at != uint64(len(data)) {
		return bad("the tensors cover %d of the %d bytes of data", at, len(data))
	}
	return ts, meta, nil
}

// checkDuplicateKeys returns an error if the JSON object raw repeats a key
// at its top level.
func checkDuplicateKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k := tok.(string)
		if seen[k] {
			return fmt.Errorf("duplicate key %q", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}
