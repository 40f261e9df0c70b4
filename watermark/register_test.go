package watermark_test

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/abseal/abseal/watermark"
)

// shots is a camera-like picture at frame i: soft blobs of light drifting
// at their own speeds, a new set every 3 s (a cut).
func shots(i int) []byte {
	const shotFrames = 3 * fps
	shot := i / shotFrames
	r := rand.New(rand.NewPCG(uint64(shot), 77))
	type blob struct{ x, y, vx, vy, rad, amp float64 }
	bs := make([]blob, 14)
	for k := range bs {
		bs[k] = blob{r.Float64() * dw, r.Float64() * dh, (r.Float64() - 0.5) * 1.2, (r.Float64() - 0.5) * 0.8,
			4 + r.Float64()*12, (r.Float64() - 0.4) * 140}
	}
	base := 60 + r.Float64()*60
	t := float64(i % shotFrames)
	p := make([]byte, dw*dh)
	for y := range dh {
		for x := range dw {
			v := base + 12*math.Sin(float64(x)/9+float64(shot))
			for _, b := range bs {
				dx, dy := float64(x)-(b.x+b.vx*t), float64(y)-(b.y+b.vy*t)
				v += b.amp * math.Exp(-(dx*dx+dy*dy)/(2*b.rad*b.rad))
			}
			p[y*dw+x] = byte(max(0, min(255, v)))
		}
	}
	return p
}

// geometric is a suspect of sw×sh whose pixel (x, y) shows the reference
// picture at m(x, y) (reference pixels; m maps pixel centres); outside
// the reference it shows bg(x, y). Noise of the given σ is added.
func geometric(frames []watermark.Picture, sw, sh int, m func(x, y float64) (float64, float64), bg func(x, y int) byte, noise float64, r *rand.Rand) *watermark.Suspect {
	return moving(frames, sw, sh, func(time.Duration) func(x, y float64) (float64, float64) { return m }, bg, noise, r)
}

// moving is geometric with a mapping that changes over time (a handheld
// camera): mt(t) is the mapping of the frame at t.
func moving(frames []watermark.Picture, sw, sh int, mt func(t time.Duration) func(x, y float64) (float64, float64), bg func(x, y int) byte, noise float64, r *rand.Rand) *watermark.Suspect {
	sus := &watermark.Suspect{W: sw, H: sh}
	for _, f := range frames {
		m := mt(f.PTS)
		y := make([]byte, sw*sh)
		for yy := range sh {
			for xx := range sw {
				X, Y := m(float64(xx)+0.5, float64(yy)+0.5)
				X, Y = X-0.5, Y-0.5
				if X < 0 || Y < 0 || X > dw-1 || Y > dh-1 {
					y[yy*sw+xx] = bg(xx, yy)
					continue
				}
				ix, iy := min(int(X), dw-2), min(int(Y), dh-2)
				fx, fy := X-float64(ix), Y-float64(iy)
				v := func(x, y int) float64 { return float64(f.Y[y*dw+x]) }
				a := v(ix, iy) + (v(ix+1, iy)-v(ix, iy))*fx
				b := v(ix, iy+1) + (v(ix+1, iy+1)-v(ix, iy+1))*fx
				y[yy*sw+xx] = byte(max(0, min(255, math.Round(a+(b-a)*fy+r.NormFloat64()*noise))))
			}
		}
		sus.Frames = append(sus.Frames, watermark.Picture{PTS: f.PTS, Y: y})
	}
	return sus
}

