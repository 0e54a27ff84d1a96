package main

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	"github.com/mmcloughlin/avo/reg"
)

// The elementwise kernels below take n, a multiple of the vector width
// (the Go side does the rest), and run over it one vector a step with BX
// as the byte offset and R10 as the end (see vecLoop).

// vecLoop loads n (in elements) from the parameter named count into R10
// as bytes and runs body for each vector, skipping it all when n is 0.
func vecLoop(s isa, prefix, count string, body func(at func(base reg.Register) Mem)) {
	Load(Param(count), reg.R10)
	SHLQ(U8(2), reg.R10)
	TESTQ(reg.R10, reg.R10)
	JE(LabelRef(prefix + "_done"))
	colLoop(s, prefix+"_loop", body)
	Label(prefix + "_done")
}

// broadcastParam loads the float32 parameter name into every lane of
// vector register i.
func broadcastParam(s isa, name string, i int) {
	x := xregs[i]
	Load(Param(name), x)
	VBROADCASTSS(x, s.v(i))
}

// broadcastInt sets every 32-bit lane of vector register i to v.
func broadcastInt(s isa, v int, i int) {
	MOVL(U32(v), reg.EAX)
	VMOVD(reg.EAX, xregs[i])
	VPBROADCASTD(xregs[i], s.v(i))
}

// relu: dst[i] = x[i] with its sign bit spread and cleared: max(x, +0),
// +0 for −0 and negative NaNs, the bits of Relu's Go loop.
func relu(s isa) {
	text(s.fn("relu"), "func(dst, x *float32, n int)")
	Doc(s.fn("relu") + " is Relu for n a multiple of the vector width.")
	Load(Param("dst"), reg.RDI)
	Load(Param("x"), reg.RSI)
	vecLoop(s, "re", "n", func(at func(reg.Register) Mem) {
		VMOVUPS(at(reg.RSI), s.v(0))
		VPSRAD(U8(31), s.v(0), s.v(1))
		if s.lanes == 16 {
			VPANDND(s.v(0), s.v(1), s.v(0))
		} else {
			VPANDN(s.v(0), s.v(1), s.v(0))
		}
		VMOVUPS(s.v(0), at(reg.RDI))
	})
	VZEROUPPER()
	RET()
}

// reluGrad: dx[i] = dy[i] where the bits of y[i] are not all zero, +0
// elsewhere.
func reluGrad(s isa) {
	text(s.fn("reluGrad"), "func(dx, dy, y *float32, n int)")
	Doc(s.fn("reluGrad") + " is ReluGrad for n a multiple of the vector width.")
	Load(Param("dx"), reg.RDI)
	Load(Param("dy"), reg.RSI)
	Load(Param("y"), reg.RDX)
	zero := s.v(15)
	s.zero(zero)
	vecLoop(s, "rg", "n", func(at func(reg.Register) Mem) {
		VMOVUPS(at(reg.RDX), s.v(0))
		if s.lanes == 16 {
			VPTESTMD(s.v(0), s.v(0), reg.K1)
			VMOVUPS_Z(at(reg.RSI), reg.K1, s.v(1))
		} else {
			VPCMPEQD(zero, s.v(0), s.v(0))
			VPANDN(at(reg.RSI), s.v(0), s.v(1))
		}
		VMOVUPS(s.v(1), at(reg.RDI))
	})
	VZEROUPPER()
	RET()
}

// pixelPointers sets, for the 2×2 pooling kernels, R12 = SI + R10 and
// R13 = DX + R10: the second pixel of the top and bottom rows.
func pixelPointers() {
	LEAQ(at(reg.RSI, reg.R10, 1, 0), reg.R12)
	LEAQ(at(reg.RDX, reg.R10, 1, 0), reg.R13)
}

// advancePixels moves the 2×2 pooling kernels' input pointers by two
// pixels and their per-output pointers (given) by one.
func advancePixels(out ...reg.Register) {
	for _, r := range []reg.Register{reg.RSI, reg.RDX, reg.R12, reg.R13} {
		ADDQ(reg.R10, r)
		ADDQ(reg.R10, r)
	}
	for _, r := range out {
		ADDQ(reg.R10, r)
	}
}

