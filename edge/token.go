package edge

import (
	"errors"
	"fmt"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/sealed"
)

// Session describes the session a token opens.
type Session struct {
	Asset   string // asset id (the token's audience)
	WMID    uint64 // session id
	Subject string // for logs and revocation
	OpID    uint64 // operator id (wmopid)
	TTL     time.Duration
	// TokenID is the token's id (cti), the handle that revokes just this
	// token; empty: a random one (delivery.NewTokenID).
	TokenID []byte
}

// TokenOptions say how the session's pattern travels.
type TokenOptions struct {
	// Manifest is the asset's manifest: the pattern length and segment
	// duration come from it. Nil is allowed in indirect mode with
	// PatternLen.
	Manifest   *asset.Manifest
	PatternLen int
	// Direct carries the session's pattern in the token (wmpattern) rather
	// than its wmid; it needs Manifest and WatermarkMaster.
	Direct          bool
	WatermarkMaster []byte
	// SealPattern, in direct mode, encrypts the packed pattern for the
	// edges (delivery.EncryptPattern, delivery.EncryptPatternECDH); nil
	// leaves it in clear.
	SealPattern func(packed []byte) ([]byte, error)
}

// SessionClaims are the claims of a session token issued at now.
func SessionClaims(s Session, o TokenOptions, now time.Time) (*delivery.Claims, error) {
	if s.Asset == "" {
		return nil, errors.New("edge: token: the asset is required")
	}
	c := &delivery.Claims{Subject: s.Subject, Audience: s.Asset, IssuedAt: now.Unix(), Expiry: now.Add(s.TTL).Unix(), Version: 1, ID: s.TokenID}
	if len(c.ID) == 0 {
		c.ID = delivery.NewTokenID()
	}
	// Every token names its session (wmid, operator), in direct mode too,
	// so that revoking the wmid stops all of the session's tokens.
	wmid, op := s.WMID, s.OpID
	c.WMID, c.OpID = &wmid, &op
	m := o.Manifest
	switch {
	case m != nil && m.Watermark == nil:
		return nil, fmt.Errorf("edge: token: %w", fmt.Errorf("%s: %w", m.AssetID, sealed.ErrNoWatermark))
	case m != nil:
		c.PatternLen = uint16(m.Watermark.PatternLen)
		c.SegDur = []uint64{uint64(m.SegDur * 1000), 1000}
	case o.Direct || o.PatternLen <= 0:
		return nil, errors.New("edge: token: direct mode and a token without a pattern length need the asset manifest")
	default:
		c.PatternLen = uint16(o.PatternLen)
	}
	if !o.Direct {
		return c, nil
	}
	if o.WatermarkMaster == nil {
		return nil, errors.New("edge: token: direct mode needs the watermark master key")
	}
	code, err := sealed.SessionCode(o.WatermarkMaster, m, s.OpID)
	if err != nil {
		return nil, err
	}
	bits, err := code.Pattern(s.WMID)
	if err != nil {
		return nil, err
	}
	c.Pattern = delivery.PackBits(bits)
	if o.SealPattern != nil {
		if c.Pattern, err = o.SealPattern(c.Pattern); err != nil {
			return nil, fmt.Errorf("edge: token: encrypt the pattern: %w", err)
		}
	}
	return c, nil
}

// MintToken mints the token of a session, signed or MACed with key.
func MintToken(s Session, o TokenOptions, key *delivery.Key, now time.Time) (string, error) {
	c, err := SessionClaims(s, o, now)
	if err != nil {
		return "", err
	}
	return delivery.Mint(c, key)
}
