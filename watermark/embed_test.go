package watermark_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abseal/abseal/watermark"
)

var assetKey = []byte("asset key for tests, 32 bytes...")

// texture is a synthetic textured luma plane: gradients, waves and noise,
// with a flat dark corner and a bright one.
func texture(w, h, stride int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	p := make([]byte, stride*h)
	for y := range h {
		for x := range w {
			v := 110 + 50*math.Sin(float64(x)/17+float64(seed)) + 35*math.Cos(float64(y)/11+float64(x)/29) + r.NormFloat64()*9
			if x < w/8 && y < h/8 {
				v = 12 // flat, dark
			}
			if x > w*7/8 && y > h*7/8 {
				v = 240 // flat, bright
			}
			p[y*stride+x] = byte(max(0, min(255, v)))
		}
	}
	return p
}

func psnr(a, b []byte, w, h, stride int) float64 {
	var se float64
	for y := range h {
		for x := range w {
			d := float64(a[y*stride+x]) - float64(b[y*stride+x])
			se += d * d
		}
	}
	mse := se / float64(w*h)
	if mse == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/mse)
}

// corr is the correlation coefficient of the luma change d = (a-b) with the
// pattern.
func corr(a, b []byte, pat []float32, w, h, stride int) float64 {
	var sxy, sxx, syy float64
	for y := range h {
		for x := range w {
			d := float64(a[y*stride+x]) - float64(b[y*stride+x])
			p := float64(pat[y*w+x])
			sxy += d * p
			sxx += d * d
			syy += p * p
		}
	}
	return sxy / math.Sqrt(sxx*syy)
}

