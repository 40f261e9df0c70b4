package watermark

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2 kernel of EmbedPair's 8-pixel runs.
var useAVX2 = cpu.X86.HasAVX2

// pairRunsAVX2 marks n×64 pixels of a row as variants A (a) and B (b) from
// the pixels in a: per 8-pixel run i, the change is pat[i]·s in the
// embedder's fixed point (A: +, B: −), with s the strength interpolated
// between the block rows s0 and s1, ((s0[i]·(16−f) + s1[i]·f) >> 4)·amp
// (fa = f | amp<<8), its fraction rounded up where the run's dither
// thresholds (thresh, the 64 of the row) reach it, saturated to 0..255.
// Byte for byte what EmbedPair's Go code writes.
//
//go:noescape
func pairRunsAVX2(a, b *byte, pat *int8, s0, s1 *int32, fa int32, thresh *uint8, n int)

// blockActAVX2 measures the texture and brightness sums of n×4 blocks of a
// block row (see blockStrengths): per block, the activity in the low and
// the sum in the high 32 bits of out.
//
//go:noescape
func blockActAVX2(r0, n0, r1, n1 *byte, n int, out *uint64)
