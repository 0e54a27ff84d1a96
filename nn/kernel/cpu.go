package kernel

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
)

// The kernels come in instruction-set paths, chosen once at start-up from
// the CPU's features (golang.org/x/sys/cpu):
//
//	avx512  AVX-512F: 512-bit GEMM, convolution and row kernels
//	avx2    AVX2 and FMA: 256-bit kernels
//	purego  portable Go, on every CPU and with the purego build tag
//
// The environment variable PATCHWISE_CPU forces a path no higher than the
// CPU's best (PATCHWISE_CPU=avx2 on an AVX-512 machine runs and tests the
// AVX2 kernels; auto or empty means the best). An unknown name, or a path
// this CPU or build cannot run, is not honoured: the kernels keep the
// CPU's best path and EnvError reports why, so a program can warn and a
// test can fail. Results are bitwise reproducible for any number of
// workers on a given path; different paths round differently.
const (
	PathAVX512 = "avx512"
	PathAVX2   = "avx2"
	PathPurego = "purego"
)

// EnvVar is the environment variable that forces a path.
const EnvVar = "PATCHWISE_CPU"

// Path levels, in the order of the paths' names below.
const (
	levelPurego = iota
	levelAVX2
	levelAVX512
)

var pathNames = [...]string{levelPurego: PathPurego, levelAVX2: PathAVX2, levelAVX512: PathAVX512}

// ErrPath is wrapped by the errors of SetPath and EnvError.
var ErrPath = errors.New("unknown or unsupported kernel path")

var (
	// level is the path in use; best is the highest this CPU and build
	// can run (cpuLevel).
	level, best int
	envErr      error
)

func init() {
	best = cpuLevel()
	for l := best; l >= levelPurego; l-- {
		gemm, conv, narrow, short := kernelFor(l)
		for _, mk := range []microKernel{gemm, conv, narrow, short} {
			if !slices.ContainsFunc(kernels, func(k microKernel) bool { return k.name == mk.name }) {
				kernels = append(kernels, mk)
			}
		}
	}
	setLevel(best)
	switch v := os.Getenv(EnvVar); strings.ToLower(v) {
	case "", "auto":
	default:
		if err := SetPath(v); err != nil {
			envErr = fmt.Errorf("kernel: %s=%s: %w", EnvVar, v, err)
		}
	}
}

// Path returns the name of the path in use.
func Path() string { return pathNames[level] }

// Paths returns the paths this CPU and build can run, best first.
func Paths() []string {
	var ps []string
	for l := best; l >= levelPurego; l-- {
		ps = append(ps, pathNames[l])
	}
	return ps
}

// EnvError returns why PATCHWISE_CPU was not honoured at start-up, or nil
// when it was unset, auto, or honoured.
func EnvError() error { return envErr }

// SetPath switches every kernel to the named path, one of Paths(). It
// returns an error wrapping ErrPath, and changes nothing, for any other
// name. It is for tests and benchmarks that compare paths in one process:
// it must not run while a kernel runs.
func SetPath(name string) error {
	for l, n := range pathNames {
		if n == strings.ToLower(name) {
			if l > best {
				return fmt.Errorf("path %q: %w: this CPU and build run %s", name, ErrPath, strings.Join(Paths(), ", "))
			}
			setLevel(l)
			return nil
		}
	}
	return fmt.Errorf("path %q: %w: want one of %s", name, ErrPath, strings.Join(Paths(), ", "))
}

// setLevel selects the micro-kernels and the row kernels of path l.
func setLevel(l int) {
	level = l
	active, activeConv, activeNarrow, activeShort = kernelFor(l)
}
