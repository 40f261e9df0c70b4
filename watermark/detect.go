package watermark

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"time"
)

// Picture is a luma picture at a Reference's analysis size (W×H bytes).
type Picture struct {
	PTS time.Duration
	Y   []byte
}

// Reference is what the detector compares a suspect with: both variants of
// one rendition, decoded and scaled to an analysis size, with the segment
// positions from the asset manifest.
type Reference struct {
	W, H            int
	SegmentDuration time.Duration
	// Positions[k] is the watermark position of segment k (-1: unmarked).
	Positions []int
	// A and B are the frames of variants a and b, in presentation order
	// (the same timestamps in both).
	A, B []Picture
}

// SegmentScore is the evidence of one suspect segment.
type SegmentScore struct {
	Segment  int     `json:"segment"`
	Position int     `json:"position"`
	Bit      *int    `json:"bit"` // nil when the score is too weak to call
	Score    float64 `json:"score"`
	Frames   int     `json:"frames"`
	// Transform is the segment's own geometry where it differs from the
	// leak's (Result.Transform): a camera that moves, a crop that pans.
	Transform *Transform `json:"transform,omitempty"`
}

// Result is the detector's verdict.
type Result struct {
	Verdict            string         `json:"verdict"` // "identified" or "inconclusive"
	WMID               *uint64        `json:"wmid"`
	FalsePositiveBound float64        `json:"false_positive_bound"`
	SegmentsUsed       int            `json:"segments_used"`
	Segments           []SegmentScore `json:"segments"`
	Alignment
}

// Alignment is where and when a suspect shows the reference.
type Alignment struct {
	// Offset is the reference time minus the suspect's time (the
	// reference time of a suspect frame at 0); Crop the fraction of the
	// reference picture's area the suspect shows; Transform where the
	// reference's picture is in the suspect's.
	Offset    time.Duration `json:"offset_ns"`
	Crop      float64       `json:"crop"`
	Transform *Transform    `json:"transform,omitempty"`
	// Rate is the reference time per suspect time (1: the same speed;
	// 1.043: a 23.976 fps title played at 25); Cuts the suspect times from
	// which another part of the reference follows (a part cut out), with
	// the reference time of suspect time 0 from there on.
	Rate float64 `json:"rate"`
	Cuts []Cut   `json:"cuts,omitempty"`
}

// Cut is where a suspect jumps to another part of the reference.
type Cut struct {
	At     time.Duration `json:"at_ns"`
	Offset time.Duration `json:"offset_ns"`
}

// CallThreshold is the |z| from which a segment's bit is reported (called);
// below it the segment is an erasure in the report, though its soft score
// still counts in decoding. At 3σ a segment without signal is called
// wrongly with probability 0.13 %.
const CallThreshold = 3.0

// Suspect is a leaked copy's pictures at their own size (W×H bytes each,
// the copy's display aspect kept).
type Suspect struct {
	W, H   int
	Frames []Picture
}

