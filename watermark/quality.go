package watermark

import "math"

// PSNR is the peak signal-to-noise ratio in dB of plane b against a (w×h
// pixels, rows of stride bytes); +Inf when they are equal.
func PSNR(a, b []byte, w, h, stride int) float64 {
	var se float64
	for y := range h {
		ra, rb := a[y*stride:y*stride+w], b[y*stride:y*stride+w]
		for x := range ra {
			d := float64(ra[x]) - float64(rb[x])
			se += d * d
		}
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255*float64(w*h)/se)
}

// SSIM is the mean structural similarity of b against a over 8×8 windows
// placed every 4 pixels (Wang et al. 2004 constants).
func SSIM(a, b []byte, w, h, stride int) float64 {
	const win = 8
	c1, c2 := math.Pow(0.01*255, 2), math.Pow(0.03*255, 2)
	var sum float64
	n := 0
	for y := 0; y+win <= h; y += 4 {
		for x := 0; x+win <= w; x += 4 {
			var sa, sb, saa, sbb, sab float64
			for j := range win {
				ra := a[(y+j)*stride+x:][:win]
				rb := b[(y+j)*stride+x:][:win]
				for i := range win {
					va, vb := float64(ra[i]), float64(rb[i])
					sa += va
					sb += vb
					saa += va * va
					sbb += vb * vb
					sab += va * vb
				}
			}
			const k = win * win
			ma, mb := sa/k, sb/k
			va, vb := saa/k-ma*ma, sbb/k-mb*mb
			cov := sab/k - ma*mb
			sum += (2*ma*mb + c1) * (2*cov + c2) / ((ma*ma + mb*mb + c1) * (va + vb + c2))
			n++
		}
	}
	if n == 0 {
		return 1
	}
	return sum / float64(n)
}