// maxPool2: for each output pixel q < pixels and channel j < c (c a
// multiple of the vector width), with a, b the top row's pixels 2q and
// 2q+1 and e, d the bottom row's, m = mx(mx(a, b), mx(e, d)) where
// mx(x, y) = x > y ? x : y (MAXPS), dst[q·c+j] = m and arg[q·c+j] the
// first of 0 (a), 1 (b), 2 (e), 3 (d) that equals m.
func maxPool2(s isa) {
	text(s.fn("maxPool2"), "func(dst *float32, arg *int32, top, bottom *float32, pixels, c int)")
	Doc(s.fn("maxPool2") + " is MaxPool2Rows for c a multiple of the vector width.")
	Load(Param("dst"), reg.RDI)
	Load(Param("arg"), reg.R11)
	Load(Param("top"), reg.RSI)
	Load(Param("bottom"), reg.RDX)
	Load(Param("pixels"), reg.RCX)
	Load(Param("c"), reg.R10)
	SHLQ(U8(2), reg.R10)
	zero, one, two, three := s.v(15), s.v(13), s.v(14), s.v(12)
	s.zero(zero)
	broadcastInt(s, 1, 13)
	broadcastInt(s, 2, 14)
	broadcastInt(s, 3, 12)
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("mp_done"))
	pixelPointers()
	Label("mp_pixel")
	colLoop(s, "mp_col", func(at func(reg.Register) Mem) {
		a, b, e, d, m, t, code, eq := s.v(0), s.v(1), s.v(2), s.v(3), s.v(4), s.v(5), s.v(6), s.v(7)
		VMOVUPS(at(reg.RSI), a)
		VMOVUPS(at(reg.R12), b)
		VMOVUPS(at(reg.RDX), e)
		VMOVUPS(at(reg.R13), d)
		VMAXPS(b, a, m)
		VMAXPS(d, e, t)
		VMAXPS(t, m, m)
		VMOVUPS(three, code)
		for _, c := range []struct {
			x, val reg.VecPhysical
		}{{e, two}, {b, one}, {a, zero}} {
			if s.lanes == 16 {
				VCMPPS(U8(0), m, c.x, reg.K1) // x == m
				VMOVDQA32(c.val, reg.K1, code)
			} else {
				VCMPPS(U8(0), m, c.x, eq)
				VBLENDVPS(eq, c.val, code, code)
			}
		}
		VMOVUPS(m, at(reg.RDI))
		VMOVUPS(code, at(reg.R11))
	})
	advancePixels(reg.RDI, reg.R11)
	DECQ(reg.RCX)
	JNE(LabelRef("mp_pixel"))
	Label("mp_done")
	VZEROUPPER()
	RET()
}

// maxPool2Grad: the adjoint of maxPool2 through its arg: the top row's
// pixels 2q and 2q+1 and the bottom row's get g[q·c+j] where arg is 0, 1,
// 2, 3 respectively, and +0 elsewhere.
func maxPool2Grad(s isa) {
	text(s.fn("maxPool2Grad"), "func(dtop, dbottom, grad *float32, arg *int32, pixels, c int)")
	Doc(s.fn("maxPool2Grad") + " is MaxPool2RowsGrad for c a multiple of the vector width.")
	Load(Param("dtop"), reg.RSI)
	Load(Param("dbottom"), reg.RDX)
	Load(Param("grad"), reg.RDI)
	Load(Param("arg"), reg.R11)
	Load(Param("pixels"), reg.RCX)
	Load(Param("c"), reg.R10)
	SHLQ(U8(2), reg.R10)
	zero := s.v(15)
	s.zero(zero)
	broadcastInt(s, 1, 13)
	broadcastInt(s, 2, 14)
	broadcastInt(s, 3, 12)
	codes := []reg.VecPhysical{zero, s.v(13), s.v(14), s.v(12)}
	TESTQ(reg.RCX, reg.RCX)
	JE(LabelRef("mg_done"))
	pixelPointers()
	Label("mg_pixel")
	colLoop(s, "mg_col", func(at func(reg.Register) Mem) {
		g, code, eq, out := s.v(0), s.v(1), s.v(2), s.v(3)
		VMOVUPS(at(reg.RDI), g)
		VMOVUPS(at(reg.R11), code)
		for k, dst := range []reg.Register{reg.RSI, reg.R12, reg.RDX, reg.R13} {
			if s.lanes == 16 {
				VPCMPEQD(codes[k], code, reg.K1)
				VMOVAPS_Z(g, reg.K1, out)
			} else {
				VPCMPEQD(codes[k], code, eq)
				VANDPS(g, eq, out)
			}
			VMOVUPS(out, at(dst))
		}
	})
	advancePixels(reg.RDI, reg.R11)
	DECQ(reg.RCX)
	JNE(LabelRef("mg_pixel"))
	Label("mg_done")
	VZEROUPPER()
	RET()
}

