package watermark

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Params shape the embedded mark.
type Params struct {
	// Grid is the number of pattern cells across the picture's shorter side.
	// The pattern is defined in normalized coordinates, so every rendition
	// carries the same mark.
	Grid int
	// Strength is the peak change in luma levels, reached in textured,
	// mid-bright areas (flat, very dark and very bright areas get less).
	Strength float64
	// Flat is the share of Strength that flat areas get (0..1); texture
	// raises it to the full Strength.
	Flat float64
	// Ramp is the fade-in and fade-out at segment edges, so that switching
	// between A and B segments shows no jump.
	Ramp time.Duration
	// SegmentDuration is the media time of one segment.
	SegmentDuration time.Duration
}

// DefaultParams are the embedding parameters abseal ships with.
//
// They were chosen where viewers see the mark, on the encoded renditions
// of a camera-like clip (make wm-report, quality section). The mark's
// energy in flat areas is what costs bits and PSNR there: x264's adaptive
// quantization lowers the quantizer in flat areas and spends bits on the
// sub-level detail a mark adds. So flat areas get 8 % of the strength (it
// was 40 %, which made the 1080p rung 16 % bigger and 1.6 dB worse in
// PSNR-Y than an unmarked encode), texture is measured relative to the top
// rung's height (every rung marks the same parts of the picture), the
// strength map has no block edges, and the pattern has 8 cells across (12
// before): about
// 0.4 dB PSNR-Y and 1 to 2 % of size at 1080p, and a session's segments
// are still read with a median |z| of about 20 after a re-encode at CRF 28
// and 640x360 (37 with the former setting). The report's trade-off table
// has the curve.
func DefaultParams(segment time.Duration) Params {
	return Params{Grid: 8, Strength: 3.0, Flat: 0.08, Ramp: 160 * time.Millisecond, SegmentDuration: segment}
}

func (p Params) validate() error {
	switch {
	case p.Grid < 2 || p.Grid > 256:
		return fmt.Errorf("watermark: grid %d outside 2..256", p.Grid)
	case p.Strength <= 0 || p.Strength > 16:
		return fmt.Errorf("watermark: strength %g outside (0, 16]", p.Strength)
	case p.Flat < 0 || p.Flat > 1:
		return fmt.Errorf("watermark: flat share %g outside [0, 1]", p.Flat)
	case p.SegmentDuration <= 0:
		return errors.New("watermark: segment duration must be positive")
	case p.Ramp < 0 || 2*p.Ramp > p.SegmentDuration:
		return fmt.Errorf("watermark: ramp %s does not fit twice in a %s segment", p.Ramp, p.SegmentDuration)
	}
	return nil
}

// DeriveAssetKey derives an asset's embedding key from the watermark master
// key (HKDF-SHA256); the master key never leaves the keyset.
func DeriveAssetKey(master []byte, assetID string) ([]byte, error) {
	if len(master) < 16 {
		return nil, errors.New("watermark: master key shorter than 16 bytes")
	}
	return hkdf.Key(sha256.New, master, nil, "abseal.wm.asset:"+assetID, 32)
}

// Embedder adds the keyed A/B mark to luma planes. One Embedder serves one
// asset: texture is measured relative to the tallest picture it has marked
// (from the first frame on, the asset's top rung). It is not safe for
// concurrent use (the transcode calls its hook from one goroutine).
type Embedder struct {
	key     []byte
	p       Params
	ampQ    int32
	flatQ   int32 // Params.Flat in 1/256
	fullAct int32 // the activity of full strength at the current frame's size
	// actRecip is (256−flatQ)/fullAct in 1/65536: texture's share of the
	// strength per unit of activity.
	actRecip int32
	acts     []uint64 // per block of a block row: activity | sum<<32
	topH     int      // the tallest picture marked so far: the asset's top rung
	pattern  map[patternKey][]int8
	thresh   []uint8  // ditherSize×ditherSize thresholds 0..63
	masks    []uint64 // per dither row, 8-pixel phase and fraction (0..63): bytes of 0/1
	frame    uint32
	str      strengthMap
	scaled   []int32
}

