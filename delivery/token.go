// Package delivery is the delivery side of ETSI TS 104 002 ("DASH-IF
// Forensic A/B Watermarking"): the watermarking token (WMT, a CWT with the
// spec's claims 300-307), pattern sequencing (which variant a session gets
// for a segment position, most-significant bit first), and the helpers an
// edge needs. cmd/edge is the reference edge built on it.
//
// Tokens are CBOR Web Tokens in deterministic CBOR with integer claim
// keys, carried base64url (no padding). They are protected with
// HMAC 256/256 (COSE_Mac0) or ES256 (COSE_Sign1, via go-cose). In direct
// mode the token carries the pattern, optionally encrypted with A256GCM
// (COSE_Encrypt0); in indirect mode it carries the session's wmid (and
// operator id, key version) and the edge derives the pattern with the same
// payload code the detector uses.
package delivery

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
)

// Claim keys (IANA CWT registry).
const (
	ClaimIss           = 1
	ClaimSub           = 2
	ClaimAud           = 3
	ClaimExp           = 4
	ClaimIat           = 6
	ClaimCti           = 7
	ClaimWMVer         = 300
	ClaimWMVnd         = 301
	ClaimWMPatLen      = 302
	ClaimWMSegDuration = 303
	ClaimWMPattern     = 304
	ClaimWMID          = 305
	ClaimWMOpID        = 306
	ClaimWMKeyVer      = 307
)

// Errors of Verify, matched with errors.Is.
var (
	ErrMalformed  = errors.New("malformed token")
	ErrSignature  = errors.New("token signature or MAC does not verify")
	ErrUnknownKey = errors.New("token key id is unknown")
	ErrExpired    = errors.New("token expired")
	ErrNotYet     = errors.New("token issued in the future")
	ErrClaims     = errors.New("token claims are invalid")
)

// Claims is the claim set of a WMT. Pattern (direct mode) or WMID
// (indirect mode) is set; a direct-mode token may carry its session's WMID
// as well, so that the session can be revoked by its wmid. When Pattern
// is set it is the session's pattern and WMID is not used to derive one.
type Claims struct {
	Issuer  string `cbor:"1,keyasint,omitempty"`
	Subject string `cbor:"2,keyasint,omitempty"` // session, for logs and revocation
	// Audience binds the token to an asset: the asset id.
	Audience string `cbor:"3,keyasint,omitempty"`
	Expiry   int64  `cbor:"4,keyasint"`
	IssuedAt int64  `cbor:"6,keyasint"`
	// ID is the token id (cti): random bytes that name this token on the
	// deny-list. Tokens minted without one still verify.
	ID []byte `cbor:"7,keyasint,omitempty"`

	Version    uint8    `cbor:"300,keyasint"`
	Vendor     uint8    `cbor:"301,keyasint,omitempty"`
	PatternLen uint16   `cbor:"302,keyasint"`
	SegDur     []uint64 `cbor:"303,keyasint,omitempty"` // [ticks, timescale]
	// Pattern is the direct-mode pattern: PatternLen bits, MSB first, or a
	// COSE_Encrypt0 of those bytes (see EncryptPattern).
	Pattern []byte  `cbor:"304,keyasint,omitempty"`
	WMID    *uint64 `cbor:"305,keyasint,omitempty"`
	OpID    *uint64 `cbor:"306,keyasint,omitempty"`
	KeyVer  *uint64 `cbor:"307,keyasint,omitempty"`
}

// Validate checks the claims a token must carry.
func (c *Claims) Validate() error {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("delivery: %w: "+f, append([]any{ErrClaims}, a...)...)
	}
	switch {
	case c.Version != 1:
		return bad("wmver %d is not 1", c.Version)
	case c.PatternLen == 0:
		return bad("wmpatlen is 0")
	case c.Pattern == nil && c.WMID == nil:
		return bad("wmpattern (direct mode) or wmid (indirect mode) must be present")
	case len(c.ID) > MaxTokenIDSize:
		return bad("cti of %d bytes, at most %d", len(c.ID), MaxTokenIDSize)
	case c.Expiry == 0 || c.IssuedAt == 0:
		return bad("exp and iat are required")
	case c.SegDur != nil && (len(c.SegDur) != 2 || c.SegDur[1] == 0):
		return bad("wmsegduration must be [ticks, timescale]")
	}
	return nil
}

var (
	encMode = func() cbor.EncMode {
		em, err := cbor.CoreDetEncOptions().EncMode()
		if err != nil {
			panic(err)
		}
		return em
	}()
	decMode = func() cbor.DecMode {
		dm, err := cbor.DecOptions{
			DupMapKey: cbor.DupMapKeyEnforcedAPF, MaxNestedLevels: 8, MaxArrayElements: 64,
			MaxMapPairs: 64, IndefLength: cbor.IndefLengthForbidden, TagsMd: cbor.TagsAllowed,
		}.DecMode()
		if err != nil {
			panic(err)
		}
		return dm
	}()
)

