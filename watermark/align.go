package watermark

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

// registration is where and when the suspect shows the reference: the
// candidate alignments (time offset and geometry), and what the report
// says about the geometry.
type registration struct {
	cands []alignment
}

// alignment is one way the suspect may show the reference: a time offset
// (reference time minus suspect time), a homography from suspect to
// reference pixels and its sampling map of suspect pixels to reference
// positions.
type alignment struct {
	tm     *timeMap // nil: reference time = suspect time + offset
	offset time.Duration
	m      homography
	match  float64
	pix    []pixMap
	shown  float64
	quick  float64 // the mark's evidence on a quick read (walkFamily)
	// segs are the segments whose own geometry (track) explains their
	// pictures better than m.
	segs map[int]segGeometry
	act  box
}

// segGeometry is one segment's geometry and how well its pictures match
// under it.
type segGeometry struct {
	m     homography
	match float64
}

// pixMap is a suspect pixel (index s) and the reference position it shows:
// the top-left of its 2×2 neighbourhood r and the weights fx, fy.
type pixMap struct {
	s, r   int32
	fx, fy float32
	q      float32 // the control's sign at the reference position (see evidence)
}

// gradient is the picture's change per pixel in x and y over the 2×2
// neighbourhood p samples.
func (p pixMap) gradient(pl []float32, w int) (float32, float32) {
	i := int(p.r)
	gx := (pl[i+1] - pl[i] + pl[i+w+1] - pl[i+w]) / 2
	gy := (pl[i+w] - pl[i] + pl[i+w+1] - pl[i+1]) / 2
	return gx, gy
}

func (p pixMap) sample(pl []float32, w int) float32 {
	i := int(p.r)
	a := pl[i] + (pl[i+1]-pl[i])*p.fx
	b := pl[i+w] + (pl[i+w+1]-pl[i+w])*p.fx
	return a + (b-a)*p.fy
}

// register finds the suspect's time offset and geometry relative to the
// reference. Time and geometry depend on each other, so:
//  1. coarse time offsets from the pictures' brightness over time (which
//     crops, scales, mirrors and perspective change little);
//  2. the geometry at each (coarseSearch, refine);
//  3. under the best geometry, every time offset again, by how well the
//     pictures match (this finds the offset when brightness barely
//     changes), and the geometry at the offsets found;
//  4. around the best two, the time offset to half a frame.
//
// The candidates whose pictures match nearly as well as the best are all
// returned: Detect scores each and keeps the strongest mark.
func register(ref *Reference, mean, diff *refPlanes, times []time.Duration, sus *Suspect) *registration {
	act := activeBox(sus.Frames, sus.W, sus.H)
	tm0, seeds := coarseOffsets(mean, times, sus, act)
	var geos []alignment
	tried := func(off time.Duration) bool {
		for _, g := range geos {
			if (g.offset - off).Abs() < 500*time.Millisecond {
				return true
			}
		}
		return false
	}
	fit := func(off time.Duration) {
		if tried(off) {
			return
		}
		if g, ok := geometryAt(ref, mean, times, sus, act, tm0, off); ok {
			geos = append(geos, g)
		}
	}
	lo, hi := times[0]-tm0.at(sus.Frames[len(sus.Frames)-1].PTS, 0), times[len(times)-1]-tm0.at(sus.Frames[0].PTS, 0)
	// Seeds: the brightness peaks, and the offsets where the suspect's
	// active picture, stretched over the reference's, matches best (a
	// plain re-encode, a small crop or a scale).
	stretch := scaleShift(float64(ref.W)/float64(act.w()), float64(ref.H)/float64(act.h()),
		-float64(act.x0)*float64(ref.W)/float64(act.w()), -float64(act.y0)*float64(ref.H)/float64(act.h()))
	seeds = append(seeds, offsetPeaks(ref, mean, times, sus, subsample(pixelMap(ref.W, ref.H, sus.W, act, stretch), 1000), tm0, lo, hi, 2)...)
	for _, off := range seeds {
		fit(off)
	}
	// Under the best geometry so far, every offset again.
	for range 2 {
		if len(geos) == 0 {
			break
		}
		slices.SortFunc(geos, func(a, b alignment) int { return cmp.Compare(b.match, a.match) })
		n := len(geos)
		for _, off := range offsetPeaks(ref, mean, times, sus, subsample(pixelMap(ref.W, ref.H, sus.W, act, geos[0].m), 1000), tm0, lo, hi, 2) {
			fit(off)
		}
		if len(geos) == n {
			break
		}
	}
	slices.SortFunc(geos, func(a, b alignment) int { return cmp.Compare(b.match, a.match) })
	if len(geos) == 0 {
		// Nothing overlaps: the active box stretched to the reference at
		// offset 0 (the result will be inconclusive).
		geos = []alignment{{tm: tm0, m: stretch}}
	}
	if os.Getenv("ABSEAL_DEBUG_REG") != "" {
		for _, g := range geos {
			fmt.Fprintf(os.Stderr, "geo off %v match %.3f m %.3f\n", g.offset, g.match, g.m)
		}
	}
	// Candidates: the geometries whose pictures match nearly as well as
	// the best. A zoom looks like a time shift and a pan like a crop, so
	// around each the family of (offset, geometry) pairs that match as
	// well is walked in steps of a frame or more, and the mark, read
	// quickly on every fourth frame, picks the best of each family.
	reg := &registration{}
	for _, g := range geos {
		if len(reg.cands) == maxFamilies || g.match < geos[0].match-0.01 {
			break
		}
		reg.cands = append(reg.cands, walkFamily(ref, mean, diff, times, sus, act, g))
	}
	// The strongest quick reads are scored in full and decoded.
	slices.SortStableFunc(reg.cands, func(a, b alignment) int { return cmp.Compare(b.quick, a.quick) })
	reg.cands = reg.cands[:min(len(reg.cands), maxCandidates)]
	for i := range reg.cands {
		reg.cands[i] = track(ref, mean, times, sus, act, reg.cands[i])
	}
	return reg
}