func embedder(t testing.TB) *watermark.Embedder {
	e, err := watermark.NewEmbedder(assetKey, watermark.DefaultParams(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmbedQualityAndSign(t *testing.T) {
	const w, h, stride = 640, 360, 672
	e := embedder(t)
	orig := texture(w, h, stride, 1)
	a, b := bytes.Clone(orig), bytes.Clone(orig)
	mid := time.Second // full strength in the middle of segment 0
	e.Embed(a, stride, w, h, 0, mid, +1)
	e.Embed(b, stride, w, h, 0, mid, -1)
	pa, pb := psnr(orig, a, w, h, stride), psnr(orig, b, w, h, stride)
	t.Logf("PSNR-Y: variant A %.1f dB, variant B %.1f dB", pa, pb)
	// This synthetic picture is textured everywhere, so every block gets
	// full strength: a worst case. On generated video (make wm-report) the
	// mean is about 49.6 dB and the worst frame 43.9 dB.
	if pa < 40 || pb < 40 {
		t.Errorf("PSNR-Y %.1f / %.1f dB on a fully textured picture, want >= 40", pa, pb)
	}
	pat := watermark.Pattern(assetKey, watermark.DefaultParams(2*time.Second).Grid, w, h, 0)
	if c := corr(a, b, pat, w, h, stride); c < 0.8 {
		t.Errorf("A-B correlates %.2f with the segment's pattern, want >= 0.8", c)
	}
	if c := corr(a, orig, pat, w, h, stride); c < 0.5 {
		t.Errorf("A-original correlates %.2f with the pattern", c)
	}
	if c := corr(b, orig, pat, w, h, stride); c > -0.5 {
		t.Errorf("B-original correlates %.2f with the pattern, want strongly negative", c)
	}
	// Bytes beyond the width (stride padding) are left alone.
	for y := range h {
		for x := w; x < stride; x++ {
			if a[y*stride+x] != orig[y*stride+x] {
				t.Fatalf("padding byte (%d,%d) changed", x, y)
			}
		}
	}
}

// The mark is weaker in flat and in very dark or bright areas.
func TestEmbedAdapts(t *testing.T) {
	const w, h = 640, 360
	e := embedder(t)
	orig := texture(w, h, w, 3)
	a := bytes.Clone(orig)
	e.Embed(a, w, w, h, 0, time.Second, +1)
	energy := func(x0, y0, x1, y1 int) float64 {
		var s float64
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				d := float64(a[y*w+x]) - float64(orig[y*w+x])
				s += d * d
			}
		}
		return s / float64((x1-x0)*(y1-y0))
	}
	textured := energy(w/3, h/3, 2*w/3, 2*h/3)
	dark := energy(0, 0, w/8, h/8)
	bright := energy(w*7/8+1, h*7/8+1, w, h)
	t.Logf("mean squared change: textured %.2f, flat dark %.2f, flat bright %.2f", textured, dark, bright)
	if dark > textured/3 || bright > textured/3 {
		t.Errorf("flat dark/bright areas changed as much as textured ones")
	}
}

// At a segment's edges the mark fades to nothing, so an A/B switch is not
// visible as a jump.
func TestEmbedRamps(t *testing.T) {
	const w, h = 320, 180
	e := embedder(t)
	orig := texture(w, h, w, 4)
	for _, tc := range []struct {
		pts  time.Duration
		full bool
	}{{0, false}, {2*time.Second - time.Millisecond, false}, {time.Second, true}, {2*time.Second + 500*time.Millisecond, true}} {
		a := bytes.Clone(orig)
		seg := int(tc.pts / (2 * time.Second))
		e.Embed(a, w, w, h, seg, tc.pts, +1)
		p := psnr(orig, a, w, h, w)
		if tc.full != (p < 60) {
			t.Errorf("pts %s: PSNR %.1f dB (full strength expected: %v)", tc.pts, p, tc.full)
		}
	}
}

// The pattern is defined in normalized coordinates: the 1080p pattern
// scaled to 360p is the 360p pattern.
func TestPatternScales(t *testing.T) {
	big := watermark.Pattern(assetKey, watermark.DefaultParams(2*time.Second).Grid, 1920, 1080, 5)
	small := watermark.Pattern(assetKey, watermark.DefaultParams(2*time.Second).Grid, 640, 360, 5)
	var sxy, sxx, syy float64
	for y := range 360 {
		for x := range 640 {
			var v float64
			for dy := range 3 {
				for dx := range 3 {
					v += float64(big[(3*y+dy)*1920+3*x+dx])
				}
			}
			v /= 9
			s := float64(small[y*640+x])
			sxy += v * s
			sxx += v * v
			syy += s * s
		}
	}
	if c := sxy / math.Sqrt(sxx*syy); c < 0.99 {
		t.Fatalf("1080p pattern downscaled correlates %.3f with the 360p one", c)
	}
	other := watermark.Pattern(assetKey, watermark.DefaultParams(2*time.Second).Grid, 640, 360, 6)
	otherKey := watermark.Pattern([]byte("another asset key, 32 bytes....."), 12, 640, 360, 5)
	for name, q := range map[string][]float32{"next segment": other, "other key": otherKey} {
		var sxy, sxx, syy float64
		for i := range q {
			sxy += float64(q[i] * small[i])
			sxx += float64(q[i] * q[i])
			syy += float64(small[i] * small[i])
		}
		if c := sxy / math.Sqrt(sxx*syy); math.Abs(c) > 0.3 {
			t.Errorf("%s: patterns correlate %.2f", name, c)
		}
	}
}

// Sub-level amplitudes survive on average thanks to dithered rounding.
func TestDither(t *testing.T) {
	const w, h = 320, 180
	p := watermark.DefaultParams(2 * time.Second)
	p.Strength = 0.3
	e, err := watermark.NewEmbedder(assetKey, p)
	if err != nil {
		t.Fatal(err)
	}
	orig := texture(w, h, w, 5)
	a := bytes.Clone(orig)
	e.Embed(a, w, w, h, 0, time.Second, +1)
	pat := watermark.Pattern(assetKey, watermark.DefaultParams(2*time.Second).Grid, w, h, 0)
	if c := corr(a, orig, pat, w, h, w); c < 0.1 {
		t.Fatalf("a 0.3-level mark left correlation %.3f", c)
	}
	if bytes.Equal(a, orig) {
		t.Fatal("a 0.3-level mark changed nothing")
	}
}

func TestDeriveAssetKey(t *testing.T) {
	m := []byte("master key, at least 16 bytes")
	k1, _ := watermark.DeriveAssetKey(m, "a1")
	k2, _ := watermark.DeriveAssetKey(m, "a2")
	if bytes.Equal(k1, k2) || len(k1) != 32 {
		t.Fatal("asset keys not distinct")
	}
	if _, err := watermark.DeriveAssetKey([]byte("short"), "a"); err == nil {
		t.Fatal("short master key accepted")
	}
	if _, err := watermark.NewEmbedder(k1, watermark.Params{Grid: 12, Strength: 2, SegmentDuration: time.Second, Ramp: time.Second}); err == nil {
		t.Fatal("a ramp longer than half a segment accepted")
	}
}

func BenchmarkEmbed1080p(b *testing.B) {
	const w, h = 1920, 1080
	e := embedder(b)
	plane := texture(w, h, w, 6)
	e.Embed(plane, w, w, h, 0, time.Second, 1) // pattern cached, as in a segment
	b.SetBytes(w * h)
	b.ReportAllocs()
	for b.Loop() {
		e.Embed(plane, w, w, h, 0, time.Second, 1)
	}
}

// BenchmarkEmbedAB1080p marks one new 1080p frame as both variants (the
// strengths are computed once per frame), as the ladder does.
func BenchmarkEmbedAB1080p(b *testing.B) {
	const w, h = 1920, 1080
	e := embedder(b)
	orig := texture(w, h, w, 6)
	pa, pb := bytes.Clone(orig), bytes.Clone(orig)
	b.SetBytes(2 * w * h)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		pts := 500*time.Millisecond + time.Duration(i%1000)*time.Millisecond // a new frame each time, mid-segment
		e.Embed(pb, w, w, h, 0, pts, -1)
		e.Embed(pa, w, w, h, 0, pts, +1)
	}
}

