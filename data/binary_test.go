package data

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var updateBinary = flag.Bool("update-binary", false, "rewrite the files in testdata/binary")

// binPixel is the test pattern: the value of channel c at column x, row y of
// image i. It differs between x and y (so a transpose shows) and between
// channels (so swapped planes show).
func binPixel(i, c, x, y int) byte { return byte(i*7 + c*80 + x*3 + y*5) }

// binImage encodes image i of the pattern as three side×side planes, each
// row-major, or column-major with colMajor.
func binImage(i, side int, colMajor bool) []byte {
	b := make([]byte, 3*side*side)
	for c := range 3 {
		for y := range side {
			for x := range side {
				j := y*side + x
				if colMajor {
					j = x*side + y
				}
				b[c*side*side+j] = binPixel(i, c, x, y)
			}
		}
	}
	return b
}

// cifarFile encodes one record per entry of labels, each record's label
// bytes followed by image first+i of the pattern.
func cifarFile(first, side int, labels ...[]byte) []byte {
	var b []byte
	for i, l := range labels {
		b = append(b, l...)
		b = append(b, binImage(first+i, side, false)...)
	}
	return b
}

// stlImages encodes images first, first+1, … (n of them), column-major.
func stlImages(first, n, side int) []byte {
	var b []byte
	for i := range n {
		b = append(b, binImage(first+i, side, true)...)
	}
	return b
}

// checkPattern fails unless img is image i of the pattern.
func checkPattern(t testing.TB, img image.Image, i, side int) {
	t.Helper()
	if got := img.Bounds(); got != image.Rect(0, 0, side, side) {
		t.Fatalf("image %d: bounds %v, want %d×%d", i, got, side, side)
	}
	for y := range side {
		for x := range side {
			r, g, b, a := img.At(x, y).RGBA()
			got := [4]byte{byte(r >> 8), byte(g >> 8), byte(b >> 8), byte(a >> 8)}
			want := [4]byte{binPixel(i, 0, x, y), binPixel(i, 1, x, y), binPixel(i, 2, x, y), 255}
			if got != want {
				t.Fatalf("image %d: pixel (%d, %d) = %v, want %v", i, x, y, got, want)
			}
		}
	}
}

// collect runs src.Items and returns every item.
func collect(t testing.TB, src Source) ([]Item, error) {
	t.Helper()
	var items []Item
	err := src.Items(context.Background(), func(it Item) error {
		items = append(items, it)
		return nil
	})
	return items, err
}

// asFormatError fails unless err is a *FormatError whose Path ends in name.
func asFormatError(t testing.TB, err error, name string) *FormatError {
	t.Helper()
	var fe *FormatError
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *FormatError", err, err)
	}
	if filepath.Base(fe.Path) != name {
		t.Fatalf("FormatError names %q, want %q: %v", fe.Path, name, err)
	}
	if !strings.Contains(err.Error(), name) {
		t.Fatalf("message %q does not name %s", err, name)
	}
	return fe
}

// writeCIFAR10 writes the six CIFAR-10 files into dir with counts[k] records
// in file k; image numbers run on across files and labels are image % 10.
func writeCIFAR10(t testing.TB, dir string, counts [6]int) {
	t.Helper()
	names := []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"}
	first := 0
	for k, name := range names {
		var labels [][]byte
		for i := range counts[k] {
			labels = append(labels, []byte{byte((first + i) % 10)})
		}
		writeFile(t, dir, name, cifarFile(first, 32, labels...))
		first += counts[k]
	}
}

