package watermark

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"
)

// TestKernelsMatchGo: EmbedPair with the SIMD kernels (where the CPU has
// them) writes byte for byte what the portable Go code writes, at widths
// that leave the kernels' steps partly or wholly to Go, on full-range
// pictures (saturation) and at ramp times.
func TestKernelsMatchGo(t *testing.T) {
	if !useAVX2 {
		t.Log("no SIMD kernel on this CPU: the Go code is all there is")
		return
	}
	defer func() { useAVX2 = true }()
	key := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct{ w, h, stride int }{{1920, 1080, 1920}, {1280, 720, 1344}, {853, 480, 896}, {640, 360, 640}, {70, 40, 70}, {33, 17, 33}} {
		r := rand.New(rand.NewPCG(uint64(tc.w), 1))
		pic := make([]byte, tc.stride*tc.h)
		for i := range pic {
			// Smooth areas, texture, and both ends of the range.
			x, y := i%tc.stride, i/tc.stride
			switch (x/97 + y/61) % 3 {
			case 0:
				pic[i] = byte(x + y)
			case 1:
				pic[i] = byte(r.IntN(256))
			default:
				pic[i] = byte(250 + r.IntN(6)*int(x&1))
			}
		}
		for _, pts := range []time.Duration{time.Second, 40 * time.Millisecond, 1900 * time.Millisecond} {
			run := func(simd bool) (a, b []byte) {
				useAVX2 = simd
				e, err := NewEmbedder(key, DefaultParams(2*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				a, b = bytes.Clone(pic), make([]byte, len(pic))
				e.EmbedPair(a, tc.stride, b, tc.stride, tc.w, tc.h, 0, pts)
				return a, b
			}
			ga, gb := run(false)
			sa, sb := run(true)
			if !bytes.Equal(ga, sa) || !bytes.Equal(gb, sb) {
				t.Fatalf("%dx%d (stride %d) at %s: the SIMD kernels differ from Go (A equal %v, B equal %v)",
					tc.w, tc.h, tc.stride, pts, bytes.Equal(ga, sa), bytes.Equal(gb, sb))
			}
			if bytes.Equal(ga, pic) {
				t.Fatalf("%dx%d at %s: nothing marked", tc.w, tc.h, pts)
			}
		}
	}
}
