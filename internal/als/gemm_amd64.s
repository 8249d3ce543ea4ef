//go:build goexperiment.simd && amd64

#include "textflag.h"

// func gemm6x16AVX(x *float32, k int, y *float32, npanels int, out *float32, ldo int)
//
// For 6 rows x_r (contiguous, stride k floats) and npanels packed item
// panels (each k×16 floats: factor-major, 16 items per factor), writes
// out[r*ldo + p*16 + j] = Σ_kk x_r[kk]·panel_p[kk*16+j]. The 6×16 tile lives
// in Y0–Y11 for the whole K loop (12 independent FMA chains hide the FMA
// latency); per factor the kernel loads 2 item vectors and broadcasts 6 user
// scalars, all sequential. k must be ≥ 1. Accumulation runs over kk in
// increasing order, so results are deterministic. Requires AVX2 and FMA.
TEXT ·gemm6x16AVX(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ k+8(FP), CX
	MOVQ y+16(FP), DI
	MOVQ npanels+24(FP), DX
	MOVQ out+32(FP), R9
	MOVQ ldo+40(FP), R10
	SHLQ $2, R10              // output row stride in bytes
	MOVQ CX, BX
	SHLQ $2, BX               // x row stride in bytes
	LEAQ (SI)(BX*2), R8
	ADDQ BX, R8               // R8 = row 3

panel:
	TESTQ DX, DX
	JZ    done
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
	MOVQ SI, R11
	MOVQ R8, R12
	MOVQ CX, R13

kloop:
	VMOVUPS      (DI), Y12
	VMOVUPS      32(DI), Y13
	VBROADCASTSS (R11), Y14
	VFMADD231PS  Y14, Y12, Y0
	VFMADD231PS  Y14, Y13, Y1
	VBROADCASTSS (R11)(BX*1), Y14
	VFMADD231PS  Y14, Y12, Y2
	VFMADD231PS  Y14, Y13, Y3
	VBROADCASTSS (R11)(BX*2), Y14
	VFMADD231PS  Y14, Y12, Y4
	VFMADD231PS  Y14, Y13, Y5
	VBROADCASTSS (R12), Y14
	VFMADD231PS  Y14, Y12, Y6
	VFMADD231PS  Y14, Y13, Y7
	VBROADCASTSS (R12)(BX*1), Y14
	VFMADD231PS  Y14, Y12, Y8
	VFMADD231PS  Y14, Y13, Y9
	VBROADCASTSS (R12)(BX*2), Y14
	VFMADD231PS  Y14, Y12, Y10
	VFMADD231PS  Y14, Y13, Y11
	ADDQ         $64, DI
	ADDQ         $4, R11
	ADDQ         $4, R12
	DECQ         R13
	JNZ          kloop

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
	DECQ    DX
	JMP     panel

done:
	VZEROUPPER
	RET