func TestCIFAR10(t *testing.T) {
	dir := t.TempDir()
	counts := [6]int{2, 1, 3, 1, 2, 3}
	writeCIFAR10(t, dir, counts)
	src, err := NewCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Format() != "cifar10" {
		t.Errorf("Format %q", src.Format())
	}
	if got := src.Classes(); !slices.Equal(got, cifar10Names) {
		t.Errorf("default classes %v", got)
	}
	items, err := collect(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 12 {
		t.Fatalf("%d items, want 12", len(items))
	}
	wantOrigins := []string{"data_batch_1.bin#0", "data_batch_1.bin#1", "data_batch_2.bin#0", "data_batch_3.bin#0",
		"data_batch_3.bin#1", "data_batch_3.bin#2", "data_batch_4.bin#0", "data_batch_5.bin#0", "data_batch_5.bin#1",
		"test_batch.bin#0", "test_batch.bin#1", "test_batch.bin#2"}
	for i, it := range items {
		wantSplit := Train
		if i >= 9 {
			wantSplit = Test
		}
		if it.Split != wantSplit || it.Label != i%10 || it.Origin != wantOrigins[i] || it.Path != "" || it.Err != nil {
			t.Errorf("item %d: %+v, want split %s, label %d, origin %s", i, it, wantSplit, i%10, wantOrigins[i])
		}
		if _, ok := it.Image.(*image.NRGBA); !ok {
			t.Fatalf("item %d: image %T, want *image.NRGBA", i, it.Image)
		}
		checkPattern(t, it.Image, i, 32)
	}

	// Class names from batches.meta.txt: CRLF, surrounding blanks and
	// trailing empty lines as in the real file.
	names := []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9 x"}
	writeFile(t, dir, "batches.meta.txt", []byte(" "+strings.Join(names, "\r\n")+"\n\n\n"))
	src, err = NewCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Classes(); !slices.Equal(got, names) {
		t.Errorf("classes %q, want %q", got, names)
	}
	src.Classes()[0] = "changed"
	if src.Classes()[0] != "a0" {
		t.Error("Classes returns the source's own slice")
	}
}

// The folder the archive unpacks to is found inside dir.
func TestCIFAR10Subfolder(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "cifar-10-batches-bin")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeCIFAR10(t, sub, [6]int{1, 1, 1, 1, 1, 1})
	src, err := NewCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	items, err := collect(t, src)
	if err != nil || len(items) != 6 {
		t.Fatalf("%d items, error %v", len(items), err)
	}
}