// track follows al's geometry through the suspect segment by segment: a
// handheld camera drifts, zooms and tilts, a phone re-frame pans with the
// action, a pirate's crop changes from shot to shot. Each segment's
// geometry is refined on two of its frame pairs (Gauss-Newton, half then
// full analysis resolution) from the previous segment's and from al's,
// and kept where it explains the segment's pictures better than al's
// does and stays within a fifth of the picture's diagonal of it. Like the rest of
// the registration it looks at the picture (the mean of the variants)
// only, never at the mark, so the false-positive bound is unchanged.
func track(ref *Reference, mean *refPlanes, times []time.Duration, sus *Suspect, act box, al alignment) alignment {
	al.act = act
	bySeg := map[int][]int{}
	var order []int
	for i, sp := range sus.Frames {
		j := nearest(times, al.tm.at(sp.PTS, al.offset))
		if j < 0 {
			continue
		}
		seg := int(times[j] / ref.SegmentDuration)
		if seg >= len(ref.Positions) || ref.Positions[seg] < 0 {
			continue
		}
		if _, ok := bySeg[seg]; !ok {
			order = append(order, seg)
		}
		bySeg[seg] = append(bySeg[seg], i)
	}
	al.segs = map[int]segGeometry{}
	prev := al.m
	for _, seg := range order {
		fr := bySeg[seg]
		var sp, rp []plane
		for k, i := range []int{fr[len(fr)/3], fr[2*len(fr)/3]} {
			if k == 1 && i == fr[len(fr)/3] {
				break
			}
			j := nearest(times, al.tm.at(sus.Frames[i].PTS, al.offset))
			sp = append(sp, planeOf(sus.Frames[i].Y, sus.W, sus.H))
			rp = append(rp, plane{ref.W, ref.H, mean.at(j)})
		}
		global := match(sp, rp, act, al.m)
		best, bm := al.m, global
		starts := []homography{al.m}
		if prev != al.m {
			starts = append(starts, prev)
		}
		for _, m0 := range starts {
			m, mt := refineLevels(sp, rp, act, m0, []int{2, 1}, 10)
			if debugReg {
				fmt.Fprintf(os.Stderr, "track seg %d global %.4f refined %.4f near %v\n", seg, global, mt, near(m, al.m, ref.W, ref.H, 0.2))
			}
			if mt > bm+0.002 && near(m, al.m, ref.W, ref.H, 0.2) {
				best, bm = m, mt
			}
		}
		if best != al.m {
			al.segs[seg] = segGeometry{m: best, match: bm}
		}
		prev = best
	}
	return al
}

