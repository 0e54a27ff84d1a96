package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// idxBytes encodes an IDX stream with element type typ.
func idxBytes(typ byte, dims []uint32, data []byte) []byte {
	b := []byte{0, 0, typ, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, data...)
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// idxCase is one input to the IDX decoders: either it decodes to dims and
// data, or it fails with a *FormatError at offset whose Msg contains msg.
type idxCase struct {
	name   string
	in     []byte
	dims   []int
	data   []byte
	offset int64
	msg    string
}

var idxCases = []idxCase{
	{name: "3-D", in: idxBytes(8, []uint32{2, 3, 4}, seq(24)), dims: []int{2, 3, 4}, data: seq(24)},
	{name: "1-D", in: idxBytes(8, []uint32{5}, seq(5)), dims: []int{5}, data: seq(5)},
	{name: "4-D", in: idxBytes(8, []uint32{1, 2, 1, 3}, seq(6)), dims: []int{1, 2, 1, 3}, data: seq(6)},
	{name: "empty", in: nil, offset: 0, msg: "truncated: want 4 bytes of header, got 0"},
	{name: "short header", in: []byte{0, 0, 8}, offset: 0, msg: "truncated: want 4 bytes of header, got 3"},
	{name: "wrong magic", in: []byte{1, 0, 8, 1, 0, 0, 0, 1, 9}, offset: 0, msg: "bad magic 0x0100"},
	{name: "unsupported type", in: idxBytes(0x0d, []uint32{2}, make([]byte, 8)), offset: 2,
		msg: "unsupported element type 0x0d (float32): only 0x08 (unsigned byte) is supported"},
	{name: "unknown type", in: idxBytes(0x42, []uint32{1}, []byte{1}), offset: 2, msg: "element type 0x42 (unknown)"},
	{name: "no dims", in: []byte{0, 0, 8, 0}, offset: 3, msg: "0 dimensions: want 1 to 4"},
	{name: "five dims", in: idxBytes(8, []uint32{1, 1, 1, 1, 1}, []byte{1}), offset: 3, msg: "5 dimensions: want 1 to 4"},
	{name: "zero dim", in: idxBytes(8, []uint32{2, 0, 4}, nil), offset: 8, msg: "dimension 1 of 3 is zero"},
	{name: "huge dim", in: idxBytes(8, []uint32{0xffffffff}, nil), offset: 4, msg: "describe over 2147483648 bytes"},
	{name: "huge product", in: idxBytes(8, []uint32{65536, 32768, 2}, nil), offset: 12, msg: "[65536 32768 2] describe over"},
	{name: "huge dims no overflow", in: idxBytes(8, []uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, nil),
		offset: 4, msg: "describe over"},
	{name: "truncated dims", in: []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0}, offset: 4, msg: "truncated: want 12 bytes of dimensions, got 6"},
	{name: "truncated data", in: idxBytes(8, []uint32{2, 3, 4}, seq(10)), offset: 16, msg: "truncated: want 24 bytes of data, got 10"},
	{name: "header only", in: idxBytes(8, []uint32{60000, 28, 28}, nil), offset: 16, msg: "truncated: want 47040000 bytes of data, got 0"},
	{name: "trailing bytes", in: idxBytes(8, []uint32{2, 3, 4}, seq(25)), offset: 40, msg: "trailing bytes after 24 bytes of data"},
}

// checkIDX checks the result of decoding c and returns the *FormatError, if any.
func checkIDX(t *testing.T, c idxCase, got *IDX, err error) *FormatError {
	t.Helper()
	if c.msg == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		if !slices.Equal(got.Dims, c.dims) || !bytes.Equal(got.Data, c.data) {
			t.Fatalf("got dims %v data %v, want %v %v", got.Dims, got.Data, c.dims, c.data)
		}
		return nil
	}
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v (%T), want a *FormatError", err, err)
	}
	if got != nil {
		t.Errorf("got non-nil *IDX with error")
	}
	if fe.Offset != c.offset || !strings.Contains(fe.Msg, c.msg) {
		t.Errorf("got offset %d msg %q, want offset %d msg containing %q", fe.Offset, fe.Msg, c.offset, c.msg)
	}
	return fe
}

func TestReadIDX(t *testing.T) {
	for _, c := range idxCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadIDX(bytes.NewReader(c.in))
			if fe := checkIDX(t, c, got, err); fe != nil && fe.Path != "" {
				t.Errorf("Path = %q, want empty", fe.Path)
			}
		})
	}
	t.Run("gzip data", func(t *testing.T) {
		_, err := ReadIDX(bytes.NewReader(gzipBytes(t, idxBytes(8, []uint32{1}, []byte{1}))))
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(fe.Msg, "use OpenIDX") {
			t.Fatalf("got %v, want a *FormatError suggesting OpenIDX", err)
		}
	})
}

