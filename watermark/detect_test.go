package watermark_test

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abseal/abseal/watermark"
)

const (
	dw, dh   = 96, 54
	segDur   = 500 * time.Millisecond
	fps      = 8
	unmarked = 1
)

// scene is a smoothly moving textured picture at frame i.
func scene(i int, seed float64) []byte {
	p := make([]byte, dw*dh)
	ph := float64(i) * 0.07
	for y := range dh {
		for x := range dw {
			v := 120 + 45*math.Sin(float64(x)/7+ph+seed) + 35*math.Cos(float64(y)/5-ph*0.7+float64(x)/13) +
				20*math.Sin(float64(x*y)/97+ph*1.3)
			p[y*dw+x] = byte(max(0, min(255, v)))
		}
	}
	return p
}

// reference builds variants A and B of an asset with segments segments.
func reference(t *testing.T, key []byte, segments int, seed float64) (*watermark.Reference, [][]byte) {
	return referenceOf(t, key, segments, func(i int) []byte { return scene(i, seed) })
}

// referenceOf builds variants A and B of an asset whose frame i is
// picture(i).
func referenceOf(t *testing.T, key []byte, segments int, picture func(i int) []byte) (*watermark.Reference, [][]byte) {
	p := watermark.DefaultParams(segDur)
	e, err := watermark.NewEmbedder(key, p)
	if err != nil {
		t.Fatal(err)
	}
	ref := &watermark.Reference{W: dw, H: dh, SegmentDuration: segDur}
	for k := range segments {
		ref.Positions = append(ref.Positions, k-unmarked)
		if k < unmarked {
			ref.Positions[k] = -1
		}
	}
	var orig [][]byte
	frames := segments * int(segDur.Seconds()*fps)
	for i := range frames {
		pts := time.Duration(i) * time.Second / fps
		seg := int(pts / segDur)
		o := picture(i)
		a, b := bytes.Clone(o), bytes.Clone(o)
		if ref.Positions[seg] >= 0 {
			e.Embed(b, dw, dw, dh, seg, pts, -1)
			e.Embed(a, dw, dw, dh, seg, pts, +1)
		}
		orig = append(orig, o)
		ref.A = append(ref.A, watermark.Picture{PTS: pts, Y: a})
		ref.B = append(ref.B, watermark.Picture{PTS: pts, Y: b})
	}
	return ref, orig
}

// attack crops a centred fraction, rescales it, adds noise and drops the
// first trim of the stream.
func attack(frames []watermark.Picture, crop, noise float64, trim time.Duration, r *rand.Rand) []watermark.Picture {
	var out []watermark.Picture
	for _, f := range frames {
		if f.PTS < trim {
			continue
		}
		y := make([]byte, dw*dh)
		for yy := range dh {
			for xx := range dw {
				sx := (1-crop)/2*dw + (float64(xx)+0.5)*crop - 0.5
				sy := (1-crop)/2*dh + (float64(yy)+0.5)*crop - 0.5
				ix, iy := max(0, min(dw-2, int(sx))), max(0, min(dh-2, int(sy)))
				fx, fy := sx-float64(ix), sy-float64(iy)
				v := func(x, y int) float64 { return float64(f.Y[y*dw+x]) }
				a := v(ix, iy) + (v(ix+1, iy)-v(ix, iy))*fx
				b := v(ix, iy+1) + (v(ix+1, iy+1)-v(ix, iy+1))*fx
				val := a + (b-a)*fy + r.NormFloat64()*noise
				y[yy*dw+xx] = byte(max(0, min(255, math.Round(val))))
			}
		}
		out = append(out, watermark.Picture{PTS: f.PTS - trim, Y: y})
	}
	return out
}

// session is the stream a session with this wmid receives.
func session(ref *watermark.Reference, code *watermark.Code, wmid uint64) []watermark.Picture {
	pat, _ := code.Pattern(wmid)
	var out []watermark.Picture
	for i := range ref.A {
		seg := int(ref.A[i].PTS / ref.SegmentDuration)
		pos := ref.Positions[seg]
		if pos >= 0 && pat[pos%len(pat)] == 1 {
			out = append(out, ref.B[i])
		} else {
			out = append(out, ref.A[i])
		}
	}
	return out
}