// TestRegistration: a session's stream re-framed the ways pirates re-frame
// (off-centre crop, letterbox, mirror, a 9:16 phone crop, rotation with
// perspective, a window over other content) names the session, and the
// detector reports where the reference's picture is in the suspect's.
func TestRegistration(t *testing.T) {
	c := code(t, 32)
	segments := c.PatternLen() + unmarked + 4
	ref, _ := referenceOf(t, assetKey, segments, shots)
	const wmid = 0x5EEDF00D
	sess := session(ref, c, wmid)
	black := func(x, y int) byte { return 16 }
	desk := func(x, y int) byte { return byte(90 + 60*((x/7+y/5)%2)) }
	rot := 4 * math.Pi / 180
	for _, tc := range []struct {
		name   string
		sw, sh int
		m      func(x, y float64) (float64, float64)
		bg     func(x, y int) byte
		// The reference's top-left and bottom-right corners in the
		// suspect, as fractions of its size.
		tl, br [2]float64
	}{
		{"off-centre crop", dw, dh, func(x, y float64) (float64, float64) { return 12 + x*0.85, 2 + y*0.85 }, black,
			[2]float64{-12 / 0.85 / dw, -2 / 0.85 / dh}, [2]float64{(dw - 12) / 0.85 / dw, (dh - 2) / 0.85 / dh}},
		{"letterbox", dw, dh, func(x, y float64) (float64, float64) { return (x - 4.8) / 0.9, (y - 2.7) / 0.9 }, black,
			[2]float64{0.05, 0.05}, [2]float64{0.95, 0.95}},
		{"mirror, crop", dw, dh, func(x, y float64) (float64, float64) { return dw - 6 - x*0.8, 4 + y*0.8 }, black,
			[2]float64{(dw - 6) / 0.8 / dw, -4 / 0.8 / dh}, [2]float64{-6 / 0.8 / dw, (dh - 4) / 0.8 / dh}},
		{"phone 9:16", 54, 96, func(x, y float64) (float64, float64) { return 40 + x*(30.0/54), y * (54.0 / 96) }, black,
			[2]float64{-40 / (30.0 / 54) / 54, 0}, [2]float64{(dw - 40) / (30.0 / 54) / 54, 1}},
		{"rotation 4°, perspective", dw, dh, func(x, y float64) (float64, float64) {
			u, v := x-dw/2, y-dh/2
			d := 1 + 0.0015*u
			return (math.Cos(rot)*u-math.Sin(rot)*v)/d + dw/2, (math.Sin(rot)*u+math.Cos(rot)*v)/d + dh/2
		}, black, [2]float64{math.NaN(), math.NaN()}, [2]float64{math.NaN(), math.NaN()}},
		{"picture in picture 50%", dw, dh, func(x, y float64) (float64, float64) { return (x - 40) * 2, (y - 22) * 2 }, desk,
			[2]float64{40.0 / dw, 22.0 / dh}, [2]float64{88.0 / dw, 49.0 / dh}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sus := geometric(sess, tc.sw, tc.sh, tc.m, tc.bg, 2, rand.New(rand.NewPCG(1, 2)))
			res, err := watermark.Detect(ref, sus, c)
			if err != nil {
				t.Fatal(err)
			}
			tr := res.Transform
			t.Logf("%s, %d segments, shows %.2f of the area, corners %v, mirrored %v, match %.3f, offset %s, rate %.4f, cuts %v", res.Verdict, res.SegmentsUsed, res.Crop, tr.Corners, tr.Mirrored, tr.Match, res.Offset, res.Rate, res.Cuts)
			if res.Verdict != "identified" || res.WMID == nil || *res.WMID != wmid {
				t.Fatalf("verdict %s wmid %v, want %x", res.Verdict, res.WMID, wmid)
			}
			for i, want := range map[int][2]float64{0: tc.tl, 2: tc.br} {
				got := tr.Corners[i]
				// 3 % of the suspect's size (of the distance, for corners
				// far outside it).
				tol := func(w float64) float64 { return 0.03 * max(1, math.Abs(w)) }
				if !math.IsNaN(want[0]) && (math.Abs(got[0]-want[0]) > tol(want[0]) || math.Abs(got[1]-want[1]) > tol(want[1])) {
					t.Errorf("corner %d at %.3f, want %.3f", i, got, want)
				}
			}
			if tr.Mirrored != (tc.name == "mirror, crop") {
				t.Errorf("mirrored %v", tr.Mirrored)
			}
		})
	}
}