// near reports whether m and n put every corner of the reference (rw×rh)
// within frac of its diagonal of each other (in suspect pixels, through
// their inverses).
func near(m, n homography, rw, rh int, frac float64) bool {
	mi, ok1 := m.inverse()
	ni, ok2 := n.inverse()
	if !ok1 || !ok2 {
		return false
	}
	// Suspect pixels per reference pixel, from n at the centre.
	cx, cy := float64(rw)/2, float64(rh)/2
	x0, y0, _ := ni.apply(cx, cy)
	x1, y1, _ := ni.apply(cx+1, cy)
	x2, y2, _ := ni.apply(cx, cy+1)
	scale := math.Sqrt(math.Abs((x1-x0)*(y2-y0) - (x2-x0)*(y1-y0)))
	lim := frac * math.Hypot(float64(rw), float64(rh)) * scale
	for _, c := range [4][2]float64{{0, 0}, {float64(rw), 0}, {float64(rw), float64(rh)}, {0, float64(rh)}} {
		ax, ay, oka := mi.apply(c[0], c[1])
		bx, by, okb := ni.apply(c[0], c[1])
		if !oka || !okb || math.Hypot(ax-bx, ay-by) > lim {
			return false
		}
	}
	return true
}

// walkFamily refines g's geometry at offsets around g's and returns the
// alignment whose mark is the strongest on a quick read (about three
// frames per segment, a quarter of the pixels), its offset centred: first every 200 ms or so (whole
// frames) up to 600 ms away, then frame by frame around the best.
func walkFamily(ref *Reference, mean, diff *refPlanes, times []time.Duration, sus *Suspect, act box, g alignment) alignment {
	perSeg := int(ref.SegmentDuration / frameStep(suspectTimes(sus)))
	quick := &Suspect{W: sus.W, H: sus.H}
	for i := 0; i < len(sus.Frames); i += max(1, perSeg/3) {
		quick.Frames = append(quick.Frames, sus.Frames[i])
	}
	prep := func(a alignment) (alignment, float64) {
		a.pix = pixelMap(ref.W, ref.H, sus.W, act, a.m)
		a.offset = centreOffset(times, sus.Frames, a.tm, a.offset)
		// A quarter of the pixels: the mark is smooth at that scale.
		q := a
		q.pix = subsample(a.pix, ref.W*ref.H/4)
		return a, evidence(scoreFrames(ref, mean, diff, times, quick, q))
	}
	g.tm, g.offset = estimateTiming(ref, mean, times, sus, subsample(pixelMap(ref.W, ref.H, sus.W, act, g.m), 1000), g.tm, g.offset)
	best, bestEv := prep(g)
	if debugReg {
		fmt.Fprintf(os.Stderr, "  centre %v tm %+v match %.4f quick evidence %.2f\n", best.offset, best.tm, best.match, bestEv)
	}
	walk := func(from alignment, step time.Duration, n int) {
		for _, dir := range []time.Duration{-1, 1} {
			cur := from
			for k := 1; k <= n; k++ {
				next, ok := refineAt(ref, mean, times, sus, act, from.tm, from.offset+dir*time.Duration(k)*step, cur.m)
				if !ok || next.match < g.match-0.01 {
					break
				}
				a, ev := prep(next)
				if debugReg {
					fmt.Fprintf(os.Stderr, "  family %v match %.4f quick evidence %.2f\n", a.offset, a.match, ev)
				}
				if ev > bestEv {
					best, bestEv = a, ev
				}
				cur = next
			}
		}
	}
	frame := frameStep(times)
	if coarse := (200 * time.Millisecond / frame) * frame; coarse > frame {
		walk(g, coarse, int(600*time.Millisecond/coarse))
	}
	walk(best, frame, max(1, int(100*time.Millisecond/frame)))
	best.shown = math.Round(shownFraction(ref.W, ref.H, act, best.m)*1000) / 1000
	best.quick = bestEv
	return best
}

// refineAt refines geometry m at time offset off.
func refineAt(ref *Reference, mean *refPlanes, times []time.Duration, sus *Suspect, act box, tm *timeMap, off time.Duration, m homography) (alignment, bool) {
	sp, rp := pairsAt(ref, mean, times, sus, tm, off, spread)
	if len(sp) == 0 {
		return alignment{}, false
	}
	// From the neighbour's geometry: a few steps at full resolution.
	m, mt := refineLevels(sp, rp, act, m, []int{1}, 8)
	return alignment{tm: tm, offset: off, m: m, match: mt}, true
}