// TestEmbedOddWidth: widths that are not a multiple of 8 (853×480 rungs)
// mark their last columns like the rest, and leave the padding alone.
func TestEmbedOddWidth(t *testing.T) {
	const w, h, stride = 853, 480, 896
	e := embedder(t)
	orig := texture(w, h, stride, 3)
	a := bytes.Clone(orig)
	e.Embed(a, stride, w, h, 0, time.Second, +1)
	changedTail, changedPad := 0, 0
	for y := range h {
		for x := w &^ 7; x < w; x++ {
			if a[y*stride+x] != orig[y*stride+x] {
				changedTail++
			}
		}
		for x := w; x < stride; x++ {
			if a[y*stride+x] != orig[y*stride+x] {
				changedPad++
			}
		}
	}
	if changedTail == 0 || changedPad != 0 {
		t.Fatalf("last columns changed %d times, padding %d times", changedTail, changedPad)
	}
}

// TestEmbedPairMatchesEmbed: the one-pass A+B embed writes exactly what
// Embed on B and then on A writes, at every size and time (ramps, a ramp's
// zero, odd widths, strides), whatever B's plane held before: transcode
// hands it over undefined. Padding bytes past the width are left alone.
func TestEmbedPairMatchesEmbed(t *testing.T) {
	for _, tc := range []struct {
		w, h, stride int
		pts          time.Duration
	}{{640, 360, 640, time.Second}, {853, 480, 896, 1100 * time.Millisecond}, {1920, 1080, 1920, 30 * time.Millisecond},
		{320, 180, 352, 1990 * time.Millisecond}, {320, 180, 352, 0}} {
		orig := texture(tc.w, tc.h, tc.stride, 5)
		seqA, seqB := bytes.Clone(orig), bytes.Clone(orig)
		e1 := embedder(t)
		e1.Embed(seqB, tc.stride, tc.w, tc.h, 0, tc.pts, -1)
		e1.Embed(seqA, tc.stride, tc.w, tc.h, 0, tc.pts, +1)
		pairA, pairB := bytes.Clone(orig), texture(tc.w, tc.h, tc.stride, 99) // B: another picture
		junk := bytes.Clone(pairB)
		e2 := embedder(t)
		e2.EmbedPair(pairA, tc.stride, pairB, tc.stride, tc.w, tc.h, 0, tc.pts)
		for y := range tc.h {
			row := y * tc.stride
			if !bytes.Equal(seqA[row:row+tc.w], pairA[row:row+tc.w]) || !bytes.Equal(seqB[row:row+tc.w], pairB[row:row+tc.w]) {
				t.Fatalf("%dx%d at %s, row %d: EmbedPair differs from Embed (A equal %v, B equal %v)", tc.w, tc.h, tc.pts, y,
					bytes.Equal(seqA[row:row+tc.w], pairA[row:row+tc.w]), bytes.Equal(seqB[row:row+tc.w], pairB[row:row+tc.w]))
			}
			if !bytes.Equal(pairB[row+tc.w:row+tc.stride], junk[row+tc.w:row+tc.stride]) {
				t.Fatalf("%dx%d: B's padding past the width was written", tc.w, tc.h)
			}
		}
		if marked := !bytes.Equal(pairA, orig); marked != (tc.pts != 0) {
			t.Fatalf("%dx%d at %s: marked %v", tc.w, tc.h, tc.pts, marked)
		}
	}
}