// TestHandheld: a camera that drifts, zooms and tilts as it films the
// screen (the picture moves by up to a tenth of its size over the leak)
// names the session: the geometry is followed segment by segment, and the
// report gives each segment's where it differs from the whole leak's.
func TestHandheld(t *testing.T) {
	c := code(t, 32)
	segments := c.PatternLen() + unmarked + 4
	ref, _ := referenceOf(t, assetKey, segments, shots)
	const wmid = 0x4A4D0C0D
	sess := session(ref, c, wmid)
	black := func(x, y int) byte { return 16 }
	shake := func(t time.Duration) func(x, y float64) (float64, float64) {
		s := t.Seconds()
		zoom := 0.86 + 0.04*math.Sin(2*math.Pi*s/23)
		tx, ty := 7+5*math.Sin(2*math.Pi*s/17), 4+3*math.Cos(2*math.Pi*s/29)
		rot := 1.5 * math.Pi / 180 * math.Sin(2*math.Pi*s/31)
		return func(x, y float64) (float64, float64) {
			u, v := x*zoom, y*zoom
			return math.Cos(rot)*u - math.Sin(rot)*v + tx, math.Sin(rot)*u + math.Cos(rot)*v + ty
		}
	}
	sus := moving(sess, dw, dh, shake, black, 2, rand.New(rand.NewPCG(5, 6)))
	res, err := watermark.Detect(ref, sus, c)
	if err != nil {
		t.Fatal(err)
	}
	tracked := 0
	for _, s := range res.Segments {
		if s.Transform != nil {
			tracked++
		}
	}
	pat, _ := c.Pattern(wmid)
	wrong := 0
	for _, s := range res.Segments {
		if s.Bit != nil && *s.Bit != int(pat[s.Position%len(pat)]) {
			wrong++
			t.Logf("wrong: segment %d score %.1f own geometry %v", s.Segment, s.Score, s.Transform != nil)
		}
	}
	t.Logf("%s, %d segments (%d with their own geometry, %d wrong), match %.3f", res.Verdict, res.SegmentsUsed, tracked, wrong, res.Transform.Match)
	if res.Verdict != "identified" || res.WMID == nil || *res.WMID != wmid {
		t.Fatalf("verdict %s wmid %v, want %x", res.Verdict, res.WMID, wmid)
	}
	if tracked < res.SegmentsUsed/2 {
		t.Errorf("%d of %d segments with their own geometry, want most", tracked, res.SegmentsUsed)
	}
	// A segment's corners follow the camera: the top-left corner of the
	// reference is at -(tx, ty)/zoom in the suspect.
	for _, s := range res.Segments {
		if s.Transform == nil {
			continue
		}
		mid := time.Duration(s.Segment)*segDur + segDur/2
		sec := mid.Seconds()
		zoom := 0.86 + 0.04*math.Sin(2*math.Pi*sec/23)
		tx, ty := 7+5*math.Sin(2*math.Pi*sec/17), 4+3*math.Cos(2*math.Pi*sec/29)
		rot := 1.5 * math.Pi / 180 * math.Sin(2*math.Pi*sec/31)
		// Inverse of the rotation and zoom applied to (-tx, -ty).
		ix := (math.Cos(rot)*-tx + math.Sin(rot)*-ty) / zoom / dw
		iy := (-math.Sin(rot)*-tx + math.Cos(rot)*-ty) / zoom / dh
		if got := s.Transform.Corners[0]; math.Abs(got[0]-ix) > 0.03 || math.Abs(got[1]-iy) > 0.03 {
			t.Errorf("segment %d: top-left corner at %.3f, want (%.3f %.3f)", s.Segment, got, ix, iy)
			break
		}
	}
}

// TestTiming: a copy played 4.3 % fast (a 23.976 fps title at 25), and one
// with 10 s cut out of the middle, name the session; the detector reports
// the speed and the cut.
func TestTiming(t *testing.T) {
	c := code(t, 32)
	segments := 2*c.PatternLen() + unmarked + 4
	ref, _ := referenceOf(t, assetKey, segments, shots)
	const wmid = 0x7133D00D
	sess := session(ref, c, wmid)
	r := rand.New(rand.NewPCG(3, 4))
	identity := func(x, y float64) (float64, float64) { return x, y }
	black := func(x, y int) byte { return 16 }

	const speed = 25 / 23.976
	fast := geometric(sess, dw, dh, identity, black, 2, r)
	for i := range fast.Frames {
		fast.Frames[i].PTS = time.Duration(float64(fast.Frames[i].PTS) / speed)
	}
	cutFrom, cutLen := 40*time.Second, 10*time.Second
	var kept []watermark.Picture
	for _, f := range sess {
		switch {
		case f.PTS < cutFrom:
			kept = append(kept, f)
		case f.PTS >= cutFrom+cutLen:
			kept = append(kept, watermark.Picture{PTS: f.PTS - cutLen, Y: f.Y})
		}
	}
	cut := geometric(kept, dw, dh, identity, black, 2, r)

	for _, tc := range []struct {
		name string
		sus  *watermark.Suspect
		rate float64
		cuts int
	}{{"played 4.3 % fast", fast, speed, 0}, {"10 s cut out", cut, 1, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := watermark.Detect(ref, tc.sus, c)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s, %d segments, rate %.4f, cuts %+v", res.Verdict, res.SegmentsUsed, res.Rate, res.Cuts)
			if res.Verdict != "identified" || res.WMID == nil || *res.WMID != wmid {
				t.Fatalf("verdict %s wmid %v, want %x", res.Verdict, res.WMID, wmid)
			}
			if math.Abs(res.Rate-tc.rate) > 1e-3 || len(res.Cuts) != tc.cuts {
				t.Errorf("rate %.4f with %d cuts, want %.4f with %d", res.Rate, len(res.Cuts), tc.rate, tc.cuts)
			}
			if tc.cuts == 1 {
				if got := res.Cuts[0]; got.At < cutFrom-8*time.Second || got.At > cutFrom+8*time.Second || (got.Offset-cutLen).Abs() > 200*time.Millisecond {
					t.Errorf("cut at %s with offset %s, want near %s with %s", got.At, got.Offset, cutFrom, cutLen)
				}
			}
		})
	}
}
