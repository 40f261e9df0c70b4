package watermark

import (
	"math"
	"slices"
)

// Spatial registration: where in the suspect's picture the reference's
// picture is, as a homography from suspect pixels to reference pixels (the
// method is in the package doc). It looks only at the picture (the mean of
// the variants), never at the mark.

// plane is a float luma picture; pixel (i, j) has its centre at
// (i+0.5, j+0.5).
type plane struct {
	w, h int
	p    []float32
}

func planeOf(y []byte, w, h int) plane {
	p := make([]float32, w*h)
	for i, v := range y[:w*h] {
		p[i] = float32(v)
	}
	return plane{w, h, p}
}

// at samples the plane bilinearly at (x, y) (continuous coordinates); ok
// is false outside the pixel centres' hull.
func (pl plane) at(x, y float64) (float32, bool) {
	x -= 0.5
	y -= 0.5
	if x < 0 || y < 0 || x > float64(pl.w-1) || y > float64(pl.h-1) {
		return 0, false
	}
	ix, iy := min(int(x), pl.w-2), min(int(y), pl.h-2)
	if pl.w == 1 || pl.h == 1 {
		return pl.p[min(int(y), pl.h-1)*pl.w+min(int(x), pl.w-1)], true
	}
	fx, fy := float32(x-float64(ix)), float32(y-float64(iy))
	i := iy*pl.w + ix
	a := pl.p[i] + (pl.p[i+1]-pl.p[i])*fx
	b := pl.p[i+pl.w] + (pl.p[i+pl.w+1]-pl.p[i+pl.w])*fx
	return a + (b-a)*fy, true
}

// resize area-averages the plane to w×h.
func (pl plane) resize(w, h int) plane {
	out := plane{w, h, make([]float32, w*h)}
	sx, sy := float64(pl.w)/float64(w), float64(pl.h)/float64(h)
	for j := range h {
		y0, y1 := int(float64(j)*sy), max(int(float64(j)*sy)+1, int(math.Ceil(float64(j+1)*sy)))
		y1 = min(y1, pl.h)
		for i := range w {
			x0, x1 := int(float64(i)*sx), max(int(float64(i)*sx)+1, int(math.Ceil(float64(i+1)*sx)))
			x1 = min(x1, pl.w)
			var s float32
			for y := y0; y < y1; y++ {
				for _, v := range pl.p[y*pl.w+x0 : y*pl.w+x1] {
					s += v
				}
			}
			out.p[j*w+i] = s / float32((y1-y0)*(x1-x0))
		}
	}
	return out
}

// blur is a [1 2 1]/4 low-pass in both directions (edges repeated).
func (pl plane) blur() plane {
	tmp := make([]float32, len(pl.p))
	out := plane{pl.w, pl.h, make([]float32, len(pl.p))}
	for y := range pl.h {
		r := pl.p[y*pl.w : (y+1)*pl.w]
		for x := range pl.w {
			tmp[y*pl.w+x] = (r[max(x-1, 0)] + 2*r[x] + r[min(x+1, pl.w-1)]) / 4
		}
	}
	for y := range pl.h {
		u, d := max(y-1, 0), min(y+1, pl.h-1)
		for x := range pl.w {
			out.p[y*pl.w+x] = (tmp[u*pl.w+x] + 2*tmp[y*pl.w+x] + tmp[d*pl.w+x]) / 4
		}
	}
	return out
}

// gradients are the central differences of the plane in x and y.
func (pl plane) gradients() (gx, gy plane) {
	gx = plane{pl.w, pl.h, make([]float32, len(pl.p))}
	gy = plane{pl.w, pl.h, make([]float32, len(pl.p))}
	for y := range pl.h {
		for x := range pl.w {
			l, r := pl.p[y*pl.w+max(x-1, 0)], pl.p[y*pl.w+min(x+1, pl.w-1)]
			u, d := pl.p[max(y-1, 0)*pl.w+x], pl.p[min(y+1, pl.h-1)*pl.w+x]
			gx.p[y*pl.w+x] = (r - l) / 2
			gy.p[y*pl.w+x] = (d - u) / 2
		}
	}
	return gx, gy
}

// box is a rectangle of pixels [x0, x1) × [y0, y1).
type box struct{ x0, y0, x1, y1 int }

