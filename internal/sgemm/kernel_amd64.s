#include "textflag.h"

// func kern6x16(kc int, a, b, c *float32)
//
// c[i*16+j] = Σ_{p<kc} a[p*6+i]·b[p*16+j] for i < 6, j < 16: the AVX2/FMA
// micro-kernel. a is a packed 6-row panel of A, b a packed 16-column panel
// of B; the 6×16 tile of C lives in Y0..Y11 (two 8-float registers per row).
TEXT ·kern6x16(SB), NOSPLIT, $0-32
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
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
	TESTQ CX, CX
	JEQ   store

loop:
	VMOVUPS      (DI), Y12
	VMOVUPS      32(DI), Y13
	VBROADCASTSS (SI), Y14
	VFMADD231PS  Y12, Y14, Y0
	VFMADD231PS  Y13, Y14, Y1
	VBROADCASTSS 4(SI), Y15
	VFMADD231PS  Y12, Y15, Y2
	VFMADD231PS  Y13, Y15, Y3
	VBROADCASTSS 8(SI), Y14
	VFMADD231PS  Y12, Y14, Y4
	VFMADD231PS  Y13, Y14, Y5
	VBROADCASTSS 12(SI), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS 16(SI), Y14
	VFMADD231PS  Y12, Y14, Y8
	VFMADD231PS  Y13, Y14, Y9
	VBROADCASTSS 20(SI), Y15
	VFMADD231PS  Y12, Y15, Y10
	VFMADD231PS  Y13, Y15, Y11
	ADDQ         $24, SI
	ADDQ         $64, DI
	DECQ         CX
	JNZ          loop

store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VMOVUPS Y4, 128(DX)
	VMOVUPS Y5, 160(DX)
	VMOVUPS Y6, 192(DX)
	VMOVUPS Y7, 224(DX)
	VMOVUPS Y8, 256(DX)
	VMOVUPS Y9, 288(DX)
	VMOVUPS Y10, 320(DX)
	VMOVUPS Y11, 352(DX)
	VZEROUPPER
	RET

