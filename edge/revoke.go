package edge

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/abseal/abseal/delivery"
)

// Deny-list keys name what is revoked by kind and a hash of its value,
// "<kind>.<32 hex digits>": every subject fits the KV key charset and no
// subject or id appears in a key name.
const (
	RevokeWMID    = "wmid" // a session id: all of its tokens
	RevokeSubject = "sub"  // a subject: all of its sessions' tokens
	RevokeTokenID = "cti"  // one token
)

func revocationKey(kind string, value []byte) string {
	sum := sha256.Sum256(value)
	return kind + "." + hex.EncodeToString(sum[:16])
}

// WMIDRevocationKey is the deny-list key of a session id.
func WMIDRevocationKey(wmid uint64) string {
	return revocationKey(RevokeWMID, strconv.AppendUint(nil, wmid, 10))
}

// SubjectRevocationKey is the deny-list key of a session subject.
func SubjectRevocationKey(sub string) string { return revocationKey(RevokeSubject, []byte(sub)) }

// TokenIDRevocationKey is the deny-list key of a token id (cti).
func TokenIDRevocationKey(id []byte) string { return revocationKey(RevokeTokenID, id) }

// LegacyRevocationKeys are the keys earlier releases wrote for a wmid
// ("wmid-<n>") or a subject ("sub-<subject>"); give nil or "" for the
// one not wanted. The edge still honours them and reinstating removes
// them too.
func LegacyRevocationKeys(wmid *uint64, sub string) []string {
	var keys []string
	if wmid != nil {
		keys = append(keys, "wmid-"+strconv.FormatUint(*wmid, 10))
	}
	if sub != "" {
		keys = append(keys, "sub-"+sub)
	}
	return keys
}

// RevocationKeys are the deny-list keys that refuse a token: its wmid,
// subject and token id, each when the token carries it, and the legacy
// keys of its wmid and subject, so entries written by earlier releases
// keep refusing.
func RevocationKeys(c *delivery.Claims) []string {
	var keys []string
	if c.WMID != nil {
		keys = append(keys, WMIDRevocationKey(*c.WMID))
	}
	if c.Subject != "" {
		keys = append(keys, SubjectRevocationKey(c.Subject))
	}
	if len(c.ID) > 0 {
		keys = append(keys, TokenIDRevocationKey(c.ID))
	}
	return append(keys, LegacyRevocationKeys(c.WMID, c.Subject)...)
}
