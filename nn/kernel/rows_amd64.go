//go:build !purego

package kernel

import "golang.org/x/sys/cpu"

var haveRowKernels = cpu.X86.HasAVX2 && cpu.X86.HasFMA
