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
