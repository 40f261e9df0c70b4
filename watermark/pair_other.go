//go:build !amd64

package watermark

var useAVX2 = false

func pairRunsAVX2(a, b *byte, pat *int8, s0, s1 *int32, fa int32, thresh *uint8, n int) {
	panic("watermark: no AVX2 kernel on this architecture")
}

func blockActAVX2(r0, n0, r1, n1 *byte, n int, out *uint64) {
	panic("watermark: no AVX2 kernel on this architecture")
}
