package watermark

// refPlanes is, for every reference frame, the variants' mean picture
// (A+B)/2 or their half difference (A−B)/2 (the mark), as floats. A plane
// is computed from the byte pictures when first asked for and kept among
// the last planeCache asked for: the reference is held once, as bytes
// (two floats per pixel per frame would be four times as much: about a
// gigabyte for five minutes at 30 fps).
type refPlanes struct {
	a, b []Picture
	diff bool
	slot map[int]int // frame → index in bufs
	keys []int       // frame held by each buffer
	bufs [][]float32
	next int // the buffer to reuse next (oldest first)
}

// planeCache is how many planes a refPlanes keeps. Every user holds at
// most a few planes at a time (three frame pairs, or one frame while
// scoring it), and frames are mostly asked for in order.
const planeCache = 64

func newRefPlanes(ref *Reference, diff bool) *refPlanes {
	return &refPlanes{a: ref.A, b: ref.B, diff: diff, slot: map[int]int{}}
}

// n is the number of frames.
func (p *refPlanes) n() int { return len(p.a) }

// at is frame j's plane. It stays valid until planeCache other frames
// have been asked for.
func (p *refPlanes) at(j int) []float32 {
	if s, ok := p.slot[j]; ok {
		return p.bufs[s]
	}
	var s int
	if len(p.bufs) < planeCache {
		s = len(p.bufs)
		p.bufs = append(p.bufs, make([]float32, len(p.a[j].Y)))
		p.keys = append(p.keys, j)
	} else {
		s = p.next
		p.next = (p.next + 1) % planeCache
		delete(p.slot, p.keys[s])
		p.keys[s] = j
	}
	p.slot[j] = s
	out, ya, yb := p.bufs[s][:len(p.a[j].Y)], p.a[j].Y, p.b[j].Y[:len(p.a[j].Y)]
	if p.diff {
		for i, a := range ya {
			out[i] = (float32(a) - float32(yb[i])) / 2
		}
	} else {
		for i, a := range ya {
			out[i] = (float32(a) + float32(yb[i])) / 2
		}
	}
	return out
}

// brightness is every frame's mean luma (of the variants' mean).
func (p *refPlanes) brightness() []float64 {
	out := make([]float64, len(p.a))
	for j := range p.a {
		var s uint64
		for i, a := range p.a[j].Y {
			s += uint64(a) + uint64(p.b[j].Y[i])
		}
		out[j] = float64(s) / 2 / float64(max(1, len(p.a[j].Y)))
	}
	return out
}