// pairsAt is the frame pairs at fractions fs of the overlap at offset off.
func pairsAt(ref *Reference, mean *refPlanes, times []time.Duration, sus *Suspect, tm *timeMap, off time.Duration, fs []float64) (sp, rp []plane) {
	for _, f := range fs {
		i := pairAt(sus, times, tm, off, f)
		if i < 0 {
			continue
		}
		j := nearest(times, tm.at(sus.Frames[i].PTS, off))
		sp = append(sp, planeOf(sus.Frames[i].Y, sus.W, sus.H))
		rp = append(rp, plane{ref.W, ref.H, mean.at(j)})
	}
	return sp, rp
}

// geometryAt registers the suspect's pictures with the reference's at
// time offset off from three frame pairs spread over their overlap.
func geometryAt(ref *Reference, mean *refPlanes, times []time.Duration, sus *Suspect, act box, tm *timeMap, off time.Duration) (alignment, bool) {
	fit := func(fs []float64) (alignment, bool) {
		sp, rp := pairsAt(ref, mean, times, sus, tm, off, fs)
		if len(sp) == 0 {
			return alignment{}, false
		}
		m0, _ := coarseSearch(sp, rp, act)
		m, mt := refine(sp, rp, act, m0)
		return alignment{tm: tm, offset: off, m: m, match: mt}, true
	}
	best, ok := fit(spread)
	if ok && best.match >= 0.95 {
		return best, true
	}
	// Pairs that straddle a cut (or a speed change) cannot all match:
	// three close pairs at a time, early, midway and late.
	for _, c := range []float64{0.2, 0.5, 0.8} {
		if g, gok := fit([]float64{c - 0.02, c, c + 0.02}); gok && (!ok || g.match > best.match) {
			best, ok = g, true
		}
	}
	return best, ok
}

// spread are the fractions of the overlap where geometry is fitted.
var spread = []float64{0.25, 0.5, 0.75}

func subsample(pix []pixMap, n int) []pixMap {
	if len(pix) <= n {
		return pix
	}
	out := make([]pixMap, 0, n+1)
	for i := 0; i < len(pix); i += len(pix)/n + 1 {
		out = append(out, pix[i])
	}
	return out
}

// sampleFrames is up to n suspect frames spread evenly.
func sampleFrames(frames []Picture, n int) []Picture {
	if len(frames) <= n {
		return frames
	}
	out := make([]Picture, n)
	for i := range out {
		out[i] = frames[i*len(frames)/n]
	}
	return out
}

// offsetPeaks returns up to k time offsets in [lo, hi], more than a
// second apart, under which the suspect's sampled frames match the
// reference's best through the sampling map pix.
func offsetPeaks(ref *Reference, mean *refPlanes, times []time.Duration, sus *Suspect, pix []pixMap, tm *timeMap, lo, hi time.Duration, k int) []time.Duration {
	if len(pix) == 0 {
		return nil
	}
	sample := sampleFrames(sus.Frames, 24)
	mt := newMatcher(ref, mean, pix)
	sv := make([][]float32, len(sample))
	for k, sp := range sample {
		sv[k] = mt.susVec(sp.Y)
	}
	step := 2 * frameStep(times)
	type cand struct {
		off  time.Duration
		cost float64
	}
	var cands []cand
	for o := lo; o <= hi; o += step {
		if c, ok := mt.cost(times, sample, sv, tm, o); ok {
			cands = append(cands, cand{o, c})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(a.cost, b.cost) })
	offs := make([]time.Duration, len(cands))
	for i, c := range cands {
		offs[i] = c.off
	}
	return distinctPeaks(offs, k)
}

// distinctPeaks keeps the first k offsets of offs (best first) that are a
// second or more from every one kept before.
func distinctPeaks(offs []time.Duration, k int) []time.Duration {
	var out []time.Duration
	for _, c := range offs {
		if len(out) == k {
			break
		}
		near := false
		for _, o := range out {
			if (c - o).Abs() < time.Second {
				near = true
			}
		}
		if !near {
			out = append(out, c)
		}
	}
	return out
}

// matcher correlates suspect pictures with reference frames through a
// sampling map: each side's samples, centred and scaled to unit length,
// so that a normalized correlation is one dot product. Reference frames
// are sampled on first use and kept.
type matcher struct {
	ref  *Reference
	mean *refPlanes
	pix  []pixMap
	rv   [][]float32
	done []bool
}

func newMatcher(ref *Reference, mean *refPlanes, pix []pixMap) *matcher {
	return &matcher{ref: ref, mean: mean, pix: pix, rv: make([][]float32, mean.n()), done: make([]bool, mean.n())}
}

