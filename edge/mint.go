package edge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/queue"
)

// The minting API: the operator's backend (any language) asks the edge's
// admin listener for a session's token,
//
//	POST /v1/sessions
//	Authorization: Bearer <API key>
//	{"asset": "film", "subject": "user-42", "ttl": "2h", "mode": "indirect"}
//
// and gets {"token", "token_id", "wmid", "expires_at"}. The wmid is
// allocated unique per asset and the session recorded in the registry
// before the token is returned: a token the registry does not know is
// never issued.

// Registry allocates wmids and records issued sessions (queue.Registry).
type Registry interface {
	Allocate(ctx context.Context, asset string) (uint64, error)
	Record(ctx context.Context, s queue.SessionRecord) error
}

// Minting configures the minting API. The zero value is off.
type Minting struct {
	// Key signs (or MACs) the tokens.
	Key *delivery.Key
	// Registry allocates and records the sessions (required).
	Registry Registry
	// APIKeys are the keys the backend authenticates with, by name (the
	// name is recorded as the session's operator): SHA-256 digests, so
	// the edge holds no key a leak of its configuration would reveal.
	APIKeys map[string][32]byte
	// MaxTTL bounds a token's lifetime (default 24h); the default TTL is
	// 1h.
	MaxTTL time.Duration
	// Rate and Burst limit the requests per API key (default 50/s, 100).
	Rate  float64
	Burst int
	// WatermarkMaster derives direct-mode patterns (nil: indirect only).
	WatermarkMaster []byte
}

