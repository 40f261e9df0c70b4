// Command edge is abseal's reference delivery tier (ETSI TS 104 002).
//
//	edge [serve] [flags]                 serve sealed assets to sessions
//	edge token --asset A --wmid N [--direct [--encrypt [--issuer-key-file K]]] [--ttl 1h]
//	                                     mint a session token (operators, tests); its token id goes to stderr
//	edge assemble --asset A --wmid N -o FILE [--rendition R]
//	                                     write what that session receives, as one playable file
//	edge revoke (--wmid N | --sub S | --token-id ID) [--reason R] [--undo]
//	                                     put a session, subject or token on (or off) the deny-list
//
// serve answers GET /t/<token>/assets/<asset>/<path> (token in the path,
// as the spec recommends) and GET /assets/<asset>/<path> with the token in
// an "Authorization: Bearer" or "WMT" header, plus /healthz, on --addr
// (HTTPS with --tls-cert and --tls-key). /metrics, /readyz and /healthz
// are on the admin listener, --admin-addr (loopback by default). Playlists
// are the neutral ones of the asset; for a segment the edge reads its
// WMPaceInfo sidecar, picks variant A or B from the token's pattern (MSB
// first; A when the position is -1 or sequencing is off), opens the sealed
// object with the rendition's DEK (unwrapped once through the KEK, kept in
// memory only) and serves plaintext, byte ranges included (at most 4 per
// request). No token: 401; a token for another asset or a revoked
// session: 403; a segment without WMPaceInfo: 400; unclean paths: 404,
// never a redirect. The deny-list (JetStream KV abseal_revoked) is
// watched, so a revocation takes effect on every edge within a second; an
// edge that cannot confirm its deny-list for --revocation-max-stale
// refuses media with 503.
//
// With --api-keys-file, the admin listener also serves the minting API
// for the operator's backend: POST /v1/sessions with an API key returns a
// session's token and wmid, allocated unique per asset and recorded in the
// session registry (JetStream) before the token is returned.
//
// Settings: the worker's ABSEAL_NATS_URL, ABSEAL_S3_*, ABSEAL_OUTPUT_BUCKET,
// ABSEAL_KEK_URI and ABSEAL_WATERMARK_KEY_FILE, plus ABSEAL_EDGE_ADDR,
// ABSEAL_EDGE_ADMIN_ADDR, ABSEAL_EDGE_TLS_CERT, ABSEAL_EDGE_TLS_KEY, the
// listener limits (ABSEAL_EDGE_READ_HEADER_TIMEOUT, _READ_TIMEOUT,
// _WRITE_TIMEOUT, _IDLE_TIMEOUT, _MAX_HEADER_BYTES),
// ABSEAL_REVOCATION_MAX_STALE, ABSEAL_TOKEN_KEY_FILE (hex HMAC secret, or
// PEM EC P-256 key) and ABSEAL_PATTERN_KEY_FILE (encrypted direct-mode
// patterns: the hex of a 32-byte A256GCM key, or the edge's PEM EC P-256
// key for ECDH-SS+A128KW).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/cliconf"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage/s3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "edge:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// settings shared by the commands.
type settings struct {
	nats                 cliconf.NATS
	bucket               string
	s3                   cliconf.S3
	kekc                 cliconf.KEK
	tokenKey, patternKey string
	wmKey                cliconf.WatermarkKey
	noSequencing         bool
	maxStale             time.Duration
	corsOrigins          string
	corsMaxAge           time.Duration
	originSecretFile     string
	apiKeysFile          string
	mintMaxTTL           time.Duration
	env                  cliconf.Env
}

// originSecret reads --origin-secret-file (a trailing newline is not
// part of the secret).
func (s *settings) originSecret() ([]byte, error) {
	b, err := os.ReadFile(s.originSecretFile)
	if err != nil {
		return nil, fmt.Errorf("origin secret: %w", err)
	}
	secret := bytes.TrimRight(b, "\r\n")
	if len(secret) < edge.MinOriginSecret {
		return nil, fmt.Errorf("%w: origin secret file %s: %d bytes, want at least %d", errUsage, s.originSecretFile, len(secret), edge.MinOriginSecret)
	}
	return secret, nil
}

// origins is --cors-origins as a list.
func (s *settings) origins() []string {
	var list []string
	for _, o := range strings.Split(s.corsOrigins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			list = append(list, o)
		}
	}
	return list
}

