//go:build goexperiment.simd && amd64

#include "textflag.h"

// func gramTileAVX(x *float32, y *float32, n int, ld int, npanels int, out *float32, ldo int)
//
// One 6-row stripe of a Gram matrix FᵀF over n rows of F stored with row
// stride ld floats: out[r*ldo + p*16 + j] = Σ_t x[t*ld + r]·y[t*ld + p*16 + j]
// for r < 6, j < 16, p < npanels, where x points at column a of F's first
// row and y at its column 0. The same register tiling as gemm6x16AVX, but
// both operands are read straight from F's rows (broadcasts of six
// adjacent floats, two 8-float loads), so no transposed or packed copy is
// needed. Sums run over t in increasing order with FMA, so out[a][b] and
// out[b][a] are bit-identical. n ≥ 1. Requires AVX2 and FMA.
TEXT ·gramTileAVX(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), SI
	MOVQ y+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ ld+24(FP), BX
	SHLQ $2, BX               // row stride in bytes
	MOVQ npanels+32(FP), DX
	MOVQ out+40(FP), R9
	MOVQ ldo+48(FP), R10
	SHLQ $2, R10              // output row stride in bytes

panel:
	TESTQ  DX, DX
	JZ     done
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	MOVQ   SI, R11
	MOVQ   DI, R12
	MOVQ   CX, R13

tloop:
	VMOVUPS      (R12), Y12
	VMOVUPS      32(R12), Y13
	VBROADCASTSS (R11), Y14
	VFMADD231PS  Y14, Y12, Y0
	VFMADD231PS  Y14, Y13, Y1
	VBROADCASTSS 4(R11), Y14
	VFMADD231PS  Y14, Y12, Y2
	VFMADD231PS  Y14, Y13, Y3
	VBROADCASTSS 8(R11), Y14
	VFMADD231PS  Y14, Y12, Y4
	VFMADD231PS  Y14, Y13, Y5
	VBROADCASTSS 12(R11), Y14
	VFMADD231PS  Y14, Y12, Y6
	VFMADD231PS  Y14, Y13, Y7
	VBROADCASTSS 16(R11), Y14
	VFMADD231PS  Y14, Y12, Y8
	VFMADD231PS  Y14, Y13, Y9
	VBROADCASTSS 20(R11), Y14
	VFMADD231PS  Y14, Y12, Y10
	VFMADD231PS  Y14, Y13, Y11
	ADDQ         BX, R11
	ADDQ         BX, R12
	DECQ         R13
	JNZ          tloop

	MOVQ    R9, AX
	VMOVUPS Y0, (AX)
	VMOVUPS Y1, 32(AX)
	ADDQ    R10, AX
	VMOVUPS Y2, (AX)
	VMOVUPS Y3, 32(AX)
	ADDQ    R10, AX
	VMOVUPS Y4, (AX)
	VMOVUPS Y5, 32(AX)
	ADDQ    R10, AX
	VMOVUPS Y6, (AX)
	VMOVUPS Y7, 32(AX)
	ADDQ    R10, AX
	VMOVUPS Y8, (AX)
	VMOVUPS Y9, 32(AX)
	ADDQ    R10, AX
	VMOVUPS Y10, (AX)
	VMOVUPS Y11, 32(AX)
	ADDQ    $64, R9
	ADDQ    $64, DI
	DECQ    DX
	JMP     panel

done:
	VZEROUPPER
	RET
