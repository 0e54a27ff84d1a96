//go:build !purego

package kernel

import "testing"

// forceGenericRows makes the row kernels take their portable Go loops for
// the rest of the test t, even for widths that are multiples of 8, and
// reports true; the CPU's choice comes back when t ends.
func forceGenericRows(t *testing.T) bool {
	t.Helper()
	old := haveRowKernels
	haveRowKernels = false
	t.Cleanup(func() { haveRowKernels = old })
	return true
}
