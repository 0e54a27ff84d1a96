//go:build !purego

package kernel

import "golang.org/x/sys/cpu"

// kernelAVX2_6x16 is the AVX2/FMA micro-kernel (see microKernel), in
// sgemm_amd64.s.
//
//go:noescape
func kernelAVX2_6x16(k int, a *float32, rs, ks int, b, c *float32, ldc int, accumulate bool)

// scatterRow16AVX2 copies one row of a plain B into its 16-wide packed
// panels, in sgemm_amd64.s.
//
//go:noescape
func scatterRow16AVX2(dst, src *float32, panels, stride int)

// convKernelAVX2_6x16 is the AVX2/FMA direct-convolution micro-kernel, in
// sgemm_amd64.s.
//
//go:noescape
func convKernelAVX2_6x16(taps int, offs *int, c int, a *float32, rs int, b, out *float32, ldc int, accumulate bool)

var avx2Kernel = microKernel{name: "avx2-6x16", mr: 6, nr: 16, fn: kernelAVX2_6x16, conv: convKernelAVX2_6x16}

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		kernels = append(kernels, avx2Kernel)
		active = avx2Kernel
	}
}
