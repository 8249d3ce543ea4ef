//go:build goexperiment.simd && amd64

#include "textflag.h"

// func accumRowsAVX(other *float32, k int, cols *int32, n int, cm1 *float32, bias *float32, v *float32, out *float32)
//
// The CG kernel (see accumRowsGo): for each of the n entries j, with
// y = other[cols[j]*k:], d = y·v and t = bias[j] − cm1[j]·d (t = cm1[j]·d
// when bias is nil), out += t·y. k is a multiple of 8 (≥ 8). Entries go four
// at a time: the dot products run with two accumulators per row (eight
// independent FMA chains) with v and the rows read straight from L1 as FMA
// memory operands, one horizontal reduction yields the four sums at once,
// and out is loaded and stored once per four rows. Remaining entries go one
// at a time the same way. The reduction order is fixed, so results are
// deterministic. Requires AVX2 and FMA. bias is advanced in its argument
// slot (there is no spare register).
TEXT ·accumRowsAVX(SB), NOSPLIT, $0-64
	MOVQ k+8(FP), BX
	SHLQ $2, BX               // row bytes
	MOVQ cols+16(FP), R8
	MOVQ n+24(FP), DX
	MOVQ cm1+32(FP), R9
	MOVQ v+48(FP), DI
	MOVQ out+56(FP), R11

group:
	CMPQ    DX, $4
	JLT     single
	MOVQ    other+0(FP), SI
	MOVLQSX (R8), AX
	IMULQ   BX, AX
	ADDQ    SI, AX
	MOVLQSX 4(R8), CX
	IMULQ   BX, CX
	ADDQ    SI, CX
	MOVLQSX 8(R8), R12
	IMULQ   BX, R12
	ADDQ    SI, R12
	MOVLQSX 12(R8), R13
	IMULQ   BX, R13
	ADDQ    SI, R13

	// Prefetch the next group's four rows (every line, plus the row's last
	// float in case it starts mid-line): the first CG pass over a row's
	// entries finds them in L3 or memory (the other side's factors are
	// megabytes; 32 ns per entry from L3 vs 10 ns from L2 at k = 152).
	// Measured gain: 2-3 % of a 150-factor iteration.
	CMPQ DX, $8
	JLT  nopf
	MOVLQSX 16(R8), R10
	IMULQ   BX, R10
	ADDQ    other+0(FP), R10
	XORQ    SI, SI

pf16:
	PREFETCHT0 (R10)(SI*1)
	ADDQ       $64, SI
	CMPQ       SI, BX
	JLT        pf16
	PREFETCHT0 -4(R10)(BX*1)
	MOVLQSX 20(R8), R10
	IMULQ   BX, R10
	ADDQ    other+0(FP), R10
	XORQ    SI, SI

pf20:
	PREFETCHT0 (R10)(SI*1)
	ADDQ       $64, SI
	CMPQ       SI, BX
	JLT        pf20
	PREFETCHT0 -4(R10)(BX*1)
	MOVLQSX 24(R8), R10
	IMULQ   BX, R10
	ADDQ    other+0(FP), R10
	XORQ    SI, SI

pf24:
	PREFETCHT0 (R10)(SI*1)
	ADDQ       $64, SI
	CMPQ       SI, BX
	JLT        pf24
	PREFETCHT0 -4(R10)(BX*1)
	MOVLQSX 28(R8), R10
	IMULQ   BX, R10
	ADDQ    other+0(FP), R10
	XORQ    SI, SI

pf28:
	PREFETCHT0 (R10)(SI*1)
	ADDQ       $64, SI
	CMPQ       SI, BX
	JLT        pf28
	PREFETCHT0 -4(R10)(BX*1)

nopf:
	VXORPS  Y0, Y0, Y0
	VXORPS  Y1, Y1, Y1
	VXORPS  Y2, Y2, Y2
	VXORPS  Y3, Y3, Y3
	VXORPS  Y5, Y5, Y5
	VXORPS  Y6, Y6, Y6
	VXORPS  Y7, Y7, Y7
	VXORPS  Y8, Y8, Y8
	MOVQ    BX, R10
	SUBQ    $32, R10          // pairs of vectors while SI < BX−32
	XORQ    SI, SI
	CMPQ    SI, R10
	JGE     dot1

