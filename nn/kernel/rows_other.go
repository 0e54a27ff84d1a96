//go:build !amd64 || purego

package kernel

// rowLevel is purego: without the assembly the row kernels are Go loops.
func rowLevel() int { return levelPurego }

// kernelFor returns the portable micro-kernel, the only one here, for
// GEMMs and direct convolutions.
func kernelFor(int) (gemm, conv microKernel) { return genericKernel, genericKernel }

func scaleShiftRowsAVX2(dst, x, s, b *float32, rows, c int, relu bool) { panic("unreachable") }

func affineGradRowsAVX2(dst, dy, mask, x, a, k, b *float32, rows, c int) { panic("unreachable") }

func colSumsAVX2(p1, p2, u, v, mask, su, sv *float32, rows, c int) { panic("unreachable") }

func axpyAVX2(alpha float32, x, y *float32, n int) { panic("unreachable") }

func dotAVX2(x, y *float32, n int) float32 { panic("unreachable") }