// unit centres v and scales it to unit length; nil if it is flat.
func unit(v []float32) []float32 {
	var s, q float64
	for _, x := range v {
		s += float64(x)
	}
	m := float32(s / float64(len(v)))
	for i := range v {
		v[i] -= m
		q += float64(v[i] * v[i])
	}
	if q < 1e-3*float64(len(v)) {
		return nil
	}
	k := float32(1 / math.Sqrt(q))
	for i := range v {
		v[i] *= k
	}
	return v
}

func (mt *matcher) refVec(j int) []float32 {
	if !mt.done[j] {
		v := make([]float32, len(mt.pix))
		mj := mt.mean.at(j)
		for i, px := range mt.pix {
			v[i] = px.sample(mj, mt.ref.W)
		}
		mt.rv[j], mt.done[j] = unit(v), true
	}
	return mt.rv[j]
}

func (mt *matcher) susVec(y []byte) []float32 {
	v := make([]float32, len(mt.pix))
	for i, px := range mt.pix {
		v[i] = float32(y[px.s])
	}
	return unit(v)
}

// corr is the normalized correlation of a suspect vector with reference
// frame j (0 when either is flat).
func (mt *matcher) corr(sv []float32, j int) float64 {
	rv := mt.refVec(j)
	if sv == nil || rv == nil {
		return 0
	}
	var d float32
	for i, x := range sv {
		d += x * rv[i]
	}
	return float64(d)
}

// cost is 1 − the mean normalized correlation of the sampled suspect
// frames (their vectors sv) with the reference frames they show under tm
// and o; ok is false when fewer than half of them show one.
func (mt *matcher) cost(times []time.Duration, sample []Picture, sv [][]float32, tm *timeMap, o time.Duration) (float64, bool) {
	var cost float64
	used := 0
	for k, sp := range sample {
		j := nearest(times, tm.at(sp.PTS, o))
		if j < 0 {
			continue
		}
		cost += 1 - mt.corr(sv[k], j)
		used++
	}
	if used == 0 || used < len(sample)/2 {
		return 0, false
	}
	return cost / float64(used), true
}

func frameStep(times []time.Duration) time.Duration {
	if len(times) > 1 {
		if s := (times[len(times)-1] - times[0]) / time.Duration(len(times)-1); s > 0 {
			return s
		}
	}
	return 40 * time.Millisecond
}

// pairAt is the index of the suspect frame at fraction f of the suspect's
// frames that show the reference under offset off, or -1.
func pairAt(sus *Suspect, times []time.Duration, tm *timeMap, off time.Duration, f float64) int {
	var in []int
	for i, p := range sus.Frames {
		if nearest(times, tm.at(p.PTS, off)) >= 0 {
			in = append(in, i)
		}
	}
	if len(in) == 0 {
		return -1
	}
	return in[min(len(in)-1, int(f*float64(len(in))))]
}

