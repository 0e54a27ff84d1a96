package builtin

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/patchwise-ml/patchwise/data"
	"github.com/patchwise-ml/patchwise/internal/fsutil"
)

//go:generate go run ./internal/gen -o .

// files holds each dataset as written by the generator, in a folder of the
// dataset's name, and each dataset's licence notice as notice/NAME.txt.
//
//go:embed fashion-mnist-small mnist-small notice
var files embed.FS

// Names lists the embedded datasets: "fashion-mnist-small", "mnist-small".
var Names = []string{"fashion-mnist-small", "mnist-small"}

// NoticeFile is the name of the licence notice Materialize writes into a
// dataset's folder next to its manifest and shards.
const NoticeFile = "NOTICE.txt"

// lookup checks that name is one of Names.
func lookup(name string) error {
	if !slices.Contains(Names, name) {
		return fmt.Errorf("builtin: unknown dataset %q (embedded: %s)", name, strings.Join(Names, ", "))
	}
	return nil
}

// ID returns the embedded dataset's ID (the hex SHA-256 of its
// manifest.json, as data.Dataset.ID gives it once materialized), without
// writing anything. An unknown name gives an error listing Names.
func ID(name string) (string, error) {
	if err := lookup(name); err != nil {
		return "", err
	}
	b, err := files.ReadFile(path.Join(name, data.ManifestFile))
	if err != nil {
		return "", fmt.Errorf("builtin: dataset %q: %w", name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// Notice returns the licence and attribution notice of the embedded
// dataset name: where its images come from, who holds their copyright and
// under which licence they may be used and redistributed. It returns ""
// for a name not in Names.
func Notice(name string) string {
	if lookup(name) != nil {
		return ""
	}
	b, err := files.ReadFile(path.Join("notice", name+".txt"))
	if err != nil {
		return ""
	}
	return string(b)
}

// Materialize writes the embedded dataset name under dir, as dir/name,
// unless it is already there, and returns its path (dir joined with
// name). The folder holds the dataset (manifest.json and its shards, which
// data.Open reads) and its licence notice, NoticeFile.
//
// The files are written into a temporary folder next to dir/name, each
// fsynced, and the folder is renamed into place and dir synced: a crash
// leaves no half-written dataset at dir/name. dir and its parents are
// created when missing. When dir/name exists it must be the same dataset:
// one that data.Open accepts with the embedded dataset's ID; anything else
// there is an error naming the path, and Materialize changes nothing. An
// unknown name gives an error listing Names.
func Materialize(name, dir string) (string, error) {
	id, err := ID(name)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(dir, name)
	if ok, err := present(dst, name, id); err != nil {
		return "", err
	} else if ok {
		return dst, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("builtin: dataset %q: %w", name, err)
	}
	tmp, err := os.MkdirTemp(dir, name+".partial-")
	if err != nil {
		return "", fmt.Errorf("builtin: dataset %q: %w", name, err)
	}
	if err := fill(tmp, name); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("builtin: dataset %q: writing %q: %w", name, tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.RemoveAll(tmp)
		// Another process may have materialized it meanwhile.
		if ok, perr := present(dst, name, id); perr != nil {
			return "", perr
		} else if ok {
			return dst, nil
		}
		return "", fmt.Errorf("builtin: dataset %q: %w", name, err)
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return "", fmt.Errorf("builtin: dataset %q: %w", name, err)
	}
	return dst, nil
}

// present reports whether dst holds the dataset name with ID id. It
// returns an error when dst exists but is not that dataset.
func present(dst, name, id string) (bool, error) {
	if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("builtin: dataset %q: %w", name, err)
	}
	d, err := data.Open(dst)
	if err != nil {
		return false, fmt.Errorf("builtin: dataset %q: %q exists but is not that dataset: remove it or choose another folder: %w", name, dst, err)
	}
	if d.ID() != id {
		return false, fmt.Errorf("builtin: dataset %q: %q holds another dataset (ID %.12s…, want %.12s…): remove it or choose another folder",
			name, dst, d.ID(), id)
	}
	return true, nil
}

// fill writes the embedded files of dataset name, and its notice, into the
// folder tmp, each synced, then syncs tmp.
func fill(tmp, name string) error {
	// MkdirTemp makes the folder private; a dataset is for sharing.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	entries, err := files.ReadDir(name)
	if err != nil {
		return err
	}
	copyFile := func(src, dst string) error {
		f, err := files.Open(src)
		if err != nil {
			return err
		}
		defer f.Close()
		return fsutil.WriteSynced(filepath.Join(tmp, dst), fsutil.CreateExcl, func(w io.Writer) error {
			_, err := io.Copy(w, f)
			return err
		})
	}
	for _, e := range entries {
		if err := copyFile(path.Join(name, e.Name()), e.Name()); err != nil {
			return err
		}
	}
	if err := copyFile(path.Join("notice", name+".txt"), NoticeFile); err != nil {
		return err
	}
	return fsutil.SyncDir(tmp)
}
