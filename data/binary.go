package data

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// This file holds the sources for the standard binary datasets: CIFAR-10 and
// CIFAR-100 (the "binary version" of each), STL-10, and the MNIST-family IDX
// files. Every one streams its files record by record through a
// bufio.Reader; none loads a whole file into memory except IDX, whose files
// are small.

// cifar10Names are CIFAR-10's classes, in label order, for when
// batches.meta.txt is absent.
var cifar10Names = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// stl10Names are STL-10's classes, in label order (label byte 1 first), for
// when class_names.txt is absent.
var stl10Names = []string{"airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"}

// binLayout describes the records of one binary dataset file.
type binLayout struct {
	format     string // "cifar10", …, for messages
	side       int    // images are side×side
	labelBytes int    // label bytes at the start of each record (0: none, or labels in a separate file)
	labelAt    int    // which of the label bytes is the label
	labelBase  int    // value of the first class's label byte (STL-10: 1)
	classes    int    // number of classes: label bytes must be in [labelBase, labelBase+classes)
	colMajor   bool   // each channel plane is stored column by column (STL-10)
}

var (
	cifar10Layout  = binLayout{format: "cifar10", side: 32, labelBytes: 1, classes: 10}
	cifar100Layout = binLayout{format: "cifar100", side: 32, labelBytes: 2, labelAt: 1, classes: 100}
	stl10Layout    = binLayout{format: "stl10", side: 96, labelBase: 1, classes: 10, colMajor: true}
)

// pixelBytes is the size of one image: 3 planes of side×side bytes.
func (l *binLayout) pixelBytes() int { return 3 * l.side * l.side }

// recordBytes is the size of one record: its label bytes and its image.
func (l *binLayout) recordBytes() int { return l.labelBytes + l.pixelBytes() }

// decodeImage decodes one image of l's layout, three planes (R, G, B) of
// side×side bytes, each row-major or, with colMajor, column-major. It panics
// if len(pix) is not l.pixelBytes().
func (l *binLayout) decodeImage(pix []byte) *image.NRGBA {
	s := l.side
	if len(pix) != 3*s*s {
		panic(fmt.Sprintf("data: %s: image of %d bytes, want %d", l.format, len(pix), 3*s*s))
	}
	r, g, b := pix[:s*s], pix[s*s:2*s*s], pix[2*s*s:]
	img := image.NewNRGBA(image.Rect(0, 0, s, s))
	for y := range s {
		row := img.Pix[y*img.Stride : y*img.Stride+4*s]
		for x := range s {
			i := y*s + x
			if l.colMajor {
				i = x*s + y
			}
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = r[i], g[i], b[i], 255
		}
	}
	return img
}

// checkLabel turns label byte v into a class index, or a *FormatError at
// offset off of the file at path when it is out of range.
func (l *binLayout) checkLabel(v byte, path string, off int64, rec int) (int, error) {
	label := int(v) - l.labelBase
	if label < 0 || label >= l.classes {
		return 0, binFormatError(l.format, path, off,
			fmt.Sprintf("record %d: label byte %d out of range %d..%d", rec, v, l.labelBase, l.labelBase+l.classes-1))
	}
	return label, nil
}

// decodeRecord decodes one record of l's layout with its label bytes
// (labelBytes > 0), as the record numbered rec of the file at path.
func (l *binLayout) decodeRecord(rec []byte, path string, n int) (*image.NRGBA, int, error) {
	off := int64(n) * int64(l.recordBytes())
	if len(rec) != l.recordBytes() {
		return nil, 0, binFormatError(l.format, path, off,
			fmt.Sprintf("record %d: %d bytes, want %d", n, len(rec), l.recordBytes()))
	}
	label := -1
	if l.labelBytes > 0 {
		var err error
		if label, err = l.checkLabel(rec[l.labelAt], path, off+int64(l.labelAt), n); err != nil {
			return nil, 0, err
		}
	}
	return l.decodeImage(rec[l.labelBytes:]), label, nil
}

