package watermark

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
)

// The payload code maps a session's wmid to the pattern of bits served by
// segment position (ETSI TS 104 002 indirect mode: the delivery tier and
// the detector derive the same pattern from the wmid).
//
// Message: the wmid (IDBits bits, 32 by default, up to 64) followed by a
// 32-bit keyed tag, HMAC-SHA256(key, wmopid ‖ wmid) truncated. The message
// is encoded with the industry-standard convolutional code of constraint
// length 7 and rate 1/2 (generators 171, 133 octal; free distance 10),
// terminated with 6 zero bits, then permuted and whitened with sequences
// derived from the key. The pattern length is therefore
// 2 × (IDBits + 32 + 6): 140 bits for 32-bit wmids, 204 for 64-bit ones.
//
// Decoding is soft-decision Viterbi: every segment contributes its score
// (positive for bit 1, negative for bit 0, 0 for a segment that is missing
// or unreadable), so wrong bits are outvoted and missing ones are erasures.
// Interleaving spreads a run of lost segments (a trimmed start) over the
// trellis. A decoded message counts only if its tag matches: for content
// that carries no mark (or another key's mark) the decoder's output is a
// random message whose tag matches with probability 2^-32 ≈ 2.3e-10 per
// decoding attempt, the false-positive bound reported with every result.
// Measured over 1000 random wmids each (TestPayloadCorrects, fixed seed;
// the floor the test enforces in brackets), the wmid is recovered from: 3 %
// of the bits confidently wrong in 99.6 % of cases [99 %]; 30 % erased in
// 99.6 % [99 %]; 2 % wrong and 20 % erased in 95.3 % [93 %]; noisy soft
// scores with a raw bit error rate of 7 % in 99.9 % [99 %]; the first 20 %
// of positions lost in 100 % [99.5 %]. When it is not recovered the result
// is "inconclusive", never another wmid.

// TagBits is the length of the integrity tag.
const TagBits = 32

// FalsePositiveBound is the probability that one decoding of unmarked
// content yields a wmid.
var FalsePositiveBound = math.Ldexp(1, -TagBits)

const (
	constraint = 7
	memory     = constraint - 1
	genA       = 0o171
	genB       = 0o133
	nStates    = 1 << memory
)

// Code derives patterns for one key (one key version) and decodes them.
type Code struct {
	key    []byte
	idBits int
	opID   uint64
	perm   []int   // pattern position -> coded bit index
	white  []uint8 // whitening bit per pattern position
}

// NewCode returns the code for a payload key, wmid size and operator id.
func NewCode(key []byte, idBits int, opID uint64) (*Code, error) {
	if len(key) < 16 {
		return nil, errors.New("watermark: payload key shorter than 16 bytes")
	}
	if idBits < 8 || idBits > 64 {
		return nil, fmt.Errorf("watermark: wmid size %d bits outside 8..64", idBits)
	}
	c := &Code{key: key, idBits: idBits, opID: opID}
	n := c.PatternLen()
	seed := c.mac("abseal.wm.interleave", nil)
	r := rand.New(rand.NewChaCha8([32]byte(seed)))
	c.perm = r.Perm(n)
	c.white = make([]uint8, n)
	for i := range c.white {
		c.white[i] = uint8(r.Uint32() & 1)
	}
	return c, nil
}

// PatternLen is wmpatlen: the number of pattern bits (segment positions).
func (c *Code) PatternLen() int { return 2 * (c.idBits + TagBits + memory) }

// IDBits is the wmid size in bits.
func (c *Code) IDBits() int { return c.idBits }

func (c *Code) mac(label string, data []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(label))
	var op [8]byte
	binary.BigEndian.PutUint64(op[:], c.opID)
	m.Write(op[:])
	m.Write(data)
	return m.Sum(nil)
}

func (c *Code) tag(wmid uint64) uint32 {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], wmid)
	return binary.BigEndian.Uint32(c.mac("abseal.wm.tag", b[:]))
}

// Pattern returns the bits (0 or 1) a session with this wmid is served:
// segment position p gets variant A for pattern[p mod len] == 0, B for 1.
func (c *Code) Pattern(wmid uint64) ([]uint8, error) {
	if c.idBits < 64 && wmid>>c.idBits != 0 {
		return nil, fmt.Errorf("watermark: wmid %d does not fit in %d bits", wmid, c.idBits)
	}
	msg := c.message(wmid)
	coded := encode(msg)
	out := make([]uint8, len(coded))
	for p := range out {
		out[p] = coded[c.perm[p]] ^ c.white[p]
	}
	return out, nil
}

