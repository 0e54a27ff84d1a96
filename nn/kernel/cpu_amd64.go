//go:build !purego

package kernel

import "golang.org/x/sys/cpu"

// cpuLevel is the best path this CPU runs. x/sys/cpu reports AVX-512F
// only when the operating system saves the zmm state.
func cpuLevel() int {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return levelAVX512
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return levelAVX2
	}
	return levelPurego
}
