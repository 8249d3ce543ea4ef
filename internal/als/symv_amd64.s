//go:build goexperiment.simd && amd64

#include "textflag.h"

// func symv4AVX(a *float32, k int, v *float32, out *float32)
//
// out_g = A·v_g for four vectors v_g = v[g*k:(g+1)*k] (out likewise) and a
// symmetric row-major k×k A, computed as Σ_r v_g[r]·A[r,:]: each A row
// segment loaded serves four vectors, so the k×k matrix (92 KiB at k = 152,
// more than L1) is streamed once per four mat-vecs instead of once per
// mat-vec. Columns go 16 at a time (8 accumulators: 2 column vectors × 4
// vectors), then 8 at a time. Every output is summed over r in increasing
// order with FMA, exactly as the one-vector symv does, so grouping rows
// does not change any result bit. k is a multiple of 8 (≥ 8). Requires
// AVX2 and FMA.
TEXT ·symv4AVX(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ k+8(FP), CX
	MOVQ v+16(FP), DI
	MOVQ out+24(FP), R11
	MOVQ CX, BX
	SHLQ $2, BX               // row bytes
	XORQ R12, R12             // column byte offset

col2:
	LEAQ   64(R12), AX
	CMPQ   AX, BX
	JGT    col1
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	LEAQ   (SI)(R12*1), AX    // A[0, c]
	MOVQ   DI, R9             // v_0[r], v_1[r] = +BX, v_2[r] = +2BX
	LEAQ   (DI)(BX*2), R10
	ADDQ   BX, R10            // v_3[r]
	MOVQ   CX, R13

r2:
	VMOVUPS      (AX), Y8
	VMOVUPS      32(AX), Y9
	VBROADCASTSS (R9), Y10
	VFMADD231PS  Y10, Y8, Y0
	VFMADD231PS  Y10, Y9, Y1
	VBROADCASTSS (R9)(BX*1), Y10
	VFMADD231PS  Y10, Y8, Y2
	VFMADD231PS  Y10, Y9, Y3
	VBROADCASTSS (R9)(BX*2), Y10
	VFMADD231PS  Y10, Y8, Y4
	VFMADD231PS  Y10, Y9, Y5
	VBROADCASTSS (R10), Y10
	VFMADD231PS  Y10, Y8, Y6
	VFMADD231PS  Y10, Y9, Y7
	ADDQ         BX, AX
	ADDQ         $4, R9
	ADDQ         $4, R10
	DECQ         R13
	JNZ          r2

	LEAQ    (R11)(R12*1), AX
	VMOVUPS Y0, (AX)
	VMOVUPS Y1, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y2, (AX)
	VMOVUPS Y3, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y4, (AX)
	VMOVUPS Y5, 32(AX)
	ADDQ    BX, AX
	VMOVUPS Y6, (AX)
	VMOVUPS Y7, 32(AX)
	ADDQ    $64, R12
	JMP     col2

col1:
	CMPQ   R12, BX
	JGE    done
	VXORPS Y0, Y0, Y0
	VXORPS Y2, Y2, Y2
	VXORPS Y4, Y4, Y4
	VXORPS Y6, Y6, Y6
	LEAQ   (SI)(R12*1), AX
	MOVQ   DI, R9
	LEAQ   (DI)(BX*2), R10
	ADDQ   BX, R10
	MOVQ   CX, R13

r1:
	VMOVUPS      (AX), Y8
	VBROADCASTSS (R9), Y10
	VFMADD231PS  Y10, Y8, Y0
	VBROADCASTSS (R9)(BX*1), Y10
	VFMADD231PS  Y10, Y8, Y2
	VBROADCASTSS (R9)(BX*2), Y10
	VFMADD231PS  Y10, Y8, Y4
	VBROADCASTSS (R10), Y10
	VFMADD231PS  Y10, Y8, Y6
	ADDQ         BX, AX
	ADDQ         $4, R9
	ADDQ         $4, R10
	DECQ         R13
	JNZ          r1

	LEAQ    (R11)(R12*1), AX
	VMOVUPS Y0, (AX)
	ADDQ    BX, AX
	VMOVUPS Y2, (AX)
	ADDQ    BX, AX
	VMOVUPS Y4, (AX)
	ADDQ    BX, AX
	VMOVUPS Y6, (AX)
	ADDQ    $32, R12
	JMP     col1

done:
	VZEROUPPER
	RET

// func symv1AVX(a *float32, k int, v *float32, out *float32)
//
// out = A·v for one vector, as symv4AVX computes each of its four: Σ_r
// v[r]·A[r,:] with FMA in increasing r, so symv and symv4 agree to the
// bit. Columns go 32 at a time (4 accumulators), then 8 at a time. k is a
// multiple of 8 (≥ 8). Requires AVX2 and FMA.
TEXT ·symv1AVX(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ k+8(FP), CX
	MOVQ v+16(FP), DI
	MOVQ out+24(FP), R11
	MOVQ CX, BX
	SHLQ $2, BX               // row bytes
	XORQ R12, R12             // column byte offset

c4:
	LEAQ   128(R12), AX
	CMPQ   AX, BX
	JGT    c1
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	LEAQ   (SI)(R12*1), AX    // A[0, c]
	MOVQ   DI, R9             // v[r]
	MOVQ   CX, R13

r4:
	VBROADCASTSS (R9), Y10
	VFMADD231PS  (AX), Y10, Y0
	VFMADD231PS  32(AX), Y10, Y1
	VFMADD231PS  64(AX), Y10, Y2
	VFMADD231PS  96(AX), Y10, Y3
	ADDQ         BX, AX
	ADDQ         $4, R9
	DECQ         R13
	JNZ          r4

	LEAQ    (R11)(R12*1), AX
	VMOVUPS Y0, (AX)
	VMOVUPS Y1, 32(AX)
	VMOVUPS Y2, 64(AX)
	VMOVUPS Y3, 96(AX)
	SUBQ    $-128, R12
	JMP     c4

c1:
	CMPQ   R12, BX
	JGE    fin
	VXORPS Y0, Y0, Y0
	LEAQ   (SI)(R12*1), AX
	MOVQ   DI, R9
	MOVQ   CX, R13

r1s:
	VBROADCASTSS (R9), Y10
	VFMADD231PS  (AX), Y10, Y0
	ADDQ         BX, AX
	ADDQ         $4, R9
	DECQ         R13
	JNZ          r1s

	LEAQ    (R11)(R12*1), AX
	VMOVUPS Y0, (AX)
	ADDQ    $32, R12
	JMP     c1

fin:
	VZEROUPPER
	RET