func TestCIFAR10Errors(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		writeCIFAR10(t, dir, [6]int{1, 1, 1, 1, 1, 1})
		os.Remove(filepath.Join(dir, "data_batch_3.bin"))
		os.Remove(filepath.Join(dir, "test_batch.bin"))
		_, err := NewCIFAR10(dir)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v, want fs.ErrNotExist", err)
		}
		for _, s := range []string{"missing data_batch_3.bin, test_batch.bin", "data_batch_1.bin", "data_batch_5.bin", dir} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("message %q lacks %q", err, s)
			}
		}
	})
	t.Run("no folder", func(t *testing.T) {
		_, err := NewCIFAR10(filepath.Join(t.TempDir(), "nope"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("odd size", func(t *testing.T) {
		dir := t.TempDir()
		writeCIFAR10(t, dir, [6]int{1, 2, 1, 1, 1, 1})
		b, _ := os.ReadFile(filepath.Join(dir, "data_batch_2.bin"))
		writeFile(t, dir, "data_batch_2.bin", b[:len(b)-1])
		writeFile(t, dir, "test_batch.bin", nil)
		_, err := NewCIFAR10(dir)
		fe := asFormatError(t, err, "data_batch_2.bin")
		if !strings.Contains(fe.Msg, "6145") || !strings.Contains(fe.Msg, "3073") {
			t.Errorf("message %q lacks the size and record size", fe.Msg)
		}
		// Every problem is reported at once.
		if !strings.Contains(err.Error(), "test_batch.bin") || !strings.Contains(err.Error(), "empty") {
			t.Errorf("message %q does not report the empty test_batch.bin", err)
		}
	})
	t.Run("label", func(t *testing.T) {
		dir := t.TempDir()
		writeCIFAR10(t, dir, [6]int{1, 1, 1, 1, 1, 1})
		writeFile(t, dir, "data_batch_2.bin", cifarFile(0, 32, []byte{3}, []byte{10}))
		src, err := NewCIFAR10(dir)
		if err != nil {
			t.Fatal(err)
		}
		items, err := collect(t, src)
		fe := asFormatError(t, err, "data_batch_2.bin")
		if fe.Offset != 3073 || !strings.Contains(fe.Msg, "label byte 10") {
			t.Errorf("error %v, want label byte 10 at offset 3073", err)
		}
		if len(items) != 2 {
			t.Errorf("%d items before the error, want 2", len(items))
		}
	})
	t.Run("truncated while reading", func(t *testing.T) {
		dir := t.TempDir()
		writeCIFAR10(t, dir, [6]int{1, 1, 1, 1, 3, 1})
		src, err := NewCIFAR10(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(filepath.Join(dir, "data_batch_5.bin"), 3073+100); err != nil {
			t.Fatal(err)
		}
		_, err = collect(t, src)
		fe := asFormatError(t, err, "data_batch_5.bin")
		if fe.Offset != 3073 || !strings.Contains(fe.Msg, "truncated") {
			t.Errorf("error %v, want truncated at offset 3073", err)
		}
	})
	t.Run("names", func(t *testing.T) {
		for _, names := range []string{"a\nb\nc\n", "a b c d e f g h i j", "a\nb\nc\nd\ne\nf\ng\nh\ni\na\n"} {
			dir := t.TempDir()
			writeCIFAR10(t, dir, [6]int{1, 1, 1, 1, 1, 1})
			writeFile(t, dir, "batches.meta.txt", []byte(names))
			_, err := NewCIFAR10(dir)
			asFormatError(t, err, "batches.meta.txt")
		}
	})
}

func TestBinaryItemsStop(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR10(t, dir, [6]int{3, 3, 3, 3, 3, 3})
	src, err := NewCIFAR10(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err = src.Items(ctx, func(Item) error {
		if n++; n == 4 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || n != 4 {
		t.Errorf("after cancel: %d items, error %v", n, err)
	}
	stop := errors.New("stop")
	n = 0
	err = src.Items(context.Background(), func(Item) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("yield error: %d items, error %v", n, err)
	}
}

func TestCIFAR100(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train.bin", cifarFile(0, 32, []byte{19, 99}, []byte{0, 0}, []byte{5, 42}))
	writeFile(t, dir, "test.bin", cifarFile(3, 32, []byte{7, 7}))
	src, err := NewCIFAR100(dir)
	if err != nil {
		t.Fatal(err)
	}
	classes := src.Classes()
	if src.Format() != "cifar100" || len(classes) != 100 || classes[0] != "class000" || classes[42] != "class042" || classes[99] != "class099" {
		t.Errorf("format %s, classes %v", src.Format(), classes)
	}
	items, err := collect(t, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		split, origin string
		label         int
	}{{Train, "train.bin#0", 99}, {Train, "train.bin#1", 0}, {Train, "train.bin#2", 42}, {Test, "test.bin#0", 7}}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i, w := range want {
		it := items[i]
		if it.Split != w.split || it.Origin != w.origin || it.Label != w.label {
			t.Errorf("item %d: %s %s %d, want %+v", i, it.Split, it.Origin, it.Label, w)
		}
		checkPattern(t, it.Image, i, 32)
	}

	var names []string
	for i := range 100 {
		names = append(names, fmt.Sprintf("fine_%d", i))
	}
	writeFile(t, dir, "fine_label_names.txt", []byte(strings.Join(names, "\n")+"\n"))
	writeFile(t, dir, "coarse_label_names.txt", []byte("c\n"))
	if src, err = NewCIFAR100(dir); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(src.Classes(), names) {
		t.Errorf("classes %v", src.Classes())
	}

	writeFile(t, dir, "test.bin", cifarFile(0, 32, []byte{0, 100}))
	if src, err = NewCIFAR100(dir); err != nil {
		t.Fatal(err)
	}
	_, err = collect(t, src)
	if fe := asFormatError(t, err, "test.bin"); fe.Offset != 1 {
		t.Errorf("offset %d, want 1", fe.Offset)
	}

	writeFile(t, dir, "test.bin", make([]byte, 3073))
	_, err = NewCIFAR100(dir)
	asFormatError(t, err, "test.bin")

	os.Remove(filepath.Join(dir, "train.bin"))
	_, err = NewCIFAR100(dir)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing train.bin") {
		t.Errorf("error %v, want train.bin missing", err)
	}
}

func TestSTL10(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "train_X.bin", stlImages(0, 2, 96))
	writeFile(t, dir, "train_y.bin", []byte{1, 10})
	writeFile(t, dir, "test_X.bin", stlImages(2, 1, 96))
	writeFile(t, dir, "test_y.bin", []byte{4})
	writeFile(t, dir, "unlabeled_X.bin", stlImages(3, 2, 96))
	src, err := NewSTL10(dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Format() != "stl10" || !slices.Equal(src.Classes(), stl10Names) {
		t.Errorf("format %s, classes %v", src.Format(), src.Classes())
	}
	items, err := collect(t, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		split, origin string
		label         int
	}{
		{Train, "train_X.bin#0", 0}, {Train, "train_X.bin#1", 9}, {Test, "test_X.bin#0", 3},
		{Unlabeled, "unlabeled_X.bin#0", -1}, {Unlabeled, "unlabeled_X.bin#1", -1},
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	for i, w := range want {
		it := items[i]
		if it.Split != w.split || it.Origin != w.origin || it.Label != w.label {
			t.Errorf("item %d: %s %s %d, want %+v", i, it.Split, it.Origin, it.Label, w)
		}
		checkPattern(t, it.Image, i, 96)
	}
	// Spelled out: byte 1 of the red plane is column 0, row 1.
	raw := stlImages(0, 1, 96)
	if got, want := items[0].Image.(*image.NRGBA).NRGBAAt(0, 1).R, raw[1]; got != want {
		t.Errorf("pixel (0, 1) red = %d, want byte 1 = %d", got, want)
	}
	if got, want := items[0].Image.(*image.NRGBA).NRGBAAt(1, 0).G, raw[96*96+96]; got != want {
		t.Errorf("pixel (1, 0) green = %d, want byte 96 of the green plane = %d", got, want)
	}

	names := "n0\nn1\nn2\nn3\nn4\nn5\nn6\nn7\nn8\nn9\n"
	writeFile(t, dir, "class_names.txt", []byte(names))
	if src, err = NewSTL10(dir); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(src.Classes(), "\n") + "\n"; got != names {
		t.Errorf("classes %q", got)
	}
}

func TestSTL10Groups(t *testing.T) {
	t.Run("unlabeled only", func(t *testing.T) {
		dir := t.TempDir()
		sub := filepath.Join(dir, "stl10_binary")
		os.Mkdir(sub, 0o755)
		writeFile(t, sub, "unlabeled_X.bin", stlImages(0, 1, 96))
		src, err := NewSTL10(dir)
		if err != nil {
			t.Fatal(err)
		}
		items, err := collect(t, src)
		if err != nil || len(items) != 1 || items[0].Split != Unlabeled || items[0].Label != -1 {
			t.Fatalf("items %+v, error %v", items, err)
		}
	})
	t.Run("labels missing", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "train_X.bin", stlImages(0, 1, 96))
		_, err := NewSTL10(dir)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "missing train_y.bin") {
			t.Errorf("error %v, want train_y.bin missing", err)
		}
	})
	t.Run("empty folder", func(t *testing.T) {
		_, err := NewSTL10(t.TempDir())
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "unlabeled_X.bin") {
			t.Errorf("error %v, want the expected files listed", err)
		}
	})
	t.Run("count mismatch", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "test_X.bin", stlImages(0, 2, 96))
		writeFile(t, dir, "test_y.bin", []byte{1, 2, 3})
		_, err := NewSTL10(dir)
		fe := asFormatError(t, err, "test_y.bin")
		if !strings.Contains(fe.Msg, "3 labels") {
			t.Errorf("message %q", fe.Msg)
		}
	})
	t.Run("odd size", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, dir, "unlabeled_X.bin", stlImages(0, 2, 96)[:27648+5])
		_, err := NewSTL10(dir)
		asFormatError(t, err, "unlabeled_X.bin")
	})
	for _, bad := range []byte{0, 11} {
		t.Run(fmt.Sprintf("label %d", bad), func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "train_X.bin", stlImages(0, 2, 96))
			writeFile(t, dir, "train_y.bin", []byte{2, bad})
			src, err := NewSTL10(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = collect(t, src)
			fe := asFormatError(t, err, "train_y.bin")
			if fe.Offset != 1 || !strings.Contains(fe.Msg, "1..10") {
				t.Errorf("error %v", err)
			}
		})
	}
}