// message is wmid (MSB first) then the tag.
func (c *Code) message(wmid uint64) []uint8 {
	msg := make([]uint8, 0, c.idBits+TagBits)
	for i := c.idBits - 1; i >= 0; i-- {
		msg = append(msg, uint8(wmid>>i&1))
	}
	t := c.tag(wmid)
	for i := TagBits - 1; i >= 0; i-- {
		msg = append(msg, uint8(t>>i&1))
	}
	return msg
}

// encode is the K=7 rate-1/2 convolutional encoder with a zero tail.
func encode(msg []uint8) []uint8 {
	out := make([]uint8, 0, 2*(len(msg)+memory))
	var state uint
	for _, b := range append(append([]uint8{}, msg...), make([]uint8, memory)...) {
		reg := uint(b)<<memory | state
		out = append(out, uint8(bits.OnesCount(reg&genA)&1), uint8(bits.OnesCount(reg&genB)&1))
		state = reg >> 1
	}
	return out
}

// Decoded is the outcome of decoding soft scores.
type Decoded struct {
	// OK is true when the decoded message's tag matched.
	OK   bool
	WMID uint64
	// Used is the number of non-zero scores (segments that contributed).
	Used int
}

// Decode runs soft-decision Viterbi over scores indexed by pattern
// position: > 0 means bit 1, < 0 bit 0, 0 unknown; larger magnitude is more
// confidence. len(scores) must be PatternLen.
func (c *Code) Decode(scores []float64) (Decoded, error) {
	n := c.PatternLen()
	if len(scores) != n {
		return Decoded{}, fmt.Errorf("watermark: %d scores for a %d-bit pattern", len(scores), n)
	}
	var d Decoded
	// Undo whitening and interleaving: soft[i] is the score of coded bit i,
	// as a signed confidence that the bit is 1.
	soft := make([]float64, n)
	for p, s := range scores {
		if s != 0 {
			d.Used++
		}
		if c.white[p] == 1 {
			s = -s
		}
		soft[c.perm[p]] = s
	}
	msg := viterbi(soft, c.idBits+TagBits)
	var wmid uint64
	for _, b := range msg[:c.idBits] {
		wmid = wmid<<1 | uint64(b)
	}
	var tag uint32
	for _, b := range msg[c.idBits:] {
		tag = tag<<1 | uint32(b)
	}
	if hmac.Equal(binary.BigEndian.AppendUint32(nil, tag), binary.BigEndian.AppendUint32(nil, c.tag(wmid))) && d.Used > 0 {
		d.OK, d.WMID = true, wmid
	}
	return d, nil
}

// viterbi decodes msgLen bits from soft coded values (2 per step, message
// then the zero tail), maximising the correlation with the code sequence.
func viterbi(soft []float64, msgLen int) []uint8 {
	steps := msgLen + memory
	metric := make([]float64, nStates)
	next := make([]float64, nStates)
	for s := 1; s < nStates; s++ {
		metric[s] = math.Inf(-1)
	}
	// back[t][s] = the input bit and the previous state that reached s.
	prev := make([][nStates]uint8, steps)
	bit := make([][nStates]uint8, steps)
	for t := range steps {
		for s := range next {
			next[s] = math.Inf(-1)
		}
		sa, sb := soft[2*t], soft[2*t+1]
		for s := range nStates {
			if math.IsInf(metric[s], -1) {
				continue
			}
			for b := uint(0); b < 2; b++ {
				if t >= msgLen && b == 1 {
					continue // tail bits are zero
				}
				reg := b<<memory | uint(s)
				oa := bits.OnesCount(reg&genA) & 1
				ob := bits.OnesCount(reg&genB) & 1
				m := metric[s] + signed(oa)*sa + signed(ob)*sb
				ns := reg >> 1
				if m > next[ns] {
					next[ns] = m
					prev[t][ns] = uint8(s)
					bit[t][ns] = uint8(b)
				}
			}
		}
		metric, next = next, metric
	}
	out := make([]uint8, steps)
	s := 0 // the tail ends in state 0
	for t := steps - 1; t >= 0; t-- {
		out[t] = bit[t][s]
		s = int(prev[t][s])
	}
	return out[:msgLen]
}

func signed(b int) float64 { return float64(2*b - 1) }
