package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The row kernels work on row-major matrices of c columns, c a positive
// multiple of the vector width, with per-column coefficients (see rows.go
// in package kernel for their contracts).

// colLoop emits a loop over the columns of one row: BX runs from 0 to
// R10 (the row's width in bytes) in steps of one vector; body gets the
// memory operand of the current vector at a base register.
func colLoop(s isa, label string, body func(col func(base reg.Register) Mem)) {
	XORQ(reg.RBX, reg.RBX)
	Label(label)
	body(func(base reg.Register) Mem { return at(base, reg.RBX, 1, 0) })
	ADDQ(U8(s.bytes()), reg.RBX)
	CMPQ(reg.RBX, reg.R10)
	JL(LabelRef(label))
}

// scaleShiftRows: dst[r][j] = x[r][j]·s[j] + b[j], then max(·, +0) with relu.
func scaleShiftRows(s isa) {
	text(s.fn("scaleShiftRows"), "func(dst, x, s, b *float32, rows, c int, relu bool)")
	Doc(s.fn("scaleShiftRows") + " is ScaleShiftRows for c a multiple of the vector width.")
	Load(Param("dst"), reg.RDI)
	Load(Param("x"), reg.RSI)
	Load(Param("s"), reg.R8)
	Load(Param("b"), reg.R9)
	Load(Param("rows"), reg.RCX)
	Load(Param("c"), reg.R10)
	SHLQ(U8(2), reg.R10)
	Load(Param("relu"), reg.RAX)
	zero := s.v(15)
	s.zero(zero)
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("ss_done"))
	TESTB(reg.AL, reg.AL)
	JNE(LabelRef("ss_relurow"))
	for _, relu := range []bool{false, true} {
		name := "ss_row"
		if relu {
			name = "ss_relurow"
		}
		Label(name)
		colLoop(s, name+"col", func(col func(reg.Register) Mem) {
			VMOVUPS(col(reg.RSI), s.v(0))
			VMOVUPS(col(reg.R8), s.v(1))
			VFMADD213PS(col(reg.R9), s.v(1), s.v(0))
			if relu {
				VMAXPS(zero, s.v(0), s.v(0))
			}
			VMOVUPS(s.v(0), col(reg.RDI))
		})
		ADDQ(reg.R10, reg.RSI)
		ADDQ(reg.R10, reg.RDI)
		DECQ(reg.RCX)
		JNE(LabelRef(name))
		if !relu {
			JMP(LabelRef("ss_done"))
		}
	}
	Label("ss_done")
	VZEROUPPER()
	RET()
}

// affineGradRows: dst[r][j] = g·a[j] + x[r][j]·k[j] + b[j], g = dy[r][j]
// where the gate lets x[r][j] through when the gate (2c floats: scales,
// then shifts) is not nil: x·scale + shift > 0, computed as
// scaleShiftRows computes it.
func affineGradRows(s isa) {
	text(s.fn("affineGradRows"), "func(dst, dy, gate, x, a, k, b *float32, rows, c int)")
	Doc(s.fn("affineGradRows") + " is AffineGradRows for c a multiple of the vector width.")
	Load(Param("dst"), reg.RDI)
	Load(Param("dy"), reg.RSI)
	Load(Param("gate"), reg.R11)
	Load(Param("x"), reg.RDX)
	Load(Param("a"), reg.R8)
	Load(Param("k"), reg.R9)
	Load(Param("b"), reg.R12)
	Load(Param("rows"), reg.RCX)
	Load(Param("c"), reg.R10)
	SHLQ(U8(2), reg.R10)
	// The gate's shifts, c floats after its scales.
	LEAQ(at(reg.R11, reg.R10, 1, 0), reg.R13)
	zero := s.v(15)
	s.zero(zero)
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("ag_done"))
	TESTQ(reg.R11, reg.R11)
	JNE(LabelRef("ag_gaterow"))
	for _, gated := range []bool{false, true} {
		name := "ag_row"
		if gated {
			name = "ag_gaterow"
		}
		Label(name)
		colLoop(s, name+"col", func(col func(reg.Register) Mem) {
			VMOVUPS(col(reg.RDX), s.v(1))
			VMOVUPS(col(reg.RSI), s.v(0))
			if gated {
				VMOVUPS(col(reg.R11), s.v(2))
				VMOVAPS(s.v(1), s.v(3))
				VFMADD213PS(col(reg.R13), s.v(2), s.v(3))
				s.gatePositive(s.v(0), s.v(0), s.v(3), zero)
			}
			VMULPS(col(reg.R8), s.v(0), s.v(0))
			VFMADD231PS(col(reg.R9), s.v(1), s.v(0))
			VADDPS(col(reg.R12), s.v(0), s.v(0))
			VMOVUPS(s.v(0), col(reg.RDI))
		})
		ADDQ(reg.R10, reg.RSI)
		ADDQ(reg.R10, reg.RDX)
		ADDQ(reg.R10, reg.RDI)
		DECQ(reg.RCX)
		JNE(LabelRef(name))
		if !gated {
			JMP(LabelRef("ag_done"))
		}
	}
	Label("ag_done")
	VZEROUPPER()
	RET()
}