dot2:
	VMOVUPS     (DI)(SI*1), Y4
	VMOVUPS     32(DI)(SI*1), Y9
	VFMADD231PS (AX)(SI*1), Y4, Y0
	VFMADD231PS (CX)(SI*1), Y4, Y1
	VFMADD231PS (R12)(SI*1), Y4, Y2
	VFMADD231PS (R13)(SI*1), Y4, Y3
	VFMADD231PS 32(AX)(SI*1), Y9, Y5
	VFMADD231PS 32(CX)(SI*1), Y9, Y6
	VFMADD231PS 32(R12)(SI*1), Y9, Y7
	VFMADD231PS 32(R13)(SI*1), Y9, Y8
	ADDQ        $64, SI
	CMPQ        SI, R10
	JLT         dot2

dot1:
	CMPQ        SI, BX
	JGE         dotdone
	VMOVUPS     (DI)(SI*1), Y4
	VFMADD231PS (AX)(SI*1), Y4, Y0
	VFMADD231PS (CX)(SI*1), Y4, Y1
	VFMADD231PS (R12)(SI*1), Y4, Y2
	VFMADD231PS (R13)(SI*1), Y4, Y3

dotdone:
	VADDPS       Y5, Y0, Y0
	VADDPS       Y6, Y1, Y1
	VADDPS       Y7, Y2, Y2
	VADDPS       Y8, Y3, Y3
	VHADDPS      Y1, Y0, Y0
	VHADDPS      Y3, Y2, Y2
	VHADDPS      Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0   // X0 = the four dot products
	VMOVUPS      (R9), X4
	VMULPS       X4, X0, X0
	MOVQ         bias+40(FP), R10
	TESTQ        R10, R10
	JZ           nobias4
	VMOVUPS      (R10), X4
	VSUBPS       X0, X4, X0   // bias − cm1·d
	ADDQ         $16, R10
	MOVQ         R10, bias+40(FP)

nobias4:
	VINSERTF128 $1, X0, Y0, Y0
	VPERMILPS   $0x00, Y0, Y4
	VPERMILPS   $0x55, Y0, Y5
	VPERMILPS   $0xAA, Y0, Y6
	VPERMILPS   $0xFF, Y0, Y7
	XORQ        SI, SI

axpy4:
	VMOVUPS     (R11)(SI*1), Y0
	VFMADD231PS (AX)(SI*1), Y4, Y0
	VFMADD231PS (CX)(SI*1), Y5, Y0
	VFMADD231PS (R12)(SI*1), Y6, Y0
	VFMADD231PS (R13)(SI*1), Y7, Y0
	VMOVUPS     Y0, (R11)(SI*1)
	ADDQ        $32, SI
	CMPQ        SI, BX
	JLT         axpy4
	ADDQ        $16, R8
	ADDQ        $16, R9
	SUBQ        $4, DX
	JMP         group

single:
	TESTQ   DX, DX
	JZ      done
	MOVQ    other+0(FP), SI
	MOVLQSX (R8), AX
	IMULQ   BX, AX
	ADDQ    SI, AX
	VXORPS  Y0, Y0, Y0
	VXORPS  Y5, Y5, Y5
	MOVQ    BX, R10
	SUBQ    $32, R10
	XORQ    SI, SI
	CMPQ    SI, R10
	JGE     sdot1

sdot2:
	VMOVUPS     (DI)(SI*1), Y4
	VMOVUPS     32(DI)(SI*1), Y9
	VFMADD231PS (AX)(SI*1), Y4, Y0
	VFMADD231PS 32(AX)(SI*1), Y9, Y5
	ADDQ        $64, SI
	CMPQ        SI, R10
	JLT         sdot2

sdot1:
	CMPQ        SI, BX
	JGE         sdotdone
	VMOVUPS     (DI)(SI*1), Y4
	VFMADD231PS (AX)(SI*1), Y4, Y0

sdotdone:
	VADDPS       Y5, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       (R9), X4
	VMULSS       X4, X0, X0
	MOVQ         bias+40(FP), R10
	TESTQ        R10, R10
	JZ           nobias1
	VMOVSS       (R10), X4
	VSUBSS       X0, X4, X0
	ADDQ         $4, R10
	MOVQ         R10, bias+40(FP)

nobias1:
	VBROADCASTSS X0, Y4
	XORQ         SI, SI

axpy1:
	VMOVUPS     (R11)(SI*1), Y0
	VFMADD231PS (AX)(SI*1), Y4, Y0
	VMOVUPS     Y0, (R11)(SI*1)
	ADDQ        $32, SI
	CMPQ        SI, BX
	JLT         axpy1
	ADDQ        $4, R8
	ADDQ        $4, R9
	DECQ        DX
	JMP         single

done:
	VZEROUPPER
	RET