// sgd: one SGD step, each product and sum rounded to float32 on its own
// (no fused multiply-add, as in SGDStep's Go loop):
// d = g + wd·w; with v not nil, v = mu·v + d and d = nesterov ? d + mu·v : v;
// w −= lr·d.
func sgd(s isa) {
	text(s.fn("sgd"), "func(w, grad, v *float32, n int, lr, wd, mu float32, nesterov bool)")
	Doc(s.fn("sgd") + " is SGDStep for n a multiple of the vector width.")
	Load(Param("w"), reg.RDI)
	Load(Param("grad"), reg.RSI)
	Load(Param("v"), reg.RDX)
	Load(Param("nesterov"), reg.RAX)
	broadcastParam(s, "lr", 13)
	broadcastParam(s, "wd", 14)
	broadcastParam(s, "mu", 12)
	lr, wd, mu := s.v(13), s.v(14), s.v(12)
	w, d, vel, t := s.v(0), s.v(1), s.v(3), s.v(4)
	TESTQ(reg.RDX, reg.RDX)
	JNE(LabelRef("sg_momentum"))
	vecLoop(s, "sg", "n", func(at func(reg.Register) Mem) {
		VMOVUPS(at(reg.RDI), w)
		VMULPS(w, wd, d)
		VADDPS(at(reg.RSI), d, d)
		VMULPS(d, lr, d)
		VSUBPS(d, w, w)
		VMOVUPS(w, at(reg.RDI))
	})
	VZEROUPPER()
	RET()
	Label("sg_momentum")
	TESTB(reg.AL, reg.AL)
	JNE(LabelRef("sg_nesterov"))
	for _, nesterov := range []bool{false, true} {
		prefix := "sm"
		if nesterov {
			Label("sg_nesterov")
			prefix = "sn"
		}
		vecLoop(s, prefix, "n", func(at func(reg.Register) Mem) {
			VMOVUPS(at(reg.RDI), w)
			VMULPS(w, wd, d)
			VADDPS(at(reg.RSI), d, d)
			VMULPS(at(reg.RDX), mu, vel)
			VADDPS(d, vel, vel)
			VMOVUPS(vel, at(reg.RDX))
			if nesterov {
				VMULPS(vel, mu, t)
				VADDPS(t, d, d)
			} else {
				VMOVUPS(vel, d)
			}
			VMULPS(d, lr, d)
			VSUBPS(d, w, w)
			VMOVUPS(w, at(reg.RDI))
		})
		VZEROUPPER()
		RET()
	}
}

// adamw: one AdamW step, rounded as AdamWStep's Go loop: m = b1·m + a1·g;
// v = b2·v + (a2·g)·g; denom = float32(sqrt(float64(v))/sqrtC2 + eps), in
// float64; w = w·decay − (step·m)/denom.
func adamw(s isa) {
	text(s.fn("adamw"), "func(w, grad, m, v *float32, n int, b1, b2, a1, a2, step, decay float32, sqrtC2, eps float64)")
	Doc(s.fn("adamw") + " is AdamWStep for n a multiple of the vector width.")
	Load(Param("w"), reg.RDI)
	Load(Param("grad"), reg.RSI)
	Load(Param("m"), reg.RDX)
	Load(Param("v"), reg.R8)
	for i, name := range []string{"b1", "b2", "a1", "a2", "step", "decay"} {
		broadcastParam(s, name, 8+i)
	}
	for i, name := range []string{"sqrtC2", "eps"} {
		Load(Param(name), xregs[14+i])
		VBROADCASTSD(xregs[14+i], s.v(14+i))
	}
	b1, b2, a1, a2, step, decay, sqrtC2, eps := s.v(8), s.v(9), s.v(10), s.v(11), s.v(12), s.v(13), s.v(14), s.v(15)
	vecLoop(s, "aw", "n", func(at func(reg.Register) Mem) {
		g, m, t, v, lo, hi, w, u := s.v(0), s.v(1), s.v(2), s.v(3), s.v(4), s.v(5), s.v(6), s.v(7)
		VMOVUPS(at(reg.RSI), g)
		VMULPS(at(reg.RDX), b1, m)
		VMULPS(g, a1, t)
		VADDPS(t, m, m)
		VMOVUPS(m, at(reg.RDX))
		VMULPS(at(reg.R8), b2, v)
		VMULPS(g, a2, t)
		VMULPS(g, t, t)
		VADDPS(t, v, v)
		VMOVUPS(v, at(reg.R8))
		// The denominator in float64, half a vector at a time.
		VCVTPS2PD(s.half(3), lo)
		if s.lanes == 16 {
			VEXTRACTF64X4(U8(1), v, s.half(5))
		} else {
			VEXTRACTF128(U8(1), v, s.half(5))
		}
		VCVTPS2PD(s.half(5), hi)
		for _, r := range []reg.VecPhysical{lo, hi} {
			VSQRTPD(r, r)
			VDIVPD(sqrtC2, r, r)
			VADDPD(eps, r, r)
		}
		if s.lanes == 16 {
			VCVTPD2PS(lo, s.half(4))
			VCVTPD2PS(hi, s.half(5))
			VINSERTF64X4(U8(1), s.half(5), lo, lo)
		} else {
			VCVTPD2PSY(lo, s.half(4))
			VCVTPD2PSY(hi, s.half(5))
			VINSERTF128(U8(1), s.half(5), lo, lo)
		}
		VMULPS(at(reg.RDI), decay, w)
		VMULPS(m, step, u)
		VDIVPS(lo, u, u)
		VSUBPS(u, w, w)
		VMOVUPS(w, at(reg.RDI))
	})
	VZEROUPPER()
	RET()
}

