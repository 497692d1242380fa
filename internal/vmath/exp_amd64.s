#include "textflag.h"

// func exp8(dst, src *float64, n int)
//
// math.Exp's amd64 algorithm (exp_amd64.s, its FMA path; after Shibata,
// SLEEF), eight lanes at a time with the same operations in the same
// order, so every lane gets math.Exp's bits: k = round(x·log2 e),
// r = (x − k·ln2u − k·ln2l)/16, a degree-8 Taylor polynomial, four
// squarings of the form y·(y + 2), then ·2^k. No special cases: the
// caller recomputes lanes outside [−708, 709] with math.Exp.
TEXT ·exp8(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JEQ  done
	MOVQ $0x3FF71547652B82FE, AX // log2 e
	VPBROADCASTQ AX, Z20
	MOVQ $0x3FE62E42FEFA3000, AX // ln2, upper part
	VPBROADCASTQ AX, Z21
	MOVQ $0x3D53DE6AF278ECE6, AX // ln2, lower part
	VPBROADCASTQ AX, Z22
	MOVQ $0x3FB0000000000000, AX // 0.0625
	VPBROADCASTQ AX, Z23
	MOVQ $0x3EFA01A01A01A01A, AX // 1/8!
	VPBROADCASTQ AX, Z24
	MOVQ $0x3F2A01A01A01A01A, AX // 1/7!
	VPBROADCASTQ AX, Z25
	MOVQ $0x3F56C16C16C16C17, AX // 1/6!
	VPBROADCASTQ AX, Z26
	MOVQ $0x3F81111111111111, AX // 1/5!
	VPBROADCASTQ AX, Z27
	MOVQ $0x3FA5555555555555, AX // 1/4!
	VPBROADCASTQ AX, Z28
	MOVQ $0x3FC5555555555555, AX // 1/3!
	VPBROADCASTQ AX, Z29
	MOVQ $0x3FE0000000000000, AX // 0.5
	VPBROADCASTQ AX, Z30
	MOVQ $0x3FF0000000000000, AX // 1
	VPBROADCASTQ AX, Z31
	MOVQ $0x4000000000000000, AX // 2
	VPBROADCASTQ AX, Z19
	MOVQ $0x3FF, AX // exponent bias
	VPBROADCASTQ AX, Z18

loop:
	VMOVUPD (SI), Z0             // x
	VMULPD  Z20, Z0, Z1          // x·log2 e
	VCVTPD2DQ Z1, Y2             // k = round(x·log2 e) (round to nearest even, as CVTSD2SL)
	VCVTDQ2PD Y2, Z1             // float64(k)
	VFNMADD231PD Z21, Z1, Z0     // x −= k·ln2u
	VFNMADD231PD Z22, Z1, Z0     // x −= k·ln2l
	VMULPD  Z23, Z0, Z0          // r = x/16
	VMOVAPD Z24, Z1
	VFMADD213PD Z25, Z0, Z1      // p = p·r + c
	VFMADD213PD Z26, Z0, Z1
	VFMADD213PD Z27, Z0, Z1
	VFMADD213PD Z28, Z0, Z1
	VFMADD213PD Z29, Z0, Z1
	VFMADD213PD Z30, Z0, Z1
	VFMADD213PD Z31, Z0, Z1
	VMULPD  Z1, Z0, Z0           // y = r·p
	VADDPD  Z19, Z0, Z1          // y·(y + 2), three times
	VMULPD  Z1, Z0, Z0
	VADDPD  Z19, Z0, Z1
	VMULPD  Z1, Z0, Z0
	VADDPD  Z19, Z0, Z1
	VMULPD  Z1, Z0, Z0
	VADDPD  Z19, Z0, Z1
	VFMADD213PD Z31, Z1, Z0      // y·(y + 2) + 1
	VPMOVSXDQ Y2, Z3             // k as int64
	VPADDQ  Z18, Z3, Z3          // k + bias
	VPSLLQ  $52, Z3, Z3          // 2^k
	VMULPD  Z3, Z0, Z0
	VMOVUPD Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET
