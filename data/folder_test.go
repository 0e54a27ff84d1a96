package data

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// tree writes files (slash-separated relative paths; a name ending in "/"
// is an empty folder) under a new temporary root.
func tree(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	pngb := encodeImage(t, "png", halves(4, 2))
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f))
		if strings.HasSuffix(f, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		writeImageFile(t, root, filepath.FromSlash(f), pngb)
	}
	return root
}

type gotItem struct {
	Origin string
	Label  int
	Err    bool
}

func items(t *testing.T, f *Folder) []gotItem {
	t.Helper()
	var out []gotItem
	err := f.Items(context.Background(), func(it Item) error {
		if it.Err == nil {
			if it.Path == "" || filepath.ToSlash(it.Path) != filepath.ToSlash(filepath.Join(f.root, it.Origin)) {
				t.Errorf("item %q: path %q", it.Origin, it.Path)
			}
		} else if !strings.Contains(it.Err.Error(), it.Origin) {
			t.Errorf("error item %q: message %q does not name it", it.Origin, it.Err)
		}
		if it.Split != "" || it.Image != nil {
			t.Errorf("item %q: split %q, image %v", it.Origin, it.Split, it.Image)
		}
		out = append(out, gotItem{it.Origin, it.Label, it.Err != nil})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFolder(t *testing.T) {
	cases := []struct {
		name    string
		files   []string
		classes []string
		want    []gotItem
	}{
		{
			name:    "classes",
			files:   []string{"dog/b.PNG", "dog/a.jpeg", "cat/x.png", "cat/sub/y.tif", "cat/notes.txt", "empty/", "docs/readme.md"},
			classes: []string{"cat", "dog"},
			want:    []gotItem{{"cat/sub/y.tif", 0, false}, {"cat/x.png", 0, false}, {"dog/a.jpeg", 1, false}, {"dog/b.PNG", 1, false}},
		},
		{
			name:    "flat",
			files:   []string{"b.webp", "a.JPG", "c.gif", "d.bmp", "e.tiff", "f.png", "list.csv", "empty/"},
			classes: nil,
			want:    []gotItem{{"a.JPG", -1, false}, {"b.webp", -1, false}, {"c.gif", -1, false}, {"d.bmp", -1, false}, {"e.tiff", -1, false}, {"f.png", -1, false}},
		},
		{
			name:    "hidden",
			files:   []string{".git/x.png", "cat/.thumb.png", "cat/a.png", ".hidden.png", "dog/.cache/z.png", "dog/b.png"},
			classes: []string{"cat", "dog"},
			want:    []gotItem{{"cat/a.png", 0, false}, {"dog/b.png", 1, false}},
		},
		{
			name:    "images outside classes",
			files:   []string{"cat/a.png", "stray.png", "zzz.png"},
			classes: []string{"cat"},
			want:    []gotItem{{"cat/a.png", 0, false}, {"stray.png", -1, true}, {"zzz.png", -1, true}},
		},
		{
			name:  "empty",
			files: []string{"a/", "b/c/"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := tree(t, c.files...)
			f, err := NewFolder(root, false)
			if err != nil {
				t.Fatal(err)
			}
			if f.Format() != "folder" {
				t.Errorf("format %q", f.Format())
			}
			if !slices.Equal(f.Classes(), c.classes) || (c.classes == nil) != (f.Classes() == nil) {
				t.Errorf("classes %q, want %q", f.Classes(), c.classes)
			}
			got := items(t, f)
			if !slices.Equal(got, c.want) {
				t.Errorf("items\n%v\nwant\n%v", got, c.want)
			}
			if again := items(t, f); !slices.Equal(again, got) {
				t.Errorf("second walk differs:\n%v\n%v", again, got)
			}
		})
	}
}

func TestFolderErrors(t *testing.T) {
	if _, err := NewFolder(filepath.Join(t.TempDir(), "nope"), false); err == nil {
		t.Error("missing root: no error")
	}
	file := writeImageFile(t, t.TempDir(), "a.png", []byte("x"))
	if _, err := NewFolder(file, false); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file as root: %v", err)
	}
}

func TestFolderDanglingSymlink(t *testing.T) {
	root := tree(t, "cat/a.png")
	if err := os.Symlink(filepath.Join(root, "gone.png"), filepath.Join(root, "cat", "b.png")); err != nil {
		t.Skip("no symlinks:", err)
	}
	// A dangling link without an image name is ignored.
	os.Symlink(filepath.Join(root, "gone"), filepath.Join(root, "cat", "other"))
	for _, follow := range []bool{false, true} {
		f, err := NewFolder(root, follow)
		if err != nil {
			t.Fatal(err)
		}
		want := []gotItem{{"cat/a.png", 0, false}, {"cat/b.png", -1, true}}
		if got := items(t, f); !slices.Equal(got, want) {
			t.Errorf("follow %v: items %v, want %v", follow, got, want)
		}
	}
}

func TestFolderUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can read anything; TestFolderDanglingSymlink covers unreadable entries")
	}
	root := tree(t, "cat/a.png", "dog/b.png", "dog/locked/c.png")
	locked := filepath.Join(root, "dog", "locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(locked, 0o755)
	f, err := NewFolder(root, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []gotItem{{"cat/a.png", 0, false}, {"dog/b.png", 1, false}, {"dog/locked", -1, true}}
	if got := items(t, f); !slices.Equal(got, want) {
		t.Errorf("items %v, want %v", got, want)
	}
	if err := os.Chmod(filepath.Join(root, "cat", "a.png"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeFile(filepath.Join(root, "cat", "a.png"), Preprocess{}); !errors.Is(err, os.ErrPermission) {
		t.Errorf("unreadable file: %v", err)
	}
}

func TestFolderSymlinks(t *testing.T) {
	root := tree(t, "cat/a.png")
	other := tree(t, "x.png", "y.png")
	if err := os.Symlink(other, filepath.Join(root, "dog")); err != nil {
		t.Skip("no symlinks:", err)
	}
	must(t, os.Symlink(root, filepath.Join(root, "cat", "loop")))                       // back to the root
	must(t, os.Symlink(filepath.Join(root, "cat"), filepath.Join(root, "cat", "self"))) // to itself
	must(t, os.Symlink(filepath.Join(root, "cat", "a.png"), filepath.Join(root, "cat", "link.png")))

	done := make(chan struct{})
	var noFollow, follow []gotItem
	var classesNo, classesYes []string
	go func() {
		defer close(done)
		f, err := NewFolder(root, false)
		if err != nil {
			t.Error(err)
			return
		}
		classesNo, noFollow = f.Classes(), items(t, f)
		f, err = NewFolder(root, true)
		if err != nil {
			t.Error(err)
			return
		}
		classesYes, follow = f.Classes(), items(t, f)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("walking a tree with symlink loops did not finish")
	}
	// Not following: the linked folder "dog" is no class; a linked file is
	// a file.
	if want := []string{"cat"}; !slices.Equal(classesNo, want) {
		t.Errorf("no follow: classes %q, want %q", classesNo, want)
	}
	want := []gotItem{{"cat/a.png", 0, false}, {"cat/link.png", 0, false}}
	if !slices.Equal(noFollow, want) {
		t.Errorf("no follow: items %v, want %v", noFollow, want)
	}
	if want := []string{"cat", "dog"}; !slices.Equal(classesYes, want) {
		t.Errorf("follow: classes %q, want %q", classesYes, want)
	}
	want = []gotItem{
		{"cat/a.png", 0, false}, {"cat/link.png", 0, false},
		{"cat/loop", -1, true}, {"cat/self", -1, true},
		{"dog/x.png", 1, false}, {"dog/y.png", 1, false},
	}
	if !slices.Equal(follow, want) {
		t.Errorf("follow: items\n%v\nwant\n%v", follow, want)
	}
}

func TestFolderCancelled(t *testing.T) {
	root := tree(t, "a.png", "b.png")
	f, err := NewFolder(root, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Items(ctx, func(Item) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	stop := errors.New("stop")
	n := 0
	if err := f.Items(context.Background(), func(Item) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("yield error: got %v after %d items", err, n)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
