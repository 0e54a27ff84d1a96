// Package fsutil holds the crash-safe file writing that the dataset,
// checkpoint and report writers share: files are written, fsynced and
// closed before they count, replaced by renaming a synced temporary file
// over them, and the directory holding them is synced after a rename, so
// a crash leaves either the old file or the new one, never a mix.
package fsutil

import (
	"io"
	"os"
	"path/filepath"
)

// File is what WriteSynced writes to: an *os.File, or a stand-in that
// tests use to inject failures.
type File interface {
	io.Writer
	Sync() error
	Close() error
}

// CreateExcl creates path for writing with mode 0644; it fails if path
// exists.
func CreateExcl(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// WriteSynced creates path with create, writes it with fill, then syncs and
// closes it, returning the first error.
func WriteSynced(path string, create func(string) (File, error), fill func(io.Writer) error) error {
	f, err := create(path)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncDir fsyncs the directory dir, making the renames and creations in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Replace writes path atomically with fill: into a temporary file in the
// same directory, synced and closed, then renamed over path, and the
// directory synced. On any error the temporary file is removed and path is
// left as it was.
func Replace(path string, fill func(io.Writer) error) error {
	return install(path, fill, os.Rename)
}

// WriteNew writes path atomically with fill, as Replace does, but never
// replaces an existing file: it fails with an error matching fs.ErrExist
// if path exists (also when it appears while fill runs).
func WriteNew(path string, fill func(io.Writer) error) error {
	return install(path, fill, func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil {
			return err
		}
		return os.Remove(tmp)
	})
}

// install writes a synced temporary file beside path with fill and puts it
// in place with move.
func install(path string, fill func(io.Writer) error, move func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = f.Chmod(0o644)
	if err == nil {
		err = fill(f)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = move(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return SyncDir(dir)
}