func BenchmarkEmbedPair1080p(b *testing.B) {
	const w, h = 1920, 1080
	e := embedder(b)
	orig := texture(w, h, w, 6)
	pa, pb := bytes.Clone(orig), bytes.Clone(orig)
	b.SetBytes(2 * w * h)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		pts := 500*time.Millisecond + time.Duration(i%1000)*time.Millisecond // as BenchmarkEmbedAB1080p
		e.EmbedPair(pa, w, pb, w, w, h, 0, pts)
	}
}

// TestEmbedPairLimitedRange: on limited-range video (16..235), where the
// fast path without saturation runs, EmbedPair still equals Embed.
func TestEmbedPairLimitedRange(t *testing.T) {
	const w, h = 1280, 720
	orig := texture(w, h, w, 11)
	for i, v := range orig {
		orig[i] = 16 + byte(int(v)*219/255)
	}
	seqA, seqB := bytes.Clone(orig), bytes.Clone(orig)
	e1 := embedder(t)
	e1.Embed(seqB, w, w, h, 0, time.Second, -1)
	e1.Embed(seqA, w, w, h, 0, time.Second, +1)
	pairA, pairB := bytes.Clone(orig), bytes.Clone(orig)
	embedder(t).EmbedPair(pairA, w, pairB, w, w, h, 0, time.Second)
	if !bytes.Equal(seqA, pairA) || !bytes.Equal(seqB, pairB) || bytes.Equal(pairA, orig) {
		t.Fatal("EmbedPair differs from Embed on limited-range video")
	}
}

// Texture is measured relative to the asset's top rung: a 640x360 picture
// is marked less after a 1920x1080 one (the same content downscaled has
// steeper gradients, and counts as textured only where the top rung is)
// than when it is the tallest the embedder has seen.
func TestTextureRelativeToTopRung(t *testing.T) {
	const w, h = 640, 360
	orig := texture(w, h, w, 3)
	energy := func(e *watermark.Embedder) float64 {
		a := bytes.Clone(orig)
		e.Embed(a, w, w, h, 0, time.Second, +1)
		var s float64
		for i := range a {
			d := float64(a[i]) - float64(orig[i])
			s += d * d
		}
		return s / float64(len(a))
	}
	alone := energy(embedder(t))
	afterTop := embedder(t)
	afterTop.Embed(texture(1920, 1080, 1920, 4), 1920, 1920, 1080, 0, time.Second, +1)
	below := energy(afterTop)
	t.Logf("mean squared change of the 360p picture: alone %.3f, below a 1080p rung %.3f", alone, below)
	if below >= 0.8*alone {
		t.Errorf("360p under a 1080p top rung changed by %.3f, alone by %.3f: want clearly less", below, alone)
	}
}