func TestDetect(t *testing.T) {
	c := code(t, 32)
	segments := c.PatternLen() + unmarked + 4
	ref, orig := reference(t, assetKey, segments, 0)
	r := rand.New(rand.NewPCG(5, 5))
	const wmid = 0xC0FFEE42

	for _, tc := range []struct {
		name        string
		crop, noise float64
		trim        time.Duration
	}{
		{"clean", 1, 0, 0},
		{"noise", 1, 3, 0},
		{"10% crop, noise, first 1.3 s trimmed", 0.9, 2, 1300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sus := attack(session(ref, c, wmid), tc.crop, tc.noise, tc.trim, r)
			res, err := watermark.Detect(ref, &watermark.Suspect{W: dw, H: dh, Frames: sus}, c)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("verdict %s, offset %s, crop %.2f, %d segments", res.Verdict, res.Offset, res.Crop, res.SegmentsUsed)
			if res.Verdict != "identified" || res.WMID == nil || *res.WMID != wmid {
				t.Fatalf("verdict %s wmid %v, want %x", res.Verdict, res.WMID, wmid)
			}
			if math.Abs((res.Offset-tc.trim).Seconds()) > 0.2 || math.Abs(res.Crop-tc.crop*tc.crop) > 0.04 {
				t.Errorf("aligned at %s showing %.2f of the area, want %s and %.2f", res.Offset, res.Crop, tc.trim, tc.crop*tc.crop)
			}
			wrong := 0
			pat, _ := c.Pattern(wmid)
			for _, s := range res.Segments {
				if s.Bit != nil && int(pat[s.Position%len(pat)]) != *s.Bit {
					wrong++
				}
			}
			if wrong > len(res.Segments)/50 {
				t.Errorf("%d of %d segment bits wrong", wrong, len(res.Segments))
			}
		})
	}

	t.Run("unmarked content is inconclusive", func(t *testing.T) {
		var pics []watermark.Picture
		for i, o := range orig {
			pics = append(pics, watermark.Picture{PTS: ref.A[i].PTS, Y: o})
		}
		res, err := watermark.Detect(ref, &watermark.Suspect{W: dw, H: dh, Frames: attack(pics, 1, 2, 0, r)}, c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != "inconclusive" || res.WMID != nil {
			t.Fatalf("unmarked content: %s %v", res.Verdict, res.WMID)
		}
	})
	t.Run("one search decoded under many keys", func(t *testing.T) {
		// DetectCodes registers once and decodes with every code: the
		// session's own code finds it as Detect does, and 200 other keys
		// (other assets' codes over the same search) name no one.
		sus := &watermark.Suspect{W: dw, H: dh, Frames: attack(session(ref, c, wmid), 1, 2, 0, r)}
		codes := []*watermark.Code{c}
		for i := range 200 {
			o, err := watermark.NewCode([]byte(fmt.Sprintf("control key %03d, 32 bytes long...", i))[:32], 32, 0)
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, o)
		}
		all, err := watermark.DetectCodes(ref, sus, codes)
		if err != nil {
			t.Fatal(err)
		}
		one, err := watermark.Detect(ref, sus, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(codes) || all[0].WMID == nil || *all[0].WMID != wmid || one.WMID == nil || *one.WMID != wmid {
			t.Fatalf("own code: %v, alone: %v, want %x", all[0].WMID, one.WMID, wmid)
		}
		if all[0].FalsePositiveBound != one.FalsePositiveBound || len(all[0].Segments) != len(one.Segments) {
			t.Errorf("DetectCodes and Detect differ: bound %g vs %g, %d vs %d segments",
				all[0].FalsePositiveBound, one.FalsePositiveBound, len(all[0].Segments), len(one.Segments))
		}
		for i, res := range all[1:] {
			if res.WMID != nil || res.Verdict != "inconclusive" {
				t.Errorf("control key %d: %s %v", i, res.Verdict, *res.WMID)
			}
		}
	})
	t.Run("another asset is inconclusive", func(t *testing.T) {
		other, _ := reference(t, []byte("a different asset key, 32 bytes."), segments, 1.7)
		res, err := watermark.Detect(ref, &watermark.Suspect{W: dw, H: dh, Frames: attack(session(other, c, wmid), 1, 2, 0, r)}, c)
		if err != nil {
			t.Fatal(err)
		}
		if res.Verdict != "inconclusive" {
			t.Fatalf("another asset: %s %v", res.Verdict, *res.WMID)
		}
	})
}
