//go:build !purego

#include "textflag.h"

// func scaleShiftRowsAVX2(dst, x, s, b *float32, rows, c int, relu bool)
// dst[r][j] = x[r][j]·s[j] + b[j], then max(·, +0) with relu.
TEXT ·scaleShiftRowsAVX2(SB), NOSPLIT, $0-49
	MOVQ dst+0(FP), DI
	MOVQ x+8(FP), SI
	MOVQ s+16(FP), R8
	MOVQ b+24(FP), R9
	MOVQ rows+32(FP), CX
	MOVQ c+40(FP), R10
	SHLQ $2, R10
	MOVBLZX relu+48(FP), AX
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JE ssdone
	TESTB AL, AL
	JNE ssrelurow

ssrow:
	XORQ BX, BX
sscol:
	VMOVUPS (SI)(BX*1), Y0
	VMOVUPS (R8)(BX*1), Y1
	VFMADD213PS (R9)(BX*1), Y1, Y0
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ $32, BX
	CMPQ BX, R10
	JL sscol
	ADDQ R10, SI
	ADDQ R10, DI
	DECQ CX
	JNE ssrow
	JMP ssdone

ssrelurow:
	XORQ BX, BX
ssrelucol:
	VMOVUPS (SI)(BX*1), Y0
	VMOVUPS (R8)(BX*1), Y1
	VFMADD213PS (R9)(BX*1), Y1, Y0
	VMAXPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ $32, BX
	CMPQ BX, R10
	JL ssrelucol
	ADDQ R10, SI
	ADDQ R10, DI
	DECQ CX
	JNE ssrelurow

ssdone:
	VZEROUPPER
	RET

// func affineGradRowsAVX2(dst, dy, mask, x, a, k, b *float32, rows, c int)
// dst[r][j] = g·a[j] + x[r][j]·k[j] + b[j], g = dy[r][j] masked by mask > 0
// when mask is not nil.
TEXT ·affineGradRowsAVX2(SB), NOSPLIT, $0-72
	MOVQ dst+0(FP), DI
	MOVQ dy+8(FP), SI
	MOVQ mask+16(FP), R11
	MOVQ x+24(FP), DX
	MOVQ a+32(FP), R8
	MOVQ k+40(FP), R9
	MOVQ b+48(FP), R12
	MOVQ rows+56(FP), CX
	MOVQ c+64(FP), R10
	SHLQ $2, R10
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JE agdone
	TESTQ R11, R11
	JNE agmaskrow

agrow:
	XORQ BX, BX
agcol:
	VMOVUPS (SI)(BX*1), Y0
	VMULPS (R8)(BX*1), Y0, Y0
	VMOVUPS (DX)(BX*1), Y1
	VFMADD231PS (R9)(BX*1), Y1, Y0
	VADDPS (R12)(BX*1), Y0, Y0
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ $32, BX
	CMPQ BX, R10
	JL agcol
	ADDQ R10, SI
	ADDQ R10, DX
	ADDQ R10, DI
	DECQ CX
	JNE agrow
	JMP agdone

agmaskrow:
	XORQ BX, BX
agmaskcol:
	VMOVUPS (R11)(BX*1), Y2
	VCMPPS $0x0E, Y15, Y2, Y2
	VANDPS (SI)(BX*1), Y2, Y0
	VMULPS (R8)(BX*1), Y0, Y0
	VMOVUPS (DX)(BX*1), Y1
	VFMADD231PS (R9)(BX*1), Y1, Y0
	VADDPS (R12)(BX*1), Y0, Y0
	VMOVUPS Y0, (DI)(BX*1)
	ADDQ $32, BX
	CMPQ BX, R10
	JL agmaskcol
	ADDQ R10, SI
	ADDQ R10, DX
	ADDQ R10, DI
	ADDQ R10, R11
	DECQ CX
	JNE agmaskrow

agdone:
	VZEROUPPER
	RET

