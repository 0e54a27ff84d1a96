// Package layering holds the test that keeps the packages' dependency
// arrows pointing the way docs/design.md §2 draws them.
package layering

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/patchwise-ml/patchwise"

// allowed lists, for each package, the project packages it may depend on,
// directly or not. internal/fsutil (crash-safe file writes) depends on
// nothing and may be used by any package that writes files; internal/mpi
// (Open MPI, bound at run time) depends on nothing and only the pipeline
// and the command use it.
var allowed = map[string][]string{
	"internal/fsutil":     {},
	"internal/mpi":        {},
	"nn/kernel":           {},
	"nn":                  {"nn/kernel"},
	"nn/safetensors":      {},
	"data":                {"internal/fsutil"},
	"data/builtin":        {"data", "internal/fsutil"},
	"augment":             {"data", "internal/fsutil"},
	"pretext":             {"nn", "nn/kernel", "augment", "data", "internal/fsutil"},
	"probe":               {"nn", "nn/kernel", "data", "internal/fsutil"},
	"pipeline/checkpoint": {"nn", "nn/kernel", "internal/fsutil"},
	"pipeline/claim":      {"internal/fsutil"},
	"pipeline":            {"nn", "nn/kernel", "nn/safetensors", "data", "data/builtin", "augment", "pretext", "probe", "pipeline/checkpoint", "pipeline/claim", "internal/fsutil", "internal/mpi"},
	"cmd/patchwise":       {"nn", "nn/kernel", "nn/safetensors", "data", "data/builtin", "augment", "pretext", "probe", "pipeline", "pipeline/checkpoint", "pipeline/claim", "internal/fsutil", "internal/mpi"},
}

// forbidden lists import-path prefixes a package and everything it depends
// on in the project must not import: nn knows nothing of images or files,
// nor of MPI (its batch norm is synchronised through nn.Reducer).
var forbidden = map[string][]string{
	"nn": {"image", "github.com/disintegration/imaging", "github.com/klauspost/compress", "github.com/ebitengine/purego"},
}

// TestDependencyDirections parses the non-test Go files of the module (so
// that the test cache notices every change) and checks each package's
// transitive project imports against allowed.
func TestDependencyDirections(t *testing.T) {
	imports := readImports(t, "../..")
	for pkg, ok := range allowed {
		t.Run(pkg, func(t *testing.T) {
			if _, found := imports[pkg]; !found {
				t.Fatalf("package %s not found", pkg)
			}
			for _, dep := range closure(imports, pkg) {
				if dep != pkg && !slices.Contains(ok, dep) {
					t.Errorf("%s depends on %s, which docs/design.md §2 does not allow", pkg, dep)
				}
				for _, imp := range imports[dep] {
					for _, bad := range forbidden[pkg] {
						if imp == bad || strings.HasPrefix(imp, bad+"/") {
							t.Errorf("%s (through %s) imports %s", pkg, dep, imp)
						}
					}
				}
			}
		})
	}
}

// readImports maps each package directory under root (relative, with
// slashes) to the import paths of its non-test files.
func readImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	imports := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		for _, spec := range f.Imports {
			p, _ := strconv.Unquote(spec.Path.Value)
			imports[pkg] = append(imports[pkg], p)
		}
		if _, ok := imports[pkg]; !ok {
			imports[pkg] = nil
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return imports
}

// closure returns pkg and every project package it depends on.
func closure(imports map[string][]string, pkg string) []string {
	seen := map[string]bool{pkg: true}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, imp := range imports[p] {
			if rel, ours := strings.CutPrefix(imp, module+"/"); ours && !seen[rel] {
				seen[rel] = true
				queue = append(queue, rel)
			}
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
