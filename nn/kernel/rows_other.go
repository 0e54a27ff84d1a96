//go:build !amd64 || purego

package kernel

const haveRowKernels = false

func scaleShiftRowsAVX2(dst, x, s, b *float32, rows, c int, relu bool) { panic("unreachable") }

func affineGradRowsAVX2(dst, dy, mask, x, a, k, b *float32, rows, c int) { panic("unreachable") }

func colSumsAVX2(p1, p2, u, v, mask, su, sv *float32, rows, c int) { panic("unreachable") }

func axpyAVX2(alpha float32, x, y *float32, n int) { panic("unreachable") }

func dotAVX2(x, y *float32, n int) float32 { panic("unreachable") }

func scatterRow16AVX2(dst, src *float32, panels, stride int) { panic("unreachable") }
