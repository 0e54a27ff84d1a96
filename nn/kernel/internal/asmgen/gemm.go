package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// tile is a micro-kernel's shape: mr rows of C (A values broadcast one at
// a time) by nr columns (nr/lanes vectors of a packed B row).
type tile struct{ mr, nr int }

// gemmTiles lists the tiles generated for each instruction set. The AVX2
// tile keeps 12 accumulators, 2 B vectors and 2 broadcasts in its 16 ymm
// registers. The AVX-512 tiles were measured against 8×32, 12×32, 14×32,
// 4×64, 16×16 and 24×16 on one Zen 5 core: 6×64 (24 accumulators, 4 B
// vectors) was best or within noise of the best on most GEMM shapes,
// and 8×32 on direct convolutions and GEMMs with 32·k columns, which
// 6×64 pads to 64. 8×16 serves convolutions with at most 16 output
// channels (an autoencoder's last layer), at half the cost of 8×32, and
// 4×32 the few rows left over by 8×32 and weight gradients with at most
// 4 output channels.
var gemmTiles = map[string][]tile{
	"AVX2":   {{6, 16}},
	"AVX512": {{6, 64}, {8, 32}, {8, 16}, {4, 32}},
}

func (t tile) String() string { return fmt.Sprintf("%dx%d", t.mr, t.nr) }

// rowAddressing lays out how a kernel reaches the mr rows of A: rows come
// in groups of g, one pointer register per group, row o of a group at
// ptr + o·rs via the scaled index registers rs (R9) and, for groups of
// five, 3·rs (R12).
type rowAddressing struct {
	g    int
	ptrs []reg.Register
}

func newRowAddressing(mr int, ptrs []reg.Register) rowAddressing {
	g := 5
	if mr <= 6 {
		g = 3
	}
	n := (mr + g - 1) / g
	if n > len(ptrs) {
		panic(fmt.Sprintf("asmgen: %d rows need %d row pointers, have %d", mr, n, len(ptrs)))
	}
	return rowAddressing{g: g, ptrs: ptrs[:n]}
}

// setup computes the group pointers from the first (already set) and the
// byte stride rs in R9, and 3·rs in R12 for groups of five.
func (ra rowAddressing) setup() {
	if ra.g == 5 && len(ra.ptrs) > 1 {
		LEAQ(at(reg.R9, reg.R9, 2, 0), reg.R12)
	}
	for i := 1; i < len(ra.ptrs); i++ {
		prev, p := ra.ptrs[i-1], ra.ptrs[i]
		if ra.g == 3 {
			LEAQ(at(prev, reg.R9, 2, 0), p)
		} else {
			LEAQ(at(prev, reg.R9, 4, 0), p)
		}
		ADDQ(reg.R9, p)
	}
}

// row returns the address of row i.
func (ra rowAddressing) row(i int) Mem {
	p := ra.ptrs[i/ra.g]
	switch i % ra.g {
	case 0:
		return at(p, nil, 0, 0)
	case 1:
		return at(p, reg.R9, 1, 0)
	case 2:
		return at(p, reg.R9, 2, 0)
	case 3:
		return at(p, reg.R12, 1, 0)
	default:
		return at(p, reg.R9, 4, 0)
	}
}

// advance moves every row pointer by by (a register or an immediate).
func (ra rowAddressing) advance(by Op) {
	for _, p := range ra.ptrs {
		ADDQ(by, p)
	}
}

// tileRegs assigns a tile's vector registers: the B vectors first, then
// two broadcast registers, then the accumulators, row by row.
type tileRegs struct {
	s  isa
	t  tile
	nv int
}

func newTileRegs(s isa, t tile) tileRegs {
	nv := t.nr / s.lanes
	if t.nr%s.lanes != 0 || nv+2+t.mr*nv > s.regs {
		panic(fmt.Sprintf("asmgen: tile %v does not fit %s", t, s.name))
	}
	return tileRegs{s: s, t: t, nv: nv}
}