// coarseOffsets returns up to three time offsets (reference time minus
// suspect time) under which the suspect's brightness over time follows
// the reference's best: normalized correlation of the per-frame mean luma
// and of its frame-to-frame change, over at least half the overlap.
func coarseOffsets(mean *refPlanes, times []time.Duration, sus *Suspect, act box) (*timeMap, []time.Duration) {
	rs := mean.brightness()
	ss := make([]float64, len(sus.Frames))
	for i, f := range sus.Frames {
		var s float64
		var n int
		for y := act.y0; y < act.y1; y += 2 {
			for _, v := range f.Y[y*sus.W+act.x0 : y*sus.W+act.x1] {
				s += float64(v)
				n++
			}
		}
		ss[i] = s / float64(max(n, 1))
	}
	step := frameStep(times)
	first, last := sus.Frames[0].PTS, sus.Frames[len(sus.Frames)-1].PTS
	need := max(2, min(len(sus.Frames), len(times))/2)
	type cand struct {
		off   time.Duration
		score float64
	}
	js := make([]int, len(sus.Frames))
	scan := func(tm *timeMap) []cand {
		var cands []cand
		for off := times[0] - tm.at(last, 0); off <= times[len(times)-1]-tm.at(first, 0); off += step {
			used := 0
			for i, p := range sus.Frames {
				js[i] = nearest(times, tm.at(p.PTS, off))
				if js[i] >= 0 {
					used++
				}
			}
			if used < need {
				continue
			}
			lv := ncc(len(sus.Frames), func(i int) (float64, float64, bool) {
				if js[i] < 0 {
					return 0, 0, false
				}
				return ss[i], rs[js[i]], true
			})
			df := ncc(len(sus.Frames), func(i int) (float64, float64, bool) {
				if i == 0 || js[i] < 0 || js[i-1] < 0 {
					return 0, 0, false
				}
				return ss[i] - ss[i-1], rs[js[i]] - rs[js[i-1]], true
			})
			cands = append(cands, cand{off, lv + df})
		}
		slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(b.score, a.score) })
		return cands
	}
	// Speed: another rate only where brightness follows it clearly better.
	var tm *timeMap
	cands := scan(nil)
	for _, r := range rates[1:] {
		c := scan(&timeMap{rate: r})
		if len(c) > 0 && (len(cands) == 0 || c[0].score > cands[0].score+0.1) {
			if tm == nil || c[0].score > cands[0].score {
				tm, cands = &timeMap{rate: r}, c
			}
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	// Peaks, best first; peaks closer than a second count once.
	offs := make([]time.Duration, len(cands))
	for i, c := range cands {
		offs[i] = c.off
	}
	return tm, distinctPeaks(offs, 3)
}

// ncc is the normalized correlation of the pairs get(i) that exist.
func ncc(n int, get func(i int) (float64, float64, bool)) float64 {
	var sa, sb, saa, sbb, sab, c float64
	for i := range n {
		a, b, ok := get(i)
		if !ok {
			continue
		}
		sa += a
		sb += b
		saa += a * a
		sbb += b * b
		sab += a * b
		c++
	}
	if c < 2 {
		return 0
	}
	va, vb := saa-sa*sa/c, sbb-sb*sb/c
	if va <= 1e-9 || vb <= 1e-9 {
		return 0
	}
	return (sab - sa*sb/c) / math.Sqrt(va*vb)
}

// pixelMap maps the suspect pixels of the active box through m and keeps
// those that land inside the reference, at most as many as the reference
// has pixels (spread evenly: the mark is smooth at that scale).
func pixelMap(rw, rh, sw int, act box, m homography) (out []pixMap) {
	stepPx := 1
	if act.w()*act.h() > 4*rw*rh {
		stepPx = 2
	}
	defer func() { out = subsample(out, rw*rh) }()
	for y := act.y0; y < act.y1; y += stepPx {
		for x := act.x0; x < act.x1; x += stepPx {
			X, Y, ok := m.apply(float64(x)+0.5, float64(y)+0.5)
			if !ok {
				continue
			}
			X -= 0.5
			Y -= 0.5
			if X < 0 || Y < 0 || X >= float64(rw-1) || Y >= float64(rh-1) {
				continue
			}
			ix, iy := int(X), int(Y)
			out = append(out, pixMap{s: int32(y*sw + x), r: int32(iy*rw + ix), fx: float32(X - float64(ix)), fy: float32(Y - float64(iy)),
				q: controlSign(int(X+0.5)/5, int(Y+0.5)/5)})
		}
	}
	return out
}

// shownFraction is the fraction of the reference's picture (rw×rh) that
// the suspect's active box shows under m.
func shownFraction(rw, rh int, act box, m homography) float64 {
	inv, ok := m.inverse()
	if !ok {
		return 0
	}
	in := 0
	for y := range rh {
		for x := range rw {
			sx, sy, ok := inv.apply(float64(x)+0.5, float64(y)+0.5)
			if ok && sx >= float64(act.x0) && sx < float64(act.x1) && sy >= float64(act.y0) && sy < float64(act.y1) {
				in++
			}
		}
	}
	return float64(in) / float64(rw*rh)
}

// describe reports m: the reference's corners in the suspect's picture
// (as fractions of its size), mirroring and the match.
func describe(m homography, rw, rh, sw, sh int, match float64) *Transform {
	inv, ok := m.inverse()
	t := &Transform{Match: math.Round(match*1000) / 1000}
	if !ok {
		return t
	}
	for i, c := range [4][2]float64{{0, 0}, {float64(rw), 0}, {float64(rw), float64(rh)}, {0, float64(rh)}} {
		x, y, _ := inv.apply(c[0], c[1])
		t.Corners[i] = [2]float64{math.Round(x/float64(sw)*1000) / 1000, math.Round(y/float64(sh)*1000) / 1000}
	}
	// Mirrored: the reference's x axis runs right to left in the suspect.
	t.Mirrored = t.Corners[1][0] < t.Corners[0][0]
	return t
}

func (m homography) inverse() (homography, bool) {
	a, b, c, d, e, f, g, h, i := m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
	det := a*(e*i-f*h) - b*(d*i-f*g) + c*(d*h-e*g)
	if math.Abs(det) < 1e-12 {
		return homography{}, false
	}
	return homography{
		(e*i - f*h) / det, (c*h - b*i) / det, (b*f - c*e) / det,
		(f*g - d*i) / det, (a*i - c*g) / det, (c*d - a*f) / det,
		(d*h - e*g) / det, (b*g - a*h) / det, (a*e - b*d) / det,
	}, true
}

// centreOffset moves offset o to the middle of the frame pairing it
// gives: the median of the reference time minus the suspect time over the
// frames as paired under o. (The match cost is flat while the pairing
// stays the same, so the best offset found can sit at the edge of a
// pairing, where the next frame is as near.)
func centreOffset(times []time.Duration, frames []Picture, tm *timeMap, o time.Duration) time.Duration {
	var ds []time.Duration
	for _, p := range frames {
		if j := nearest(times, tm.at(p.PTS, o)); j >= 0 {
			ds = append(ds, times[j]-tm.at(p.PTS, 0))
		}
	}
	if len(ds) == 0 {
		return o
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// maxFamilies is how many geometries (and their families of offsets) are
// read quickly; maxCandidates how many of them Detect then scores in full
// and decodes: the false-positive bound it reports counts every decoding.
const maxFamilies, maxCandidates = 4, 2

// controlSign is a fixed pseudo-random ±1 per 5×5-pixel block of the
// reference (see evidence).
func controlSign(bx, by int) float32 {
	h := uint32(bx)*0x9E3779B1 ^ uint32(by)*0x85EBCA77
	h ^= h >> 15
	h *= 0x2C1B3C6D
	h ^= h >> 12
	if h&1 == 0 {
		return -1
	}
	return 1
}

func suspectTimes(sus *Suspect) []time.Duration {
	ts := make([]time.Duration, len(sus.Frames))
	for i, f := range sus.Frames {
		ts[i] = f.PTS
	}
	return ts
}

// timeMap maps suspect time to reference time: rate·t plus the shift of
// the piece t is in (pieces start at from[k]; before the first, no
// shift), plus the alignment's offset. Rate is not 1 for a copy sped up
// or slowed down (25 fps film played at 25 instead of 23.976); pieces
// with other shifts follow cuts (a missing minute).
type timeMap struct {
	rate  float64
	from  []time.Duration
	shift []time.Duration
}

func (tm *timeMap) at(t, off time.Duration) time.Duration {
	if tm == nil {
		return t + off
	}
	r := time.Duration(float64(t)*tm.rate) + off
	for k := len(tm.from) - 1; k >= 0; k-- {
		if t >= tm.from[k] {
			return r + tm.shift[k]
		}
	}
	return r
}

// rates are the speed changes the detector tries: PAL speed-up and its
// inverse (23.976 or 24 fps played at 25), and the NTSC 1000/1001.
var rates = []float64{1, 25 / 23.976, 23.976 / 25, 25.0 / 24, 24.0 / 25, 1.001, 1 / 1.001}

// estimateTiming finds the suspect's speed and its cuts under the sampling
// map pix: up to 64 suspect frames spread over it are each matched with
// every reference frame, a line (rate and offset) is fitted to the pairs
// robustly (the most pairs within a frame and a half of it; speed 1 unless
// another rate fits a fifth more), and runs of at least four consecutive
// pairs that follow the same rate at another
// offset, a second or more away, become pieces of their own (a cut). It returns the time map (nil:
// speed 1, no cut) and the offset; with too few pairs on a line it keeps
// tm0 and off.
func estimateTiming(ref *Reference, mean *refPlanes, times []time.Duration, sus *Suspect, pix []pixMap, tm0 *timeMap, off time.Duration) (*timeMap, time.Duration) {
	if len(pix) == 0 || len(sus.Frames) < 8 || len(times) < 8 {
		return tm0, off
	}
	sample := sampleFrames(sus.Frames, 64)
	type point struct{ ts, tr float64 } // seconds
	pts := make([]point, 0, len(sample))
	mt := newMatcher(ref, mean, pix)
	for _, sp := range sample {
		sv := mt.susVec(sp.Y)
		if sv == nil {
			continue // a flat picture matches anything
		}
		best, bestC := -1, -2.0
		for j := range times {
			if c := mt.corr(sv, j); c > bestC {
				best, bestC = j, c
			}
		}
		if best >= 0 && bestC > 0.5 {
			pts = append(pts, point{sp.PTS.Seconds(), times[best].Seconds()})
		}
	}
	if len(pts) < 6 {
		return tm0, off
	}
	tol := 1.5 * frameStep(times).Seconds()
	// Robust line: every pair of points two or more seconds apart
	// proposes a rate (within 0.9..1.1); the one with the most points
	// within tol wins, refitted by least squares on them.
	bestN, rate, ofs := 0, 1.0, 0.0
	try := func(r, o float64) {
		n := 0
		for _, p := range pts {
			if math.Abs(p.tr-r*p.ts-o) <= tol {
				n++
			}
		}
		if n > bestN || n == bestN && math.Abs(r-1) < math.Abs(rate-1) {
			bestN, rate, ofs = n, r, o
		}
	}
	for _, p := range pts {
		try(1, p.tr-p.ts) // speed 1 first: preferred on ties
	}
	for a := range pts {
		for b := a + 1; b < len(pts); b++ {
			dt := pts[b].ts - pts[a].ts
			if dt < 2 {
				continue
			}
			r := (pts[b].tr - pts[a].tr) / dt
			if r < 0.9 || r > 1.1 {
				continue
			}
			try(r, pts[a].tr-r*pts[a].ts)
		}
	}
	if bestN < max(4, len(pts)/3) {
		return tm0, off
	}
	// Speed 1 unless another rate fits clearly more pairs (neighbouring
	// frames look alike in slow shots, so single matches wander by a few
	// frames).
	n1, bestOne := 0, 0
	for _, q := range pts {
		n := 0
		for _, p := range pts {
			if math.Abs(p.tr-p.ts-(q.tr-q.ts)) <= tol {
				n++
			}
		}
		if n > bestOne {
			bestOne, n1 = n, n
			if rate == 1 {
				ofs = q.tr - q.ts
			}
		}
	}
	if rate != 1 && float64(bestN) < 1.2*float64(n1) {
		rate, bestN = 1, n1
		for _, q := range pts {
			n := 0
			for _, p := range pts {
				if math.Abs(p.tr-p.ts-(q.tr-q.ts)) <= tol {
					n++
				}
			}
			if n == n1 {
				ofs = q.tr - q.ts
				break
			}
		}
	}
	// Least squares on the inliers.
	var sx, sy, sxx, sxy, k float64
	for _, p := range pts {
		if math.Abs(p.tr-rate*p.ts-ofs) <= tol {
			sx += p.ts
			sy += p.tr
			sxx += p.ts * p.ts
			sxy += p.ts * p.tr
			k++
		}
	}
	if d := k*sxx - sx*sx; rate != 1 && d > 1e-9 {
		if r := (k*sxy - sx*sy) / d; r > 0.9 && r < 1.1 {
			// A rate of the list when it is that close (the usual speed
			// changes are exact ratios).
			for _, known := range rates[1:] {
				if math.Abs(r-known) < 5e-4 {
					r = known
				}
			}
			rate, ofs = r, (sy-r*sx)/k
		}
	}
	// Cuts: runs of consecutive points at another offset.
	// The first run of three is the base: the offset holds from the
	// suspect's start.
	tm := &timeMap{rate: rate}
	cur, base, first := 0.0, 0.0, true
	for i := 0; i < len(pts); {
		o := pts[i].tr - rate*pts[i].ts - ofs
		j := i + 1
		for j < len(pts) && math.Abs(pts[j].tr-rate*pts[j].ts-ofs-o) <= tol {
			j++
		}
		if j-i >= 3 && first {
			base, cur, first = o, o, false
		} else if j-i >= 4 && math.Abs(o-cur) > max(1, 8*tol) {
			// The piece starts halfway between the last point before it
			// and its first.
			at := pts[i].ts
			if i > 0 {
				at = (pts[i-1].ts + pts[i].ts) / 2
			}
			tm.from = append(tm.from, time.Duration(at*float64(time.Second)))
			tm.shift = append(tm.shift, time.Duration((o-base)*float64(time.Second)))
			cur = o
		}
		i = j
	}
	ofs += base
	if rate == 1 && len(tm.from) == 0 {
		tm = nil
	}
	return tm, time.Duration(ofs * float64(time.Second))
}