type patternKey struct{ w, h, segment int }

// ditherSize is the side of the dither table.
const ditherSize = 64

// fixed-point: pattern value P/128, strength S/256, amplitude A/64 levels.
const fixShift = 7 + 8 + 6

// NewEmbedder returns an embedder for an asset key (see DeriveAssetKey).
func NewEmbedder(assetKey []byte, p Params) (*Embedder, error) {
	if len(assetKey) < 16 {
		return nil, errors.New("watermark: asset key shorter than 16 bytes")
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	e := &Embedder{key: assetKey, p: p, ampQ: int32(math.Round(p.Strength * 64)), flatQ: int32(math.Round(p.Flat * 256)),
		pattern: map[patternKey][]int8{}}
	r := rand.New(rand.NewPCG(0x5eed, 0xd17e))
	e.thresh = make([]uint8, ditherSize*ditherSize)
	for i := range e.thresh {
		e.thresh[i] = uint8(r.Uint32() & 63)
	}
	// masks[(row*8+phase)*64+q] has byte j set to 1 where the threshold of
	// pixel phase*8+j plus the fraction q reaches 64: the pixel rounds up.
	e.masks = make([]uint64, ditherSize*(ditherSize/block)*64)
	for row := range ditherSize {
		for phase := range ditherSize / block {
			for q := range 64 {
				var m uint64
				for j := range block {
					if int(e.thresh[row*ditherSize+phase*block+j])+q >= 64 {
						m |= 1 << (8 * j)
					}
				}
				e.masks[(row*(ditherSize/block)+phase)*64+q] = m
			}
		}
	}
	return e, nil
}

// segmentRand is the keyed random source of a segment's pattern.
func segmentRand(key []byte, segment int) *rand.Rand {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("abseal.wm.pattern"))
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(segment)))
	return rand.New(rand.NewChaCha8([32]byte(m.Sum(nil))))
}

// Pattern returns a segment's pattern at w×h as values in [-1, 1]: a grid
// of keyed ±1 cells in normalized coordinates, smoothly interpolated.
func Pattern(key []byte, grid, w, h, segment int) []float32 {
	xs := make([]int, w)
	for x := range xs {
		xs[x] = x
	}
	return patternColumns(key, grid, w, h, segment, xs)
}

// patternColumns evaluates a segment's w×h pattern at the columns xs only
// (rows of len(xs) values): the embedder needs one value per 8 pixels.
func patternColumns(key []byte, grid, w, h, segment int, xs []int) []float32 {
	gx, gy := grid, grid
	if w >= h {
		gx = max(grid, int(math.Round(float64(grid)*float64(w)/float64(h))))
	} else {
		gy = max(grid, int(math.Round(float64(grid)*float64(h)/float64(w))))
	}
	r := segmentRand(key, segment)
	cells := make([]float32, (gx+1)*(gy+1))
	for i := range cells {
		cells[i] = float32(2*int(r.Uint32()&1) - 1)
	}
	n := len(xs)
	out := make([]float32, n*h)
	// Cosine interpolation between cell centres keeps the pattern smooth.
	wx := make([]float32, n)
	ix := make([]int, n)
	for k, x := range xs {
		u := (float64(x) + 0.5) / float64(w) * float64(gx)
		i := min(int(u), gx-1)
		ix[k] = i
		wx[k] = float32((1 - math.Cos(math.Pi*(u-float64(i)))) / 2)
	}
	for y := range h {
		v := (float64(y) + 0.5) / float64(h) * float64(gy)
		j := min(int(v), gy-1)
		fy := float32((1 - math.Cos(math.Pi*(v-float64(j)))) / 2)
		row := out[y*n : (y+1)*n]
		c0 := cells[j*(gx+1):]
		c1 := cells[(j+1)*(gx+1):]
		for k := range row {
			i, fx := ix[k], wx[k]
			top := c0[i] + (c0[i+1]-c0[i])*fx
			bot := c1[i] + (c1[i+1]-c1[i])*fx
			row[k] = top + (bot-top)*fy
		}
	}
	return out
}

