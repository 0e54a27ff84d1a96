package builtin_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchwise-ml/patchwise/data/builtin"
)

func TestParse(t *testing.T) {
	for arg, want := range map[string]string{"builtin:mnist-small": "mnist-small", "builtin:": "", "mnist-small": "-", "data/builtin:x": "-"} {
		name, ok := builtin.Parse(arg)
		if got := map[bool]string{true: name, false: "-"}[ok]; got != want {
			t.Errorf("Parse(%q) = %q, %v; want %q", arg, name, ok, want)
		}
	}
	if got := builtin.Args(); got != "builtin:fashion-mnist-small, builtin:mnist-small" {
		t.Errorf("Args() = %q", got)
	}
}

// TestResolve checks that a directory is passed through, that an embedded
// dataset is materialized once under the cache folder, in a folder named
// by its ID, and that an unknown name is an error listing the names.
func TestResolve(t *testing.T) {
	cache := t.TempDir()
	if got, err := builtin.Resolve("some/dir", cache); err != nil || got != "some/dir" {
		t.Errorf("Resolve(a directory) = %q, %v", got, err)
	}
	id, err := builtin.ID("mnist-small")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := builtin.Resolve("builtin:mnist-small", cache)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(cache, id[:16], "mnist-small"); dir != want {
		t.Errorf("Resolve = %q, want %q", dir, want)
	}
	before, err := os.Stat(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if again, err := builtin.Resolve("builtin:mnist-small", cache); err != nil || again != dir {
		t.Fatalf("second Resolve = %q, %v", again, err)
	}
	if after, err := os.Stat(filepath.Join(dir, "manifest.json")); err != nil || !os.SameFile(before, after) {
		t.Error("the second Resolve rewrote the dataset")
	}
	for _, arg := range []string{"builtin:cifar-10-small", "builtin:"} {
		_, err := builtin.Resolve(arg, cache)
		if err == nil || !strings.Contains(err.Error(), "fashion-mnist-small") {
			t.Errorf("Resolve(%q): err = %v, want one listing the names", arg, err)
		}
	}
}

// TestOpen checks that Open materializes into the user cache folder.
func TestOpen(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir()) // where the platform ignores XDG_CACHE_HOME
	d, err := builtin.Open("builtin:mnist-small")
	if err != nil {
		t.Fatal(err)
	}
	cache, err := builtin.CacheDir()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Dir(), cache+string(filepath.Separator)) || d.Manifest().Classes[3] != "3" {
		t.Errorf("opened %q (classes %q), want a folder in %q", d.Dir(), d.Manifest().Classes, cache)
	}
	if _, err := builtin.Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(a missing directory): err = %v, want fs.ErrNotExist", err)
	}
}