// The record streams detect disagreeing counts even when the files change
// after the source checked them.
func TestBinaryStreamCounts(t *testing.T) {
	l := stl10Layout
	l.side = 2
	ctx := context.Background()
	x := stlImages(0, 2, 2)
	nop := func(Item) error { return nil }
	err := l.stream(ctx, bytes.NewReader(x), "x.bin", bytes.NewReader([]byte{1}), "y.bin", Train, nop)
	if fe := asFormatError(t, err, "y.bin"); !strings.Contains(fe.Msg, "only 1 labels") {
		t.Errorf("short labels: %v", err)
	}
	err = l.stream(ctx, bytes.NewReader(x), "x.bin", bytes.NewReader([]byte{1, 2, 3}), "y.bin", Train, nop)
	if fe := asFormatError(t, err, "y.bin"); !strings.Contains(fe.Msg, "more labels") {
		t.Errorf("extra labels: %v", err)
	}
}

// writeIDXDir writes the four MNIST-family files for 2 training and 1 test
// image of 3×4 pixels, the training images gzipped.
func writeIDXDir(t testing.TB, dir string, trainLabels []byte) {
	t.Helper()
	writeFile(t, dir, "train-images-idx3-ubyte.gz", gzipBytes(t, idxBytes(8, []uint32{2, 3, 4}, seq(24))))
	writeFile(t, dir, "train-labels-idx1-ubyte", idxBytes(8, []uint32{2}, trainLabels))
	writeFile(t, dir, "t10k-images-idx3-ubyte", idxBytes(8, []uint32{1, 3, 4}, seq(12)))
	writeFile(t, dir, "t10k-labels-idx1-ubyte", idxBytes(8, []uint32{1}, []byte{5}))
}