// stream reads records of l's layout from x (named xPath) until it ends and
// yields them as items of split, labelled from the records' label bytes, or
// from y (named yPath: one label byte per image) when y is not nil, or -1.
// A record cut short, a label out of range, or label and image counts that
// disagree give a *FormatError naming the file. stream checks ctx before
// every record.
func (l *binLayout) stream(ctx context.Context, x io.Reader, xPath string, y io.Reader, yPath string, split string, yield func(Item) error) error {
	rs := l.recordBytes()
	buf := make([]byte, rs)
	base := filepath.Base(xPath)
	var lab [1]byte
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := int64(i) * int64(rs)
		n, err := io.ReadFull(x, buf)
		switch {
		case n == 0 && errors.Is(err, io.EOF):
			if y == nil {
				return nil
			}
			switch m, err := io.ReadFull(y, lab[:]); {
			case m > 0:
				return binFormatError(l.format, yPath, int64(i),
					fmt.Sprintf("more labels than the %d images in %s", i, base))
			case !errors.Is(err, io.EOF):
				return binReadError(l.format, yPath, err)
			}
			return nil
		case errors.Is(err, io.ErrUnexpectedEOF):
			return binFormatError(l.format, xPath, off,
				fmt.Sprintf("truncated: record %d has %d of %d bytes", i, n, rs))
		case err != nil:
			return binReadError(l.format, xPath, err)
		}
		img, label, err := l.decodeRecord(buf, xPath, i)
		if err != nil {
			return err
		}
		if y != nil {
			switch _, err := io.ReadFull(y, lab[:]); {
			case errors.Is(err, io.EOF):
				return binFormatError(l.format, yPath, int64(i),
					fmt.Sprintf("only %d labels, but %s holds more images", i, base))
			case err != nil:
				return binReadError(l.format, yPath, err)
			}
			if label, err = l.checkLabel(lab[0], yPath, int64(i), i); err != nil {
				return err
			}
		}
		it := Item{Split: split, Label: label, Origin: base + "#" + strconv.Itoa(i), Image: img}
		if err := yield(it); err != nil {
			return err
		}
	}
}

// binFormatError reports malformed bytes in a binary dataset file.
func binFormatError(format, path string, off int64, msg string) error {
	return &FormatError{Format: format, Path: path, Offset: off, Msg: msg}
}

// binReadError wraps an error from reading or opening a dataset file.
func binReadError(format, path string, err error) error {
	return fmt.Errorf("data: %s %q: %w", format, path, err)
}

// binFile is one file (or image file and label file) of a binary dataset.
type binFile struct {
	split string
	x, y  string // image records; separate label bytes, or ""
}

// binSource is a Source over binary dataset files.
type binSource struct {
	layout  binLayout
	classes []string
	files   []binFile
}

func (s *binSource) Format() string    { return s.layout.format }
func (s *binSource) Classes() []string { return slices.Clone(s.classes) }

// Items yields every record of every file, file by file in the order the
// constructor lists them, records in file order.
func (s *binSource) Items(ctx context.Context, yield func(Item) error) error {
	for _, f := range s.files {
		if err := s.streamFile(ctx, f, yield); err != nil {
			return err
		}
	}
	return nil
}

func (s *binSource) streamFile(ctx context.Context, f binFile, yield func(Item) error) error {
	xf, err := os.Open(f.x)
	if err != nil {
		return binReadError(s.layout.format, f.x, err)
	}
	defer xf.Close()
	var y io.Reader
	if f.y != "" {
		yf, err := os.Open(f.y)
		if err != nil {
			return binReadError(s.layout.format, f.y, err)
		}
		defer yf.Close()
		y = bufio.NewReaderSize(yf, 1<<12)
	}
	return s.layout.stream(ctx, bufio.NewReaderSize(xf, 1<<20), f.x, y, f.y, f.split, yield)
}