func (e *Embedder) quantPattern(w, h, segment int) []int8 {
	k := patternKey{w, h, segment}
	if p, ok := e.pattern[k]; ok {
		return p
	}
	// Keep only the current segment's patterns.
	for old := range e.pattern {
		if old.segment != segment {
			delete(e.pattern, old)
		}
	}
	// Only the value at the centre column of each 8-pixel run is used.
	bw := (w + block - 1) / block
	xs := make([]int, bw)
	for bi := range xs {
		xs[bi] = min(bi*block+block/2, w-1)
	}
	f := patternColumns(e.key, e.p.Grid, w, h, segment, xs)
	q := make([]int8, bw*h)
	for i, v := range f {
		q[i] = int8(math.Round(float64(v) * 127))
	}
	e.pattern[k] = q
	return q
}

// ramp is the temporal envelope of a frame at pts in its segment, 0..256.
func (e *Embedder) ramp(segment int, pts time.Duration) int32 {
	if e.p.Ramp == 0 {
		return 256
	}
	start := time.Duration(segment) * e.p.SegmentDuration
	in := pts - start
	out := start + e.p.SegmentDuration - pts
	d := min(in, out)
	if d >= e.p.Ramp {
		return 256
	}
	if d < 0 {
		d = 0
	}
	// Raised cosine from 0 to 1 over the ramp.
	return int32(256 * (1 - math.Cos(math.Pi*float64(d)/float64(e.p.Ramp))) / 2)
}

// block is the side of the blocks over which the strength adapts.
const block = 8

// Embed adds the mark to an 8-bit luma plane (w×h pixels, rows of stride
// bytes) of a frame of the given segment at presentation time pts. sign is
// +1 for variant A and -1 for variant B. Changes are rounded with dither so
// that sub-level amplitudes survive on average. The strengths computed from
// the picture are kept for the next call with the same size and time (the
// other variant of the same frame).
func (e *Embedder) Embed(luma []byte, stride, w, h, segment int, pts time.Duration, sign int) {
	if w <= 0 || h <= 0 || len(luma) < stride*(h-1)+w {
		return
	}
	env := e.ramp(segment, pts)
	if env == 0 {
		return
	}
	pat := e.quantPattern(w, h, segment)
	amp := e.ampQ * env / 256 * int32(sign)
	bw := (w + block - 1) / block
	doff, srow := e.beginFrame(luma, stride, w, h, segment, pts, bw)
	full := w &^ (block - 1)
	nfull := full / block
	for y := range h {
		e.rowStrengths(y, bw, amp, srow, 0)
		row := luma[y*stride : y*stride+w]
		prow := pat[y*bw : (y+1)*bw]
		dy := (y + doff) & (ditherSize - 1)
		masks := (*[(ditherSize / block) * 64]uint64)(e.masks[dy*(ditherSize/block)*64:])
		pfull, sfull := prow[:nfull], srow[:nfull]
		for i, pv := range pfull {
			// One change per 8 pixels, from the pattern at the run's centre
			// (the pattern is smooth: cells span tens of pixels); dither
			// decides per pixel whether the fraction rounds up.
			k := int32(pv) * sfull[i]
			base := k >> fixShift
			q := (k & (1<<fixShift - 1)) >> (fixShift - 6)
			m := masks[(i&(ditherSize/block-1))<<6|int(q)&63]
			px := row[i*block:][:block]
			x := binary.LittleEndian.Uint64(px)
			if base >= 0 {
				x = addSat(x, uint64(base)*ones+m)
			} else {
				x = subSat(x, uint64(-base)*ones-m)
			}
			binary.LittleEndian.PutUint64(px, x)
		}
		for x := full; x < w; x++ {
			k := int32(prow[x/block]) * srow[x/block]
			q := (k & (1<<fixShift - 1)) >> (fixShift - 6)
			up := int32(0)
			if int32(e.thresh[dy*ditherSize+x&(ditherSize-1)])+q >= 64 {
				up = 1
			}
			row[x] = clamp(int32(row[x]) + k>>fixShift + up)
		}
	}
}

