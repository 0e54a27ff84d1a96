package fsutil

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Replace(path, func(w io.Writer) error {
		w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("a failed Replace changed the file to %q", b)
	}
	if err := Replace(path, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("file is %q, want new", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestWriteSyncedExcl(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	fill := func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }
	if err := WriteSynced(path, CreateExcl, fill); err != nil {
		t.Fatal(err)
	}
	if err := WriteSynced(path, CreateExcl, fill); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second write: err = %v, want ErrExist", err)
	}
	if err := SyncDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
}

func TestWriteNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	fill := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := w.Write([]byte(s)); return err }
	}
	boom := errors.New("boom")
	if err := WriteNew(path, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed WriteNew left %s: %v", path, err)
	}
	if err := WriteNew(path, fill("first")); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(path, fill("second")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second write: err = %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("file is %q, want first", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}