// colSums: p1[j] += Σ_r d[r][j], p2[j] += Σ_r d[r][j]·w[r][j], with
// d = (u where the gate lets v through) − su and w = v − sv, or d when v
// is nil (the gate, 2c floats of scales then shifts, needs v).
// The sums run down each column in registers, over every row for a
// block of four vectors of columns at a time (two for AVX2) while whole
// blocks are left, then blocks of two and one: the same additions in the
// same order as summing into p1 and p2 row by row, without a store and a
// reload of the sums for every row. One copy of the loops is generated
// for each of: no v, v without a gate, v with a gate.
func colSums(s isa) {
	text(s.fn("colSums"), "func(p1, p2, u, v, gate, su, sv *float32, rows, c int)")
	Doc(s.fn("colSums") + " is ColSums for c a multiple of the vector width.")
	Load(Param("p1"), reg.RDI)
	Load(Param("p2"), reg.R13)
	Load(Param("u"), reg.RSI)
	Load(Param("v"), reg.RDX)
	Load(Param("gate"), reg.R11)
	Load(Param("su"), reg.R8)
	Load(Param("sv"), reg.R9)
	Load(Param("rows"), reg.RCX)
	Load(Param("c"), reg.R10)
	SHLQ(U8(2), reg.R10)
	zero := s.v(s.regs - 1)
	s.zero(zero)
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("cs_done"))
	maxBlock := 4 // vectors of columns summed at once: 6·4+3 registers
	if s.regs == 16 {
		maxBlock = 2
	}
	// R12 is the end of the columns, in bytes from p1.
	MOVQ(reg.R10, reg.R12)
	ADDQ(reg.RDI, reg.R12)
	for _, variant := range []struct{ hasV, gated bool }{{false, false}, {true, false}, {true, true}} {
		hasV, gated := variant.hasV, variant.gated
		prefix := "cs"
		if hasV {
			prefix += "v"
		}
		if gated {
			prefix += "g"
		}
		Label(prefix)
		// Dispatch: fall through to the next variant unless this one's
		// pointers are (non-)nil as it expects.
		next := lbl(prefix, "next")
		TESTQ(reg.RDX, reg.RDX)
		if hasV {
			JE(LabelRef(next))
		} else {
			JNE(LabelRef(next))
		}
		if hasV {
			TESTQ(reg.R11, reg.R11)
			if gated {
				JE(LabelRef(next))
			} else {
				JNE(LabelRef(next))
			}
		}
		for b := maxBlock; b >= 1; b /= 2 {
			colSumsBlocks(s, fmt.Sprintf("%s_b%d", prefix, b), b, hasV, gated, zero)
		}
		JMP(LabelRef("cs_done"))
		Label(next)
	}
	Label("cs_done")
	VZEROUPPER()
	RET()
}