// beginFrame prepares marking a frame of w×h (bw blocks per row): its
// strength map (computed from the picture unless the other variant of the
// same frame, at the same size and time, has just computed it), its dither
// offset, and the row buffer of scaled strengths.
func (e *Embedder) beginFrame(luma []byte, stride, w, h, segment int, pts time.Duration, bw int) (doff int, srow []int32) {
	if e.str.w != w || e.str.h != h || e.str.pts != pts || e.str.segment != segment {
		e.str = strengthMap{w: w, h: h, pts: pts, segment: segment, s: e.str.s[:0]}
		e.frame++
		e.topH = max(e.topH, h)
		e.fullAct = fullActivity(h, e.topH)
		e.actRecip = ((256-e.flatQ)<<16 + e.fullAct/2) / e.fullAct
		for by := 0; by < h; by += block {
			e.str.s = e.blockStrengths(luma, stride, w, by, min(block, h-by), e.str.s)
		}
		e.smoothStrengths(bw)
	}
	doff = int(e.frame*2654435761) & (ditherSize - 1)
	if cap(e.scaled) < bw {
		e.scaled = make([]int32, bw)
	}
	return doff, e.scaled[:bw]
}

// smoothStrengths low-passes the strength map across block columns
// ([1 2 1]/4), so that neighbouring 8-pixel runs differ little: the mark
// has no block edges, which no detector reads and which cost the encoder
// bits. (Rows are interpolated between block rows by rowStrengths.)
func (e *Embedder) smoothStrengths(bw int) {
	s := e.str.s
	for r := 0; r+bw <= len(s); r += bw {
		row := s[r : r+bw]
		prev := row[0]
		for i := range row {
			next := row[min(i+1, bw-1)]
			cur := row[i]
			row[i] = (prev + 2*cur + next + 2) / 4
			prev = cur
		}
	}
}

// rowStrengths fills srow[from:] with the strengths of pixel row y times
// amp, interpolated linearly between the two nearest block rows' centres
// (see strengthRows).
func (e *Embedder) rowStrengths(y, bw int, amp int32, srow []int32, from int) {
	r0, r1, f := e.strengthRows(y, bw)
	for i := from; i < bw; i++ {
		srow[i] = (r0[i]*(16-f) + r1[i]*f) >> 4 * amp
	}
}

// strengthRows returns the block rows of the strength map between whose
// centres pixel row y lies, and y's weight f of the second in 1/16 (r1 is
// r0 where y is at or beyond the last centre).
func (e *Embedder) strengthRows(y, bw int) (r0, r1 []int32, f int32) {
	s := e.str.s
	bh := len(s) / bw
	// The position of row y's centre in block rows from the first block
	// row's centre, in 1/16: (y + 0.5 - block/2) / block.
	pos := 2*y + 1 - block
	j := 0
	if pos > 0 {
		j, f = pos/(2*block), int32(pos%(2*block))
	}
	if j >= bh-1 {
		j, f = bh-1, 0
	}
	r0 = s[j*bw : (j+1)*bw]
	r1 = r0
	if f != 0 {
		r1 = s[(j+1)*bw : (j+2)*bw]
	}
	return r0, r1, f
}