func (b box) w() int { return b.x1 - b.x0 }
func (b box) h() int { return b.y1 - b.y0 }

// activeBox is the part of the suspect's picture inside letterbox and
// pillarbox bars: edge rows and columns that are dark and flat in every
// sampled frame. A box smaller than a fifth of the picture is not
// believed (a dark scene): the whole picture is returned.
func activeBox(frames []Picture, w, h int) box {
	sample := frames
	if len(sample) > 32 {
		sample = make([]Picture, 32)
		for i := range sample {
			sample[i] = frames[i*len(frames)/32]
		}
	}
	const dark, flat = 40, 14
	rowBar := make([]bool, h)
	colBar := make([]bool, w)
	for i := range rowBar {
		rowBar[i] = true
	}
	for i := range colBar {
		colBar[i] = true
	}
	for _, f := range sample {
		for y := range h {
			if !rowBar[y] {
				continue
			}
			lo, hi := byte(255), byte(0)
			for _, v := range f.Y[y*w : (y+1)*w] {
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi > dark || hi-lo > flat {
				rowBar[y] = false
			}
		}
		for x := range w {
			if !colBar[x] {
				continue
			}
			lo, hi := byte(255), byte(0)
			for y := range h {
				v := f.Y[y*w+x]
				lo, hi = min(lo, v), max(hi, v)
			}
			if hi > dark || hi-lo > flat {
				colBar[x] = false
			}
		}
	}
	b := box{0, 0, w, h}
	for b.y0 < h && rowBar[b.y0] {
		b.y0++
	}
	for b.y1 > b.y0 && rowBar[b.y1-1] {
		b.y1--
	}
	for b.x0 < w && colBar[b.x0] {
		b.x0++
	}
	for b.x1 > b.x0 && colBar[b.x1-1] {
		b.x1--
	}
	if b.w()*b.h()*5 < w*h {
		return box{0, 0, w, h}
	}
	return b
}

// homography maps suspect pixel coordinates (x, y) to reference pixel
// coordinates: (h0 x + h1 y + h2, h3 x + h4 y + h5) / (h6 x + h7 y + h8).
type homography [9]float64

func (m homography) apply(x, y float64) (float64, float64, bool) {
	d := m[6]*x + m[7]*y + m[8]
	if d < 1e-6 {
		return 0, 0, false
	}
	return (m[0]*x + m[1]*y + m[2]) / d, (m[3]*x + m[4]*y + m[5]) / d, true
}

// mul is m·n (n applied first).
func (m homography) mul(n homography) homography {
	var o homography
	for r := range 3 {
		for c := range 3 {
			for k := range 3 {
				o[r*3+c] += m[r*3+k] * n[k*3+c]
			}
		}
	}
	return o
}

func scaleShift(sx, sy, tx, ty float64) homography {
	return homography{sx, 0, tx, 0, sy, ty, 0, 0, 1}
}

// Transform describes, for the report, the registration of a suspect: the
// reference's picture corners (top-left, top-right, bottom-right,
// bottom-left, in that order) as fractions of the suspect's width and
// height, whether the picture is mirrored, and how well the pictures
// match (normalized correlation, 0..1).
type Transform struct {
	Corners  [4][2]float64 `json:"corners"`
	Mirrored bool          `json:"mirrored"`
	Match    float64       `json:"match"`
}

// coarseSearch finds the scale, aspect, orientation and position of the
// reference's pictures in the suspect's (frame pairs sus[k], ref[k]) and
// returns it as a homography from suspect to reference pixels, and its
// score (mean normalized correlation).
func coarseSearch(sus, ref []plane, act box) (homography, float64) {
	const rw, rh = 64, 36
	sw, sh := sus[0].w, sus[0].h
	// The suspect at about 64..96 pixels across its longer side.
	f := 80 / float64(max(sw, sh))
	lw, lh := max(8, int(math.Round(float64(sw)*f))), max(8, int(math.Round(float64(sh)*f)))
	fx, fy := float64(lw)/float64(sw), float64(lh)/float64(sh)
	la := box{int(float64(act.x0) * fx), int(float64(act.y0) * fy), min(lw, int(math.Ceil(float64(act.x1)*fx))), min(lh, int(math.Ceil(float64(act.y1)*fy)))}
	ls := make([]plane, len(sus))
	lr := make([]plane, len(ref))
	for k := range sus {
		ls[k] = sus[k].resize(lw, lh)
		lr[k] = ref[k].resize(rw, rh)
	}
	// Sizes: the reference's height in suspect pixels, relative to the
	// active area's height.
	fitH := float64(la.h()) / rh
	fitAspect := (float64(la.w()) / rw) / fitH
	// ±10 % more or less aspect is left to the refinement.
	aspects := []float64{1}
	if math.Abs(fitAspect-1) > 0.05 {
		aspects = append(aspects, fitAspect)
	}
	type cand struct {
		sx, sy float64
		mirror bool
		tx, ty int
		score  float64
	}
	best := cand{score: math.Inf(-1)}
	for s := 0.45; s <= 1.75; s *= 1.08 {
		for _, a := range aspects {
			sy := s * fitH
			sx := sy * a
			tw, th := int(math.Round(rw*sx)), int(math.Round(rh*sy))
			if tw < 6 || th < 6 || tw > 4*lw || th > 4*lh {
				continue
			}
			for _, mirror := range []bool{false, true} {
				tpl := make([]plane, len(lr))
				for k := range lr {
					tpl[k] = lr[k].resize(tw, th)
					if mirror {
						flipX(tpl[k])
					}
				}
				tx, ty, sc := slide(ls, tpl, la)
				if sc > best.score {
					// The scales as resized (whole template pixels).
					best = cand{float64(tw) / rw, float64(th) / rh, mirror, tx, ty, sc}
				}
			}
		}
	}
	if math.IsInf(best.score, -1) {
		// Nothing fits: the active box stretched to the reference.
		kx, ky := float64(ref[0].w)/float64(act.w()), float64(ref[0].h)/float64(act.h())
		return scaleShift(kx, ky, -kx*float64(act.x0), -ky*float64(act.y0)), 0
	}
	// Suspect pixel x → low-res x·fx → template pixel x·fx − tx → reference
	// low-res (x·fx − tx)/sx (mirrored: rw − that) → reference pixels.
	kx, ky := float64(ref[0].w)/rw, float64(ref[0].h)/rh
	hy := scaleShift(1, ky*fy/best.sy, 0, -ky*float64(best.ty)/best.sy)
	var m homography
	if best.mirror {
		m = homography{-kx * fx / best.sx, 0, kx * (rw + float64(best.tx)/best.sx), hy[3], hy[4], hy[5], 0, 0, 1}
	} else {
		m = homography{kx * fx / best.sx, 0, -kx * float64(best.tx) / best.sx, hy[3], hy[4], hy[5], 0, 0, 1}
	}
	return m, best.score
}

func flipX(p plane) {
	for y := range p.h {
		slices.Reverse(p.p[y*p.w : (y+1)*p.w])
	}
}

// integral is a summed-area table of a plane and of its squares: the sum
// over [x0,x1)×[y0,y1) is s[y1][x1] − s[y0][x1] − s[y1][x0] + s[y0][x0].
type integral struct {
	w     int
	s, s2 []float64
}

func integralOf(p plane) integral {
	w := p.w + 1
	in := integral{w, make([]float64, w*(p.h+1)), make([]float64, w*(p.h+1))}
	for y := range p.h {
		var rs, rs2 float64
		for x := range p.w {
			v := float64(p.p[y*p.w+x])
			rs += v
			rs2 += v * v
			in.s[(y+1)*w+x+1] = in.s[y*w+x+1] + rs
			in.s2[(y+1)*w+x+1] = in.s2[y*w+x+1] + rs2
		}
	}
	return in
}

func (in integral) sum(x0, y0, x1, y1 int) (float64, float64) {
	a, b, c, d := y0*in.w+x0, y0*in.w+x1, y1*in.w+x0, y1*in.w+x1
	return in.s[d] - in.s[b] - in.s[c] + in.s[a], in.s2[d] - in.s2[b] - in.s2[c] + in.s2[a]
}

// slide places the templates (one per frame pair) at every position over
// the suspect's active area where they overlap enough, and returns the
// top-left corner with the highest normalized correlation, summed over the
// pairs, and that correlation's mean.
func slide(sus, tpl []plane, act box) (int, int, float64) {
	tw, th := tpl[0].w, tpl[0].h
	minArea := 0.45 * float64(min(tw*th, act.w()*act.h()))
	si := make([]integral, len(sus))
	ti := make([]integral, len(tpl))
	for k := range sus {
		si[k], ti[k] = integralOf(sus[k]), integralOf(tpl[k])
	}
	bestX, bestY, best := 0, 0, math.Inf(-1)
	try := func(tx, ty int) float64 {
		ox0, oy0 := max(tx, act.x0), max(ty, act.y0)
		ox1, oy1 := min(tx+tw, act.x1), min(ty+th, act.y1)
		n := (ox1 - ox0) * (oy1 - oy0)
		if ox1 <= ox0 || oy1 <= oy0 || float64(n) < minArea || n < 48 {
			return math.Inf(-1)
		}
		var total float64
		for k := range sus {
			sp, tp, sw := sus[k].p, tpl[k].p, sus[k].w
			var st float32
			for y := oy0; y < oy1; y++ {
				srow := sp[y*sw+ox0 : y*sw+ox1]
				trow := tp[(y-ty)*tw+ox0-tx:][:len(srow)]
				var r float32
				for i, v := range srow {
					r += v * trow[i]
				}
				st += r
			}
			ss, s2 := si[k].sum(ox0, oy0, ox1, oy1)
			ts, t2 := ti[k].sum(ox0-tx, oy0-ty, ox1-tx, oy1-ty)
			fn := float64(n)
			cov := float64(st) - ss*ts/fn
			vs, vt := s2-ss*ss/fn, t2-ts*ts/fn
			if vs < 1e-3*fn || vt < 1e-3*fn {
				continue
			}
			total += cov / math.Sqrt(vs*vt)
		}
		return total / float64(len(sus))
	}
	// Every second position, then the neighbours of the best.
	for ty := act.y0 - th + 1; ty < act.y1; ty += 2 {
		for tx := act.x0 - tw + 1; tx < act.x1; tx += 2 {
			if sc := try(tx, ty); sc > best {
				bestX, bestY, best = tx, ty, sc
			}
		}
	}
	cx, cy := bestX, bestY
	for dy := -1; dy <= 1; dy++ {
		for dx := -1; dx <= 1; dx++ {
			if sc := try(cx+dx, cy+dy); sc > best {
				bestX, bestY, best = cx+dx, cy+dy, sc
			}
		}
	}
	return bestX, bestY, best
}

// refine improves a homography m from suspect to reference pixels by
// Gauss-Newton on the pictures of the frame pairs (sus[k], ref[k]), within
// the suspect's active box, coarse to fine, with a luma gain and offset
// and robust weights. It returns the refined homography and the
// normalized correlation of the pictures under it.
func refine(sus, ref []plane, act box, m homography) (homography, float64) {
	return refineLevels(sus, ref, act, m, []int{2, 1}, 30)
}

// refineLevels is refine at the given pyramid levels (2: half the
// reference's resolution) with at most iters steps per level.
func refineLevels(sus, ref []plane, act box, m homography, levels []int, iters int) (homography, float64) {
	for _, level := range levels {
		rs := make([]plane, len(ref))
		ss := make([]plane, len(sus))
		// The suspect at about the reference's pixel density.
		var ks float64
		for k := range ref {
			rs[k] = ref[k]
			if level > 1 {
				rs[k] = ref[k].resize(ref[k].w/level, ref[k].h/level)
			}
			rs[k] = rs[k].blur()
		}
		// Density: reference pixels per suspect pixel, from the Jacobian
		// at the active box's centre.
		cx, cy := float64(act.x0+act.x1)/2, float64(act.y0+act.y1)/2
		x0, y0, _ := m.apply(cx, cy)
		x1, y1, _ := m.apply(cx+1, cy)
		x2, y2, _ := m.apply(cx, cy+1)
		dens := math.Sqrt(math.Abs((x1-x0)*(y2-y0)-(x2-x0)*(y1-y0))) / float64(level)
		ks = min(1, max(dens, 0.05)) // suspect downscale factor
		w, h := max(8, int(float64(sus[0].w)*ks)), max(8, int(float64(sus[0].h)*ks))
		for k := range sus {
			ss[k] = sus[k].resize(w, h).blur()
		}
		fx, fy := float64(sus[0].w)/float64(w), float64(sus[0].h)/float64(h)
		fr := 1 / float64(level)
		// In level coordinates: reference = S·m·U where U scales level
		// suspect pixels up, S scales reference pixels down.
		up := scaleShift(fx, fy, 0, 0)
		down := scaleShift(fr, fr, 0, 0)
		mm := down.mul(m).mul(up)
		la := box{int(float64(act.x0) / fx), int(float64(act.y0) / fy), int(math.Ceil(float64(act.x1) / fx)), int(math.Ceil(float64(act.y1) / fy))}
		la.x1, la.y1 = min(la.x1, w), min(la.y1, h)
		mm = gaussNewton(ss, rs, la, mm, iters)
		m = scaleShift(1/fr, 1/fr, 0, 0).mul(mm).mul(scaleShift(1/fx, 1/fy, 0, 0))
	}
	return m, match(sus, ref, act, m)
}

// match is the normalized correlation of the suspect's pictures with the
// reference's under m, over the active box, averaged over the pairs.
func match(sus, ref []plane, act box, m homography) float64 {
	var total float64
	for k := range sus {
		var ss, s2, ts, t2, st, n float64
		for y := act.y0; y < act.y1; y++ {
			for x := act.x0; x < act.x1; x++ {
				X, Y, ok := m.apply(float64(x)+0.5, float64(y)+0.5)
				if !ok {
					continue
				}
				t, ok := ref[k].at(X, Y)
				if !ok {
					continue
				}
				s := float64(sus[k].p[y*sus[k].w+x])
				tt := float64(t)
				ss += s
				s2 += s * s
				ts += tt
				t2 += tt * tt
				st += s * tt
				n++
			}
		}
		if n < 16 {
			continue
		}
		vs, vt := s2-ss*ss/n, t2-ts*ts/n
		if vs <= 0 || vt <= 0 {
			continue
		}
		total += (st - ss*ts/n) / math.Sqrt(vs*vt)
	}
	return total / float64(len(sus))
}

// gaussNewton refines m (suspect → reference pixels at one level) by
// minimizing Σ w·(s − α − β·r(m(p)))² over the suspect pixels p in act
// that land inside the reference: 8 homography parameters (m[8] stays 1)
// and α, β per call, Levenberg-Marquardt damped, Huber weights.
func gaussNewton(sus, ref []plane, act box, m homography, iters int) homography {
	if m[8] != 0 {
		for i := range m {
			m[i] /= m[8]
		}
	}
	gxs := make([]plane, len(ref))
	gys := make([]plane, len(ref))
	for k := range ref {
		gxs[k], gys[k] = ref[k].gradients()
	}
	// Normalized suspect coordinates keep the system well conditioned:
	// p = (x − cx)/sc.
	cx, cy := float64(act.x0+act.x1)/2, float64(act.y0+act.y1)/2
	sc := float64(max(act.w(), act.h())) / 2
	norm := scaleShift(sc, sc, cx, cy) // normalized → pixels
	hn := m.mul(norm)
	alpha, beta := 0.0, 1.0
	lambda := 1e-3
	// visit calls fn with the residual of every step-th suspect pixel of
	// the active box under h, a, b, or with inside false where the pixel
	// falls outside the reference.
	visit := func(h homography, a, b float64, step int, fn func(e float64, inside bool)) {
		for k := range sus {
			for y := act.y0; y < act.y1; y += step {
				for x := act.x0; x < act.x1; x += step {
					u, v := (float64(x)+0.5-cx)/sc, (float64(y)+0.5-cy)/sc
					X, Y, ok := h.apply(u, v)
					if !ok {
						fn(0, false)
						continue
					}
					r, ok := ref[k].at(X, Y)
					if !ok {
						fn(0, false)
						continue
					}
					fn(float64(sus[k].p[y*sus[k].w+x])-a-b*float64(r), true)
				}
			}
		}
	}
	// cost is the Huber cost of the residuals; a pixel that leaves the
	// reference costs as much as an outlier, so that the fit cannot
	// improve by shrinking the overlap.
	cost := func(h homography, a, b, k float64) float64 {
		var c float64
		visit(h, a, b, 1, func(e float64, inside bool) {
			switch ae := math.Abs(e); {
			case !inside:
				c += k * k
			case ae <= k:
				c += e * e
			default:
				c += 2*k*ae - k*k
			}
		})
		return c
	}
	for range iters {
		// Huber scale from the median absolute residual.
		var res []float64
		visit(hn, alpha, beta, 2, func(e float64, inside bool) {
			if inside {
				res = append(res, math.Abs(e))
			}
		})
		if len(res) < 32 {
			break
		}
		slices.Sort(res)
		huber := max(1, 1.5*1.4826*res[len(res)/2])
		var A [10][10]float64
		var g [10]float64
		for k := range sus {
			for y := act.y0; y < act.y1; y++ {
				for x := act.x0; x < act.x1; x++ {
					u, v := (float64(x)+0.5-cx)/sc, (float64(y)+0.5-cy)/sc
					d := hn[6]*u + hn[7]*v + hn[8]
					if d < 1e-6 {
						continue
					}
					X := (hn[0]*u + hn[1]*v + hn[2]) / d
					Y := (hn[3]*u + hn[4]*v + hn[5]) / d
					r, ok := ref[k].at(X, Y)
					if !ok {
						continue
					}
					gx, _ := gxs[k].at(X, Y)
					gy, _ := gys[k].at(X, Y)
					e := float64(sus[k].p[y*sus[k].w+x]) - alpha - beta*float64(r)
					w := 1.0
					if ae := math.Abs(e); ae > huber {
						w = huber / ae
					}
					// ∂(α + β r(X, Y))/∂params.
					bgx, bgy := beta*float64(gx)/d, beta*float64(gy)/d
					J := [10]float64{
						bgx * u, bgx * v, bgx,
						bgy * u, bgy * v, bgy,
						-(bgx*X + bgy*Y) * u, -(bgx*X + bgy*Y) * v,
						1, float64(r),
					}
					for i := range 10 {
						wi := w * J[i]
						g[i] += wi * e
						for j := 0; j <= i; j++ {
							A[i][j] += wi * J[j]
						}
					}
				}
			}
		}
		for i := range 10 {
			for j := 0; j < i; j++ {
				A[j][i] = A[i][j]
			}
		}
		// Damped step; accept it if the cost falls, else damp more.
		accepted := false
		cur := cost(hn, alpha, beta, huber)
		for range 6 {
			var B [10][10]float64
			for i := range 10 {
				B[i] = A[i]
				B[i][i] *= 1 + lambda
				B[i][i] += 1e-9
			}
			rows := make([][]float64, 10)
			for i := range rows {
				rows[i] = B[i][:]
			}
			rhs := g
			step, ok := solveLinear(rows, rhs[:])
			if !ok {
				lambda *= 10
				continue
			}
			nh := hn
			for i := range 8 {
				nh[i] += step[i]
			}
			na, nb := alpha+step[8], beta+step[9]
			if nb <= 0.05 {
				lambda *= 10
				continue
			}
			if cost(nh, na, nb, huber) <= cur {
				hn, alpha, beta = nh, na, nb
				lambda = max(lambda/4, 1e-6)
				accepted = true
				break
			}
			lambda *= 10
		}
		if !accepted {
			break
		}
	}
	inv := scaleShift(1/sc, 1/sc, -cx/sc, -cy/sc)
	return hn.mul(inv)
}

// solveLinear solves the n×n system A·x = b (A and b are changed) by
// Gaussian elimination with partial pivoting; ok is false when A is
// singular.
func solveLinear(A [][]float64, b []float64) (x []float64, ok bool) {
	n := len(b)
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(A[r][c]) > math.Abs(A[p][c]) {
				p = r
			}
		}
		if math.Abs(A[p][c]) < 1e-12 {
			return nil, false
		}
		A[c], A[p] = A[p], A[c]
		b[c], b[p] = b[p], b[c]
		for r := c + 1; r < n; r++ {
			f := A[r][c] / A[c][c]
			for k := c; k < n; k++ {
				A[r][k] -= f * A[c][k]
			}
			b[r] -= f * b[c]
		}
	}
	x = make([]float64, n)
	for r := n - 1; r >= 0; r-- {
		v := b[r]
		for k := r + 1; k < n; k++ {
			v -= A[r][k] * x[k]
		}
		x[r] = v / A[r][r]
	}
	return x, true
}
