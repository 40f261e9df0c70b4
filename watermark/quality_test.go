package watermark_test

import (
	"bytes"
	"math"
	"testing"

	"github.com/abseal/abseal/watermark"
)

func TestPSNRAndSSIM(t *testing.T) {
	const w, h = 64, 48
	a := texture(w, h, w, 1)
	if !math.IsInf(watermark.PSNR(a, a, w, h, w), 1) || watermark.SSIM(a, a, w, h, w) < 0.9999 {
		t.Fatal("identical planes are not perfect")
	}
	b := bytes.Clone(a)
	for i := range b {
		if i%2 == 0 && b[i] < 255 {
			b[i]++
		}
	}
	// Half the pixels off by one: MSE about 0.5, PSNR about 51 dB.
	if p := watermark.PSNR(a, b, w, h, w); p < 50 || p > 52 {
		t.Fatalf("PSNR %.2f dB, want about 51", p)
	}
	inv := bytes.Clone(a)
	for i := range inv {
		inv[i] = 255 - inv[i]
	}
	if s := watermark.SSIM(a, inv, w, h, w); s > 0 {
		t.Fatalf("SSIM of an inverted picture %.3f, want negative", s)
	}
}
