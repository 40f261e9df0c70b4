package delivery

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// ECDH-SS + A128KW pattern encryption (RFC 9053 §6.3.1, alg -32): the
// pattern is encrypted with a random content key (A128GCM, COSE_Encrypt
// tag 96), and the content key is wrapped (AES key wrap, RFC 3394) for each
// edge with a key derived by HKDF-SHA256 from the static-static ECDH secret
// of the token issuer's and the edge's P-256 keys. The issuer's public key
// travels in the recipient's header (-2, static key), so an edge needs only
// its own private key.

const (
	algA128GCM      = 1
	algECDHSSA128KW = -32
	algA128KW       = -3
	tagEncrypt      = 96
	tagEncryptOld   = 992 // the tag of the COSE working group's draft-era examples
)

type coseEncrypt struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int64]cbor.RawMessage
	Ciphertext  []byte
	Recipients  []coseRecipient
}

type coseRecipient struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int64]cbor.RawMessage
	Ciphertext  []byte
}

// coseKey is an EC2 COSE_Key (kty 2, crv 1 = P-256).
type coseKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

func kdfContext(recipientProtected []byte) ([]byte, error) {
	// COSE_KDF_Context = [AlgorithmID, PartyUInfo, PartyVInfo, SuppPubInfo]
	// with empty party infos, as the COSE working group's examples encode it.
	return encMode.Marshal([]any{algA128KW, []any{}, []any{}, []any{128, recipientProtected}})
}

func wrapKey(priv *ecdh.PrivateKey, pub *ecdh.PublicKey, recipientProtected []byte) ([]byte, error) {
	secret, err := priv.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("delivery: ECDH: %w", err)
	}
	info, err := kdfContext(recipientProtected)
	if err != nil {
		return nil, err
	}
	return hkdf.Key(sha256.New, secret, nil, string(info), 16)
}

// EncryptPatternECDH encrypts a packed pattern for the edge whose P-256
// public key is edge, from the issuer's static key (ECDH-SS + A128KW).
func EncryptPatternECDH(issuer *ecdh.PrivateKey, edge *ecdh.PublicKey, edgeKID []byte, pattern []byte) ([]byte, error) {
	if issuer.Curve() != ecdh.P256() || edge.Curve() != ecdh.P256() {
		return nil, errors.New("delivery: ECDH-SS+A128KW needs P-256 keys")
	}
	cek := make([]byte, 16)
	iv := make([]byte, 12)
	if _, err := rand.Read(cek); err != nil {
		return nil, err
	}
	if _, err := rand.Read(iv); err != nil {
		return nil, err
	}
	prot, _ := encMode.Marshal(map[int64]any{1: algA128GCM})
	aad, err := encMode.Marshal([]any{"Encrypt", prot, []byte{}})
	if err != nil {
		return nil, err
	}
	b, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(b)
	ct := gcm.Seal(nil, iv, pattern, aad)

	rprot, _ := encMode.Marshal(map[int64]any{1: algECDHSSA128KW})
	kek, err := wrapKey(issuer, edge, rprot)
	if err != nil {
		return nil, err
	}
	wrapped, err := aesKeyWrap(kek, cek)
	if err != nil {
		return nil, err
	}
	pub := issuer.PublicKey().Bytes() // 0x04 || X || Y
	static, _ := encMode.Marshal(coseKey{Kty: 2, Crv: 1, X: pub[1:33], Y: pub[33:65]})
	runprot := map[int64]cbor.RawMessage{-2: static}
	if len(edgeKID) > 0 {
		kid, _ := encMode.Marshal(edgeKID)
		runprot[4] = kid
	}
	ivRaw, _ := encMode.Marshal(iv)
	return encMode.Marshal(cbor.Tag{Number: tagEncrypt, Content: coseEncrypt{
		Protected: prot, Unprotected: map[int64]cbor.RawMessage{5: ivRaw}, Ciphertext: ct,
		Recipients: []coseRecipient{{Protected: rprot, Unprotected: runprot, Ciphertext: wrapped}},
	}})
}