// EmbedPair marks both variants of a frame in one pass: a is variant A
// (sign +1), holding the picture, and b variant B (sign -1), whose picture
// bytes are only written, never read: b may hold anything before the call
// (b may have another stride). The result is byte for byte that of a copy
// of a into b, then Embed on b and on a; the source pixels, strengths and
// pattern are read once, and no separate copy of the picture is needed.
func (e *Embedder) EmbedPair(a []byte, strideA int, b []byte, strideB, w, h, segment int, pts time.Duration) {
	if w <= 0 || h <= 0 || len(a) < strideA*(h-1)+w || len(b) < strideB*(h-1)+w {
		return
	}
	env := e.ramp(segment, pts)
	if env == 0 {
		for y := range h {
			copy(b[y*strideB:y*strideB+w], a[y*strideA:y*strideA+w])
		}
		return
	}
	pat := e.quantPattern(w, h, segment)
	amp := e.ampQ * env / 256 // for A; B gets -amp
	bw := (w + block - 1) / block
	doff, srow := e.beginFrame(a, strideA, w, h, segment, pts, bw)
	full := w &^ (block - 1)
	nfull := full / block
	for y := range h {
		rowA := a[y*strideA : y*strideA+w]
		rowB := b[y*strideB : y*strideB+w]
		prow := pat[y*bw : (y+1)*bw]
		dy := (y + doff) & (ditherSize - 1)
		masks := (*[(ditherSize / block) * 64]uint64)(e.masks[dy*(ditherSize/block)*64:])
		first := 0
		if useAVX2 && nfull >= ditherSize/block {
			// 64 pixels (8 runs, one dither row) per step, strengths
			// interpolated on the way; the Go loop below does the runs left
			// over.
			nb := nfull / (ditherSize / block)
			r0, r1, f := e.strengthRows(y, bw)
			pairRunsAVX2(&rowA[0], &rowB[0], &prow[0], &r0[0], &r1[0], f|amp<<8, &e.thresh[dy*ditherSize], nb)
			first = nb * (ditherSize / block)
		}
		e.rowStrengths(y, bw, amp, srow, first)
		for i := first; i < nfull; i++ {
			pv := prow[i]
			ka := int32(pv) * srow[i]
			kb := -ka
			phase := (i & (ditherSize/block - 1)) << 6
			pa := rowA[i*block:][:block]
			pb := rowB[i*block:][:block]
			x := binary.LittleEndian.Uint64(pa)
			baseA, qa := ka>>fixShift, (ka&(1<<fixShift-1))>>(fixShift-6)
			baseB, qb := kb>>fixShift, (kb&(1<<fixShift-1))>>(fixShift-6)
			ma, mb := masks[phase|int(qa)&63], masks[phase|int(qb)&63]
			var xa, xb uint64
			if inMidRange(x) && baseA > -16 && baseA < 15 && baseB > -16 && baseB < 15 {
				// No byte is below 16 or above 239 and no change exceeds 15:
				// nothing saturates and no byte carries into the next, so
				// plain 64-bit arithmetic gives the saturating result.
				xa = x + uint64(baseA)*ones + ma
				xb = x + uint64(baseB)*ones + mb
			} else {
				if baseA >= 0 {
					xa = addSat(x, uint64(baseA)*ones+ma)
				} else {
					xa = subSat(x, uint64(-baseA)*ones-ma)
				}
				if baseB >= 0 {
					xb = addSat(x, uint64(baseB)*ones+mb)
				} else {
					xb = subSat(x, uint64(-baseB)*ones-mb)
				}
			}
			binary.LittleEndian.PutUint64(pa, xa)
			binary.LittleEndian.PutUint64(pb, xb)
		}
		for x := full; x < w; x++ {
			t := int32(e.thresh[dy*ditherSize+x&(ditherSize-1)])
			orig := int32(rowA[x])
			for _, side := range [2]struct {
				row []byte
				k   int32
			}{{rowA, int32(prow[x/block]) * srow[x/block]}, {rowB, -int32(prow[x/block]) * srow[x/block]}} {
				q := (side.k & (1<<fixShift - 1)) >> (fixShift - 6)
				up := int32(0)
				if t+q >= 64 {
					up = 1
				}
				side.row[x] = clamp(orig + side.k>>fixShift + up)
			}
		}
	}
}

const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// inMidRange reports whether every byte of x is within 16..239 (its top
// nibble is neither 0 nor 15).
func inMidRange(x uint64) bool {
	const lo, nib = 0x0101010101010101, 0x0f0f0f0f0f0f0f0f
	n := (x >> 4) & nib
	f := n ^ nib
	return ((n-lo)&^n|(f-lo)&^f)&high == 0
}

// addSat adds the bytes of d (each < 128) to those of x, saturating at 255.
func addSat(x, d uint64) uint64 {
	s := ((x &^ high) + (d &^ high)) ^ ((x ^ d) & high)
	carry := ((x & d) | ((x | d) &^ s)) & high
	return s | (carry>>7)*0xff
}

