package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stFile builds a safetensors file from a header given as JSON and data.
func stFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestSafetensorsRoundTrip(t *testing.T) {
	ts := map[string]Tensor{
		"b.weight": F32([]float32{1, -2, float32(math.Inf(1)), 0.5, 3, 4}, 2, 3),
		"a.count":  I64([]int64{1<<40 + 3}),
		"c.empty":  {DType: "F32", Shape: []int{0, 4}, Data: []byte{}},
		"d.bytes":  {DType: "U8", Shape: []int{3}, Data: []byte{7, 8, 9}},
		"e.half":   {DType: "F16", Shape: []int{1}, Data: []byte{0x00, 0x3c}},
	}
	meta := map[string]string{"k": "v <&>", "widths": "[1,2]"}
	var buf bytes.Buffer
	if err := Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	if n := binary.LittleEndian.Uint64(buf.Bytes()); (8+n)%8 != 0 || !bytes.Contains(buf.Bytes()[:8+n], []byte(`"v <&>"`)) {
		t.Errorf("header of %d bytes: %q", n, buf.Bytes()[8:8+n])
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, gotMeta, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(gotMeta, meta) {
		t.Errorf("metadata %v, want %v", gotMeta, meta)
	}
	if len(got) != len(ts) {
		t.Fatalf("%d tensors, want %d", len(got), len(ts))
	}
	for name, w := range ts {
		g := got[name]
		shape := w.Shape
		if shape == nil {
			shape = []int{}
		}
		if g.DType != w.DType || !slices.Equal(g.Shape, shape) || !bytes.Equal(g.Data, w.Data) {
			t.Errorf("tensor %q: %s %v %v, want %s %v %v", name, g.DType, g.Shape, g.Data, w.DType, shape, w.Data)
		}
	}
	if v, err := got["b.weight"].Float32s(); err != nil || !bitsEqual(v, []float32{1, -2, float32(math.Inf(1)), 0.5, 3, 4}) {
		t.Errorf("Float32s %v, %v", v, err)
	}
	if v, err := got["a.count"].Int64s(); err != nil || !slices.Equal(v, []int64{1<<40 + 3}) || got["a.count"].Numel() != 1 {
		t.Errorf("Int64s %v, %v", v, err)
	}
	if _, err := got["a.count"].Float32s(); err == nil {
		t.Error("Float32s of an I64 tensor")
	}
	if _, err := got["b.weight"].Int64s(); err == nil {
		t.Error("Int64s of an F32 tensor")
	}

	// A file with no tensors and no metadata.
	buf.Reset()
	if err := Write(&buf, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, meta, err := Decode(buf.Bytes()); err != nil || len(got) != 0 || meta != nil {
		t.Errorf("empty file: %v %v %v", got, meta, err)
	}

	for _, bad := range []map[string]Tensor{
		{"x": {DType: "F31", Shape: []int{1}, Data: make([]byte, 4)}},
		{"x": {DType: "F32", Shape: []int{2}, Data: make([]byte, 4)}},
		{"__metadata__": F32([]float32{1}, 1)},
	} {
		if err := Write(io.Discard, bad, nil); err == nil {
			t.Errorf("Write accepted %v", bad)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	f8 := make([]byte, 8)
	for _, c := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "shorter than the 8-byte"},
		{"short", []byte{1, 0, 0}, "shorter than the 8-byte"},
		{"huge header", binary.LittleEndian.AppendUint64(nil, MaxHeader+1), "exceeds the limit"},
		{"truncated header", append(binary.LittleEndian.AppendUint64(nil, 100), "{}"...), "truncated"},
		{"not an object", stFile("[]      ", nil), "does not start with '{'"},
		{"bad utf-8", stFile("{\"\xff\":1}", nil), "UTF-8"},
		{"bad json", stFile(`{"a":}  `, nil), "header"},
		{"trailing", stFile(`{} {}   `, nil), "after the JSON object"},
		{"duplicate", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, f8[:4]), "duplicate key"},
		{"duplicate field", stFile(`{"a":{"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]}}`, f8[:4]), "duplicate key"},
		{"unknown field", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}}`, f8[:4]), "unknown field"},
		{"missing field", stFile(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, f8[:4]), "want dtype, shape and data_offsets"},
		{"not a tensor", stFile(`{"a":3}`, nil), "not a JSON object"},
		{"metadata not strings", stFile(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"metadata null", stFile(`{"__metadata__":null}`, nil), "__metadata__"},
		{"unknown dtype", stFile(`{"a":{"dtype":"F33","shape":[],"data_offsets":[0,4]}}`, f8[:4]), "unknown dtype"},
		{"negative dim", stFile(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f8[:4]), "negative dimension"},
		{"huge shape", stFile(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, f8[:4]), "needs more than"},
		{"three offsets", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4,8]}}`, f8), "want [begin, end]"},
		{"negative offset", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[-4,0]}}`, f8[:4]), "header"},
		{"offsets reversed", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[4,0]}}`, f8[:4]), "outside"},
		{"offsets outside", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, f8[:4]), "outside"},
		{"wrong size", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, f8), "needs 8"},
		{"overlap", stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, f8), "overlaps"},
		{"gap", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, f8), "gap"},
		{"unused data", stFile(`{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}`, f8), "cover 4 of the 8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ts, meta, err := Decode(c.file)
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *Error", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not mention %q", err, c.want)
			}
			if ts != nil || meta != nil {
				t.Errorf("returned %v, %v with the error", ts, meta)
			}
			// Read agrees and names the file.
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			os.WriteFile(path, c.file, 0o644)
			if _, _, err := Read(path); !errors.As(err, &se) || se.Path != path || !strings.Contains(err.Error(), path) {
				t.Errorf("Read: %v, want a *Error naming %q", err, path)
			}
		})
	}
	if _, _, err := Read(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	var buf bytes.Buffer
	ts := map[string]Tensor{
		"body.0.weight":              F32([]float32{1, 2, 3, 4, 5, 6}, 2, 1, 3, 1),
		"body.1.num_batches_tracked": I64([]int64{0}),
		"z":                          {DType: "BF16", Shape: []int{0}},
	}
	if err := Write(&buf, ts, map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(good[:20])
	f.Add(stFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[4,8]}}`, make([]byte, 8)))
	f.Add(stFile(`{"a":{"dtype":"I64","shape":[1,1],"data_offsets":[0,8]},"__metadata__":{"x":"y"}}`, make([]byte, 8)))
	f.Add(stFile(`{}      `, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ts, meta, err := Decode(b)
		path := filepath.Join(t.TempDir(), "f.safetensors")
		if werr := os.WriteFile(path, b, 0o644); werr != nil {
			t.Fatal(werr)
		}
		rts, rmeta, rerr := Read(path)
		if (err == nil) != (rerr == nil) {
			t.Fatalf("Decode: %v; Read: %v", err, rerr)
		}
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %v (%T), want a *Error", err, err)
			}
			return
		}
		if len(rts) != len(ts) || !maps.Equal(rmeta, meta) {
			t.Fatalf("Read differs from Decode")
		}
		// What was accepted has consistent tensors and re-encodes to a
		// file that decodes to the same.
		for name, st := range ts {
			if size := dtypeSizes[st.DType]; len(st.Data) != st.Numel()*size {
				t.Fatalf("tensor %q: %d bytes for %s %v", name, len(st.Data), st.DType, st.Shape)
			}
		}
		var buf bytes.Buffer
		if err := Write(&buf, ts, meta); err != nil {
			t.Fatalf("re-encoding: %v", err)
		}
		ts2, meta2, err := Decode(buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v", err)
		}
		if len(ts2) != len(ts) || !maps.Equal(meta2, meta) {
			t.Fatalf("re-encoded: %d tensors, metadata %v; want %d, %v", len(ts2), meta2, len(ts), meta)
		}
		for name, st := range ts {
			st2 := ts2[name]
			if st2.DType != st.DType || !slices.Equal(st2.Shape, st.Shape) || !bytes.Equal(st2.Data, st.Data) {
				t.Fatalf("tensor %q changed in the round trip", name)
			}
		}
	})
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