func TestIDXSource(t *testing.T) {
	dir := t.TempDir()
	writeIDXDir(t, dir, []byte{9, 0})
	src, err := NewIDX(dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Format() != "idx" || strings.Join(src.Classes(), "") != "0123456789" {
		t.Errorf("format %s, classes %v", src.Format(), src.Classes())
	}
	items, err := collect(t, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		split, origin string
		label, first  int
	}{
		{Train, "train-images-idx3-ubyte.gz#0", 9, 0},
		{Train, "train-images-idx3-ubyte.gz#1", 0, 12},
		{Test, "t10k-images-idx3-ubyte#0", 5, 0},
	}
	if len(items) != len(want) {
		t.Fatalf("%d items, want %d", len(items), len(want))
	}
	pix := seq(24)
	for i, w := range want {
		it := items[i]
		if it.Split != w.split || it.Origin != w.origin || it.Label != w.label {
			t.Errorf("item %d: %s %s %d, want %+v", i, it.Split, it.Origin, it.Label, w)
		}
		g, ok := it.Image.(*image.Gray)
		if !ok || g.Bounds() != image.Rect(0, 0, 4, 3) {
			t.Fatalf("item %d: image %T %v, want 4×3 *image.Gray", i, it.Image, it.Image.Bounds())
		}
		if !bytes.Equal(g.Pix, pix[w.first:w.first+12]) {
			t.Errorf("item %d: pixels %v", i, g.Pix)
		}
	}

	writeIDXDir(t, dir, []byte{3, 10})
	if src, err = NewIDX(dir); err != nil {
		t.Fatal(err)
	}
	_, err = collect(t, src)
	if fe := asFormatError(t, err, "train-labels-idx1-ubyte"); fe.Offset != 9 {
		t.Errorf("offset %d, want 9", fe.Offset)
	}

	os.Remove(filepath.Join(dir, "t10k-labels-idx1-ubyte"))
	if _, err := NewIDX(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want fs.ErrNotExist", err)
	}
}

// The files in testdata/binary are tiny datasets in the real layouts: a
// CIFAR-10 folder with one record a file, a CIFAR-100 and an STL-10 folder.
// They seed the fuzzers. Regenerate with go test -run TestBinaryTestdata
// -update-binary.
func TestBinaryTestdata(t *testing.T) {
	files := map[string][]byte{
		"cifar10/data_batch_1.bin": cifarFile(0, 32, []byte{0}),
		"cifar10/data_batch_2.bin": cifarFile(1, 32, []byte{1}),
		"cifar10/data_batch_3.bin": cifarFile(2, 32, []byte{2}),
		"cifar10/data_batch_4.bin": cifarFile(3, 32, []byte{3}),
		"cifar10/data_batch_5.bin": cifarFile(4, 32, []byte{4}),
		"cifar10/test_batch.bin":   cifarFile(5, 32, []byte{5}, []byte{9}),
		"cifar10/batches.meta.txt": []byte(strings.Join(cifar10Names, "\n") + "\n\n"),
		"cifar100/train.bin":       cifarFile(0, 32, []byte{19, 99}),
		"cifar100/test.bin":        cifarFile(1, 32, []byte{0, 0}),
		"stl10/train_X.bin":        stlImages(0, 1, 96),
		"stl10/train_y.bin":        {10},
		"stl10/unlabeled_X.bin":    stlImages(1, 1, 96),
		"stl10/class_names.txt":    []byte(strings.Join(stl10Names, "\n") + "\n"),
		"fuzz-small-cifar.bin":     cifarFile(0, 2, []byte{3}, []byte{7}),
		"fuzz-small-stl-x.bin":     stlImages(0, 2, 2),
		"fuzz-small-stl-y.bin":     {1, 10},
	}
	root := filepath.Join("testdata", "binary")
	if *updateBinary {
		for name, b := range files {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range files {
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from what the test generates", name)
		}
	}
	for _, c := range []struct {
		open func(string) (Source, error)
		dir  string
		n    int
	}{{NewCIFAR10, "cifar10", 7}, {NewCIFAR100, "cifar100", 2}, {NewSTL10, "stl10", 2}} {
		src, err := c.open(filepath.Join(root, c.dir))
		if err != nil {
			t.Fatal(err)
		}
		items, err := collect(t, src)
		if err != nil || len(items) != c.n {
			t.Errorf("%s: %d items, error %v", c.dir, len(items), err)
		}
		for i, it := range items {
			checkPattern(t, it.Image, i, it.Image.Bounds().Dx())
		}
	}
}

// checkStream checks the outcome of l.stream on x (and labels y, or nil):
// either an error, or one item per whole record, each image matching the
// plain decoding of its bytes and each label in range.
func checkStream(t *testing.T, l binLayout, x, y []byte) {
	var items []Item
	var yr *bytes.Reader
	if y != nil {
		yr = bytes.NewReader(y)
	}
	yield := func(it Item) error {
		items = append(items, it)
		return nil
	}
	var err error
	if yr != nil {
		err = l.stream(context.Background(), bytes.NewReader(x), "x.bin", yr, "y.bin", Train, yield)
	} else {
		err = l.stream(context.Background(), bytes.NewReader(x), "x.bin", nil, "", Train, yield)
	}
	rs := l.recordBytes()
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("error %v (%T), want a *FormatError", err, err)
		}
		if len(items) > len(x)/rs {
			t.Fatalf("%d items from %d bytes", len(items), len(x))
		}
		return
	}
	if len(x)%rs != 0 || len(items) != len(x)/rs || (y != nil && len(y) != len(items)) {
		t.Fatalf("no error, %d items from %d bytes of %d-byte records and %d labels", len(items), len(x), rs, len(y))
	}
	s := l.side
	for i, it := range items {
		rec := x[i*rs : (i+1)*rs]
		if it.Label < -1 || it.Label >= l.classes || (it.Label == -1) != (l.labelBytes == 0 && y == nil) {
			t.Fatalf("item %d: label %d", i, it.Label)
		}
		pix := rec[l.labelBytes:]
		img := it.Image.(*image.NRGBA)
		for yy := range s {
			for xx := range s {
				j := yy*s + xx
				if l.colMajor {
					j = xx*s + yy
				}
				p := img.NRGBAAt(xx, yy)
				if p.R != pix[j] || p.G != pix[s*s+j] || p.B != pix[2*s*s+j] || p.A != 255 {
					t.Fatalf("item %d: pixel (%d, %d) = %v", i, xx, yy, p)
				}
			}
		}
	}
}

