package builtin

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/patchwise-ml/patchwise/data"
)

// Prefix marks an embedded dataset where a dataset directory is expected:
// "builtin:NAME" is the embedded dataset NAME.
const Prefix = "builtin:"

// Parse reports whether arg names an embedded dataset, "builtin:NAME",
// and returns NAME, which is not checked against Names.
func Parse(arg string) (name string, ok bool) {
	return strings.CutPrefix(arg, Prefix)
}

// Args returns the names of the embedded datasets as arguments:
// "builtin:fashion-mnist-small, builtin:mnist-small".
func Args() string {
	return Prefix + strings.Join(Names, ", "+Prefix)
}

// CacheDir returns the folder under which Resolve materializes embedded
// datasets: patchwise/datasets in the user's cache folder
// (os.UserCacheDir: $XDG_CACHE_HOME or ~/.cache on Linux).
func CacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("builtin: no cache folder for the embedded datasets: %w", err)
	}
	return filepath.Join(dir, "patchwise", "datasets"), nil
}

// Resolve returns the dataset directory that arg names: arg itself, or
// for "builtin:NAME" the embedded dataset NAME materialized under cacheDir
// ("" means CacheDir()), in a folder named by the first 16 hex digits of
// its ID, so that builds embedding other data never share a folder. The
// dataset is written on first use (see Materialize) and found afterwards.
// An unknown NAME gives an error listing Names.
func Resolve(arg, cacheDir string) (string, error) {
	name, ok := Parse(arg)
	if !ok {
		return arg, nil
	}
	id, err := ID(name)
	if err != nil {
		return "", err
	}
	if cacheDir == "" {
		if cacheDir, err = CacheDir(); err != nil {
			return "", err
		}
	}
	return Materialize(name, filepath.Join(cacheDir, id[:16]))
}

// Open opens the dataset that arg names, a dataset directory or
// "builtin:NAME", with data.Open, materializing an embedded dataset under
// CacheDir first (see Resolve). It is how every command opens a dataset
// argument.
func Open(arg string) (*data.Dataset, error) {
	dir, err := Resolve(arg, "")
	if err != nil {
		return nil, err
	}
	return data.Open(dir)
}
