#include "textflag.h"

// Dword indices that spread runs 0..3 (lo) or 4..7 (hi) of 8 int32 over
// the two 128-bit lanes, two per lane.
DATA permLo<>+0(SB)/8, $0x0000000000000000
DATA permLo<>+8(SB)/8, $0x0000000100000001
DATA permLo<>+16(SB)/8, $0x0000000200000002
DATA permLo<>+24(SB)/8, $0x0000000300000003
GLOBL permLo<>(SB), RODATA|NOPTR, $32
DATA permHi<>+0(SB)/8, $0x0000000400000004
DATA permHi<>+8(SB)/8, $0x0000000500000005
DATA permHi<>+16(SB)/8, $0x0000000600000006
DATA permHi<>+24(SB)/8, $0x0000000700000007
GLOBL permHi<>(SB), RODATA|NOPTR, $32
// Per lane: bytes 0..7 take byte 0 (the low byte of the first dword),
// bytes 8..15 byte 8 (that of the third): each run's value over its 8
// pixels.
DATA spread<>+0(SB)/8, $0x0000000000000000
DATA spread<>+8(SB)/8, $0x0808080808080808
DATA spread<>+16(SB)/8, $0x0000000000000000
DATA spread<>+24(SB)/8, $0x0808080808080808
GLOBL spread<>(SB), RODATA|NOPTR, $32
DATA c63<>+0(SB)/4, $63
GLOBL c63<>(SB), RODATA|NOPTR, $4

// delta computes the per-pixel change of 32 pixels into dst from the run
// bases (base), fractions (frac), a permutation (perm) and the 32 dither
// thresholds (thr): base + (thr + frac > 63). Y10 spread, Y14 bytes of 63.
#define DELTA(base, frac, perm, thr, dst, tmp) \
	VPERMD base, perm, dst; \
	VPSHUFB Y10, dst, dst; \
	VPERMD frac, perm, tmp; \
	VPSHUFB Y10, tmp, tmp; \
	VPADDB thr, tmp, tmp; \
	VPCMPGTB Y14, tmp, tmp; \
	VPSUBB tmp, dst, dst

// APPLY writes x + d, saturated to 0..255, to mem (x is kept; d and tmp
// are clobbered). Y13 is zero.
#define APPLY(x, d, tmp, mem) \
	VPMAXSB Y13, d, tmp; \
	VPADDUSB tmp, x, tmp; \
	VPSUBB d, Y13, d; \
	VPMAXSB Y13, d, d; \
	VPSUBUSB d, tmp, tmp; \
	VMOVDQU tmp, mem

// func pairRunsAVX2(a, b *byte, pat *int8, s0, s1 *int32, fa int32, thresh *uint8, n int)
TEXT ·pairRunsAVX2(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), AX
	MOVQ b+8(FP), BX
	MOVQ pat+16(FP), CX
	MOVQ s0+24(FP), DX
	MOVQ s1+32(FP), R8
	MOVL fa+40(FP), R9
	MOVQ thresh+48(FP), SI
	MOVQ n+56(FP), DI
	TESTQ DI, DI
	JLE done
	VMOVDQU 0(SI), Y8
	VMOVDQU 32(SI), Y9
	VMOVDQU spread<>(SB), Y10
	VMOVDQU permHi<>(SB), Y11
	VMOVDQU permLo<>(SB), Y12
	VPXOR Y13, Y13, Y13
	VPBROADCASTB c63<>(SB), Y14
	VPBROADCASTD c63<>(SB), Y15
	// R10 = f, R11 = 16−f, R12 = amp: broadcast in each step (every
	// vector register is taken).
	MOVL R9, R10
	ANDL $0xff, R10
	MOVL $16, R11
	SUBL R10, R11
	MOVL R9, R12
	SARL $8, R12

