//go:build !purego

package kernel

import "golang.org/x/sys/cpu"

var haveRowKernels = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// The AVX2 row kernels, in rows_amd64.s; c is a positive multiple of 8.

//go:noescape
func scaleShiftRowsAVX2(dst, x, s, b *float32, rows, c int, relu bool)

//go:noescape
func affineGradRowsAVX2(dst, dy, mask, x, a, k, b *float32, rows, c int)

//go:noescape
func colSumsAVX2(p1, p2, u, v, mask, su, sv *float32, rows, c int)

//go:noescape
func axpyAVX2(alpha float32, x, y *float32, n int)

//go:noescape
func dotAVX2(x, y *float32, n int) float32
