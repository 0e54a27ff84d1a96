// Command asmgen writes package kernel's amd64 assembly and its Go
// declarations with avo (github.com/mmcloughlin/avo). Every kernel is
// described once, by a Go function that takes the instruction set as a
// parameter (vector width, register count, how a comparison yields a
// mask), and is instantiated for AVX2 (256-bit ymm) and AVX-512 (512-bit
// zmm). Run through go generate in package kernel:
//
//	go generate ./nn/kernel
//
// which rewrites kernels_amd64.s and kernels_amd64.go; CI checks that
// the committed files are what this command writes.
package main

import (
	. "github.com/mmcloughlin/avo/build"
)

func main() {
	ConstraintExpr("!purego")
	for _, s := range []isa{avx2, avx512} {
		for _, t := range gemmTiles[s.name] {
			gemmKernel(s, t)
			if t.mr <= 15 {
				convKernel(s, t)
			}
		}
		scatterRow(s, 16)
		if s.lanes == 16 {
			scatterRow(s, 32)
			scatterRow(s, 64)
		}
		scaleShiftRows(s)
		affineGradRows(s)
		colSums(s)
		axpy(s)
		dot(s)
	}
	Generate()
}
