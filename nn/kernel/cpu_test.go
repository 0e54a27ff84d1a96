package kernel

import (
	"errors"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// forPaths runs fn as one subtest per path this CPU runs, named after
// it, with that path selected; the path in use comes back afterwards.
func forPaths(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	for _, p := range Paths() {
		t.Run(p, func(t *testing.T) {
			usePath(t, p)
			fn(t)
		})
	}
}

// usePath selects path p for the rest of test t.
func usePath(t testing.TB, p string) {
	t.Helper()
	old := Path()
	if err := SetPath(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { SetPath(old) })
}

// TestEnvironmentPath fails when PATCHWISE_CPU names a path that was not
// honoured, so that a forced-path test run cannot silently test another.
func TestEnvironmentPath(t *testing.T) {
	v := strings.ToLower(os.Getenv(EnvVar))
	if v == "" || v == "auto" {
		if err := EnvError(); err != nil {
			t.Fatalf("EnvError = %v with %s unset", err, EnvVar)
		}
		if got := Path(); got != Paths()[0] {
			t.Errorf("Path = %s, want the best, %s", got, Paths()[0])
		}
		return
	}
	if err := EnvError(); err != nil {
		t.Fatal(err)
	}
	if got := Path(); got != v {
		t.Fatalf("%s=%s but Path = %s", EnvVar, v, got)
	}
	t.Logf("forced path: %s (this CPU runs %v)", v, Paths())
}

func TestSetPath(t *testing.T) {
	ps := Paths()
	if ps[len(ps)-1] != PathPurego {
		t.Fatalf("Paths = %v: purego must always be there, last", ps)
	}
	if runtime.GOARCH != "amd64" && len(ps) != 1 {
		t.Errorf("Paths = %v on %s", ps, runtime.GOARCH)
	}
	old := Path()
	defer SetPath(old)
	for _, p := range ps {
		if err := SetPath(strings.ToUpper(p)); err != nil {
			t.Fatalf("SetPath(%q): %v", p, err)
		}
		if gemm, _, _, _ := kernelFor(level); Path() != p || active.name != gemm.name {
			t.Errorf("after SetPath(%q): Path %s, micro-kernel %s", p, Path(), active.name)
		}
	}
	for _, bad := range []string{"avx-512", "sse", ""} {
		if err := SetPath(bad); !errors.Is(err, ErrPath) {
			t.Errorf("SetPath(%q) = %v, want ErrPath", bad, err)
		}
	}
	if !slices.Contains(ps, PathAVX512) {
		if err := SetPath(PathAVX512); !errors.Is(err, ErrPath) {
			t.Errorf("SetPath(avx512) on a CPU without it = %v, want ErrPath", err)
		}
	}
	if Path() != ps[len(ps)-1] {
		t.Errorf("a failed SetPath changed the path to %s", Path())
	}
}