// binDir returns dir, or dir/sub when marker is missing from dir but present
// in dir/sub: the folder that the dataset's archive unpacks to.
func binDir(dir, sub string, markers ...string) string {
	for _, m := range markers {
		if _, err := os.Stat(filepath.Join(dir, m)); err == nil {
			return dir
		}
	}
	for _, m := range markers {
		if _, err := os.Stat(filepath.Join(dir, sub, m)); err == nil {
			return filepath.Join(dir, sub)
		}
	}
	return dir
}

// binMissing reports files missing from dir, listing want and what dir
// holds. It matches fs.ErrNotExist.
func binMissing(format, dir string, missing, want []string) error {
	var have []string
	if entries, err := os.ReadDir(dir); err != nil {
		return fmt.Errorf("data: %s folder %q: %w", format, dir, err)
	} else {
		for _, e := range entries {
			have = append(have, e.Name())
		}
	}
	return fmt.Errorf("data: %s folder %q: missing %s (want %s; folder has %s): %w",
		format, dir, strings.Join(missing, ", "), strings.Join(want, ", "), listNames(have, 20), fs.ErrNotExist)
}

// binCount checks that the file at path holds a whole, non-zero number of
// records of size rs and returns that number.
func binCount(format, path string, rs int) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, binReadError(format, path, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, binReadError(format, path, errors.New("not a regular file"))
	}
	size := fi.Size()
	switch {
	case size == 0:
		return 0, binFormatError(format, path, -1, "empty file")
	case size%int64(rs) != 0:
		return 0, binFormatError(format, path, -1, fmt.Sprintf(
			"size %d is not a whole number of %d-byte records (%d records and %d bytes over)",
			size, rs, size/int64(rs), size%int64(rs)))
	}
	return size / int64(rs), nil
}

// maxNamesFile is the largest class-names file read.
const maxNamesFile = 1 << 20

// readClassNames reads n class names, one per line, from the file at path,
// ignoring blank lines and surrounding white space. A missing file gives nil
// names and no error; a file with a different number of names, or the same
// name twice, gives a *FormatError.
func readClassNames(format, path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, binReadError(format, path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNamesFile+1))
	if err != nil {
		return nil, binReadError(format, path, err)
	}
	if len(b) > maxNamesFile {
		return nil, binFormatError(format, path, -1, fmt.Sprintf("class names file over %d bytes", maxNamesFile))
	}
	var names []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line)
		}
	}
	if len(names) != n {
		return nil, binFormatError(format, path, -1, fmt.Sprintf("%d class names, want %d (one per line)", len(names), n))
	}
	for i, name := range names {
		if j := slices.Index(names[:i], name); j >= 0 {
			return nil, binFormatError(format, path, -1, fmt.Sprintf("class name %q on lines %d and %d", name, j+1, i+1))
		}
	}
	return names, nil
}

// newBinSource checks that every file exists and holds whole records, and
// reads the class names from namesFile (in dir) or uses defaults.
func newBinSource(layout binLayout, dir string, files []binFile, namesFile string, defaults []string) (*binSource, error) {
	var missing, want []string
	for _, f := range files {
		for _, p := range []string{f.x, f.y} {
			if p == "" {
				continue
			}
			want = append(want, filepath.Base(p))
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				missing = append(missing, filepath.Base(p))
			}
		}
	}
	if len(missing) > 0 {
		return nil, binMissing(layout.format, dir, missing, want)
	}
	var errs []error
	for _, f := range files {
		n, err := binCount(layout.format, f.x, layout.recordBytes())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f.y == "" {
			continue
		}
		m, err := binCount(layout.format, f.y, 1)
		switch {
		case err != nil:
			errs = append(errs, err)
		case m != n:
			errs = append(errs, binFormatError(layout.format, f.y, -1,
				fmt.Sprintf("%d labels, but %s holds %d images", m, filepath.Base(f.x), n)))
		}
	}
	names, err := readClassNames(layout.format, filepath.Join(dir, namesFile), layout.classes)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if names == nil {
		names = defaults
	}
	return &binSource{layout: layout, classes: slices.Clone(names), files: files}, nil
}

