//go:build !amd64 || purego

package kernel

// rowLevel is purego: without the assembly the row kernels are Go loops.
func rowLevel() int { return levelPurego }

// kernelFor returns the portable micro-kernel, the only one here, for
// GEMMs and direct convolutions.
func kernelFor(int) (gemm, conv, narrow, short microKernel) {
	return genericKernel, genericKernel, genericKernel, genericKernel
}