// Key signs or MACs tokens and verifies them. Make one with NewHMACKey or
// NewES256Key (or ES256Verifier for an edge that only verifies).
type Key struct {
	ID   []byte
	hmac []byte
	priv *ecdsa.PrivateKey
	pub  *ecdsa.PublicKey
}

// NewHMACKey makes an HMAC 256/256 key (at least 32 bytes of secret).
func NewHMACKey(id, secret []byte) (*Key, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("delivery: HMAC key of %d bytes, want at least 32", len(secret))
	}
	return &Key{ID: id, hmac: bytes.Clone(secret)}, nil
}

// NewES256Key makes an ES256 signing key (P-256).
func NewES256Key(id []byte, priv *ecdsa.PrivateKey) (*Key, error) {
	if priv.Curve.Params().Name != "P-256" {
		return nil, errors.New("delivery: ES256 needs a P-256 key")
	}
	return &Key{ID: id, priv: priv, pub: &priv.PublicKey}, nil
}

// ES256Verifier makes a verify-only ES256 key.
func ES256Verifier(id []byte, pub *ecdsa.PublicKey) (*Key, error) {
	if pub.Curve.Params().Name != "P-256" {
		return nil, errors.New("delivery: ES256 needs a P-256 key")
	}
	return &Key{ID: id, pub: pub}, nil
}

// COSE algorithm ids.
const (
	algHMAC256 = 5  // HMAC 256/256
	algES256   = -7 // ECDSA w/ SHA-256
	algA256GCM = 3
)

// Mint encodes, protects and base64url-encodes a token.
func Mint(c *Claims, k *Key) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	payload, err := encMode.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("delivery: %w", err)
	}
	var out []byte
	switch {
	case k.hmac != nil:
		out, err = mac0(payload, k)
	case k.priv != nil:
		out, err = sign1(payload, k)
	default:
		return "", errors.New("delivery: the key cannot sign")
	}
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(out), nil
}

type mac0Msg struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected map[int64]any
	Payload     []byte
	Tag         []byte
}

func protectedHeader(alg int64, kid []byte) ([]byte, error) {
	h := map[int64]any{1: alg}
	if len(kid) > 0 {
		h[4] = kid
	}
	return encMode.Marshal(h)
}

func macInput(protected, payload []byte) ([]byte, error) {
	return encMode.Marshal([]any{"MAC0", protected, []byte{}, payload})
}

func mac0(payload []byte, k *Key) ([]byte, error) {
	prot, err := protectedHeader(algHMAC256, k.ID)
	if err != nil {
		return nil, err
	}
	in, err := macInput(prot, payload)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, k.hmac)
	m.Write(in)
	return encMode.Marshal(cbor.Tag{Number: 17, Content: mac0Msg{Protected: prot, Unprotected: map[int64]any{}, Payload: payload, Tag: m.Sum(nil)}})
}

func sign1(payload []byte, k *Key) ([]byte, error) {
	signer, err := cose.NewSigner(cose.AlgorithmES256, k.priv)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	msg := cose.NewSign1Message()
	msg.Headers.Protected.SetAlgorithm(cose.AlgorithmES256)
	if len(k.ID) > 0 {
		msg.Headers.Protected[cose.HeaderLabelKeyID] = k.ID
	}
	msg.Payload = payload
	if err := msg.Sign(rand.Reader, nil, signer); err != nil {
		return nil, fmt.Errorf("delivery: sign: %w", err)
	}
	return msg.MarshalCBOR()
}

// Keys verifies tokens with the keys it holds, by key id.
type Keys struct {
	byID map[string]*Key
	// Leeway tolerates clock skew on exp and iat (default 30 s).
	Leeway time.Duration
}

// NewKeys makes a key set.
func NewKeys(keys ...*Key) *Keys {
	ks := &Keys{byID: map[string]*Key{}, Leeway: 30 * time.Second}
	for _, k := range keys {
		ks.byID[string(k.ID)] = k
	}
	return ks
}

// TokenIDSize is the size of the token ids (cti) NewTokenID makes, and
// MaxTokenIDSize the largest a token may carry.
const (
	TokenIDSize    = 16
	MaxTokenIDSize = 64
)

// NewTokenID returns a random token id (cti) of TokenIDSize bytes.
func NewTokenID() []byte {
	id := make([]byte, TokenIDSize)
	rand.Read(id)
	return id
}

// MaxTokenSize bounds a token's encoded size.
const MaxTokenSize = 8 << 10