// subSat subtracts the bytes of d (each < 128) from those of x, saturating
// at 0.
func subSat(x, d uint64) uint64 {
	t := ((x | high) - (d &^ high)) ^ ((x ^ ^d) & high)
	borrow := ((^x & d) | (^(x ^ d) & t)) & high
	return t &^ ((borrow >> 7) * 0xff)
}

func clamp(v int32) byte {
	if uint32(v) > 255 {
		return byte(^(v >> 31)) // 0 below, 255 above
	}
	return byte(v)
}

// strengthMap is the per-block strength of one frame.
type strengthMap struct {
	w, h, segment int
	pts           time.Duration
	s             []int32
}

// blockStrengths appends (0..256) for the blocks of one block row, from
// their texture (mean absolute difference to the right and lower neighbour
// at 8 points of the block) and brightness: flat, very dark and very bright
// blocks get less.
func (e *Embedder) blockStrengths(luma []byte, stride, w, by, bh int, s []int32) []int32 {
	r0 := by + min(1, bh-1)
	r1 := by + min(5, bh-1)
	n0, n1 := min(r0+1, by+bh-1), min(r1+1, by+bh-1)
	rows := [4][]byte{luma[r0*stride:][:w], luma[n0*stride:][:w], luma[r1*stride:][:w], luma[n1*stride:][:w]}
	nb := (w + block - 1) / block
	if cap(e.acts) < nb {
		e.acts = make([]uint64, nb)
	}
	acts := e.acts[:nb]
	x0 := 0
	if g := (w - 1) / 32; useAVX2 && g > 0 {
		// 4 blocks per step; the kernel reads one byte past each step, so
		// it stops a step before a row that ends there.
		blockActAVX2(&rows[0][0], &rows[1][0], &rows[2][0], &rows[3][0], g, &acts[0])
		x0 = 32 * g
	}
	for ; x0 < w; x0 += block {
		var act, sum int32
		if x0+block <= w {
			// Interior block: constant offsets, no bounds checks.
			a, b, c, d := rows[0][x0:][:block], rows[1][x0:][:block], rows[2][x0:][:block], rows[3][x0:][:block]
			for k := 0; k < block; k += 2 {
				p0, p1 := int32(a[k]), int32(c[k])
				act += abs32(p0-int32(a[k+1])) + abs32(p0-int32(b[k])) + abs32(p1-int32(c[k+1])) + abs32(p1-int32(d[k]))
				sum += p0 + p1
			}
		} else {
			for c := x0; c < x0+block; c += 2 {
				x := min(c, w-1)
				xr := min(c+1, w-1)
				p0, p1 := int32(rows[0][x]), int32(rows[2][x])
				act += abs32(p0-int32(rows[0][xr])) + abs32(p0-int32(rows[1][x])) +
					abs32(p1-int32(rows[2][xr])) + abs32(p1-int32(rows[3][x]))
				sum += p0 + p1
			}
		}
		acts[x0/block] = uint64(uint32(act)) | uint64(sum)<<32
	}
	for _, v := range acts {
		act, mean := min(int32(uint32(v)), e.fullAct), int32(v>>32)/8
		// Texture: full strength from a mean gradient of 6 levels in the
		// top rendition (see fullActivity), the flat share in flat areas.
		t := min(256, e.flatQ+act*e.actRecip>>16)
		// Brightness: full between 48 and 200, down to a third at the ends.
		b := int32(256)
		switch {
		case mean < 48:
			b = 85 + mean*171/48
		case mean > 200:
			b = max(85, 256-(mean-200)*171/55)
		}
		s = append(s, t*b/256)
	}
	return s
}

// fullActivity is the activity (the sum of 16 absolute differences of
// neighbours, see blockStrengths) from which a block of a picture h rows
// high gets the full strength, when the asset's tallest rendition has top
// rows: a mean gradient of 6 levels in the tallest, scaled with the
// picture's height, so that every rendition marks the same parts of the
// picture as the top one (a downscaled picture has steeper gradients).
func fullActivity(h, top int) int32 {
	return int32(max(16, min(16*96, math.Round(96*float64(max(top, 1))/float64(max(h, 1))))))
}

func abs32(v int32) int32 {
	m := v >> 31
	return (v ^ m) - m
}
