package watermark

import (
	"cmp"
	"errors"
	"fmt"
	"math"
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
}

// Result is the detector's verdict.
type Result struct {
	Verdict            string         `json:"verdict"` // "identified" or "inconclusive"
	WMID               *uint64        `json:"wmid"`
	FalsePositiveBound float64        `json:"false_positive_bound"`
	SegmentsUsed       int            `json:"segments_used"`
	Segments           []SegmentScore `json:"segments"`
	// Offset is the reference time of the suspect's first frame; Crop the
	// fraction of the reference picture the suspect shows.
	Offset time.Duration `json:"offset_ns"`
	Crop   float64       `json:"crop"`
}

// CallThreshold is the |z| from which a segment's bit is reported (called);
// below it the segment is an erasure in the report, though its soft score
// still counts in decoding. At 3σ a segment without signal is called
// wrongly with probability 0.13 %.
const CallThreshold = 3.0

// Detect aligns the suspect with the reference in time and space, scores
// every segment and decodes the wmid with code.
func Detect(ref *Reference, suspect []Picture, code *Code) (*Result, error) {
	if len(ref.A) == 0 || len(ref.A) != len(ref.B) || len(suspect) == 0 {
		return nil, errors.New("watermark: detect: empty reference or suspect")
	}
	n := ref.W * ref.H
	for _, p := range append(append(slices.Clip(ref.A), ref.B...), suspect...) {
		if len(p.Y) != n {
			return nil, fmt.Errorf("watermark: detect: a picture of %d bytes, want %dx%d", len(p.Y), ref.W, ref.H)
		}
	}
	mean := make([][]float32, len(ref.A))
	diff := make([][]float32, len(ref.A))
	times := make([]time.Duration, len(ref.A))
	for j := range ref.A {
		m, d := make([]float32, n), make([]float32, n)
		for i := range n {
			a, b := float32(ref.A[j].Y[i]), float32(ref.B[j].Y[i])
			m[i], d[i] = (a+b)/2, (a-b)/2
		}
		mean[j], diff[j], times[j] = m, d, ref.A[j].PTS
	}
	// The picture alone can mistake a crop for a time shift (a zoom looks
	// like both): the alignments whose picture match is close to the best
	// are all scored, and the one where the mark is strongest wins.
	var perSeg map[int]*segAcc
	var sigma float64
	var al alignment
	bestEvidence := -1.0
	for _, cand := range align(ref, mean, times, suspect) {
		ps, sg := scoreFrames(ref, mean, diff, times, suspect, cand)
		if ev := evidence(ps, sg); ev > bestEvidence {
			bestEvidence, perSeg, sigma, al = ev, ps, sg, cand
		}
	}

	res := &Result{Verdict: "inconclusive", FalsePositiveBound: FalsePositiveBound, Offset: al.offset, Crop: al.crop}
	L := code.PatternLen()
	scores := make([]float64, L)
	segs := make([]int, 0, len(perSeg))
	for k := range perSeg {
		segs = append(segs, k)
	}
	sort.Ints(segs)
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
		res.Segments = append(res.Segments, ss)
		// Variant A (positive score) is bit 0; the decoder wants > 0 for 1.
		scores[ref.Positions[k]%L] += max(-8, min(8, -z))
		res.SegmentsUsed++
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

// evidence is the strength of the mark under an alignment: the mean z² of
// its segments.
func evidence(perSeg map[int]*segAcc, sigma float64) float64 {
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

// scoreFrames scores every suspect frame against the reference frame it
// shows under al, and returns the per-segment scores and their pooled
// noise.
func scoreFrames(ref *Reference, mean, diff [][]float32, times []time.Duration, suspect []Picture, al alignment) (map[int]*segAcc, float64) {
	n := ref.W * ref.H

	// Score every suspect frame against the reference frame it shows.
	perSeg := map[int]*segAcc{}
	r := make([]float32, n)
	for _, sp := range suspect {
		j := nearest(times, sp.PTS+al.offset)
		if j < 0 {
			continue
		}
		seg := int((times[j]) / ref.SegmentDuration)
		if seg >= len(ref.Positions) || ref.Positions[seg] < 0 {
			continue
		}
		m := warp(mean[j], ref.W, ref.H, al.crop)
		d := warp(diff[j], ref.W, ref.H, al.crop)
		var rm, dm float64
		for i := range n {
			r[i] = float32(sp.Y[i]) - m[i]
			rm += float64(r[i])
			dm += float64(d[i])
		}
		rm /= float64(n)
		dm /= float64(n)
		var rd, dd float64
		for i := range n {
			dv := float64(d[i]) - dm
			rd += (float64(r[i]) - rm) * dv
			dd += dv * dv
		}
		if dd < 1e-3*float64(n) {
			continue // the variants do not differ here
		}
		if perSeg[seg] == nil {
			perSeg[seg] = &segAcc{}
		}
		w := dd / float64(n) // mean squared difference per pixel
		perSeg[seg].c = append(perSeg[seg].c, rd/dd)
		perSeg[seg].w = append(perSeg[seg].w, w)
	}

	// Pooled noise of the per-frame scores around their segment's
	// estimate, in units of one unit of weight: Var(c) = s²/w.
	var ss float64
	var cnt int
	for _, a := range perSeg {
		mu, _ := a.est()
		for i, c := range a.c {
			ss += a.w[i] * (c - mu) * (c - mu)
			cnt++
		}
	}
	sigma := 1.0
	if cnt > len(perSeg) {
		sigma = math.Sqrt(ss / float64(cnt-len(perSeg)))
	}
	sigma = max(sigma, 1e-6)

	return perSeg, sigma
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

// warp resamples a reference plane to what a centred crop of the given
// fraction, scaled back to full size, shows (crop 1: the plane itself).
func warp(p []float32, w, h int, crop float64) []float32 {
	if crop >= 0.999 {
		return p
	}
	out := make([]float32, w*h)
	x0 := (1 - crop) / 2 * float64(w)
	y0 := (1 - crop) / 2 * float64(h)
	for y := range h {
		sy := y0 + (float64(y)+0.5)*crop - 0.5
		iy := max(0, min(h-2, int(sy)))
		fy := float32(sy - float64(iy))
		for x := range w {
			sx := x0 + (float64(x)+0.5)*crop - 0.5
			ix := max(0, min(w-2, int(sx)))
			fx := float32(sx - float64(ix))
			a := p[iy*w+ix] + (p[iy*w+ix+1]-p[iy*w+ix])*fx
			b := p[(iy+1)*w+ix] + (p[(iy+1)*w+ix+1]-p[(iy+1)*w+ix])*fx
			out[y*w+x] = a + (b-a)*fy
		}
	}
	return out
}

type alignment struct {
	offset time.Duration
	crop   float64
}

// align returns the time offsets and centred crops under which the suspect
// looks most like the reference (smallest mean absolute difference over a
// sample of suspect frames): the best and up to three within 25 % of it.
func align(ref *Reference, mean [][]float32, times []time.Duration, suspect []Picture) []alignment {
	sample := suspect
	if len(sample) > 24 {
		sample = make([]Picture, 24)
		for i := range sample {
			sample[i] = suspect[i*len(suspect)/24]
		}
	}
	type cand struct {
		al   alignment
		cost float64
	}
	var cands []cand
	n := ref.W * ref.H
	t0 := sample[0].PTS
	for _, crop := range []float64{1, 0.95, 0.9, 0.85, 0.8} {
		warped := map[int][]float32{}
		get := func(j int) []float32 {
			if w, ok := warped[j]; ok {
				return w
			}
			w := warp(mean[j], ref.W, ref.H, crop)
			warped[j] = w
			return w
		}
		for j0 := range times {
			offset := times[j0] - t0
			var cost float64
			used := 0
			for _, sp := range sample {
				j := nearest(times, sp.PTS+offset)
				if j < 0 {
					continue
				}
				m := get(j)
				var sad float64
				for i := 0; i < n; i += 3 {
					sad += math.Abs(float64(sp.Y[i]) - float64(m[i]))
				}
				cost += sad
				used++
			}
			if used < len(sample)/2 {
				continue
			}
			cands = append(cands, cand{alignment{offset: offset, crop: crop}, cost / float64(used)})
		}
	}
	if len(cands) == 0 {
		return []alignment{{crop: 1}}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.cost, b.cost) })
	// The best match and those close to it (at most 4 in all).
	out := []alignment{cands[0].al}
	for _, c := range cands[1:] {
		if len(out) == 4 || c.cost > 1.25*cands[0].cost {
			break
		}
		out = append(out, c.al)
	}
	return out
}