func (r tileRegs) b(j int) reg.VecPhysical      { return r.s.v(j) }
func (r tileRegs) bcast(i int) reg.VecPhysical  { return r.s.v(r.nv + i%2) }
func (r tileRegs) acc(i, j int) reg.VecPhysical { return r.s.v(r.nv + 2 + i*r.nv + j) }

func (r tileRegs) clear() {
	for i := 0; i < r.t.mr; i++ {
		for j := 0; j < r.nv; j++ {
			r.s.zero(r.acc(i, j))
		}
	}
}

// step is one k step: the B row at DI+boff times each row's A value.
func (r tileRegs) step(ra rowAddressing, boff int) {
	for j := 0; j < r.nv; j++ {
		VMOVUPS(at(reg.RDI, nil, 0, boff+j*r.s.bytes()), r.b(j))
	}
	for i := 0; i < r.t.mr; i++ {
		VBROADCASTSS(ra.row(i), r.bcast(i))
		for j := 0; j < r.nv; j++ {
			VFMADD231PS(r.b(j), r.bcast(i), r.acc(i, j))
		}
	}
}

// store writes the accumulators to C at DX (rows R8 bytes apart),
// adding to what C holds when the bool at accumulate is set.
func (r tileRegs) store(prefix string) {
	Load(Param("accumulate"), reg.RAX)
	TESTB(reg.AL, reg.AL)
	JE(LabelRef(lbl(prefix, "overwrite")))
	for _, add := range []bool{true, false} {
		if !add {
			Label(lbl(prefix, "overwrite"))
		}
		for i := 0; i < r.t.mr; i++ {
			if add {
				for j := 0; j < r.nv; j++ {
					VADDPS(at(reg.RDX, nil, 0, j*r.s.bytes()), r.acc(i, j), r.acc(i, j))
				}
			}
			for j := 0; j < r.nv; j++ {
				VMOVUPS(r.acc(i, j), at(reg.RDX, nil, 0, j*r.s.bytes()))
			}
			if i < r.t.mr-1 {
				ADDQ(reg.R8, reg.RDX)
			}
		}
		VZEROUPPER()
		RET()
	}
}

// gemmKernel is the GEMM micro-kernel (microKernel.fn in sgemm.go):
// C[i][j] (=|+=) Σ_p A(i, p)·B[p][j] over an mr×nr tile, A(i, p) at
// a + i·rs + p·ks, B packed k-major in rows of nr.
func gemmKernel(s isa, t tile) {
	name := fmt.Sprintf("kernel%s_%s", s.name, t)
	text(name, "func(k int, a *float32, rs, ks int, b, c *float32, ldc int, accumulate bool)")
	Doc(fmt.Sprintf("%s is the %s GEMM micro-kernel of %s tiles (see microKernel).", name, s.name, t))
	const p = "g"
	Load(Param("k"), reg.RCX)
	Load(Param("a"), reg.RSI)
	Load(Param("rs"), reg.R9)
	SHLQ(U8(2), reg.R9)
	Load(Param("ks"), reg.R11)
	SHLQ(U8(2), reg.R11)
	Load(Param("b"), reg.RDI)
	Load(Param("c"), reg.RDX)
	Load(Param("ldc"), reg.R8)
	SHLQ(U8(2), reg.R8)
	ra := newRowAddressing(t.mr, []reg.Register{reg.RSI, reg.R10, reg.R13, reg.RBX, reg.RAX})
	ra.setup()
	r := newTileRegs(s, t)
	r.clear()
	row := 4 * t.nr // bytes of one packed B row
	CMPQ(reg.RCX, U8(4))
	JL(LabelRef(lbl(p, "tail")))
	Label(lbl(p, "loop4"))
	for u := 0; u < 4; u++ {
		r.step(ra, u*row)
		ra.advance(reg.R11)
	}
	ADDQ(U32(4*row), reg.RDI)
	SUBQ(U8(4), reg.RCX)
	CMPQ(reg.RCX, U8(4))
	JGE(LabelRef(lbl(p, "loop4")))
	Label(lbl(p, "tail"))
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef(lbl(p, "store")))
	Label(lbl(p, "loop1"))
	r.step(ra, 0)
	ra.advance(reg.R11)
	ADDQ(U32(row), reg.RDI)
	DECQ(reg.RCX)
	JNE(LabelRef(lbl(p, "loop1")))
	Label(lbl(p, "store"))
	r.store(p)
}