func (s *settings) flags(fl *flag.FlagSet) {
	e := &s.env
	s.nats.Flags(fl, e)
	s.s3.Flags(fl, e)
	fl.StringVar(&s.bucket, "bucket", e.String("ABSEAL_OUTPUT_BUCKET", "assets"), "the worker's output bucket")
	s.kekc.Flags(fl, e)
	s.wmKey.Flags(fl, e, "watermark-key-file", "ABSEAL_WATERMARK_KEY_FILE", "watermark master key, wrapped by the KEK: indirect-mode tokens")
	fl.StringVar(&s.tokenKey, "token-key-file", e.String("ABSEAL_TOKEN_KEY_FILE", ""), "token key: hex HMAC secret or PEM EC P-256 key")
	fl.StringVar(&s.patternKey, "pattern-key-file", e.String("ABSEAL_PATTERN_KEY_FILE", ""), "key of encrypted direct-mode patterns: hex A256GCM key, or the edge's PEM EC P-256 key (ECDH-SS+A128KW)")
}

// parse parses the flags and reports environment variables that did not
// parse.
func (s *settings) parse(fl *flag.FlagSet, args []string) error {
	if err := fl.Parse(args); err != nil {
		return err
	}
	return s.env.Err()
}

func (s *settings) store() (*s3.Store, error) { return s.s3.Store(s.bucket) }

func (s *settings) kek(ctx context.Context) (*envelope.KEK, error) {
	if s.kekc.URI == "" {
		return nil, fmt.Errorf("%w: --kek-uri (or ABSEAL_KEK_URI) is required", errUsage)
	}
	return s.kekc.Open(ctx)
}

// master reads the watermark master key (nil without one).
func (s *settings) master(kek *envelope.KEK, log *slog.Logger) ([]byte, error) {
	return s.wmKey.Read(kek, log)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, stdout, stderr)
	case "token":
		return runToken(ctx, args, stdout, stderr)
	case "assemble":
		return runAssemble(ctx, args, stdout, stderr)
	case "revoke":
		return runRevoke(ctx, args, stdout, stderr)
	case "keygen":
		return runKeygen(args, stdout, stderr)
	}
	return fmt.Errorf("%w: unknown command %q (serve, token, assemble, revoke, keygen)", errUsage, cmd)
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("edge serve", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var s settings
	s.flags(fl)
	var lc listenConfig
	lc.flags(fl, &s.env)
	fl.DurationVar(&s.maxStale, "revocation-max-stale", s.env.Duration("ABSEAL_REVOCATION_MAX_STALE", 30*time.Second), "refuse media (503) once the deny-list could not be confirmed for this long")
	fl.StringVar(&s.corsOrigins, "cors-origins", s.env.String("ABSEAL_EDGE_CORS_ORIGINS", ""), "web origins whose players may fetch media across origins, comma-separated (https://player.example.com, or * for any); empty: no CORS")
	fl.StringVar(&s.apiKeysFile, "api-keys-file", s.env.String("ABSEAL_EDGE_API_KEYS_FILE", ""), "minting API (POST /v1/sessions on the admin listener): file of \"name sha256-hex\" lines, the digests of the API keys the operator's backend sends; empty: off")
	fl.DurationVar(&s.mintMaxTTL, "mint-max-ttl", s.env.Duration("ABSEAL_EDGE_MINT_MAX_TTL", 24*time.Hour), "minting API: the longest token lifetime a request may ask for")
	fl.StringVar(&s.originSecretFile, "origin-secret-file", s.env.String("ABSEAL_EDGE_ORIGIN_SECRET_FILE", ""), "CDN origin mode: file holding the secret a CDN sends in the Abseal-Origin-Secret header (at least 32 bytes); empty: off")
	fl.DurationVar(&s.corsMaxAge, "cors-max-age", s.env.Duration("ABSEAL_EDGE_CORS_MAX_AGE", edge.DefaultCORSMaxAge), "how long browsers cache a CORS preflight's answer")
	sequencing := fl.Bool("sequencing", true, "serve A/B per the token's pattern (off: variant A for everyone)")
	level := fl.String("log-level", s.env.String("ABSEAL_LOG_LEVEL", "info"), "debug, info, warn, error")
	if err := s.parse(fl, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := lc.validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := edge.CheckOrigins(s.origins()); err != nil {
		return fmt.Errorf("%w: cors-origins: %v", errUsage, err)
	}
	if s.originSecretFile != "" {
		if _, err := s.originSecret(); err != nil {
			return err
		}
	}
	if s.corsMaxAge < 0 {
		return fmt.Errorf("%w: cors-max-age %s: not negative", errUsage, s.corsMaxAge)
	}
	if s.maxStale < 3*revocationCheckInterval {
		return fmt.Errorf("%w: revocation-max-stale %s: at least %s (three deny-list checks)", errUsage, s.maxStale, 3*revocationCheckInterval)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("%w: log-level: %v", errUsage, err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lv}))
	s.noSequencing = !*sequencing
	e, closeFn, err := newEdgeFromSettings(ctx, &s, log)
	if err != nil {
		return err
	}
	defer closeFn()
	ls, err := listen(lc, e.Handler(), e.AdminHandler(), log)
	if err != nil {
		return err
	}
	log.Info("edge listening", "addr", ls.Addr(), "admin_addr", ls.AdminAddr(), "tls", lc.TLSCert != "", "bucket", s.bucket, "sequencing", *sequencing)
	select {
	case err = <-ls.Failed():
	case <-ctx.Done():
	}
	return errors.Join(err, ls.Close())
}