func readSeed(f *testing.F, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "binary", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzCIFAR10Record streams CIFAR records of side 1 to 4 (the layout with
// small images, so that inputs are whole records) and decodes a real-sized
// record made of the input.
func FuzzCIFAR10Record(f *testing.F) {
	f.Add(byte(1), readSeed(f, "fuzz-small-cifar.bin"))
	f.Add(byte(1), append(readSeed(f, "fuzz-small-cifar.bin"), 10))
	f.Add(byte(0), []byte{9, 1, 2, 3})
	f.Add(byte(0), []byte{10, 1, 2, 3})
	f.Add(byte(31), readSeed(f, "cifar10/test_batch.bin")[:3073])
	f.Fuzz(func(t *testing.T, side byte, b []byte) {
		for _, base := range []binLayout{cifar10Layout, cifar100Layout} {
			l := base
			l.side = 1 + int(side%4)
			checkStream(t, l, b, nil)
		}
		rec := make([]byte, cifar10Layout.recordBytes())
		copy(rec, b)
		img, label, err := cifar10Layout.decodeRecord(rec, "x.bin", 0)
		if (err == nil) != (rec[0] <= 9) || (err == nil && (label != int(rec[0]) || img.Bounds().Dx() != 32)) {
			t.Fatalf("label byte %d: label %d, error %v", rec[0], label, err)
		}
		if _, _, err := cifar10Layout.decodeRecord(b, "x.bin", 0); err == nil && len(b) != len(rec) {
			t.Fatalf("%d-byte record accepted", len(b))
		}
	})
}

// FuzzSTL10 streams STL-10 images of side 1 to 4 with a labels stream, or
// none (unlabeled).
func FuzzSTL10(f *testing.F) {
	f.Add(byte(1), readSeed(f, "fuzz-small-stl-x.bin"), readSeed(f, "fuzz-small-stl-y.bin"), true)
	f.Add(byte(1), readSeed(f, "fuzz-small-stl-x.bin"), []byte{0, 11}, true)
	f.Add(byte(1), readSeed(f, "fuzz-small-stl-x.bin"), []byte{}, false)
	f.Add(byte(0), []byte{1, 2, 3, 4, 5, 6}, []byte{1, 2}, true)
	f.Fuzz(func(t *testing.T, side byte, x, y []byte, labelled bool) {
		l := stl10Layout
		l.side = 1 + int(side%4)
		if !labelled {
			y = nil
		} else if y == nil {
			y = []byte{}
		}
		checkStream(t, l, x, y)
	})
}
