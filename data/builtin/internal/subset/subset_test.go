package subset

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data"
)

// writeIDX writes an IDX file of unsigned bytes with the given dimensions,
// gzipped when the name ends in .gz.
func writeIDX(t *testing.T, path string, dims []int, vals []byte) {
	t.Helper()
	var b bytes.Buffer
	b.Write([]byte{0, 0, 8, byte(len(dims))})
	for _, d := range dims {
		b.Write(binary.BigEndian.AppendUint32(nil, uint32(d)))
	}
	b.Write(vals)
	out := b.Bytes()
	if strings.HasSuffix(path, ".gz") {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(out)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		out = z.Bytes()
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeSource writes the four IDX files of side×side images with the given
// labels into a new folder; image i of each file has every pixel equal to
// i+1 (mod 256).
func writeSource(t *testing.T, side int, train, test []byte) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []struct {
		prefix string
		labels []byte
	}{{"train", train}, {"t10k", test}} {
		pix := make([]byte, len(f.labels)*side*side)
		for i := range pix {
			pix[i] = byte(i/(side*side) + 1)
		}
		writeIDX(t, filepath.Join(dir, f.prefix+"-images-idx3-ubyte.gz"), []int{len(f.labels), side, side}, pix)
		writeIDX(t, filepath.Join(dir, f.prefix+"-labels-idx1-ubyte.gz"), []int{len(f.labels)}, f.labels)
	}
	return dir
}

var tiny = Spec{Name: "tiny", Title: "Tiny", URL: "https://example.org/tiny", Classes: []string{"a", "b", "c"}, Train: 2, Test: 1}

// TestBuildSelection checks the selection rule on a small source: the
// first k images of each class, in file order, with their pixels, labels
// and origins.
func TestBuildSelection(t *testing.T) {
	train := []byte{0, 1, 0, 2, 1, 0, 2, 2, 1}
	test := []byte{2, 2, 0, 1, 0}
	src := writeSource(t, 3, train, test)
	out := filepath.Join(t.TempDir(), "tiny")
	id, err := Build(tiny, src, out)
	if err != nil {
		t.Fatal(err)
	}
	d, err := data.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.ID() != id {
		t.Errorf("Build returned ID %s, the dataset has %s", id, d.ID())
	}
	m := d.Manifest()
	if m.Size != 3 || m.Channels != 1 || !slices.Equal(m.Classes, tiny.Classes) {
		t.Errorf("size %d, channels %d, classes %q", m.Size, m.Channels, m.Classes)
	}
	wantInputs := []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
	if m.Source.Format != "idx" || !slices.Equal(m.Source.Inputs, wantInputs) {
		t.Errorf("source %q %q, want idx %q", m.Source.Format, m.Source.Inputs, wantInputs)
	}
	for _, w := range []string{"first 2 images of each class", "first 1 images of each class", "https://example.org/tiny", "FILE#INDEX"} {
		if !strings.Contains(m.Source.Notes, w) {
			t.Errorf("notes lack %q: %s", w, m.Source.Notes)
		}
	}
	if strings.Contains(m.Source.Notes, src) {
		t.Errorf("notes name the source folder %q, which would make the ID depend on it", src)
	}
	for _, tc := range []struct {
		split, file string
		labels      []byte
		want        []int // indices in the source file
	}{
		{data.Train, "train-images-idx3-ubyte.gz", train, []int{0, 1, 2, 3, 4, 6}},
		{data.Test, "t10k-images-idx3-ubyte.gz", test, []int{0, 2, 3}},
	} {
		recs, err := d.Load(tc.split)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != len(tc.want) {
			t.Fatalf("%s: %d records, want %d", tc.split, len(recs), len(tc.want))
		}
		for k, i := range tc.want {
			r := recs[k]
			if want := tc.file + "#" + strconv.Itoa(i); r.Origin != want {
				t.Errorf("%s record %d: origin %q, want %q", tc.split, k, r.Origin, want)
			}
			if r.Label != int(tc.labels[i]) {
				t.Errorf("%s record %d: label %d, want %d", tc.split, k, r.Label, tc.labels[i])
			}
			if want := bytes.Repeat([]byte{byte(i + 1)}, 9); !bytes.Equal(r.Pixels, want) {
				t.Errorf("%s record %d: pixels %v, want %v", tc.split, k, r.Pixels, want)
			}
		}
	}

	// The same files in another folder give the same ID: the folder is not
	// recorded.
	src2 := writeSource(t, 3, train, test)
	id2, err := Build(tiny, src2, filepath.Join(t.TempDir(), "tiny"))
	if err != nil {
		t.Fatal(err)
	}
	if id2 != id {
		t.Errorf("the same source in another folder: ID %s, first %s", id2, id)
	}
}

// TestBuildErrors checks that bad sources are errors naming the file and
// leave nothing at the output.
func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spec        Spec
		src         func(t *testing.T) string
		want        []string
		wantNoWrite bool
	}{
		{"too few of a class", tiny, func(t *testing.T) string {
			return writeSource(t, 3, []byte{0, 1, 0, 2, 1, 0}, []byte{0, 1, 2})
		}, []string{"train-labels-idx1-ubyte.gz", `class 2 ("c") has 1 images, want at least 2`}, true},
		{"label out of range", tiny, func(t *testing.T) string {
			return writeSource(t, 3, []byte{0, 1, 0, 2, 1, 2}, []byte{0, 1, 3})
		}, []string{"t10k-labels-idx1-ubyte.gz", "label 3 of image 2: want 0 to 2"}, true},
		{"not square", tiny, func(t *testing.T) string {
			dir := writeSource(t, 3, []byte{0, 1, 0, 2, 1, 2}, []byte{0, 1, 2})
			writeIDX(t, filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), []int{3, 3, 2}, make([]byte, 18))
			return dir
		}, []string{"t10k-images-idx3-ubyte.gz", "3×2"}, true},
		{"missing files", tiny, func(t *testing.T) string { return t.TempDir() }, []string{"tiny", "train-images-idx3-ubyte"}, true},
		{"bad spec", Spec{Name: "../x", Classes: nil}, func(t *testing.T) string { return t.TempDir() },
			[]string{`name "../x"`, "0 classes", "at least 1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := Build(tc.spec, tc.src(t), out)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if _, serr := os.Stat(out); !os.IsNotExist(serr) {
				t.Errorf("Build left %s", out)
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) > 0 {
				t.Errorf("Build left %v", entries)
			}
		})
	}
}

