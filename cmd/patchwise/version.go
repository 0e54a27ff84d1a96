package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/patchwise-ml/patchwise/nn/kernel"
	"github.com/patchwise-ml/patchwise/pipeline"
)

var versionCmd = &command{
	name:    "version",
	summary: "print the patchwise and Go versions",
	usage: `patchwise version

Version prints the module version patchwise was built from ("devel" for a
build from a working tree), the Go version, and the OS and architecture;
then the instruction-set path its compute kernels run on (avx512, avx2 or
purego: the best the CPU has, or the one PATCHWISE_CPU forces) and the
paths this CPU could run; then whether Open MPI's library, which
'pretrain --distributed mpi' opens at run time, is found (its path and MPI
version) or why not.`,
	example: `patchwise version`,
}

func init() { versionCmd.run = runVersion }

// runVersion implements 'patchwise version'.
func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(versionCmd)
	if err := parseFlags(versionCmd, fs, args, stdout); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "patchwise %s %s %s/%s\nkernels %s (available: %s)\nmpi %s\n", pipeline.Version(), pipeline.GoVersion(),
		runtime.GOOS, runtime.GOARCH, kernel.Path(), strings.Join(kernel.Paths(), ", "), pipeline.MPIStatus())
	return err
}