// colSumsBlocks emits colSums's loop over blocks of b vectors of columns
// while a whole block is left before the end R12: the block's sums,
// shifts and gate coefficients in registers, a loop over the rows (AX the
// row's offset in bytes, BX the rows left), then the sums stored. The
// column pointers (p1 DI, p2 R13, u SI, su R8, and v DX, sv R9, gate R11
// when present; the gate's shifts are R10 bytes after its scales)
// advance past the block.
func colSumsBlocks(s isa, prefix string, b int, hasV, gated bool, zero reg.VecPhysical) {
	acc1 := func(j int) reg.VecPhysical { return s.v(j) }
	acc2 := func(j int) reg.VecPhysical { return s.v(b + j) }
	shU := func(j int) reg.VecPhysical { return s.v(2*b + j) }
	shV := func(j int) reg.VecPhysical { return s.v(3*b + j) }
	gScale := func(j int) reg.VecPhysical { return s.v(4*b + j) }
	gShift := func(j int) reg.VecPhysical { return s.v(5*b + j) }
	d, w, t := s.v(6*b), s.v(6*b+1), s.v(6*b+2)
	width := b * s.bytes()
	Label(lbl(prefix, "block"))
	LEAQ(at(reg.RDI, nil, 0, width), reg.RAX)
	CMPQ(reg.RAX, reg.R12)
	JA(LabelRef(lbl(prefix, "end")))
	for j := 0; j < b; j++ {
		off := j * s.bytes()
		VMOVUPS(at(reg.RDI, nil, 0, off), acc1(j))
		VMOVUPS(at(reg.R13, nil, 0, off), acc2(j))
		VMOVUPS(at(reg.R8, nil, 0, off), shU(j))
		if hasV {
			VMOVUPS(at(reg.R9, nil, 0, off), shV(j))
		}
		if gated {
			VMOVUPS(at(reg.R11, nil, 0, off), gScale(j))
			VMOVUPS(at(reg.R11, reg.R10, 1, off), gShift(j))
		}
	}
	XORQ(reg.RAX, reg.RAX)
	MOVQ(reg.RCX, reg.RBX)
	Label(lbl(prefix, "row"))
	for j := 0; j < b; j++ {
		off := j * s.bytes()
		VMOVUPS(at(reg.RSI, reg.RAX, 1, off), d)
		x := d
		if hasV {
			VMOVUPS(at(reg.RDX, reg.RAX, 1, off), w)
			if gated {
				VMOVAPS(w, t)
				VFMADD213PS(gShift(j), gScale(j), t)
				s.gatePositive(d, d, t, zero)
			}
			VSUBPS(shV(j), w, w)
			x = w
		}
		VSUBPS(shU(j), d, d)
		VADDPS(d, acc1(j), acc1(j))
		VFMADD231PS(x, d, acc2(j))
	}
	ADDQ(reg.R10, reg.RAX)
	DECQ(reg.RBX)
	JNE(LabelRef(lbl(prefix, "row")))
	for j := 0; j < b; j++ {
		off := j * s.bytes()
		VMOVUPS(acc1(j), at(reg.RDI, nil, 0, off))
		VMOVUPS(acc2(j), at(reg.R13, nil, 0, off))
	}
	ptrs := []reg.Register{reg.RDI, reg.R13, reg.RSI, reg.R8}
	if hasV {
		ptrs = append(ptrs, reg.RDX, reg.R9)
	}
	if gated {
		ptrs = append(ptrs, reg.R11)
	}
	for _, p := range ptrs {
		ADDQ(U32(width), p)
	}
	JMP(LabelRef(lbl(prefix, "block")))
	Label(lbl(prefix, "end"))
}