// TestWrite checks that Write replaces an existing dataset with
// byte-identical files when the source is the same, and that a failed
// Write leaves the old dataset.
func TestWrite(t *testing.T) {
	src := writeSource(t, 2, []byte{0, 1, 2, 0, 1, 2}, []byte{2, 1, 0})
	dir := t.TempDir()
	id1, err := Write(tiny, src, dir)
	if err != nil {
		t.Fatal(err)
	}
	files := func() map[string][]byte {
		m := map[string][]byte{}
		entries, err := os.ReadDir(filepath.Join(dir, "tiny"))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, "tiny", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			m[e.Name()] = b
		}
		return m
	}
	first := files()
	id2, err := Write(tiny, src, dir)
	if err != nil {
		t.Fatal(err)
	}
	if id2 != id1 {
		t.Errorf("second Write: ID %s, first %s", id2, id1)
	}
	second := files()
	if len(first) != 3 || len(second) != len(first) {
		t.Errorf("files %d then %d, want manifest and two shards", len(first), len(second))
	}
	for name, b := range first {
		if !bytes.Equal(second[name], b) {
			t.Errorf("%s differs between two Writes of the same source", name)
		}
	}
	if _, err := Write(tiny, t.TempDir(), dir); err == nil {
		t.Fatal("Write from an empty folder: no error")
	}
	after := files()
	for name, b := range first {
		if !bytes.Equal(after[name], b) {
			t.Errorf("a failed Write changed %s", name)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Write left %v, want only tiny", entries)
	}
}
