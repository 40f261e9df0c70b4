package watermark

import (
	"testing"
	"time"
)

// refPlanes gives the variants' mean and half difference of any frame,
// asked for in any order, while holding at most planeCache planes.
func TestRefPlanes(t *testing.T) {
	const w, h, n = 16, 9, 3 * planeCache
	ref := &Reference{W: w, H: h}
	for j := range n {
		a, b := make([]byte, w*h), make([]byte, w*h)
		for i := range a {
			a[i], b[i] = byte(j+3*i), byte(j*5+i)
		}
		ref.A = append(ref.A, Picture{PTS: time.Duration(j) * time.Second / 30, Y: a})
		ref.B = append(ref.B, Picture{PTS: time.Duration(j) * time.Second / 30, Y: b})
	}
	mean, diff := newRefPlanes(ref, false), newRefPlanes(ref, true)
	order := []int{0, 1, n - 1, 5, 0}
	for j := range n {
		order = append(order, (j*37)%n, j)
	}
	for _, j := range order {
		m, d := mean.at(j), diff.at(j)
		for i := range w * h {
			a, b := float32(ref.A[j].Y[i]), float32(ref.B[j].Y[i])
			if m[i] != (a+b)/2 || d[i] != (a-b)/2 {
				t.Fatalf("frame %d pixel %d: mean %v diff %v, want %v %v", j, i, m[i], d[i], (a+b)/2, (a-b)/2)
			}
		}
	}
	if len(mean.bufs) > planeCache || len(mean.slot) > planeCache {
		t.Errorf("%d planes held, want at most %d", len(mean.bufs), planeCache)
	}
	br := mean.brightness()
	for _, j := range []int{0, n / 2, n - 1} {
		var s float64
		for _, v := range mean.at(j) {
			s += float64(v)
		}
		if got, want := br[j], s/float64(w*h); got != want {
			t.Errorf("frame %d brightness %v, want %v", j, got, want)
		}
	}
}