// revocationCheckInterval is how often the edge confirms its deny-list
// with the server.
const revocationCheckInterval = 2 * time.Second

// newEdgeFromSettings opens the store, keys and the revocation watch and
// makes the edge; the returned function closes it and its NATS connection.
func newEdgeFromSettings(ctx context.Context, s *settings, log *slog.Logger) (*edge.Server, func(), error) {
	st, err := s.store()
	if err != nil {
		return nil, nil, err
	}
	kek, err := s.kek(ctx)
	if err != nil {
		return nil, nil, err
	}
	if s.tokenKey == "" {
		return nil, nil, fmt.Errorf("%w: --token-key-file (or ABSEAL_TOKEN_KEY_FILE) is required", errUsage)
	}
	tk, err := delivery.LoadKey(s.tokenKey)
	if err != nil {
		return nil, nil, err
	}
	cfg := edge.Config{Store: st, KEK: kek, Tokens: delivery.NewKeys(tk.Public()), DisableSequencing: s.noSequencing, Log: log, RevocationMaxStale: s.maxStale,
		AllowedOrigins: s.origins(), CORSMaxAge: s.corsMaxAge}
	if s.originSecretFile != "" {
		if cfg.OriginSecret, err = s.originSecret(); err != nil {
			return nil, nil, err
		}
	}
	if cfg.WatermarkMaster, err = s.master(kek, log); err != nil {
		return nil, nil, err
	}
	if s.patternKey != "" {
		if cfg.PatternKeys, _, err = delivery.LoadPatternKey(s.patternKey); err != nil {
			return nil, nil, err
		}
	}
	nc, err := s.nats.Connect(nats.Name("abseal-edge"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return nil, nil, err
	}
	if cfg.Revocations, err = queue.OpenRevocations(ctx, nc, queue.RevocationsConfig{CheckInterval: revocationCheckInterval, Log: log}); err != nil {
		nc.Close()
		return nil, nil, err
	}
	if s.apiKeysFile != "" {
		if cfg.Minting, err = s.minting(ctx, nc, tk, cfg.WatermarkMaster); err != nil {
			nc.Close()
			return nil, nil, err
		}
	}
	e, err := edge.New(ctx, cfg)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return e, func() { e.Close(); nc.Close() }, nil
}

// minting configures the minting API: the API keys from --api-keys-file
// and the session registry on nc.
func (s *settings) minting(ctx context.Context, nc *nats.Conn, key *delivery.Key, master []byte) (*edge.Minting, error) {
	f, err := os.Open(s.apiKeysFile)
	if err != nil {
		return nil, fmt.Errorf("api-keys-file: %w", err)
	}
	defer f.Close()
	keys, err := edge.ParseAPIKeys(f)
	if err != nil {
		return nil, fmt.Errorf("%w: api-keys-file %s: %v", errUsage, s.apiKeysFile, err)
	}
	if s.mintMaxTTL < time.Minute {
		return nil, fmt.Errorf("%w: mint-max-ttl %s: at least 1m", errUsage, s.mintMaxTTL)
	}
	reg, err := queue.OpenRegistry(ctx, nc)
	if err != nil {
		return nil, fmt.Errorf("minting API: %w", err)
	}
	return &edge.Minting{Key: key, Registry: reg, APIKeys: keys, MaxTTL: s.mintMaxTTL, WatermarkMaster: master}, nil
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("edge token", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var s settings
	s.flags(fl)
	assetID := fl.String("asset", "", "asset id the token opens")
	wmid := fl.Uint64("wmid", 0, "session id (wmid)")
	sub := fl.String("sub", "", "session subject (for logs and revocation)")
	opID := fl.Uint64("operator", 0, "operator id (wmopid)")
	ttl := fl.Duration("ttl", time.Hour, "lifetime")
	direct := fl.Bool("direct", false, "direct mode: carry the pattern (needs the S3, KEK and watermark-key settings)")
	encrypt := fl.Bool("encrypt", false, "direct mode: encrypt the pattern for --pattern-key-file (hex: A256GCM; the edges' PEM EC key: ECDH-SS+A128KW)")
	issuerKey := fl.String("issuer-key-file", "", "ECDH-SS: the issuer's static PEM EC P-256 private key")
	patLen := fl.Int("pattern-length", 0, "indirect mode: wmpatlen (default: from the asset manifest)")
	register := fl.Bool("register", false, "record the session in the session registry (--nats-url), as the minting API does; without --wmid a wmid is allocated")
	if err := s.parse(fl, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *assetID == "" || s.tokenKey == "" {
		return fmt.Errorf("%w: --asset and --token-key-file are required", errUsage)
	}
	key, err := delivery.LoadKey(s.tokenKey)
	if err != nil {
		return err
	}
	opts := edge.TokenOptions{Direct: *direct, PatternLen: *patLen}
	if *direct || *patLen == 0 {
		st, err := s.store()
		if err != nil {
			return err
		}
		if opts.Manifest, err = sealed.ReadManifest(ctx, st, *assetID); err != nil {
			return err
		}
	}
	if *direct {
		kek, err := s.kek(ctx)
		if err != nil {
			return err
		}
		opts.WatermarkMaster, err = s.master(kek, slog.New(slog.NewTextHandler(stderr, nil)))
		if err != nil || opts.WatermarkMaster == nil {
			return fmt.Errorf("direct mode needs --watermark-key-file: %v", err)
		}
		if *encrypt {
			if opts.SealPattern, err = patternSealer(s.patternKey, *issuerKey); err != nil {
				return err
			}
		}
	}
	var reg *queue.Registry
	if *register {
		nc, err := s.nats.Connect(nats.Name("abseal-edge-token"))
		if err != nil {
			return err
		}
		defer nc.Close()
		if reg, err = queue.OpenRegistry(ctx, nc); err != nil {
			return err
		}
		if *wmid == 0 {
			if *wmid, err = reg.Allocate(ctx, *assetID); err != nil {
				return err
			}
		}
	}
	id := delivery.NewTokenID()
	now := time.Now()
	tok, err := edge.MintToken(edge.Session{Asset: *assetID, WMID: *wmid, Subject: *sub, OpID: *opID, TTL: *ttl, TokenID: id}, opts, key, now)
	if err != nil {
		return err
	}
	if reg != nil {
		// Recorded before the token is printed: a token the registry does
		// not know is never handed out.
		mode := "indirect"
		if *direct {
			mode = "direct"
		}
		rec := queue.SessionRecord{Asset: *assetID, WMID: *wmid, OpID: *opID, Subject: *sub, TokenID: hex.EncodeToString(id),
			IssuedAt: time.Unix(now.Unix(), 0).UTC(), Expires: time.Unix(now.Add(*ttl).Unix(), 0).UTC(), Mode: mode, Operator: "edge token"}
		if err := reg.Record(ctx, rec); err != nil {
			return fmt.Errorf("record the session: %w", err)
		}
		fmt.Fprintf(stderr, "wmid %d recorded in the session registry\n", *wmid)
	}
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "token id %x (edge revoke --token-id %x)\n", id, id)
	return nil
}

// patternSealer encrypts direct-mode patterns for the edges' pattern key:
// A256GCM for a hex key, ECDH-SS+A128KW (with the issuer's static key) for
// the edges' EC key.
func patternSealer(patternKey, issuerKey string) (func([]byte) ([]byte, error), error) {
	if patternKey == "" {
		return nil, fmt.Errorf("%w: --encrypt needs --pattern-key-file", errUsage)
	}
	pk, edgePub, err := delivery.LoadPatternKey(patternKey)
	if err != nil {
		return nil, err
	}
	if edgePub == nil {
		return func(p []byte) ([]byte, error) { return delivery.EncryptPattern(pk.AES, p) }, nil
	}
	if issuerKey == "" {
		return nil, fmt.Errorf("%w: ECDH-SS pattern encryption needs --issuer-key-file", errUsage)
	}
	issuer, err := delivery.LoadECDHKey(issuerKey)
	if err != nil {
		return nil, err
	}
	return func(p []byte) ([]byte, error) { return delivery.EncryptPatternECDH(issuer, edgePub, nil, p) }, nil
}

func runAssemble(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("edge assemble", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var s settings
	s.flags(fl)
	assetID := fl.String("asset", "", "asset id")
	wmid := fl.Uint64("wmid", 0, "session id (wmid)")
	opID := fl.Uint64("operator", 0, "operator id (wmopid)")
	rendition := fl.String("rendition", "", "rendition (default: the largest)")
	out := fl.String("o", "", "output file (fragmented MP4)")
	if err := s.parse(fl, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *assetID == "" || *out == "" {
		return fmt.Errorf("%w: --asset and -o are required", errUsage)
	}
	st, err := s.store()
	if err != nil {
		return err
	}
	kek, err := s.kek(ctx)
	if err != nil {
		return err
	}
	master, err := s.master(kek, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil || master == nil {
		return fmt.Errorf("assemble needs --watermark-key-file: %v", err)
	}
	m, err := sealed.ReadManifest(ctx, st, *assetID)
	if err != nil {
		return err
	}
	code, err := sealed.SessionCode(master, m, *opID)
	if err != nil {
		return err
	}
	bits, err := code.Pattern(*wmid)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := sealed.WriteSession(ctx, st, kek, m, *rendition, bits, f); err != nil {
		f.Close()
		os.Remove(*out)
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: asset %s as session wmid %d receives it\n", *out, *assetID, *wmid)
	return nil
}

func runRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("edge revoke", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var s settings
	s.flags(fl)
	wmid := fl.String("wmid", "", "session id to revoke (all of its tokens)")
	sub := fl.String("sub", "", "session subject to revoke (any string)")
	tokenID := fl.String("token-id", "", "token id (cti, hex, as edge token prints it) to revoke")
	reason := fl.String("reason", "revoked by an operator", "why (kept with the entry)")
	undo := fl.Bool("undo", false, "take the entry off the deny-list (reinstate)")
	if err := s.parse(fl, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	key, legacy, what, err := revocationKey(*wmid, *sub, *tokenID)
	if err != nil {
		return err
	}
	nc, err := s.nats.Connect(nats.Name("abseal-edge-revoke"))
	if err != nil {
		return fmt.Errorf("revoke: nats: %w", err)
	}
	defer nc.Close()
	rev, err := queue.OpenRevocations(ctx, nc, queue.RevocationsConfig{})
	if err != nil {
		return err
	}
	if *undo {
		if err := rev.Reinstate(ctx, append([]string{key}, legacy...)...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s reinstated (key %s)\n", what, key)
		return nil
	}
	if err := rev.Revoke(ctx, key, *reason); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s revoked (key %s)\n", what, key)
	return nil
}

// revocationKey is the deny-list key of exactly one of a wmid, a subject
// and a token id, the keys earlier releases used for it, and how to name
// it to the operator.
func revocationKey(wmid, sub, tokenID string) (key string, legacy []string, what string, err error) {
	given := 0
	for _, v := range []string{wmid, sub, tokenID} {
		if v != "" {
			given++
		}
	}
	if given != 1 {
		return "", nil, "", fmt.Errorf("%w: give one of --wmid, --sub and --token-id", errUsage)
	}
	switch {
	case wmid != "":
		n, err := strconv.ParseUint(wmid, 10, 64)
		if err != nil {
			return "", nil, "", fmt.Errorf("%w: --wmid %q is not a number", errUsage, wmid)
		}
		return edge.WMIDRevocationKey(n), edge.LegacyRevocationKeys(&n, ""), "wmid " + wmid, nil
	case sub != "":
		return edge.SubjectRevocationKey(sub), edge.LegacyRevocationKeys(nil, sub), "subject", nil
	}
	id, err := hex.DecodeString(tokenID)
	if err != nil || len(id) == 0 || len(id) > delivery.MaxTokenIDSize {
		return "", nil, "", fmt.Errorf("%w: --token-id must be the token id in hex", errUsage)
	}
	return edge.TokenIDRevocationKey(id), nil, "token " + tokenID, nil
}

// runKeygen writes a new HMAC token key (hex) or pattern key.
func runKeygen(args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("edge keygen", flag.ContinueOnError)
	fl.SetOutput(stderr)
	if err := fl.Parse(args); err != nil || fl.NArg() != 1 {
		return fmt.Errorf("%w: edge keygen FILE (32 random bytes, hex, mode 0600)", errUsage)
	}
	k := make([]byte, 32)
	rand.Read(k)
	f, err := os.OpenFile(fl.Arg(0), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, hex.EncodeToString(k))
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote key %s (mode 0600)\n", fl.Arg(0))
	return nil
}