loop:
	// Strength: ((s0·(16−f) + s1·f) >> 4) · amp.
	VMOVD R11, X1
	VPBROADCASTD X1, Y1
	VPMULLD (DX), Y1, Y1
	VMOVD R10, X2
	VPBROADCASTD X2, Y2
	VPMULLD (R8), Y2, Y2
	VPADDD Y1, Y2, Y2
	VPSRAD $4, Y2, Y2
	VMOVD R12, X1
	VPBROADCASTD X1, Y1
	VPMULLD Y1, Y2, Y2
	VPMOVSXBD (CX), Y0
	VPMULLD Y2, Y0, Y0       // kA = pattern × strength
	VPSRAD $21, Y0, Y1       // A: whole levels
	VPSRLD $15, Y0, Y2
	VPAND Y15, Y2, Y2        // A: fraction in 1/64
	VPSUBD Y0, Y13, Y3       // kB = −kA
	VPSRAD $21, Y3, Y4
	VPSRLD $15, Y3, Y5
	VPAND Y15, Y5, Y5

	// Pixels 0..31 (runs 0..3).
	DELTA(Y1, Y2, Y12, Y8, Y3, Y6)
	DELTA(Y4, Y5, Y12, Y8, Y7, Y6)
	VMOVDQU 0(AX), Y0
	APPLY(Y0, Y3, Y6, 0(AX))
	APPLY(Y0, Y7, Y6, 0(BX))

	// Pixels 32..63 (runs 4..7).
	DELTA(Y1, Y2, Y11, Y9, Y3, Y6)
	DELTA(Y4, Y5, Y11, Y9, Y7, Y6)
	VMOVDQU 32(AX), Y0
	APPLY(Y0, Y3, Y6, 32(AX))
	APPLY(Y0, Y7, Y6, 32(BX))

	ADDQ $64, AX
	ADDQ $64, BX
	ADDQ $8, CX
	ADDQ $32, DX
	ADDQ $32, R8
	DECQ DI
	JNZ loop
	VZEROUPPER
done:
	RET

DATA evenBytes<>+0(SB)/8, $0x00ff00ff00ff00ff
GLOBL evenBytes<>(SB), RODATA|NOPTR, $8

// func blockActAVX2(r0, n0, r1, n1 *byte, n int, out *uint64)
//
// For n groups of 32 pixels (4 blocks of 8), per block: the sum over its
// even columns k of |r0[k]−r0[k+1]| + |r0[k]−n0[k]| + |r1[k]−r1[k+1]| +
// |r1[k]−n1[k]| in the low 32 bits of out[i], and of r0[k]+r1[k] in the
// high 32 bits. Reads r0 and r1 up to byte 32n (one past the groups).
TEXT ·blockActAVX2(SB), NOSPLIT, $0-48
	MOVQ r0+0(FP), AX
	MOVQ n0+8(FP), BX
	MOVQ r1+16(FP), CX
	MOVQ n1+24(FP), DX
	MOVQ n+32(FP), DI
	MOVQ out+40(FP), SI
	TESTQ DI, DI
	JLE actdone
	VPBROADCASTQ evenBytes<>(SB), Y15
	VPXOR Y14, Y14, Y14

actloop:
	VPAND 0(AX), Y15, Y0     // r0, even columns
	VPAND 1(AX), Y15, Y1     // its right neighbours
	VPAND 0(BX), Y15, Y2     // the row below
	VPAND 0(CX), Y15, Y3
	VPAND 1(CX), Y15, Y4
	VPAND 0(DX), Y15, Y5
	VPSADBW Y1, Y0, Y1
	VPSADBW Y2, Y0, Y2
	VPSADBW Y4, Y3, Y4
	VPSADBW Y5, Y3, Y5
	VPADDQ Y1, Y2, Y2
	VPADDQ Y4, Y5, Y5
	VPADDQ Y2, Y5, Y5        // activity per block
	VPSADBW Y14, Y0, Y0
	VPSADBW Y14, Y3, Y3
	VPADDQ Y0, Y3, Y3        // sum per block
	VPSLLQ $32, Y3, Y3
	VPOR Y3, Y5, Y5
	VMOVDQU Y5, 0(SI)
	ADDQ $32, AX
	ADDQ $32, BX
	ADDQ $32, CX
	ADDQ $32, DX
	ADDQ $32, SI
	DECQ DI
	JNZ actloop
	VZEROUPPER
actdone:
	RET
