package delivery

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// PackBits packs a pattern of 0/1 bits MSB first, as wmpattern carries it.
func PackBits(bits []uint8) []byte {
	out := make([]byte, (len(bits)+7)/8)
	for i, b := range bits {
		if b&1 == 1 {
			out[i/8] |= 0x80 >> (i % 8)
		}
	}
	return out
}

// Bit returns bit i of a packed pattern, MSB first.
func Bit(pattern []byte, i int) uint8 {
	return pattern[i/8] >> (7 - i%8) & 1
}

// Variant returns the variant a session with this packed pattern of
// patLen bits gets for a segment at position: "b" when the pattern's bit
// position mod patLen is 1, else "a". Variant A is served when sequencing
// is off or the position is -1 (not watermarked).
func Variant(pattern []byte, patLen, position int, sequencing bool) string {
	if !sequencing || position < 0 || patLen <= 0 || len(pattern)*8 < patLen {
		return "a"
	}
	if Bit(pattern, position%patLen) == 1 {
		return "b"
	}
	return "a"
}

type encrypt0 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int64][]byte
	Ciphertext  []byte
}

// ErrPatternKey is matched by errors for an encrypted pattern that does not
// open with the edge's pattern key.
var ErrPatternKey = errors.New("encrypted wmpattern does not open with the pattern key")

func patternAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("delivery: pattern key of %d bytes, want 32 (A256GCM)", len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func encStructure(protected []byte) ([]byte, error) {
	return encMode.Marshal([]any{"Encrypt0", protected, []byte{}})
}

// EncryptPattern seals a packed pattern as a COSE_Encrypt0 (A256GCM) for
// the wmpattern claim of a direct-mode token.
func EncryptPattern(key, pattern []byte) ([]byte, error) {
	aead, err := patternAEAD(key)
	if err != nil {
		return nil, err
	}
	prot, err := encMode.Marshal(map[int64]any{1: algA256GCM})
	if err != nil {
		return nil, err
	}
	iv := make([]byte, aead.NonceSize())
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	aad, err := encStructure(prot)
	if err != nil {
		return nil, err
	}
	ct := aead.Seal(nil, iv, pattern, aad)
	return encMode.Marshal(cbor.Tag{Number: 16, Content: encrypt0{Protected: prot, Unprotected: map[int64][]byte{5: iv}, Ciphertext: ct}})
}

// IsEncryptedPattern reports whether a wmpattern claim is a COSE_Encrypt0.
func IsEncryptedPattern(p []byte) bool { return len(p) > 0 && p[0] == 0xd0 } // tag 16

// DecryptPattern opens an EncryptPattern result.
func DecryptPattern(key, sealed []byte) ([]byte, error) {
	aead, err := patternAEAD(key)
	if err != nil {
		return nil, err
	}
	var tag cbor.RawTag
	if err := decMode.Unmarshal(sealed, &tag); err != nil || tag.Number != 16 {
		return nil, fmt.Errorf("delivery: %w: wmpattern is not a COSE_Encrypt0", ErrMalformed)
	}
	var m encrypt0
	if err := decMode.Unmarshal(tag.Content, &m); err != nil {
		return nil, fmt.Errorf("delivery: %w: COSE_Encrypt0: %v", ErrMalformed, err)
	}
	alg, _, err := decodeProtected(m.Protected)
	if err != nil {
		return nil, err
	}
	if alg != algA256GCM {
		return nil, fmt.Errorf("delivery: %w: pattern encryption algorithm %d (supported: 3, A256GCM)", ErrMalformed, alg)
	}
	iv := m.Unprotected[5]
	if len(iv) != aead.NonceSize() {
		return nil, fmt.Errorf("delivery: %w: COSE_Encrypt0 IV", ErrMalformed)
	}
	aad, err := encStructure(m.Protected)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, iv, m.Ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", ErrPatternKey)
	}
	return pt, nil
}

// Deriver derives the pattern bits of an indirect-mode session (the
// payload code of the asset: watermark.Code.Pattern).
type Deriver func(wmid, opID, keyVer uint64) ([]uint8, error)

// PatternKeys are an edge's keys for encrypted direct-mode patterns.
type PatternKeys struct {
	AES  []byte           // A256GCM COSE_Encrypt0
	ECDH *ecdh.PrivateKey // ECDH-SS + A128KW COSE_Encrypt (the edge's P-256 key)
}

// SessionPattern returns a token's packed pattern: the direct-mode
// wmpattern (decrypted with patternKey when it is A256GCM-encrypted), or
// the indirect-mode pattern derive makes from wmid. The length must match
// wmpatlen.
func SessionPattern(c *Claims, patternKey []byte, derive Deriver) ([]byte, error) {
	return SessionPatternWith(c, PatternKeys{AES: patternKey}, derive)
}

// SessionPatternWith is SessionPattern with every kind of pattern key.
func SessionPatternWith(c *Claims, keys PatternKeys, derive Deriver) ([]byte, error) {
	var packed []byte
	switch {
	case c.Pattern != nil && len(c.Pattern) == (int(c.PatternLen)+7)/8:
		// A clear pattern has exactly this size and an encrypted one is
		// longer; so a clear pattern whose first bytes look like a COSE
		// tag (0xd0, 1 in 256 sessions) is not taken for one.
		packed = c.Pattern
	case c.Pattern != nil && IsEncryptedPattern(c.Pattern):
		p, err := DecryptPattern(keys.AES, c.Pattern)
		if err != nil {
			return nil, err
		}
		packed = p
	case c.Pattern != nil && IsECDHPattern(c.Pattern):
		if keys.ECDH == nil {
			return nil, fmt.Errorf("delivery: %w: no ECDH pattern key", ErrPatternKey)
		}
		p, err := DecryptPatternECDH(keys.ECDH, c.Pattern)
		if err != nil {
			return nil, err
		}
		packed = p
	case c.Pattern != nil:
		packed = c.Pattern
	default:
		if derive == nil {
			return nil, fmt.Errorf("delivery: %w: indirect mode is not configured", ErrClaims)
		}
		var op, kv uint64
		if c.OpID != nil {
			op = *c.OpID
		}
		if c.KeyVer != nil {
			kv = *c.KeyVer
		}
		bits, err := derive(*c.WMID, op, kv)
		if err != nil {
			return nil, err
		}
		if len(bits) != int(c.PatternLen) {
			return nil, fmt.Errorf("delivery: %w: wmpatlen %d, the asset's pattern has %d bits", ErrClaims, c.PatternLen, len(bits))
		}
		packed = PackBits(bits)
	}
	if len(packed)*8 < int(c.PatternLen) || len(packed) > (int(c.PatternLen)+7)/8 {
		return nil, fmt.Errorf("delivery: %w: wmpattern has %d bytes for %d bits", ErrClaims, len(packed), c.PatternLen)
	}
	return packed, nil
}