// scale: dst[i] = alpha·x[i].
func scale(s isa) {
	text(s.fn("scale"), "func(dst, x *float32, n int, alpha float32)")
	Doc(s.fn("scale") + " is Scale for n a multiple of the vector width.")
	Load(Param("dst"), reg.RDI)
	Load(Param("x"), reg.RSI)
	broadcastParam(s, "alpha", 15)
	vecLoop(s, "sc", "n", func(at func(reg.Register) Mem) {
		VMULPS(at(reg.RSI), s.v(15), s.v(0))
		VMOVUPS(s.v(0), at(reg.RDI))
	})
	VZEROUPPER()
	RET()
}

// sqDiff: Σ (a[i] − b[i])² in float64 (b nil: Σ a[i]²), writing the
// float32 differences to diff unless it is nil. The squares add up in two
// vectors of float64 lanes, summed across at the end.
func sqDiff(s isa) {
	text(s.fn("sqDiff"), "func(diff, a, b *float32, n int) float64")
	Doc(s.fn("sqDiff") + " is SquaredDiff for n a multiple of the vector width.")
	Load(Param("diff"), reg.RDI)
	Load(Param("a"), reg.RSI)
	Load(Param("b"), reg.RDX)
	acc0, acc1 := s.v(14), s.v(15)
	s.zero(acc0)
	s.zero(acc1)
	vecLoop(s, "sd", "n", func(at func(reg.Register) Mem) {
		d, lo, hi := s.v(0), s.v(1), s.v(2)
		VMOVUPS(at(reg.RSI), d)
		TESTQ(reg.RDX, reg.RDX)
		JE(LabelRef("sd_nob"))
		VSUBPS(at(reg.RDX), d, d)
		Label("sd_nob")
		TESTQ(reg.RDI, reg.RDI)
		JE(LabelRef("sd_nodiff"))
		VMOVUPS(d, at(reg.RDI))
		Label("sd_nodiff")
		VCVTPS2PD(s.half(0), lo)
		if s.lanes == 16 {
			VEXTRACTF64X4(U8(1), d, s.half(2))
		} else {
			VEXTRACTF128(U8(1), d, s.half(2))
		}
		VCVTPS2PD(s.half(2), hi)
		VFMADD231PD(lo, lo, acc0)
		VFMADD231PD(hi, hi, acc1)
	})
	VADDPD(acc1, acc0, acc0)
	if s.lanes == 16 {
		VEXTRACTF64X4(U8(1), acc0, reg.Y1)
		VADDPD(reg.Y1, reg.Y14, reg.Y14)
	}
	VEXTRACTF128(U8(1), reg.Y14, reg.X1)
	VADDPD(reg.X1, reg.X14, reg.X14)
	VHADDPD(reg.X14, reg.X14, reg.X14)
	Store(reg.X14, ReturnIndex(0))
	VZEROUPPER()
	RET()
}