// func cpuid(eax, ecx uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL eax+0(FP), AX
	MOVL ecx+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv() (eax uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-4
	MOVL $0, CX
	XGETBV
	MOVL AX, eax+0(FP)
	RET

// func kern12x16(kc int, a, b, c *float32)
//
// The AVX-512 micro-kernel: two consecutive packed 6-row panels of A (a and
// a + 6·kc) against one 16-column panel of B, c[i*16+j] for i < 12. Each
// entry is accumulated by one FMA per p in order, exactly as kern6x16 does,
// so both kernels give bit-identical results.
TEXT ·kern12x16(SB), NOSPLIT, $0-32
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ CX, R8
	IMULQ $24, R8
	LEAQ (SI)(R8*1), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	TESTQ CX, CX
	JEQ   store512

loop512:
	VMOVUPS (DI), Z12
	VFMADD231PS.BCST 0(SI), Z12, Z0
	VFMADD231PS.BCST 4(SI), Z12, Z1
	VFMADD231PS.BCST 8(SI), Z12, Z2
	VFMADD231PS.BCST 12(SI), Z12, Z3
	VFMADD231PS.BCST 16(SI), Z12, Z4
	VFMADD231PS.BCST 20(SI), Z12, Z5
	VFMADD231PS.BCST 0(R9), Z12, Z6
	VFMADD231PS.BCST 4(R9), Z12, Z7
	VFMADD231PS.BCST 8(R9), Z12, Z8
	VFMADD231PS.BCST 12(R9), Z12, Z9
	VFMADD231PS.BCST 16(R9), Z12, Z10
	VFMADD231PS.BCST 20(R9), Z12, Z11
	ADDQ $24, SI
	ADDQ $24, R9
	ADDQ $64, DI
	DECQ CX
	JNZ  loop512

store512:
	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	VMOVUPS Z4, 256(DX)
	VMOVUPS Z5, 320(DX)
	VMOVUPS Z6, 384(DX)
	VMOVUPS Z7, 448(DX)
	VMOVUPS Z8, 512(DX)
	VMOVUPS Z9, 576(DX)
	VMOVUPS Z10, 640(DX)
	VMOVUPS Z11, 704(DX)
	VZEROUPPER
	RET

// func addTile16(rows int, alpha float32, t, c *float32, ldc int)
//
// c[i*ldc+j] += alpha·t[i*16+j] for i < rows, j < 16 (AVX): the product
// and the sum are rounded separately, as the scalar Go loop does, so both
// give the same bits.
TEXT ·addTile16(SB), NOSPLIT, $0-40
	MOVQ rows+0(FP), CX
	VBROADCASTSS alpha+8(FP), Y2
	MOVQ t+16(FP), SI
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX
	TESTQ CX, CX
	JLE addtile_done

addtile_loop:
	VMULPS (SI), Y2, Y0
	VMULPS 32(SI), Y2, Y1
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ DX, DI
	DECQ CX
	JNZ addtile_loop

addtile_done:
	VZEROUPPER
	RET

// func setTile16(rows int, alpha float32, t, c *float32, ldc int)
//
// c[i*ldc+j] = alpha·t[i*16+j] + 0 for i < rows, j < 16 (AVX): adding +0
// turns a −0 product into +0, as 0 + alpha·t does.
TEXT ·setTile16(SB), NOSPLIT, $0-40
	MOVQ rows+0(FP), CX
	VBROADCASTSS alpha+8(FP), Y2
	VXORPS Y3, Y3, Y3
	MOVQ t+16(FP), SI
	MOVQ c+24(FP), DI
	MOVQ ldc+32(FP), DX
	SHLQ $2, DX
	TESTQ CX, CX
	JLE settile_done

settile_loop:
	VMULPS (SI), Y2, Y0
	VMULPS 32(SI), Y2, Y1
	VADDPS Y3, Y0, Y0
	VADDPS Y3, Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ DX, DI
	DECQ CX
	JNZ settile_loop

settile_done:
	VZEROUPPER
	RET

// func epiTile16(rows int, c *float32, ldc int, b *float32, relu bool)
//
// For i < rows, j < 16: c[i*ldc+j] += b[j] when b != nil, then
// c[i*ldc+j] = 0 where it is < 0 when relu (AVX). VMAXPS returns its second
// source when either is NaN or both are zero, so max(0, c) with c second
// keeps NaN and −0, as the scalar loop's c < 0 test does.
TEXT ·epiTile16(SB), NOSPLIT, $0-33
	MOVQ rows+0(FP), CX
	MOVQ c+8(FP), DI
	MOVQ ldc+16(FP), DX
	SHLQ $2, DX
	MOVQ b+24(FP), SI
	MOVBLZX relu+32(FP), R8
	VXORPS Y4, Y4, Y4
	TESTQ CX, CX
	JLE epi_done
	TESTQ SI, SI
	JEQ epi_nobias
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3

epi_bias_loop:
	VADDPS (DI), Y2, Y0
	VADDPS 32(DI), Y3, Y1
	TESTQ R8, R8
	JEQ epi_bias_store
	VMAXPS Y0, Y4, Y0
	VMAXPS Y1, Y4, Y1

epi_bias_store:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ DX, DI
	DECQ CX
	JNZ epi_bias_loop
	JMP epi_done

epi_nobias:
	TESTQ R8, R8
	JEQ epi_done

epi_relu_loop:
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VMAXPS Y0, Y4, Y0
	VMAXPS Y1, Y4, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ DX, DI
	DECQ CX
	JNZ epi_relu_loop

epi_done:
	VZEROUPPER
	RET

// func kern12x16d(kc int, a *float32, lda int, b, c *float32)
//
// kern12x16 reading A in place: row i of the 12-row block is at a + i·lda
// (lda in floats), so a non-transposed A needs no packing. The FMAs are
// kern12x16's, in the same order, so the results are bit-identical.
TEXT ·kern12x16d(SB), NOSPLIT, $0-40
	MOVQ kc+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ lda+16(FP), R10
	SHLQ $2, R10
	MOVQ b+24(FP), DI
	MOVQ c+32(FP), DX
	LEAQ (R10)(R10*2), R11
	LEAQ (SI)(R10*4), R12
	LEAQ (R12)(R10*4), R13
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	TESTQ CX, CX
	JEQ   stored

loopd:
	VMOVUPS (DI), Z12
	VFMADD231PS.BCST (SI), Z12, Z0
	VFMADD231PS.BCST (SI)(R10*1), Z12, Z1
	VFMADD231PS.BCST (SI)(R10*2), Z12, Z2
	VFMADD231PS.BCST (SI)(R11*1), Z12, Z3
	VFMADD231PS.BCST (R12), Z12, Z4
	VFMADD231PS.BCST (R12)(R10*1), Z12, Z5
	VFMADD231PS.BCST (R12)(R10*2), Z12, Z6
	VFMADD231PS.BCST (R12)(R11*1), Z12, Z7
	VFMADD231PS.BCST (R13), Z12, Z8
	VFMADD231PS.BCST (R13)(R10*1), Z12, Z9
	VFMADD231PS.BCST (R13)(R10*2), Z12, Z10
	VFMADD231PS.BCST (R13)(R11*1), Z12, Z11
	ADDQ $4, SI
	ADDQ $4, R12
	ADDQ $4, R13
	ADDQ $64, DI
	DECQ CX
	JNZ  loopd

stored:
	VMOVUPS Z0, 0(DX)
	VMOVUPS Z1, 64(DX)
	VMOVUPS Z2, 128(DX)
	VMOVUPS Z3, 192(DX)
	VMOVUPS Z4, 256(DX)
	VMOVUPS Z5, 320(DX)
	VMOVUPS Z6, 384(DX)
	VMOVUPS Z7, 448(DX)
	VMOVUPS Z8, 512(DX)
	VMOVUPS Z9, 576(DX)
	VMOVUPS Z10, 640(DX)
	VMOVUPS Z11, 704(DX)
	VZEROUPPER
	RET
