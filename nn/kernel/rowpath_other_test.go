//go:build !amd64 || purego

package kernel

import "testing"

// forceGenericRows reports false: without the assembly, haveRowKernels is
// the constant false and the row kernels always take their Go loops.
func forceGenericRows(t *testing.T) bool { return false }
