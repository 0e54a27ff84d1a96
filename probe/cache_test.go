package probe

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCachedRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache", "features") // created by Cached
	key := CacheKey{Encoder: "pixels", Dataset: "abc123", Split: "train", Stage: 2, Pooled: 4}
	want := blobs(1, 50, 7, 3, 1)
	calls := 0
	compute := func() (*Features, error) { calls++; return want, nil }

	f, hit, err := Cached(dir, key, compute)
	if err != nil || hit || calls != 1 || f != want {
		t.Fatalf("first call: hit %v, %d computes, err %v", hit, calls, err)
	}
	f, hit, err = Cached(dir, key, compute)
	if err != nil || !hit || calls != 1 {
		t.Fatalf("second call: hit %v, %d computes, err %v", hit, calls, err)
	}
	if !reflect.DeepEqual(f, want) {
		t.Errorf("cached features differ from the computed ones")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != key.FileName() {
		t.Errorf("cache directory holds %v, want only %s", entries, key.FileName())
	}

	// Any part of the key is another entry.
	for _, other := range []CacheKey{
		{Encoder: "e1", Dataset: "abc123", Split: "train", Stage: 2, Pooled: 4},
		{Encoder: "pixels", Dataset: "abc124", Split: "train", Stage: 2, Pooled: 4},
		{Encoder: "pixels", Dataset: "abc123", Split: "test", Stage: 2, Pooled: 4},
		{Encoder: "pixels", Dataset: "abc123", Split: "train", Stage: 3, Pooled: 4},
		{Encoder: "pixels", Dataset: "abc123", Split: "train", Stage: 2, Pooled: 1},
	} {
		if other.FileName() == key.FileName() {
			t.Errorf("%+v and %+v share a file name", other, key)
		}
	}

	// Errors from compute come back as they are, and nothing is stored.
	boom := errors.New("boom")
	other := CacheKey{Encoder: "e2", Dataset: "d", Split: "test"}
	if _, _, err := Cached(dir, other, func() (*Features, error) { return nil, boom }); err != boom {
		t.Errorf("compute error: got %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, other.FileName())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed compute left a file: %v", err)
	}
	// Bad computed features are refused and not stored.
	bad := blobs(1, 5, 2, 2, 1)
	bad.Labels[3] = 7
	if _, _, err := Cached(dir, other, func() (*Features, error) { return bad, nil }); err == nil || !strings.Contains(err.Error(), "label 7") {
		t.Errorf("bad features: got %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("cache directory holds %d entries after failures, want 1", len(entries))
	}
}

// TestCachedCorrupt damages a cache file in several ways: each gives a
// *CacheError naming the file, and compute is not called.
func TestCachedCorrupt(t *testing.T) {
	key := CacheKey{Encoder: "pixels", Dataset: "ds", Split: "test"}
	want := blobs(2, 20, 4, 2, 1)
	for _, tc := range []struct {
		name   string
		damage func(b []byte) []byte
		msg    string
	}{
		{"flipped value", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }, "checksum mismatch"},
		{"flipped header", func(b []byte) []byte { b[20] ^= 1; return b }, "header checksum mismatch"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-9] }, "truncated"},
		{"empty", func(b []byte) []byte { return nil }, "truncated header"},
		{"version", func(b []byte) []byte { b[8] = 9; return b }, "format version 9 not supported"},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, "bad magic"},
		{"trailing", func(b []byte) []byte { return append(b, 0) }, "trailing bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, _, err := Cached(dir, key, func() (*Features, error) { return want, nil }); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, key.FileName())
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, tc.damage(b), 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err = Cached(dir, key, func() (*Features, error) {
				t.Error("compute called over a corrupt cache file")
				return want, nil
			})
			var ce *CacheError
			if !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("error %v: want a *CacheError for %s", err, path)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not name the file and say %q", err, tc.msg)
			}
		})
	}

	// A file holding another key's features (a renamed file) is refused.
	dir := t.TempDir()
	other := CacheKey{Encoder: "pixels", Dataset: "ds", Split: "train"}
	if _, _, err := Cached(dir, other, func() (*Features, error) { return want, nil }); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, other.FileName()), filepath.Join(dir, key.FileName())); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Cached(dir, key, nil); err == nil || !strings.Contains(err.Error(), "holds the features of") {
		t.Errorf("renamed file: error %v", err)
	}
}

// FuzzReadCache feeds arbitrary bytes to the cache reader: it must return
// features that pass Check, or a *CacheError, and never panic.
func FuzzReadCache(f *testing.F) {
	key := CacheKey{Encoder: "pixels", Dataset: "d", Split: "train", Stage: 0, Pooled: 0}
	good := &Features{N: 3, D: 2, X: []float32{1, 2, 3, 4, 5, 6}, Labels: []int{0, 1, 0}, Classes: 2}
	var buf bytes.Buffer
	if err := writeCache(&buf, key, good); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:20])
	f.Add([]byte(cacheMagic))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "f.pwf")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		feats, err := readCache(path, key)
		if err != nil {
			var ce *CacheError
			if !errors.As(err, &ce) || ce.Path != path {
				t.Fatalf("error %v is not a *CacheError naming the file", err)
			}
			return
		}
		if err := feats.Check(); err != nil {
			t.Fatalf("accepted features fail Check: %v", err)
		}
	})
}