// DecryptPatternECDH opens a COSE_Encrypt made by EncryptPatternECDH (or
// any ECDH-SS + A128KW / A128GCM COSE_Encrypt with the sender's static key
// in the recipient header) with the edge's private key.
func DecryptPatternECDH(edge *ecdh.PrivateKey, sealed []byte) ([]byte, error) {
	var tag cbor.RawTag
	if err := decMode.Unmarshal(sealed, &tag); err != nil || (tag.Number != tagEncrypt && tag.Number != tagEncryptOld) {
		return nil, fmt.Errorf("delivery: %w: wmpattern is not a COSE_Encrypt", ErrMalformed)
	}
	var m coseEncrypt
	if err := decMode.Unmarshal(tag.Content, &m); err != nil {
		return nil, fmt.Errorf("delivery: %w: COSE_Encrypt: %v", ErrMalformed, err)
	}
	if alg, _, err := decodeProtected(m.Protected); err != nil || alg != algA128GCM {
		return nil, fmt.Errorf("delivery: %w: content algorithm (supported: A128GCM)", ErrMalformed)
	}
	var iv []byte
	if err := decMode.Unmarshal(m.Unprotected[5], &iv); err != nil || len(iv) != 12 {
		return nil, fmt.Errorf("delivery: %w: COSE_Encrypt IV", ErrMalformed)
	}
	context := "Encrypt"
	if tag.Number == tagEncryptOld {
		context = "Enveloped" // the draft-era name of the structure
	}
	aad, err := encMode.Marshal([]any{context, m.Protected, []byte{}})
	if err != nil {
		return nil, err
	}
	for _, r := range m.Recipients {
		if alg, _, err := decodeProtected(r.Protected); err != nil || alg != algECDHSSA128KW {
			continue
		}
		var sk coseKey
		if err := decMode.Unmarshal(r.Unprotected[-2], &sk); err != nil || sk.Kty != 2 || sk.Crv != 1 || len(sk.X) != 32 || len(sk.Y) != 32 {
			continue
		}
		sender, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, sk.X...), sk.Y...))
		if err != nil {
			continue
		}
		kek, err := wrapKey(edge, sender, r.Protected)
		if err != nil {
			continue
		}
		cek, err := aesKeyUnwrap(kek, r.Ciphertext)
		if err != nil || len(cek) != 16 {
			continue
		}
		b, _ := aes.NewCipher(cek)
		gcm, _ := cipher.NewGCM(b)
		if pt, err := gcm.Open(nil, iv, m.Ciphertext, aad); err == nil {
			return pt, nil
		}
	}
	return nil, fmt.Errorf("delivery: %w", ErrPatternKey)
}

// IsECDHPattern reports whether a wmpattern claim is a COSE_Encrypt.
func IsECDHPattern(p []byte) bool {
	var tag cbor.RawTag
	return decMode.Unmarshal(p, &tag) == nil && (tag.Number == tagEncrypt || tag.Number == tagEncryptOld)
}

var kwIV = [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}

// aesKeyWrap is RFC 3394 key wrap.
func aesKeyWrap(kek, key []byte) ([]byte, error) {
	if len(key)%8 != 0 || len(key) < 16 {
		return nil, errors.New("delivery: key wrap: key length")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(key) / 8
	r := make([]byte, len(key))
	copy(r, key)
	a := kwIV
	var buf [16]byte
	for j := range 6 {
		for i := range n {
			copy(buf[:8], a[:])
			copy(buf[8:], r[i*8:i*8+8])
			b.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(buf[:8])^t)
			copy(r[i*8:], buf[8:])
		}
	}
	return append(a[:], r...), nil
}

// aesKeyUnwrap is RFC 3394 key unwrap.
func aesKeyUnwrap(kek, wrapped []byte) ([]byte, error) {
	if len(wrapped)%8 != 0 || len(wrapped) < 24 {
		return nil, errors.New("delivery: key unwrap: length")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	n := len(wrapped)/8 - 1
	var a [8]byte
	copy(a[:], wrapped[:8])
	r := make([]byte, n*8)
	copy(r, wrapped[8:])
	var buf [16]byte
	for j := 5; j >= 0; j-- {
		for i := n - 1; i >= 0; i-- {
			t := uint64(n*j + i + 1)
			binary.BigEndian.PutUint64(buf[:8], binary.BigEndian.Uint64(a[:])^t)
			copy(buf[8:], r[i*8:i*8+8])
			b.Decrypt(buf[:], buf[:])
			copy(a[:], buf[:8])
			copy(r[i*8:], buf[8:])
		}
	}
	if subtle.ConstantTimeCompare(a[:], kwIV[:]) != 1 {
		return nil, errors.New("delivery: key unwrap: integrity check failed")
	}
	return r, nil
}