// TestOpenIDX runs every case through a file, plain and gzipped, with names
// that do not tell which.
func TestOpenIDX(t *testing.T) {
	dir := t.TempDir()
	for _, c := range idxCases {
		for _, z := range []bool{false, true} {
			name, in, file := c.name, c.in, "plain.gz"
			if z {
				name, in, file = c.name+"/gzip", gzipBytes(t, c.in), "gzipped.idx"
			}
			t.Run(name, func(t *testing.T) {
				path := writeFile(t, dir, file, in)
				got, err := OpenIDX(path)
				fe := checkIDX(t, c, got, err)
				if fe == nil {
					return
				}
				if fe.Path != path || !strings.Contains(err.Error(), `data: idx "`+path+`": `) {
					t.Errorf("error %q does not name %q", err, path)
				}
			})
		}
	}
}

func TestOpenIDXCorruptGzip(t *testing.T) {
	good := gzipBytes(t, idxBytes(8, []uint32{4, 8}, seq(32)))
	n := len(good)
	mod := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	tests := []struct {
		name string
		in   []byte
		msg  string
		err  error // wrapped cause, if any
	}{
		{"magic only", good[:2], "truncated gzip header", nil},
		{"bad header flags", mod(func(b []byte) []byte { b[2] = 7; return b }), "corrupt gzip stream", gzip.ErrHeader},
		{"cut in deflate data", good[:20], "truncated", nil},
		{"cut in trailer", good[:n-3], "truncated stream after the data", nil},
		{"bad checksum", mod(func(b []byte) []byte { b[n-8] ^= 0xff; return b }), "corrupt gzip stream", gzip.ErrChecksum},
		{"bad size", mod(func(b []byte) []byte { b[n-1] ^= 0xff; return b }), "corrupt gzip stream", gzip.ErrChecksum},
		{"garbage deflate", append(slices.Clone(good[:10]), bytes.Repeat([]byte{0xff}, 40)...), "corrupt gzip stream", nil},
		{"garbage member after", append(slices.Clone(good), 0x1f, 0x8b, 9, 9), "truncated stream after the data", nil},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, dir, "x.gz", tt.in)
			_, err := OpenIDX(path)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v (%T), want a *FormatError", err, err)
			}
			if fe.Path != path || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got %v, want path %q and msg containing %q", err, path, tt.msg)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Errorf("got %v, want it to wrap %v", err, tt.err)
			}
		})
	}
}

func TestOpenIDXMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.gz")
	_, err := OpenIDX(path)
	var fe *FormatError
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &fe) || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a not-exist error naming %q that is not a *FormatError", err, path)
	}
}

func TestFormatErrorString(t *testing.T) {
	tests := []struct {
		err  FormatError
		want string
	}{
		{FormatError{Path: "a/b.gz", Offset: 16, Msg: "truncated"}, `data: idx "a/b.gz": offset 16: truncated`},
		{FormatError{Path: "a/b.gz", Offset: -1, Msg: "bad"}, `data: idx "a/b.gz": bad`},
		{FormatError{Offset: 0, Msg: "bad"}, `data: idx: offset 0: bad`},
		{FormatError{Offset: -1, Msg: "corrupt gzip stream", Err: gzip.ErrChecksum}, `data: idx: corrupt gzip stream: gzip: invalid checksum`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestTestdata checks the seed files under testdata decode as documented.
func TestTestdata(t *testing.T) {
	im := &IDX{Dims: []int{2, 3, 4}, Data: make([]byte, 24)}
	for i := range im.Data {
		im.Data[i] = byte(i)
	}
	tests := []struct {
		file string
		want *IDX
		msg  string
	}{
		{"images-2x3x4.idx", im, ""},
		{"images-2x3x4.idx.gz", im, ""},
		{"labels-2.idx", &IDX{Dims: []int{2}, Data: []byte{3, 7}}, ""},
		{"truncated-2x3x4.idx", nil, "truncated: want 24 bytes of data, got 10"},
		{"float32-2.idx", nil, "unsupported element type 0x0d"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := OpenIDX(filepath.Join("testdata", tt.file))
			if tt.want != nil {
				if err != nil || !slices.Equal(got.Dims, tt.want.Dims) || !bytes.Equal(got.Data, tt.want.Data) {
					t.Fatalf("got %v, %v; want %v", got, err, tt.want)
				}
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("got %v, want a *FormatError containing %q", err, tt.msg)
			}
		})
	}
}

func TestLoadIDXPair(t *testing.T) {
	dir := t.TempDir()
	images := writeFile(t, dir, "images", gzipBytes(t, idxBytes(8, []uint32{3, 2, 2}, seq(12))))
	labels := writeFile(t, dir, "labels", idxBytes(8, []uint32{3}, []byte{0, 9, 4}))
	flat := writeFile(t, dir, "flat", idxBytes(8, []uint32{12}, seq(12)))
	square := writeFile(t, dir, "square", idxBytes(8, []uint32{3, 3}, seq(9)))
	two := writeFile(t, dir, "two", idxBytes(8, []uint32{2}, []byte{1, 2}))
	bad := writeFile(t, dir, "bad", []byte{0, 0, 9, 1})

	t.Run("ok", func(t *testing.T) {
		got, err := LoadIDXPair(images, labels)
		if err != nil {
			t.Fatal(err)
		}
		if got.N != 3 || got.H != 2 || got.W != 2 || !bytes.Equal(got.Pixels, seq(12)) || !bytes.Equal(got.Labels, []byte{0, 9, 4}) {
			t.Fatalf("got %+v", got)
		}
	})
	tests := []struct {
		name, images, labels string
		path                 string   // FormatError.Path
		msg                  []string // substrings of the error
	}{
		{"images 1-D", flat, labels, flat, []string{"want 3 dimensions [N, H, W], got 1 [12]"}},
		{"labels 2-D", images, square, square, []string{"want 1 dimension [N], got 2 [3 3]"}},
		{"count mismatch", images, two, two, []string{"2 labels", "holds 3 images", `"` + images + `"`, `"` + two + `"`}},
		{"bad images", bad, labels, bad, []string{"unsupported element type 0x09 (signed byte)"}},
		{"bad labels", images, bad, bad, []string{"unsupported element type"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadIDXPair(tt.images, tt.labels)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Path != tt.path {
				t.Fatalf("got %v, want a *FormatError for %q", err, tt.path)
			}
			for _, m := range tt.msg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not contain %q", err, m)
				}
			}
		})
	}
}