// func colSumsAVX2(p1, p2, u, v, mask, su, sv *float32, rows, c int)
// p1[j] += Σ d, p2[j] += Σ d·w with d = u' − su, u' = u masked by
// mask > 0 when mask is not nil, w = v − sv, or d when v is nil.
TEXT ·colSumsAVX2(SB), NOSPLIT, $0-72
	MOVQ p1+0(FP), DI
	MOVQ p2+8(FP), R13
	MOVQ u+16(FP), SI
	MOVQ v+24(FP), DX
	MOVQ mask+32(FP), R11
	MOVQ su+40(FP), R8
	MOVQ sv+48(FP), R9
	MOVQ rows+56(FP), CX
	MOVQ c+64(FP), R10
	SHLQ $2, R10
	VXORPS Y15, Y15, Y15
	TESTQ CX, CX
	JE csdone

csrow:
	XORQ BX, BX
cscol:
	VMOVUPS (SI)(BX*1), Y0
	TESTQ R11, R11
	JE csnomask
	VMOVUPS (R11)(BX*1), Y2
	VCMPPS $0x0E, Y15, Y2, Y2
	VANDPS Y2, Y0, Y0
csnomask:
	VSUBPS (R8)(BX*1), Y0, Y0
	VMOVUPS Y0, Y1
	TESTQ DX, DX
	JE csself
	VMOVUPS (DX)(BX*1), Y1
	VSUBPS (R9)(BX*1), Y1, Y1
csself:
	VADDPS (DI)(BX*1), Y0, Y3
	VMOVUPS Y3, (DI)(BX*1)
	VMOVUPS (R13)(BX*1), Y4
	VFMADD231PS Y1, Y0, Y4
	VMOVUPS Y4, (R13)(BX*1)
	ADDQ $32, BX
	CMPQ BX, R10
	JL cscol
	ADDQ R10, SI
	TESTQ DX, DX
	JE csnov
	ADDQ R10, DX
csnov:
	TESTQ R11, R11
	JE csnom
	ADDQ R10, R11
csnom:
	DECQ CX
	JNE csrow

csdone:
	VZEROUPPER
	RET

// func axpyAVX2(alpha float32, x, y *float32, n int)
// y[i] += alpha·x[i] for i < n.
TEXT ·axpyAVX2(SB), NOSPLIT, $0-32
	VBROADCASTSS alpha+0(FP), Y15
	MOVQ x+8(FP), SI
	MOVQ y+16(FP), DI
	MOVQ n+24(FP), CX
	CMPQ CX, $32
	JL ax8
ax32:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMOVUPS 64(DI), Y2
	VMOVUPS 96(DI), Y3
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS 32(SI), Y15, Y1
	VFMADD231PS 64(SI), Y15, Y2
	VFMADD231PS 96(SI), Y15, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE ax32
ax8:
	CMPQ CX, $8
	JL ax1
	VMOVUPS (DI), Y0
	VFMADD231PS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP ax8
ax1:
	TESTQ CX, CX
	JE axdone
	VMOVSS (DI), X0
	VFMADD231SS (SI), X15, X0
	VMOVSS X0, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP ax1
axdone:
	VZEROUPPER
	RET

// func dotAVX2(x, y *float32, n int) float32
// Σ x[i]·y[i], summed in four 8-wide accumulators, then across them.
TEXT ·dotAVX2(SB), NOSPLIT, $0-28
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	CMPQ CX, $32
	JL dt8
dt32:
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	CMPQ CX, $32
	JGE dt32
dt8:
	CMPQ CX, $8
	JL dtsum
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP dt8
dtsum:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VHADDPS X0, X0, X0
	VHADDPS X0, X0, X0
dt1:
	TESTQ CX, CX
	JE dtdone
	VMOVSS (SI), X4
	VFMADD231SS (DI), X4, X0
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JMP dt1
dtdone:
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET
