//go:build !purego

package kernel

var (
	avx2Kernel = microKernel{name: "avx2-6x16", mr: 6, nr: 16, kc: 256,
		fn: kernelAVX2_6x16, conv: convKernelAVX2_6x16, scatter: scatterRow16AVX2}
	// The AVX-512 GEMM tile, 6×64 (24 zmm accumulators), and the one of
	// the direct convolutions, 8×32, whose tiles the reference models'
	// 16- and 32-pixel rows and 32…256 channels fill exactly; Gemm also
	// takes 8×32 when it pads fewer columns of C. kc keeps one B
	// micro-panel (kc·nr floats) at 32 KiB, in L1.
	avx512Kernel = microKernel{name: "avx512-6x64", mr: 6, nr: 64, kc: 128,
		fn: kernelAVX512_6x64, conv: convKernelAVX512_6x64, scatter: scatterRow64AVX512}
	avx512ConvKernel = microKernel{name: "avx512-8x32", mr: 8, nr: 32, kc: 256,
		fn: kernelAVX512_8x32, conv: convKernelAVX512_8x32, scatter: scatterRow32AVX512}
	avx512NarrowKernel = microKernel{name: "avx512-8x16", mr: 8, nr: 16, kc: 256,
		fn: kernelAVX512_8x16, conv: convKernelAVX512_8x16, scatter: scatterRow16AVX512}
	avx512ShortKernel = microKernel{name: "avx512-4x32", mr: 4, nr: 32, kc: 256,
		fn: kernelAVX512_4x32, conv: convKernelAVX512_4x32, scatter: scatterRow32AVX512}
)

// kernelFor returns the micro-kernels of path level l for GEMMs, for
// direct convolutions, for direct convolutions with few output channels
// (at most narrow.nr), and short: conv's tile with fewer rows (or conv
// itself), for the rows that conv's tiles leave over.
func kernelFor(l int) (gemm, conv, narrow, short microKernel) {
	switch {
	case l >= levelAVX512:
		return avx512Kernel, avx512ConvKernel, avx512NarrowKernel, avx512ShortKernel
	case l >= levelAVX2:
		return avx2Kernel, avx2Kernel, avx2Kernel, avx2Kernel
	}
	return genericKernel, genericKernel, genericKernel, genericKernel
}
