//go:build !purego

package kernel

import "golang.org/x/sys/cpu"

var avx2Kernel = microKernel{name: "avx2-6x16", mr: 6, nr: 16, fn: kernelAVX2_6x16, conv: convKernelAVX2_6x16}

func init() {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		kernels = append(kernels, avx2Kernel)
		active = avx2Kernel
	}
}