// axpy: y[i] += alpha·x[i] for i < n: four vectors a step, then one,
// then one float.
func axpy(s isa) {
	text(s.fn("axpy"), "func(alpha float32, x, y *float32, n int)")
	Doc(s.fn("axpy") + " is Axpy.")
	Load(Param("alpha"), s.half(15).AsX())
	VBROADCASTSS(s.half(15).AsX(), s.v(15))
	Load(Param("x"), reg.RSI)
	Load(Param("y"), reg.RDI)
	Load(Param("n"), reg.RCX)
	w := s.lanes
	CMPQ(reg.RCX, U8(4*w))
	JL(LabelRef("ax_one"))
	Label("ax_four")
	for j := 0; j < 4; j++ {
		VMOVUPS(at(reg.RDI, nil, 0, j*s.bytes()), s.v(j))
	}
	for j := 0; j < 4; j++ {
		VFMADD231PS(at(reg.RSI, nil, 0, j*s.bytes()), s.v(15), s.v(j))
	}
	for j := 0; j < 4; j++ {
		VMOVUPS(s.v(j), at(reg.RDI, nil, 0, j*s.bytes()))
	}
	ADDQ(U32(4*s.bytes()), reg.RSI)
	ADDQ(U32(4*s.bytes()), reg.RDI)
	SUBQ(U8(4*w), reg.RCX)
	CMPQ(reg.RCX, U8(4*w))
	JGE(LabelRef("ax_four"))
	Label("ax_one")
	CMPQ(reg.RCX, U8(w))
	JL(LabelRef("ax_scalar"))
	VMOVUPS(Mem{Base: reg.RDI}, s.v(0))
	VFMADD231PS(Mem{Base: reg.RSI}, s.v(15), s.v(0))
	VMOVUPS(s.v(0), Mem{Base: reg.RDI})
	ADDQ(U8(s.bytes()), reg.RSI)
	ADDQ(U8(s.bytes()), reg.RDI)
	SUBQ(U8(w), reg.RCX)
	JMP(LabelRef("ax_one"))
	Label("ax_scalar")
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("ax_done"))
	VMOVSS(Mem{Base: reg.RDI}, reg.X0)
	VFMADD231SS(Mem{Base: reg.RSI}, reg.X15, reg.X0)
	VMOVSS(reg.X0, Mem{Base: reg.RDI})
	ADDQ(U8(4), reg.RSI)
	ADDQ(U8(4), reg.RDI)
	DECQ(reg.RCX)
	JMP(LabelRef("ax_scalar"))
	Label("ax_done")
	VZEROUPPER()
	RET()
}

// dot: Σ x[i]·y[i] in four vector accumulators, summed across at the end,
// then the last floats one by one.
func dot(s isa) {
	text(s.fn("dot"), "func(x, y *float32, n int) float32")
	Doc(s.fn("dot") + " is Dot.")
	Load(Param("x"), reg.RSI)
	Load(Param("y"), reg.RDI)
	Load(Param("n"), reg.RCX)
	w := s.lanes
	for j := 0; j < 4; j++ {
		s.zero(s.v(j))
	}
	CMPQ(reg.RCX, U8(4*w))
	JL(LabelRef("dt_one"))
	Label("dt_four")
	for j := 0; j < 4; j++ {
		VMOVUPS(at(reg.RSI, nil, 0, j*s.bytes()), s.v(4+j))
	}
	for j := 0; j < 4; j++ {
		VFMADD231PS(at(reg.RDI, nil, 0, j*s.bytes()), s.v(4+j), s.v(j))
	}
	ADDQ(U32(4*s.bytes()), reg.RSI)
	ADDQ(U32(4*s.bytes()), reg.RDI)
	SUBQ(U8(4*w), reg.RCX)
	CMPQ(reg.RCX, U8(4*w))
	JGE(LabelRef("dt_four"))
	Label("dt_one")
	CMPQ(reg.RCX, U8(w))
	JL(LabelRef("dt_sum"))
	VMOVUPS(Mem{Base: reg.RSI}, s.v(4))
	VFMADD231PS(Mem{Base: reg.RDI}, s.v(4), s.v(0))
	ADDQ(U8(s.bytes()), reg.RSI)
	ADDQ(U8(s.bytes()), reg.RDI)
	SUBQ(U8(w), reg.RCX)
	JMP(LabelRef("dt_one"))
	Label("dt_sum")
	VADDPS(s.v(1), s.v(0), s.v(0))
	VADDPS(s.v(3), s.v(2), s.v(2))
	VADDPS(s.v(2), s.v(0), s.v(0))
	if s.lanes == 16 {
		VEXTRACTF64X4(U8(1), reg.Z0, reg.Y1)
		VADDPS(reg.Y1, reg.Y0, reg.Y0)
	}
	VEXTRACTF128(U8(1), reg.Y0, reg.X1)
	VADDPS(reg.X1, reg.X0, reg.X0)
	VHADDPS(reg.X0, reg.X0, reg.X0)
	VHADDPS(reg.X0, reg.X0, reg.X0)
	Label("dt_scalar")
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("dt_done"))
	VMOVSS(Mem{Base: reg.RSI}, reg.X4)
	VFMADD231SS(Mem{Base: reg.RDI}, reg.X4, reg.X0)
	ADDQ(U8(4), reg.RSI)
	ADDQ(U8(4), reg.RDI)
	DECQ(reg.RCX)
	JMP(LabelRef("dt_scalar"))
	Label("dt_done")
	Store(reg.X0, ReturnIndex(0))
	VZEROUPPER()
	RET()
}
