//go:build !purego

package kernel

var avx2Kernel = microKernel{name: "avx2-6x16", mr: 6, nr: 16, fn: kernelAVX2_6x16, conv: convKernelAVX2_6x16, scatter: scatterRow16AVX2}

// kernelFor returns the micro-kernel of path level l.
func kernelFor(l int) microKernel {
	if l >= levelAVX2 {
		return avx2Kernel
	}
	return genericKernel
}
