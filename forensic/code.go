// Package forensic is abseal's collusion-resistant session code and the
// accusation that reads it: every marked segment position of an asset has
// a secret bias, every session a codeword drawn position by position with
// those biases (a Tardos-class binary fingerprinting code), and a leaked
// copy's per-segment evidence is scored against the codewords of the
// sessions the operator issued. Sessions whose score passes a threshold
// set for a total false-accusation probability ε are accused.
//
// Nothing is stored per session: biases and codewords are a PRF of the
// asset key (and the operator id and wmid), so the edge serves a session's
// variant for any position and the detector regenerates any issued
// session's codeword. The PRF is AES-256-CTR keyed by HMAC-SHA256, with
// integer thresholds only, so a CDN edge function (Web Crypto) derives the
// same bits as Go.
//
// Why a code scored against issued sessions instead of a decoded id: a
// free-standing 32-bit id with its tag and an error-correcting code needs
// ~140 segments before it decodes at all, and two colluders who alternate
// their streams leave nothing decodable. Scoring the N issued sessions
// needs only about log2(N/ε) segments from a single leaker, and a Tardos
// code keeps accusing one of c colluders whatever they do, with about
// c²·ln(N/ε) segments.
package forensic

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Levels are the bias levels a position can have, as thresholds out of
// 65,536: a session's bit at a position with level k is 1 when a 16-bit
// PRF output is below Levels[k]. They are the 16 equiprobable quantiles of
// the arcsine density on [Cutoff, 1−Cutoff] (Tardos' bias distribution),
// rounded: p_k = sin²(r0 + (π/2 − 2·r0)·(k + ½)/16), r0 = asin(√Cutoff).
// The table, not the formula, is the contract (TestLevels checks they
// agree).
var Levels = [16]uint16{
	7736, 10350, 13264, 16441, 19836, 23405, 27099, 30870,
	34666, 38437, 42131, 45700, 49095, 52272, 55186, 57800,
}

// Cutoff is the smallest bias (see Levels).
const Cutoff = 0.1

// Bias is level k's probability of a 1.
func Bias(k int) float64 { return float64(Levels[k]) / 65536 }

// MaxPositions is the longest pattern (ETSI TS 104 002's wmpatlen is two
// bytes).
const MaxPositions = 65535

// Code is one asset's code: the bias of each of its positions, and the
// key that derives each session's codeword.
type Code struct {
	key    [32]byte
	opID   uint64
	levels []uint8 // levels[i] is position i's bias level
}

// NewCode is the code of an asset with n marked positions under its asset
// key (watermark.DeriveAssetKey) for operator opID.
func NewCode(assetKey []byte, n int, opID uint64) (*Code, error) {
	if len(assetKey) < 16 {
		return nil, errors.New("forensic: the asset key is shorter than 16 bytes")
	}
	if n < 1 || n > MaxPositions {
		return nil, fmt.Errorf("forensic: %d positions, want 1..%d", n, MaxPositions)
	}
	c := &Code{opID: opID, levels: make([]uint8, n)}
	copy(c.key[:], prf(assetKey, "abseal forensic key v1"))
	stream := keystream(prf(c.key[:], "bias"), (n+1)/2)
	for i := range n {
		b := stream[i/2]
		if i%2 == 1 {
			b >>= 4
		}
		c.levels[i] = b & 15
	}
	return c, nil
}

// Positions is the code's length.
func (c *Code) Positions() int { return len(c.levels) }

// PatternLen is wmpatlen: one bit per position.
func (c *Code) PatternLen() int { return len(c.levels) }

// Pattern is session wmid's codeword (the delivery tier's pattern).
func (c *Code) Pattern(wmid uint64) ([]uint8, error) { return c.Codeword(nil, wmid), nil }

// Level is position i's bias level.
func (c *Code) Level(i int) int { return int(c.levels[i]) }

// Codeword appends session wmid's bits (one byte each, 0 or 1) for every
// position to dst.
func (c *Code) Codeword(dst []uint8, wmid uint64) []uint8 {
	return c.codeword(dst, make([]byte, 2*len(c.levels)), wmid)
}

// codeword is Codeword with a scratch buffer of 2·Positions bytes.
func (c *Code) codeword(dst, u []uint8, wmid uint64) []uint8 {
	b, err := aes.NewCipher(c.sessionKey(wmid))
	if err != nil {
		panic(err) // a 32-byte key
	}
	clear(u)
	var iv [aes.BlockSize]byte
	cipher.NewCTR(b, iv[:]).XORKeyStream(u, u)
	for i, lv := range c.levels {
		var bit uint8
		if binary.BigEndian.Uint16(u[2*i:]) < Levels[lv] {
			bit = 1
		}
		dst = append(dst, bit)
	}
	return dst
}

// sessionKey is the AES key of session wmid's codeword stream.
func (c *Code) sessionKey(wmid uint64) []byte {
	var in [16]byte
	binary.BigEndian.PutUint64(in[:8], c.opID)
	binary.BigEndian.PutUint64(in[8:], wmid)
	return prf(c.key[:], "codeword", in[:]...)
}

// prf is HMAC-SHA256(key, label ‖ 0x00 ‖ data).
func prf(key []byte, label string, data ...byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

// keystream is the first n bytes of AES-256-CTR under key with a zero
// counter block.
func keystream(key []byte, n int) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 32-byte key
	}
	out := make([]byte, n)
	cipher.NewCTR(b, make([]byte, aes.BlockSize)).XORKeyStream(out, out)
	return out
}

// levelOf is the formula behind Levels.
func levelOf(k int) float64 {
	r0 := math.Asin(math.Sqrt(Cutoff))
	s := math.Sin(r0 + (math.Pi/2-2*r0)*(float64(k)+0.5)/16)
	return s * s
}