// convKernel is the direct-convolution micro-kernel (microKernel.conv):
// like gemmKernel with k = taps·c, where the A value of tap t, channel ci,
// row i is at a + offs[t] + i·rs + ci: each tap is a shifted window of
// the padded input. B is one packed panel of taps·c rows of nr.
func convKernel(s isa, t tile) {
	name := fmt.Sprintf("convKernel%s_%s", s.name, t)
	text(name, "func(taps int, offs *int, c int, a *float32, rs int, b, out *float32, ldc int, accumulate bool)")
	Doc(fmt.Sprintf("%s is the %s direct-convolution micro-kernel of %s tiles (see microKernel).", name, s.name, t))
	const p = "c"
	Load(Param("taps"), reg.RBX)
	Load(Param("offs"), reg.R11)
	Load(Param("a"), reg.R13)
	Load(Param("rs"), reg.R9)
	SHLQ(U8(2), reg.R9)
	Load(Param("b"), reg.RDI)
	Load(Param("out"), reg.RDX)
	Load(Param("ldc"), reg.R8)
	SHLQ(U8(2), reg.R8)
	ra := newRowAddressing(t.mr, []reg.Register{reg.RSI, reg.R10, reg.RAX})
	r := newTileRegs(s, t)
	r.clear()
	Label(lbl(p, "tap"))
	TESTQ(reg.RBX, reg.RBX)
	JE(LabelRef(lbl(p, "store")))
	MOVQ(Mem{Base: reg.R11}, reg.RSI)
	SHLQ(U8(2), reg.RSI)
	ADDQ(reg.R13, reg.RSI)
	ra.setup()
	Load(Param("c"), reg.RCX)
	Label(lbl(p, "chan"))
	r.step(ra, 0)
	ra.advance(U8(4))
	ADDQ(U32(4*t.nr), reg.RDI)
	DECQ(reg.RCX)
	JNE(LabelRef(lbl(p, "chan")))
	ADDQ(U8(8), reg.R11)
	DECQ(reg.RBX)
	JMP(LabelRef(lbl(p, "tap")))
	Label(lbl(p, "store"))
	r.store(p)
}

// scatterRow copies src[nr·q : nr·q+nr] to dst[q·stride :] for q <
// panels: one row of a plain B into the same row of each of its nr-column
// packed panels.
func scatterRow(s isa, nr int) {
	name := fmt.Sprintf("scatterRow%d%s", nr, s.name)
	text(name, "func(dst, src *float32, panels, stride int)")
	Doc(fmt.Sprintf("%s copies one row of a plain B into its %d-column packed panels (see packB).", name, nr))
	Load(Param("dst"), reg.RDI)
	Load(Param("src"), reg.RSI)
	Load(Param("panels"), reg.RCX)
	Load(Param("stride"), reg.R8)
	SHLQ(U8(2), reg.R8)
	nv := 4 * nr / s.bytes()
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("sr_done"))
	Label("sr_loop")
	for j := 0; j < nv; j++ {
		VMOVUPS(at(reg.RSI, nil, 0, j*s.bytes()), s.v(j))
	}
	for j := 0; j < nv; j++ {
		VMOVUPS(s.v(j), at(reg.RDI, nil, 0, j*s.bytes()))
	}
	ADDQ(U32(4*nr), reg.RSI)
	ADDQ(reg.R8, reg.RDI)
	DECQ(reg.RCX)
	JNE(LabelRef("sr_loop"))
	Label("sr_done")
	VZEROUPPER()
	RET()
}
