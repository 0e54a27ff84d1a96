package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// isa is an x86 vector instruction set, the parameter of every kernel
// description: AVX2 with FMA (16 ymm registers of 8 float32) or AVX-512F
// (32 zmm registers of 16 float32, and opmask registers).
type isa struct {
	name  string // in function names: "AVX2", "AVX512"
	lanes int    // float32 values per vector
	regs  int    // vector registers
}

var (
	avx2   = isa{name: "AVX2", lanes: 8, regs: 16}
	avx512 = isa{name: "AVX512", lanes: 16, regs: 32}
)

// bytes is the size of one vector in bytes.
func (s isa) bytes() int { return 4 * s.lanes }

// v returns vector register i (Y i or Z i).
func (s isa) v(i int) reg.VecPhysical {
	if i < 0 || i >= s.regs {
		panic(fmt.Sprintf("asmgen: %s has no vector register %d", s.name, i))
	}
	if s.lanes == 16 {
		return zregs[i]
	}
	return yregs[i]
}

// half returns the register of the lower half of vector register i (X i
// for AVX2, Y i for AVX-512).
func (s isa) half(i int) reg.VecPhysical {
	if s.lanes == 16 {
		return yregs[i]
	}
	return xregs[i]
}

// fn names a kernel for this instruction set: fn("axpy") is "axpyAVX2".
func (s isa) fn(base string) string { return base + s.name }

// zero sets vector register r to +0.
func (s isa) zero(r reg.VecPhysical) { VXORPS(r, r, r) }

// gatePositive sets dst to src where t > 0 and +0 elsewhere (NaN counts
// as not > 0); dst may be src. zero holds +0; t is clobbered (AVX2) and
// reg.K1 is clobbered (AVX-512).
func (s isa) gatePositive(dst, src, t, zero reg.VecPhysical) {
	if s.lanes == 16 {
		VCMPPS(U8(0x01), t, zero, reg.K1) // 0 < t, ordered
		VMOVAPS_Z(src, reg.K1, dst)
		return
	}
	VCMPPS(U8(0x0E), zero, t, t) // t > 0, ordered
	VANDPS(src, t, dst)
}

var (
	xregs = []reg.VecPhysical{reg.X0, reg.X1, reg.X2, reg.X3, reg.X4, reg.X5, reg.X6, reg.X7,
		reg.X8, reg.X9, reg.X10, reg.X11, reg.X12, reg.X13, reg.X14, reg.X15}
	yregs = []reg.VecPhysical{reg.Y0, reg.Y1, reg.Y2, reg.Y3, reg.Y4, reg.Y5, reg.Y6, reg.Y7,
		reg.Y8, reg.Y9, reg.Y10, reg.Y11, reg.Y12, reg.Y13, reg.Y14, reg.Y15,
		reg.Y16, reg.Y17, reg.Y18, reg.Y19, reg.Y20, reg.Y21, reg.Y22, reg.Y23,
		reg.Y24, reg.Y25, reg.Y26, reg.Y27, reg.Y28, reg.Y29, reg.Y30, reg.Y31}
	zregs = []reg.VecPhysical{reg.Z0, reg.Z1, reg.Z2, reg.Z3, reg.Z4, reg.Z5, reg.Z6, reg.Z7,
		reg.Z8, reg.Z9, reg.Z10, reg.Z11, reg.Z12, reg.Z13, reg.Z14, reg.Z15,
		reg.Z16, reg.Z17, reg.Z18, reg.Z19, reg.Z20, reg.Z21, reg.Z22, reg.Z23,
		reg.Z24, reg.Z25, reg.Z26, reg.Z27, reg.Z28, reg.Z29, reg.Z30, reg.Z31}
)

// at is the memory operand base + index·scale + disp.
func at(base reg.Register, index reg.Register, scale uint8, disp int) Mem {
	m := Mem{Base: base, Disp: disp}
	if index != nil {
		m.Index, m.Scale = index, scale
	}
	return m
}

// label returns a label local to the current function, prefixed with the
// function's short name so the assembly reads well.
func lbl(prefix, name string) string { return prefix + "_" + name }