// Detect registers the suspect with the reference in time and space (see
// register.go), scores every segment and decodes the wmid with code.
//
// The pictures of ref and sus may live outside Go's heap (package detect
// maps them from a file and releases the file when their owner is
// unreachable): Detect keeps both reachable while it reads them, and
// holds at most a few dozen reference frames as floats at a time.
func Detect(ref *Reference, sus *Suspect, code *Code) (*Result, error) {
	res, err := DetectCodes(ref, sus, []*Code{code})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// DetectCodes is Detect with several codes over one registration: the
// search in time and space and the segment scores do not depend on the
// code, so they are computed once and decoded with each code in turn
// (res[i] is codes[i]'s result). The watermark report uses it to count
// false identifications under many keys at the cost of one search.
func DetectCodes(ref *Reference, sus *Suspect, codes []*Code) ([]*Result, error) {
	if len(codes) == 0 {
		return nil, errors.New("watermark: detect: no code")
	}
	readings, err := Read(ref, sus)
	if err != nil {
		return nil, err
	}
	// The picture alone cannot always tell a zoom from a time shift or a
	// pan from a crop: every alignment whose pictures match nearly as well
	// as the best is scored and decoded. The result is the one that
	// decodes (the strongest mark if several do), else the strongest mark;
	// the false-positive bound counts every decoding.
	best := make([]*Result, len(codes))
	bestEv := make([]float64, len(codes))
	for _, rd := range readings {
		for i, code := range codes {
			res, err := decodeSegments(ref, code, rd.Segments)
			if err != nil {
				return nil, err
			}
			res.Alignment = rd.Alignment
			b := best[i]
			better := b == nil || (res.WMID != nil) != (b.WMID != nil) && res.WMID != nil ||
				(res.WMID != nil) == (b.WMID != nil) && rd.Evidence > bestEv[i]
			if better {
				best[i], bestEv[i] = res, rd.Evidence
			}
		}
	}
	for _, b := range best {
		b.FalsePositiveBound = float64(len(readings)) * FalsePositiveBound
	}
	return best, nil
}

// Reading is a suspect's evidence under one alignment with the reference:
// every segment's score and the alignment.
type Reading struct {
	Segments []SegmentScore `json:"segments"`
	Alignment
	// Evidence is the mark's strength under the alignment: the mean z² of
	// the segments less that of a control the mark does not follow.
	Evidence float64 `json:"evidence"`
}

// Read registers the suspect with the reference in time and space (see
// register.go) and scores every segment, under each alignment the picture
// cannot tell apart (at most two): the evidence a session code is then
// read from. Decoding, or scoring sessions, under each reading counts as
// one try each for the false-positive bound.
//
// The pictures of ref and sus may live outside Go's heap (package detect
// maps them from a file and releases the file when their owner is
// unreachable): Read keeps both reachable while it reads them, and holds
// at most a few dozen reference frames as floats at a time.
func Read(ref *Reference, sus *Suspect) ([]Reading, error) {
	defer runtime.KeepAlive(sus)
	defer runtime.KeepAlive(ref)
	if len(ref.A) == 0 || len(ref.A) != len(ref.B) || sus == nil || len(sus.Frames) == 0 {
		return nil, errors.New("watermark: detect: empty reference or suspect")
	}
	n := ref.W * ref.H
	for _, p := range append(slices.Clip(ref.A), ref.B...) {
		if len(p.Y) != n {
			return nil, fmt.Errorf("watermark: detect: a reference picture of %d bytes, want %dx%d", len(p.Y), ref.W, ref.H)
		}
	}
	if sus.W < 16 || sus.H < 16 {
		return nil, fmt.Errorf("watermark: detect: suspect pictures of %dx%d are too small to read", sus.W, sus.H)
	}
	for _, p := range sus.Frames {
		if len(p.Y) != sus.W*sus.H {
			return nil, fmt.Errorf("watermark: detect: a suspect picture of %d bytes, want %dx%d", len(p.Y), sus.W, sus.H)
		}
	}
	mean, diff := newRefPlanes(ref, false), newRefPlanes(ref, true)
	times := make([]time.Duration, len(ref.A))
	for j := range ref.A {
		times[j] = ref.A[j].PTS
	}
	reg := register(ref, mean, diff, times, sus)
	var out []Reading
	for _, cand := range reg.cands {
		sc := scoreFrames(ref, mean, diff, times, sus, cand)
		rd := Reading{Segments: segmentScores(ref, sc.perSeg, sc.sigma), Evidence: evidence(sc),
			Alignment: Alignment{Offset: cand.tm.at(0, cand.offset), Crop: cand.shown, Rate: 1,
				Transform: describe(cand.m, ref.W, ref.H, sus.W, sus.H, cand.match)}}
		if debugReg {
			fmt.Fprintf(os.Stderr, "cand off %v match %.4f shown %.3f evidence %.2f segs %d\n", cand.offset, cand.match, cand.shown, rd.Evidence, len(sc.perSeg))
		}
		if cand.tm != nil {
			rd.Rate = cand.tm.rate
			for k, at := range cand.tm.from {
				rd.Cuts = append(rd.Cuts, Cut{At: at, Offset: cand.offset + cand.tm.shift[k]})
			}
		}
		for k, s := range rd.Segments {
			if g, ok := cand.segs[s.Segment]; ok {
				rd.Segments[k].Transform = describe(g.m, ref.W, ref.H, sus.W, sus.H, g.match)
			}
		}
		out = append(out, rd)
	}
	return out, nil
}

// segmentScores are the per-segment z-scores, in segment order, with the
// bits called.
func segmentScores(ref *Reference, perSeg map[int]*segAcc, sigma float64) []SegmentScore {
	segs := make([]int, 0, len(perSeg))
	for k := range perSeg {
		segs = append(segs, k)
	}
	sort.Ints(segs)
	var out []SegmentScore
	for _, k := range segs {
		a := perSeg[k]
		mu, wsum := a.est()
		z := mu * math.Sqrt(wsum) / sigma
		ss := SegmentScore{Segment: k, Position: ref.Positions[k], Score: z, Frames: len(a.c)}
		if math.Abs(z) >= CallThreshold {
			bit := 0 // variant A
			if z < 0 {
				bit = 1
			}
			ss.Bit = &bit
		}
		out = append(out, ss)
	}
	return out
}

// decodeSegments decodes the wmid from a reading's segment scores.
func decodeSegments(ref *Reference, code *Code, segs []SegmentScore) (*Result, error) {
	res := &Result{Verdict: "inconclusive", Segments: slices.Clone(segs), SegmentsUsed: len(segs)}
	L := code.PatternLen()
	scores := make([]float64, L)
	for _, ss := range segs {
		// Variant A (positive score) is bit 0; the decoder wants > 0 for 1.
		scores[ss.Position%L] += max(-8, min(8, -ss.Score))
	}
	d, err := code.Decode(scores)
	if err != nil {
		return nil, err
	}
	if d.OK {
		res.Verdict = "identified"
		res.WMID = &d.WMID
	}
	return res, nil
}

// nearest is the index of the reference frame shown at time t, or -1
// outside the reference.
// segAcc collects a segment's per-frame scores: the regression coefficient
// of the residual on the A−B difference (c = rd/dd) and its weight dd.
// Frames where the variants differ more (mid-segment, full strength)
// measure the sign better than those in the ramps, so a segment's
// estimate is Σrd/Σdd.
type segAcc struct {
	c, w []float64
}

func (a *segAcc) est() (mu, wsum float64) {
	var cw float64
	for i, c := range a.c {
		cw += c * a.w[i]
		wsum += a.w[i]
	}
	return cw / wsum, wsum
}

// evidence is the strength of the mark under an alignment: the mean z²
// of its segments, less that of the control (the same scores against the
// variants' difference with its sign flipped at random in 5-pixel blocks,
// which the mark does not follow). A picture that is slightly misaligned
// leaves a residual that correlates with both alike, segment after
// segment; only the mark raises the first alone.
func evidence(sc scores) float64 {
	return meanZ2(sc.perSeg, sc.sigma) - meanZ2(sc.ctrl, sc.ctrlSigma)
}

func meanZ2(perSeg map[int]*segAcc, sigma float64) float64 {
	if len(perSeg) == 0 {
		return 0
	}
	var s float64
	for _, a := range perSeg {
		mu, wsum := a.est()
		z := mu * math.Sqrt(wsum) / sigma
		s += z * z
	}
	return s / float64(len(perSeg))
}

// scores are the per-segment scores of a suspect under an alignment and
// their pooled noise, and those of the control (see evidence).
type scores struct {
	perSeg, ctrl     map[int]*segAcc
	sigma, ctrlSigma float64
}

// scoreFrames scores every suspect frame against the reference frame it
// shows under al, through the registration's sampling map, and returns
// the per-segment scores and their pooled noise. The suspect's luma is
// first fitted as a smooth function g of the reference's mean picture
// (gamma, contrast, brightness: g(m) = α + βm + γm²); the mark is then
// the part of the residual that follows g'(m)·(A−B)/2.
func scoreFrames(ref *Reference, mean, diff *refPlanes, times []time.Duration, sus *Suspect, al alignment) scores {
	sc := scores{perSeg: map[int]*segAcc{}, ctrl: map[int]*segAcc{}, sigma: 1, ctrlSigma: 1}
	if len(al.pix) == 0 {
		return sc
	}
	// Buffers for the longest sampling map: a segment's own (track) has
	// at most the reference's pixels.
	nmax := max(len(al.pix), ref.W*ref.H+1)
	ms, ds, ss := make([]float64, nmax), make([]float64, nmax), make([]float64, nmax)
	gxs, gys := make([]float64, nmax), make([]float64, nmax)
	absr, scratch := make([]float64, nmax), make([]float64, nmax)
	pix, pixSeg := al.pix, -1
	for _, sp := range sus.Frames {
		j := nearest(times, al.tm.at(sp.PTS, al.offset))
		if j < 0 {
			continue
		}
		seg := int((times[j]) / ref.SegmentDuration)
		if seg >= len(ref.Positions) || ref.Positions[seg] < 0 {
			continue
		}
		if g, ok := al.segs[seg]; !ok {
			pix, pixSeg = al.pix, -1
		} else if seg != pixSeg {
			pix, pixSeg = pixelMap(ref.W, ref.H, sus.W, al.act, g.m), seg
		}
		np := len(pix)
		if np == 0 {
			continue
		}
		mj, dj := mean.at(j), diff.at(j)
		// Photometric fit s ≈ α + βm + γm² (m scaled to 0..1), with the
		// picture's gradients as two more terms: what is left of a
		// sub-pixel misregistration or of motion between the frame
		// shown and the reference frame read (another frame rate) is
		// removed with them instead of passing for the mark.
		var N [5][5]float64
		var rhs [5]float64
		for i, px := range pix {
			m := px.sample(mj, ref.W)
			ms[i], ds[i] = float64(m), float64(px.sample(dj, ref.W))
			sv := float64(sp.Y[px.s])
			ss[i] = sv
			x := float64(m) / 255
			gx, gy := px.gradient(mj, ref.W)
			gxs[i], gys[i] = float64(gx)/255, float64(gy)/255
			v := [5]float64{1, x, x * x, gxs[i], gys[i]}
			for a := range 5 {
				rhs[a] += v[a] * sv
				for b := 0; b <= a; b++ {
					N[a][b] += v[a] * v[b]
				}
			}
		}
		for a := range 5 {
			for b := a + 1; b < 5; b++ {
				N[a][b] = N[b][a]
			}
		}
		rows := make([][]float64, len(N))
		for a := range rows {
			rows[a] = N[a][:]
		}
		c, ok := solveLinear(rows, rhs[:])
		if !ok || c[1]+c[2] <= 0 {
			continue
		}
		for i := range np {
			ss[i] -= c[3]*gxs[i] + c[4]*gys[i]
		}
		for i := range np {
			x := ms[i] / 255
			ss[i] -= c[0] + c[1]*x + c[2]*x*x // residual
			ds[i] *= (c[1] + 2*c[2]*x) / 255  // the mark as the suspect shows it
			absr[i] = math.Abs(ss[i])
		}
		// Pixels the reference does not explain (a logo, subtitles, the
		// black corners of a rotation, an overlay) are left out: a
		// residual over 5 robust standard deviations, and over 12 levels
		// (the mark itself is at most a few levels: on a clean copy it
		// is all the residual there is).
		cut := max(12, 5*1.4826*median(absr[:np], scratch[:np]))
		var rm, dm, qm, n float64
		for i := range np {
			if absr[i] > cut {
				continue
			}
			rm += ss[i]
			dm += ds[i]
			qm += ds[i] * float64(pix[i].q)
			n++
		}
		if n < float64(np)/4 {
			continue
		}
		rm /= n
		dm /= n
		qm /= n
		var rd, dd, rq, qq float64
		for i := range np {
			if absr[i] > cut {
				continue
			}
			dv := ds[i] - dm
			qv := ds[i]*float64(pix[i].q) - qm
			r := ss[i] - rm
			rd += r * dv
			dd += dv * dv
			rq += r * qv
			qq += qv * qv
		}
		if dd < 1e-3*n || qq < 1e-3*n {
			continue // the variants do not differ here
		}
		for _, acc := range []struct {
			m      map[int]*segAcc
			rx, xx float64
		}{{sc.perSeg, rd, dd}, {sc.ctrl, rq, qq}} {
			if acc.m[seg] == nil {
				acc.m[seg] = &segAcc{}
			}
			acc.m[seg].c = append(acc.m[seg].c, acc.rx/acc.xx)
			acc.m[seg].w = append(acc.m[seg].w, acc.xx/float64(ref.W*ref.H))
		}
	}
	sc.sigma, sc.ctrlSigma = pooledSigma(sc.perSeg), pooledSigma(sc.ctrl)
	return sc
}

// pooledSigma is the pooled noise of the per-frame scores around their
// segment's estimate, in units of one unit of weight: Var(c) = s²/w.
func pooledSigma(perSeg map[int]*segAcc) float64 {
	var sq float64
	var cnt int
	for _, a := range perSeg {
		mu, _ := a.est()
		for i, c := range a.c {
			sq += a.w[i] * (c - mu) * (c - mu)
			cnt++
		}
	}
	sigma := 1.0
	if cnt > len(perSeg) {
		sigma = math.Sqrt(sq / float64(cnt-len(perSeg)))
	}
	return max(sigma, 1e-6)
}

func nearest(times []time.Duration, t time.Duration) int {
	i := sort.Search(len(times), func(i int) bool { return times[i] >= t })
	switch {
	case i == len(times):
		if len(times) > 1 && t-times[i-1] > times[i-1]-times[i-2] {
			return -1
		}
		return i - 1
	case i == 0:
		if len(times) > 1 && times[0]-t > times[1]-times[0] {
			return -1
		}
		return 0
	case t-times[i-1] < times[i]-t:
		return i - 1
	}
	return i
}

// debugReg (ABSEAL_DEBUG_REG=1) prints the registration's candidates to
// standard error: offsets, geometry, match and evidence (no key, no
// picture).
var debugReg = os.Getenv("ABSEAL_DEBUG_REG") != ""

// median is the median of v (scratch, as long as v, is reordered).
func median(v, scratch []float64) float64 {
	scratch = scratch[:len(v)]
	copy(scratch, v)
	slices.Sort(scratch)
	return scratch[len(scratch)/2]
}
