//go:build goexperiment.simd && amd64

#include "textflag.h"

// func rankBlock4x8AVX(a *float64, k int, wa *float64, y *float64, n int)
//
// The 4×8 block of A at a (rows k float64s apart) += Σ_j wa_j[0:4] y_j[0:8]ᵀ
// for j = 0 … n−1, wa_j and y_j k float64s apart: rankUpdate64's kernel.
// The block's eight accumulators stay in registers across all n rows; each
// entry gets its terms in the order j = 0, 1, …, each a VMULPD then a
// VADDPD (never fused), so the bits are rankUpdate64Go's. n ≥ 1. Requires
// AVX2.
TEXT ·rankBlock4x8AVX(SB), NOSPLIT, $0-40
	MOVQ a+0(FP), DI
	MOVQ k+8(FP), CX
	MOVQ wa+16(FP), SI
	MOVQ y+24(FP), DX
	MOVQ n+32(FP), R8
	SHLQ $3, CX               // row bytes
	LEAQ (DI)(CX*2), R9       // row 2 of the block
	VMOVUPD (DI), Y0
	VMOVUPD 32(DI), Y1
	VMOVUPD (DI)(CX*1), Y2
	VMOVUPD 32(DI)(CX*1), Y3
	VMOVUPD (R9), Y4
	VMOVUPD 32(R9), Y5
	VMOVUPD (R9)(CX*1), Y6
	VMOVUPD 32(R9)(CX*1), Y7

loop:
	VMOVUPD      (DX), Y8
	VMOVUPD      32(DX), Y9
	VBROADCASTSD (SI), Y10
	VBROADCASTSD 8(SI), Y11
	VMULPD       Y8, Y10, Y12
	VMULPD       Y9, Y10, Y13
	VMULPD       Y8, Y11, Y14
	VMULPD       Y9, Y11, Y15
	VADDPD       Y12, Y0, Y0
	VADDPD       Y13, Y1, Y1
	VADDPD       Y14, Y2, Y2
	VADDPD       Y15, Y3, Y3
	VBROADCASTSD 16(SI), Y10
	VBROADCASTSD 24(SI), Y11
	VMULPD       Y8, Y10, Y12
	VMULPD       Y9, Y10, Y13
	VMULPD       Y8, Y11, Y14
	VMULPD       Y9, Y11, Y15
	VADDPD       Y12, Y4, Y4
	VADDPD       Y13, Y5, Y5
	VADDPD       Y14, Y6, Y6
	VADDPD       Y15, Y7, Y7
	ADDQ         CX, DX
	ADDQ         CX, SI
	DECQ         R8
	JNZ          loop

	VMOVUPD Y0, (DI)
	VMOVUPD Y1, 32(DI)
	VMOVUPD Y2, (DI)(CX*1)
	VMOVUPD Y3, 32(DI)(CX*1)
	VMOVUPD Y4, (R9)
	VMOVUPD Y5, 32(R9)
	VMOVUPD Y6, (R9)(CX*1)
	VMOVUPD Y7, 32(R9)(CX*1)
	VZEROUPPER
	RET