// ParseAPIKeys reads an API key file: one "name sha256-hex" per line (the
// digest of the key the backend sends; `sha256sum` makes it), blank lines
// and lines starting with # ignored.
func ParseAPIKeys(r io.Reader) (map[string][32]byte, error) {
	out := map[string][32]byte{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, digest, ok := strings.Cut(line, " ")
		d, err := hex.DecodeString(strings.TrimSpace(digest))
		if !ok || err != nil || len(d) != 32 || name == "" {
			return nil, fmt.Errorf("edge: API keys: line %d: want \"name sha256-hex\"", n)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("edge: API keys: line %d: %s named twice", n, name)
		}
		out[name] = [32]byte(d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("edge: API keys: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("edge: API keys: none")
	}
	return out, nil
}

// mintRequest is the body of POST /v1/sessions.
type mintRequest struct {
	Asset      string `json:"asset"`
	Subject    string `json:"subject"`
	TTL        string `json:"ttl"`
	Mode       string `json:"mode"`
	OperatorID uint64 `json:"operator_id"`
}

// MintResponse is the answer to POST /v1/sessions.
type MintResponse struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	WMID      uint64    `json:"wmid"`
	ExpiresAt time.Time `json:"expires_at"`
}

const (
	maxMintBody    = 4 << 10
	maxSubjectLen  = 256
	defaultMintTTL = time.Hour
)

// limiter is a token bucket per API key.
type limiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func (l *limiter) allow(name string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[name]
	if b == nil {
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[name] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// mint serves POST /v1/sessions.
func (s *Server) mint(w http.ResponseWriter, r *http.Request) {
	mc := s.cfg.Minting
	reply := func(code int, outcome string, v any) {
		s.mints.WithLabelValues(outcome).Inc()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	refuse := func(code int, outcome, msg string, a ...any) {
		reply(code, outcome, map[string]string{"error": fmt.Sprintf(msg, a...)})
	}
	name, ok := s.apiKey(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="abseal sessions"`)
		refuse(http.StatusUnauthorized, "unauthorized", "an API key is required (Authorization: Bearer KEY)")
		return
	}
	if !s.mintLimit.allow(name, s.now()) {
		w.Header().Set("Retry-After", "1")
		refuse(http.StatusTooManyRequests, "rate_limited", "too many requests for API key %s", name)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		refuse(http.StatusUnsupportedMediaType, "bad_request", "the body must be application/json")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMintBody))
	if err != nil {
		refuse(http.StatusRequestEntityTooLarge, "bad_request", "the body is over %d bytes", maxMintBody)
		return
	}
	var req mintRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		refuse(http.StatusBadRequest, "bad_request", "the body is not a session request: %s", jsonReason(err))
		return
	}
	ttl := defaultMintTTL
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl < time.Minute || ttl > mc.MaxTTL {
			refuse(http.StatusBadRequest, "bad_request", "ttl %q: want a duration from 1m to %s", req.TTL, mc.MaxTTL)
			return
		}
	}
	switch {
	case !asset.ValidID(req.Asset):
		refuse(http.StatusBadRequest, "bad_request", "asset: want an asset id ([A-Za-z0-9._-], up to 128)")
		return
	case len(req.Subject) > maxSubjectLen || !utf8.ValidString(req.Subject) || strings.ContainsFunc(req.Subject, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		refuse(http.StatusBadRequest, "bad_request", "subject: want printable UTF-8 of at most %d bytes", maxSubjectLen)
		return
	case req.Mode == "":
		req.Mode = "indirect"
	case req.Mode != "indirect" && req.Mode != "direct":
		refuse(http.StatusBadRequest, "bad_request", "mode %q: want indirect or direct", req.Mode)
		return
	}
	if req.Mode == "direct" && mc.WatermarkMaster == nil {
		refuse(http.StatusBadRequest, "bad_request", "this edge mints indirect-mode tokens only")
		return
	}
	m, err := s.manifest(r.Context(), req.Asset)
	if err != nil {
		var he *httpError
		if errors.As(err, &he) && he.code == http.StatusNotFound {
			refuse(http.StatusNotFound, "unknown_asset", "asset %s is not published", req.Asset)
			return
		}
		s.log.Warn("mint: manifest", "asset", req.Asset, "err", err)
		refuse(http.StatusServiceUnavailable, "unavailable", "the asset cannot be read now; try again")
		return
	}
	if m.Watermark == nil {
		refuse(http.StatusConflict, "unmarked_asset", "asset %s carries no watermark: its sessions cannot be traced", req.Asset)
		return
	}
	wmid, err := mc.Registry.Allocate(r.Context(), req.Asset)
	if err != nil {
		s.log.Warn("mint: allocate a wmid", "asset", req.Asset, "err", err)
		refuse(http.StatusServiceUnavailable, "unavailable", "the session registry is unavailable; try again")
		return
	}
	now := s.now()
	id := delivery.NewTokenID()
	sess := Session{Asset: req.Asset, WMID: wmid, OpID: req.OperatorID, Subject: req.Subject, TTL: ttl, TokenID: id}
	tok, err := MintToken(sess, TokenOptions{Manifest: m, Direct: req.Mode == "direct", WatermarkMaster: mc.WatermarkMaster}, mc.Key, now)
	if err != nil {
		s.log.Error("mint: token", "asset", req.Asset, "err", err)
		refuse(http.StatusInternalServerError, "error", "the token could not be minted")
		return
	}
	exp := time.Unix(now.Add(ttl).Unix(), 0).UTC()
	rec := queue.SessionRecord{Asset: req.Asset, WMID: wmid, OpID: req.OperatorID, Subject: req.Subject, TokenID: hex.EncodeToString(id),
		IssuedAt: time.Unix(now.Unix(), 0).UTC(), Expires: exp, Mode: req.Mode, Operator: name}
	if err := mc.Registry.Record(r.Context(), rec); err != nil {
		s.log.Warn("mint: record the session", "asset", req.Asset, "wmid", wmid, "err", err)
		refuse(http.StatusServiceUnavailable, "unavailable", "the session registry is unavailable; try again")
		return
	}
	s.log.Info("session minted", "asset", req.Asset, "wmid", wmid, "operator", name, "mode", req.Mode, "token_id", rec.TokenID)
	reply(http.StatusCreated, "minted", MintResponse{Token: tok, TokenID: rec.TokenID, WMID: wmid, ExpiresAt: exp})
}

// apiKey is the name of the API key the request authenticates with.
func (s *Server) apiKey(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	key, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || key == "" {
		return "", false
	}
	d := sha256.Sum256([]byte(key))
	found := ""
	for name, want := range s.cfg.Minting.APIKeys {
		if subtle.ConstantTimeCompare(d[:], want[:]) == 1 {
			found = name
		}
	}
	return found, found != ""
}

// jsonReason says briefly why a body did not decode, without echoing it.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return "more than one JSON value"
	case errors.As(err, &se):
		return fmt.Sprintf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %s must be a %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.EOF):
		return "empty body"
	}
	return "invalid JSON"
}