func TestFindIDX(t *testing.T) {
	std := []string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}
	tests := []struct {
		name    string
		files   []string
		want    []string // train images, train labels, test images, test labels
		missing []string
	}{
		{"plain", std, std, nil},
		{"gzipped", []string{"t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "README"},
			[]string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}, nil},
		{"both prefer gz", append(slices.Clone(std), "t10k-images-idx3-ubyte.gz"),
			[]string{"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte"}, nil},
		{"missing", []string{"train-images-idx3-ubyte", "train-labels.idx1-ubyte", "t10k-images-idx3-ubyte.gz"}, nil,
			[]string{"missing train-labels-idx1-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]", "train-labels.idx1-ubyte", "want train-images-idx3-ubyte[.gz]"}},
		{"empty", nil, nil, []string{"folder has no files"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				writeFile(t, dir, f, nil)
			}
			train, test, err := FindIDX(dir)
			if tt.missing != nil {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("got %v, want fs.ErrNotExist", err)
				}
				for _, m := range append(tt.missing, dir) {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not contain %q", err, m)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{train.Images, train.Labels, test.Images, test.Labels}
			for i := range got {
				if want := filepath.Join(dir, tt.want[i]); got[i] != want {
					t.Errorf("file %d: got %q, want %q", i, got[i], want)
				}
			}
		})
	}
	t.Run("no folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		if _, _, err := FindIDX(dir); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("got %v, want fs.ErrNotExist naming %q", err, dir)
		}
	})
}

// fashionMNIST is where Debian's dataset-fashion-mnist package installs the data.
const fashionMNIST = "/usr/share/datasets/fashion-mnist"

func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat(fashionMNIST); err != nil {
		t.Skipf("Fashion-MNIST not found (%v): apt-get install dataset-fashion-mnist", err)
	}
	if testing.Short() {
		t.Skip("loads 70,000 images; skipped with -short")
	}
	train, test, err := FindIDX(fashionMNIST)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		name  string
		files IDXFiles
		n     int
	}{{"train", train, 60000}, {"test", test, 10000}} {
		t.Run(s.name, func(t *testing.T) {
			d, err := LoadIDXPair(s.files.Images, s.files.Labels)
			if err != nil {
				t.Fatal(err)
			}
			if d.N != s.n || d.H != 28 || d.W != 28 || len(d.Pixels) != s.n*28*28 || len(d.Labels) != s.n {
				t.Fatalf("got N=%d H=%d W=%d, %d pixels, %d labels; want %d×28×28", d.N, d.H, d.W, len(d.Pixels), len(d.Labels), s.n)
			}
			var counts [10]int
			for i, l := range d.Labels {
				if l > 9 {
					t.Fatalf("label %d is %d, want 0..9", i, l)
				}
				counts[l]++
			}
			for c, n := range counts {
				if n != s.n/10 {
					t.Errorf("class %d has %d examples, want %d", c, n, s.n/10)
				}
			}
		})
	}
}

// FuzzReadIDX checks that no input panics and that a successful decode has
// product(Dims) == len(Data). It also runs the gzip-sniffing path of OpenIDX.
func FuzzReadIDX(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.idx*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files in testdata: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, c := range idxCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, decode := range []func() (*IDX, error){
			func() (*IDX, error) { return ReadIDX(bytes.NewReader(b)) },
			func() (*IDX, error) { return decodeIDX(bytes.NewReader(b), "fuzz") },
		} {
			m, err := decode()
			if err != nil {
				if m != nil {
					t.Fatalf("non-nil *IDX with error %v", err)
				}
				continue
			}
			n := 1
			for _, d := range m.Dims {
				if d <= 0 {
					t.Fatalf("dims %v", m.Dims)
				}
				n *= d
			}
			if len(m.Dims) < 1 || len(m.Dims) > 4 || n != len(m.Data) {
				t.Fatalf("dims %v but %d bytes of data", m.Dims, len(m.Data))
			}
		}
	})
}