// Verify decodes a base64url token, checks its MAC or signature with the
// key its kid names, and its exp and iat against now.
func (ks *Keys) Verify(token string, now time.Time) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, fmt.Errorf("delivery: %w: %d bytes", ErrMalformed, len(token))
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w: not base64url", ErrMalformed)
	}
	var tag cbor.RawTag
	if err := decMode.Unmarshal(raw, &tag); err != nil {
		return nil, fmt.Errorf("delivery: %w: %v", ErrMalformed, err)
	}
	if tag.Number == 61 { // CWT tag around the COSE message
		raw = tag.Content
		if err := decMode.Unmarshal(raw, &tag); err != nil {
			return nil, fmt.Errorf("delivery: %w: %v", ErrMalformed, err)
		}
	}
	var payload []byte
	switch tag.Number {
	case 17:
		payload, err = ks.verifyMac0(tag.Content)
	case 18:
		payload, err = ks.verifySign1(raw)
	default:
		return nil, fmt.Errorf("delivery: %w: COSE tag %d (want 17 MAC0 or 18 Sign1)", ErrMalformed, tag.Number)
	}
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := decMode.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("delivery: %w: claims: %v", ErrMalformed, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if now.Unix() > c.Expiry+int64(ks.Leeway/time.Second) {
		return nil, fmt.Errorf("delivery: %w at %s", ErrExpired, time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	if c.IssuedAt > now.Unix()+int64(ks.Leeway/time.Second) {
		return nil, fmt.Errorf("delivery: %w", ErrNotYet)
	}
	return &c, nil
}

func decodeProtected(prot []byte) (alg int64, kid []byte, err error) {
	var h map[int64]cbor.RawMessage
	if err := decMode.Unmarshal(prot, &h); err != nil {
		return 0, nil, fmt.Errorf("delivery: %w: protected header: %v", ErrMalformed, err)
	}
	if err := decMode.Unmarshal(h[1], &alg); err != nil {
		return 0, nil, fmt.Errorf("delivery: %w: no algorithm", ErrMalformed)
	}
	if raw, ok := h[4]; ok {
		if err := decMode.Unmarshal(raw, &kid); err != nil {
			return 0, nil, fmt.Errorf("delivery: %w: kid", ErrMalformed)
		}
	}
	return alg, kid, nil
}

func (ks *Keys) key(kid []byte) (*Key, error) {
	k, ok := ks.byID[string(kid)]
	if !ok {
		return nil, fmt.Errorf("delivery: %w", ErrUnknownKey)
	}
	return k, nil
}

func (ks *Keys) verifyMac0(content []byte) ([]byte, error) {
	var m mac0Msg
	if err := decMode.Unmarshal(content, &m); err != nil {
		return nil, fmt.Errorf("delivery: %w: COSE_Mac0: %v", ErrMalformed, err)
	}
	alg, kid, err := decodeProtected(m.Protected)
	if err != nil {
		return nil, err
	}
	if alg != algHMAC256 {
		return nil, fmt.Errorf("delivery: %w: MAC algorithm %d (want 5, HMAC 256/256)", ErrMalformed, alg)
	}
	k, err := ks.key(kid)
	if err != nil {
		return nil, err
	}
	if k.hmac == nil {
		return nil, fmt.Errorf("delivery: %w: key is not an HMAC key", ErrSignature)
	}
	in, err := macInput(m.Protected, m.Payload)
	if err != nil {
		return nil, err
	}
	h := hmac.New(sha256.New, k.hmac)
	h.Write(in)
	if !hmac.Equal(h.Sum(nil), m.Tag) {
		return nil, fmt.Errorf("delivery: %w", ErrSignature)
	}
	return m.Payload, nil
}

func (ks *Keys) verifySign1(raw []byte) ([]byte, error) {
	var msg cose.Sign1Message
	if err := msg.UnmarshalCBOR(raw); err != nil {
		return nil, fmt.Errorf("delivery: %w: COSE_Sign1: %v", ErrMalformed, err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil || alg != cose.AlgorithmES256 {
		return nil, fmt.Errorf("delivery: %w: signature algorithm (want ES256)", ErrMalformed)
	}
	kid, _ := msg.Headers.Protected[cose.HeaderLabelKeyID].([]byte)
	k, err := ks.key(kid)
	if err != nil {
		return nil, err
	}
	if k.pub == nil {
		return nil, fmt.Errorf("delivery: %w: key is not an ES256 key", ErrSignature)
	}
	v, err := cose.NewVerifier(cose.AlgorithmES256, k.pub)
	if err != nil {
		return nil, fmt.Errorf("delivery: %w", err)
	}
	if err := msg.Verify(nil, v); err != nil {
		return nil, fmt.Errorf("delivery: %w", ErrSignature)
	}
	return msg.Payload, nil
}
