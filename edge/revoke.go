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

// RevocationKeys are the deny-list keys that refuse a token: its wmid,
// subject and token id, each when the token carries it. The keys of
// earlier releases ("wmid-<n>", "sub-<subject>") are checked as well, so
// entries written by them keep refusing.
func RevocationKeys(c *delivery.Claims) []string {
	var keys []string
	if c.WMID != nil {
		keys = append(keys, WMIDRevocationKey(*c.WMID), "wmid-"+strconv.FormatUint(*c.WMID, 10))
	}
	if c.Subject != "" {
		keys = append(keys, SubjectRevocationKey(c.Subject), "sub-"+c.Subject)
	}
	if len(c.ID) > 0 {
		keys = append(keys, TokenIDRevocationKey(c.ID))
	}
	return keys
}