// NewCIFAR10 returns a source over the binary version of CIFAR-10 in dir (or
// in dir/cifar-10-batches-bin, the folder its archive unpacks to):
// data_batch_1.bin to data_batch_5.bin (split Train) and test_batch.bin
// (Test), each a sequence of 3073-byte records: a label byte 0..9, then a
// 32×32 image as three planes, red, green and blue, of 1024 bytes each, row
// by row. The real files hold 10,000 records each; any whole, non-zero
// number is accepted.
//
// Class names come from batches.meta.txt (one per line, blank lines
// ignored) when present, else they are the standard airplane, automobile,
// bird, cat, deer, dog, frog, horse, ship, truck.
//
// NewCIFAR10 checks what it can without reading the records: a missing file
// gives an error, matching fs.ErrNotExist, that lists the expected files; a
// file whose size is not a whole number of records, or a names file without
// exactly 10 distinct names, gives a *FormatError naming the file (all such
// problems at once, joined). Items yields each record as an Item whose Image
// is a 32×32 *image.NRGBA and whose Origin is like "data_batch_1.bin#123"
// (records counted from 0); a label byte over 9 stops it with a
// *FormatError, since it means the file is not CIFAR-10.
func NewCIFAR10(dir string) (Source, error) {
	dir = binDir(dir, "cifar-10-batches-bin", "data_batch_1.bin")
	var files []binFile
	for i := 1; i <= 5; i++ {
		files = append(files, binFile{split: Train, x: filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", i))})
	}
	files = append(files, binFile{split: Test, x: filepath.Join(dir, "test_batch.bin")})
	return newBinSource(cifar10Layout, dir, files, "batches.meta.txt", cifar10Names)
}

// NewCIFAR100 returns a source over the binary version of CIFAR-100 in dir
// (or in dir/cifar-100-binary, the folder its archive unpacks to): train.bin
// (split Train) and test.bin (Test), each a sequence of 3074-byte records: a
// coarse label byte 0..19, a fine label byte 0..99, then a 32×32 image laid
// out as in CIFAR-10. The source uses the fine labels (100 classes) and
// ignores the coarse ones.
//
// Class names come from fine_label_names.txt (one per line) when present,
// else they are "class000" to "class099". Errors, items and origins
// ("train.bin#123") are as for NewCIFAR10; a fine label byte over 99 stops
// Items with a *FormatError.
func NewCIFAR100(dir string) (Source, error) {
	dir = binDir(dir, "cifar-100-binary", "train.bin")
	files := []binFile{
		{split: Train, x: filepath.Join(dir, "train.bin")},
		{split: Test, x: filepath.Join(dir, "test.bin")},
	}
	defaults := make([]string, 100)
	for i := range defaults {
		defaults[i] = fmt.Sprintf("class%03d", i)
	}
	return newBinSource(cifar100Layout, dir, files, "fine_label_names.txt", defaults)
}

// NewSTL10 returns a source over the binary version of STL-10 in dir (or in
// dir/stl10_binary, the folder its archive unpacks to). Images are 96×96
// colour, stored 27,648 bytes each as three planes, red, green and blue,
// each column by column (the layout of MATLAB and Fortran arrays: byte
// x*96+y of a plane is the pixel at column x, row y). Labels are single
// bytes 1..10 in separate files, which the source turns into 0..9. The
// files, in the order Items reads them:
//
//	train_X.bin, train_y.bin   split Train (5,000 images in the real files)
//	test_X.bin, test_y.bin     split Test (8,000)
//	unlabeled_X.bin            split Unlabeled, label -1 (100,000; 2.7 GB)
//
// Each group is optional, but at least one must be present, and a group
// that is present must be complete (an images file needs its labels file).
// Files are streamed record by record, never loaded whole.
//
// Class names come from class_names.txt (one per line) when present, else
// they are the standard airplane, bird, car, cat, deer, dog, horse, monkey,
// ship, truck. Errors, items and origins ("train_X.bin#123") are as for
// NewCIFAR10; in addition a labels file whose count differs from its images
// file gives a *FormatError, and a label byte outside 1..10 stops Items with
// one.
func NewSTL10(dir string) (Source, error) {
	dir = binDir(dir, "stl10_binary", "train_X.bin", "unlabeled_X.bin", "test_X.bin")
	groups := []struct {
		split string
		x, y  string
	}{
		{Train, "train_X.bin", "train_y.bin"},
		{Test, "test_X.bin", "test_y.bin"},
		{Unlabeled, "unlabeled_X.bin", ""},
	}
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return !errors.Is(err, fs.ErrNotExist)
	}
	var files []binFile
	for _, g := range groups {
		if !exists(g.x) && (g.y == "" || !exists(g.y)) {
			continue
		}
		f := binFile{split: g.split, x: filepath.Join(dir, g.x)}
		if g.y != "" {
			f.y = filepath.Join(dir, g.y)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, binMissing("stl10", dir, []string{"train_X.bin", "test_X.bin", "unlabeled_X.bin"},
			[]string{"train_X.bin and train_y.bin", "test_X.bin and test_y.bin", "unlabeled_X.bin"})
	}
	return newBinSource(stl10Layout, dir, files, "class_names.txt", stl10Names)
}

// idxSource is a Source over the four MNIST-family IDX files.
type idxSource struct {
	train, test IDXFiles
}

// NewIDX returns a source over the four MNIST-family IDX files in dir, as
// FindIDX locates them (each optionally gzipped): the training pair gives
// split Train, the t10k pair split Test. Items are greyscale (*image.Gray,
// typically 28×28) with Origin like "train-images-idx3-ubyte.gz#123". The
// classes are "0" to "9" (for Fashion-MNIST too: the files do not say which
// dataset they hold); a label over 9 stops Items with a *FormatError naming
// the labels file.
//
// NewIDX only locates the files; Items loads each pair whole with
// LoadIDXPair (about 55 MB for MNIST's training pair), so malformed files
// are reported by Items.
func NewIDX(dir string) (Source, error) {
	train, test, err := FindIDX(dir)
	if err != nil {
		return nil, err
	}
	return &idxSource{train: train, test: test}, nil
}

func (s *idxSource) Format() string { return "idx" }

func (s *idxSource) Classes() []string {
	return []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
}

func (s *idxSource) Items(ctx context.Context, yield func(Item) error) error {
	for _, p := range []struct {
		split string
		files IDXFiles
	}{{Train, s.train}, {Test, s.test}} {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := LoadIDXPair(p.files.Images, p.files.Labels)
		if err != nil {
			return err
		}
		if err := idxItems(ctx, d, p.files, p.split, yield); err != nil {
			return err
		}
	}
	return nil
}

// idxItems yields the images of d as items of split.
func idxItems(ctx context.Context, d *LabeledImages, files IDXFiles, split string, yield func(Item) error) error {
	base := filepath.Base(files.Images)
	hw := d.H * d.W
	for i := range d.N {
		if err := ctx.Err(); err != nil {
			return err
		}
		label := int(d.Labels[i])
		if label > 9 {
			// The labels' data starts after 4 bytes of magic and one dimension.
			return &FormatError{Path: files.Labels, Offset: 8 + int64(i),
				Msg: fmt.Sprintf("label %d of image %d: want 0..9", label, i)}
		}
		img := image.NewGray(image.Rect(0, 0, d.W, d.H))
		copy(img.Pix, d.Pixels[i*hw:(i+1)*hw])
		it := Item{Split: split, Label: label, Origin: base + "#" + strconv.Itoa(i), Image: img}
		if err := yield(it); err != nil {
			return err
		}
	}
	return nil
}
