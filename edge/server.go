package edge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
)

// Revocations is the deny-list a Server consults (queue.Revocations).
type Revocations interface {
	// Revoked reports whether any of keys is on the list.
	Revoked(keys ...string) bool
	// Run keeps the list current until ctx ends.
	Run(ctx context.Context)
	// Confirmed returns when the list was last known to be complete
	// (zero: never) and, while it cannot be kept current, why.
	Confirmed() (time.Time, error)
}

// Config is what a Server needs.
type Config struct {
	Store  storage.Store  // the worker's output bucket (required)
	KEK    *envelope.KEK  // unwraps the renditions' data keys (required)
	Tokens *delivery.Keys // verify session tokens (required)
	// PatternKeys open encrypted direct-mode patterns.
	PatternKeys delivery.PatternKeys
	// WatermarkMaster is the watermark master key: indirect-mode tokens
	// (the pattern derived from wmid). Nil: direct-mode tokens only.
	WatermarkMaster []byte
	// DisableSequencing serves variant A to every session.
	DisableSequencing bool
	// Revocations is the deny-list; nil: none. New starts its Run and
	// Close ends it.
	Revocations Revocations
	// RevocationMaxStale is how long the edge serves after it last
	// confirmed its deny-list; after that it refuses media with 503 until
	// the list is confirmed again (default 30s).
	RevocationMaxStale time.Duration
	// RevocationStartWait is how long New waits for the first load of the
	// deny-list (default 10s). The edge refuses media until it is loaded.
	RevocationStartWait time.Duration
	Log                 *slog.Logger     // default: discard
	Now                 func() time.Time // default: time.Now
	// ManifestTTL is how long an asset manifest is cached (default 1 min).
	ManifestTTL time.Duration
	// CacheLimit bounds each cache's entries (default 100,000).
	CacheLimit int
	// AllowedOrigins are the web origins ("https://player.example.com", or
	// "*" for any) whose players may fetch media across origins (CORS);
	// none: no CORS headers, same-origin players only.
	AllowedOrigins []string
	// CORSMaxAge is how long a browser caches a preflight's answer
	// (default DefaultCORSMaxAge).
	CORSMaxAge time.Duration
	// OriginSecret, when set (at least MinOriginSecret bytes), turns on
	// CDN origin mode (origin.go): explicit, cacheable variant paths for a
	// CDN that sends it in OriginSecretHeader.
	OriginSecret []byte
	// Minting, when set, serves the minting API (mint.go) on the admin
	// listener: POST /v1/sessions.
	Minting *Minting
}

// Server serves sealed assets to sessions. It is safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	manifests map[string]*cachedManifest
	deks      map[string]*envelope.DEK
	paces     map[string]cmaf.PaceInfo
	patterns  map[string][]byte
	tokens    map[string]*delivery.Claims

	origins      map[string]bool
	anyOrigin    bool
	corsMaxAge   time.Duration
	originSecret []byte // SHA-256 of Config.OriginSecret

	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesOut prometheus.Counter

	mints     *prometheus.CounterVec
	mintLimit *limiter
}

type cachedManifest struct {
	m       *asset.Manifest
	fetched time.Time
}

// New makes a Server and, with cfg.Revocations, loads the deny-list and
// keeps watching it until Close.
func New(ctx context.Context, cfg Config) (*Server, error) {
	switch {
	case cfg.Store == nil:
		return nil, errors.New("edge: config: Store is required")
	case cfg.KEK == nil:
		return nil, errors.New("edge: config: KEK is required")
	case cfg.Tokens == nil:
		return nil, errors.New("edge: config: Tokens is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ManifestTTL <= 0 {
		cfg.ManifestTTL = time.Minute
	}
	if cfg.CacheLimit <= 0 {
		cfg.CacheLimit = 100_000
	}
	if cfg.RevocationMaxStale <= 0 {
		cfg.RevocationMaxStale = 30 * time.Second
	}
	if cfg.RevocationStartWait <= 0 {
		cfg.RevocationStartWait = 10 * time.Second
	}
	if cfg.CORSMaxAge <= 0 {
		cfg.CORSMaxAge = DefaultCORSMaxAge
	}
	origins, anyOrigin, err := normalizeOrigins(cfg.AllowedOrigins)
	if err != nil {
		return nil, err
	}
	var originSecret []byte
	if cfg.OriginSecret != nil {
		if len(cfg.OriginSecret) < MinOriginSecret {
			return nil, fmt.Errorf("edge: config: the origin secret has %d bytes, want at least %d", len(cfg.OriginSecret), MinOriginSecret)
		}
		sum := sha256.Sum256(cfg.OriginSecret)
		originSecret = sum[:]
	}
	if mc := cfg.Minting; mc != nil {
		switch {
		case mc.Key == nil:
			return nil, errors.New("edge: config: minting needs a token key")
		case mc.Registry == nil:
			return nil, errors.New("edge: config: minting needs the session registry")
		case len(mc.APIKeys) == 0:
			return nil, errors.New("edge: config: minting needs at least one API key")
		}
		if mc.MaxTTL <= 0 {
			mc.MaxTTL = 24 * time.Hour
		}
		if mc.Rate <= 0 {
			mc.Rate = 50
		}
		if mc.Burst <= 0 {
			mc.Burst = 100
		}
	}
	s := &Server{
		cfg: cfg, log: cfg.Log, now: cfg.Now, cancel: func() {},
		manifests: map[string]*cachedManifest{}, deks: map[string]*envelope.DEK{},
		paces: map[string]cmaf.PaceInfo{}, patterns: map[string][]byte{}, tokens: map[string]*delivery.Claims{},
		origins: origins, anyOrigin: anyOrigin, corsMaxAge: cfg.CORSMaxAge, originSecret: originSecret,
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abseal_edge_requests_total", Help: "Edge requests by kind and status code.",
		}, []string{"kind", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "abseal_edge_request_seconds", Help: "Edge request latency by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"kind"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "abseal_edge_bytes_total", Help: "Plaintext bytes served."}),
		mints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abseal_edge_mint_requests_total", Help: "Minting API requests by outcome.",
		}, []string{"outcome"}),
	}
	if mc := cfg.Minting; mc != nil {
		s.mintLimit = &limiter{rate: mc.Rate, burst: float64(mc.Burst), buckets: map[string]*bucket{}}
	}
	s.reg.MustRegister(s.requests, s.latency, s.bytesOut, s.mints, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if rv := cfg.Revocations; rv != nil {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.cancel = cancel
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			rv.Run(wctx)
		}()
		if err := s.waitRevocations(ctx); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// waitRevocations waits up to RevocationStartWait for the first load of
// the deny-list; an edge that cannot load it starts anyway and refuses
// media until it has.
func (s *Server) waitRevocations(ctx context.Context) error {
	deadline := time.NewTimer(s.cfg.RevocationStartWait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		t, err := s.cfg.Revocations.Confirmed()
		if !t.IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("edge: revocations: %w", ctx.Err())
		case <-deadline.C:
			s.log.Warn("edge: the deny-list is not loaded; media is refused until it is", "err", fmt.Sprint(err))
			return nil
		case <-tick.C:
		}
	}
}

// Close stops the revocation watch and waits for it to end.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// revocationState reports whether the deny-list is current enough to
// serve media (confirmed within RevocationMaxStale) and whether the edge
// is ready (the list is loaded and its watch works).
func (s *Server) revocationState() (serve, ready bool, why string) {
	rv := s.cfg.Revocations
	if rv == nil {
		return true, true, ""
	}
	t, err := rv.Confirmed()
	switch {
	case t.IsZero():
		return false, false, "the deny-list is not loaded"
	case time.Since(t) > s.cfg.RevocationMaxStale:
		return false, false, fmt.Sprintf("the deny-list was last confirmed %s ago", time.Since(t).Round(time.Second))
	case err != nil:
		return true, false, "the deny-list watch is broken: " + err.Error()
	}
	return true, true, ""
}

// httpError is an error with the status the client gets. Its message is
// safe to show: it never names a variant or holds a token.
type httpError struct {
	code int
	msg  string
	// stale: an object the manifest names is missing. The cached
	// manifest may be one a newer commit replaced (its run's objects are
	// collected after the switch): the request is served once more from
	// a fresh manifest.
	stale bool
}

// missing is the error for an object the manifest names but the store
// does not have.
func missing(code int, msg string) error { return &httpError{code: code, msg: msg, stale: true} }

// retryStale runs serve, and once more with a fresh manifest of assetID
// when it failed on an object its cached manifest named but the store no
// longer has.
func (s *Server) retryStale(assetID string, serve func() (int, error)) (int, error) {
	n, err := serve()
	var he *httpError
	if err != nil && errors.As(err, &he) && he.stale && s.forgetManifest(assetID) {
		return serve()
	}
	return n, err
}

func (h *httpError) Error() string { return h.msg }

func fail(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, token, assetID, object string) {
	start := time.Now()
	ref, perr := asset.Parse(object)
	kind := objectKind(ref, perr)
	n, err := s.retryStale(assetID, func() (int, error) { return s.serveObject(w, r, token, assetID, ref, perr) })
	code := http.StatusOK
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			// The error's text may hold an object key, which names the
			// variant: log its class only.
			s.log.Error("edge: internal error", append(logAttrs(assetID, ref, perr), "stage", errorStage(err), "class", errorClass(err))...)
			he = &httpError{code: http.StatusBadGateway, msg: "upstream error"}
		}
		code = he.code
		switch code {
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="abseal"`)
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "5")
		}
		http.Error(w, he.msg, code)
	} else if r.Header.Get("Range") != "" && n >= 0 {
		code = http.StatusPartialContent
	}
	s.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
	s.latency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	s.log.Debug("edge: request", append(logAttrs(assetID, ref, perr), "code", code, "took", time.Since(start).String())...)
}

// objectKind is the metrics label of a request.
func objectKind(ref asset.Ref, err error) string {
	switch {
	case err != nil:
		return "other"
	case ref.Kind == asset.KindHLS, ref.Kind == asset.KindDASH:
		return "manifest"
	case ref.Kind == asset.KindInit:
		return "init"
	case ref.Kind == asset.KindSegment, ref.Kind == asset.KindPaceInfo:
		return "segment"
	}
	return "other"
}

// serveObject checks the token and serves one object; it returns the
// plaintext size served.
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request, token, assetID string, ref asset.Ref, perr error) (int, error) {
	if token == "" {
		return 0, fail(http.StatusUnauthorized, "a watermarking token is required")
	}
	c, err := s.verify(token)
	if err != nil {
		return 0, fail(http.StatusUnauthorized, "token refused: %s", publicReason(err))
	}
	if c.Audience != assetID {
		return 0, fail(http.StatusForbidden, "the token is not for this asset")
	}
	if serve, _, _ := s.revocationState(); !serve {
		return 0, fail(http.StatusServiceUnavailable, "the edge cannot confirm its revocation list; try again later")
	}
	if rv := s.cfg.Revocations; rv != nil && rv.Revoked(RevocationKeys(c)...) {
		return 0, fail(http.StatusForbidden, "the session is revoked")
	}
	if rh := r.Header.Get("Range"); strings.Count(rh, ",") >= MaxRangeParts {
		return 0, fail(http.StatusRequestedRangeNotSatisfiable, "at most %d byte ranges per request", MaxRangeParts)
	}
	m, err := s.manifest(r.Context(), assetID)
	if err != nil {
		return 0, inStage("manifest", err)
	}
	// Players name objects neutrally: no variant directory, no sidecar,
	// no manifest.json.
	if perr != nil || ref.Variant != "" || ref.Kind == asset.KindPaceInfo || ref.Kind == asset.KindManifest {
		return 0, fail(http.StatusNotFound, "no such object")
	}
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch ref.Kind {
	case asset.KindHLS, asset.KindDASH:
		data, err := storage.ReadAll(r.Context(), s.cfg.Store, m.Key(ref))
		if errors.Is(err, storage.ErrNotFound) {
			return 0, missing(http.StatusNotFound, "no such object")
		}
		if err != nil {
			return 0, inStage("playlist", err)
		}
		return s.write(w, r, data, ref.ContentType()), nil
	}
	rend, dek, err := s.rendition(m, ref.Rung)
	if err != nil {
		return 0, err
	}
	obj, place, size := rend.Init, ref, int64(0)
	if ref.Kind == asset.KindSegment {
		seg, ok := rend.Segment(ref.Number)
		if !ok {
			return 0, fail(http.StatusNotFound, "no such segment")
		}
		obj, size = seg.Variants[asset.VariantA], seg.Size
		if rend.Kind == "video" {
			pace, err := s.pace(r.Context(), m, asset.PaceInfo(ref.Rung, ref.Number))
			if err != nil {
				return 0, inStage("pace_info", err)
			}
			pattern, err := s.pattern(token, c, m)
			if err != nil {
				return 0, err
			}
			v := delivery.Variant(pattern, int(c.PatternLen), pace.Position, !s.cfg.DisableSequencing)
			o, ok := seg.Variants[v]
			if !ok {
				return 0, fail(http.StatusBadRequest, "segment has no variant for this position")
			}
			obj, place = o, asset.Segment(ref.Rung, v, ref.Number)
		}
		if r.Header.Get("Range") == "" && size > 0 {
			return s.stream(w, r, dek, assetID, place, obj, size, asset.MediaType(rend.Kind))
		}
	}
	// A byte range needs the plaintext at hand: the object is opened and
	// decrypted once and the ranges (at most MaxRangeParts) cut from it.
	data, err := sealed.OpenObjectFast(r.Context(), s.cfg.Store, dek, assetID, place, obj)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, missing(http.StatusNotFound, "no such object")
	}
	if err != nil {
		return 0, inStage("open", err)
	}
	return s.write(w, r, data, asset.MediaType(rend.Kind)), nil
}

// rendition finds a rendition of the asset and its data key: 404 for a
// rendition the manifest does not have.
func (s *Server) rendition(m *asset.Manifest, rung string) (*asset.Rendition, *envelope.DEK, error) {
	rend, err := m.FindRendition(rung)
	if err != nil {
		return nil, nil, fail(http.StatusNotFound, "no such rendition")
	}
	dek, err := s.dek(m, rend)
	if err != nil {
		return nil, nil, inStage("data_key", err)
	}
	return rend, dek, nil
}

// stream decrypts a whole segment from the store straight into the
// response: Tink's streaming AEAD releases plaintext only segment by
// authenticated segment, so a damaged object ends the response early
// (shorter than its Content-Length) and is logged.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, dek *envelope.DEK, assetID string, place asset.Ref, obj asset.Object, size int64, ctype string) (int, error) {
	rc, err := s.cfg.Store.Open(r.Context(), obj.Key, nil)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, missing(http.StatusNotFound, "no such segment")
	}
	if err != nil {
		return 0, inStage("open", err)
	}
	defer rc.Close()
	pr, err := dek.Open(rc, sealed.Place(assetID, place).AD())
	if err != nil {
		return 0, inStage("decrypt", err)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Accept-Ranges", "bytes")
	if r.Method == http.MethodHead {
		return 0, nil // the headers say it all: nothing to decrypt
	}
	n, err := io.Copy(w, pr)
	s.bytesOut.Add(float64(n))
	if err != nil && r.Context().Err() == nil {
		s.log.Error("edge: segment broke off", append(logAttrs(assetID, place, nil), "stage", "stream", "class", errorClass(err))...)
	}
	return int(n), nil
}

// write serves data with byte-range support (no Last-Modified, no ETag:
// nothing that could tell variants apart).
func (s *Server) write(w http.ResponseWriter, r *http.Request, data []byte, ctype string) int {
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	s.bytesOut.Add(float64(len(data)))
	return len(data)
}

// PublicReason is the reason a refused token's answer gives: one of the
// delivery.Err* texts, never more (the CDN edge function gives the same).
func PublicReason(err error) string { return publicReason(err) }

func publicReason(err error) string {
	for _, e := range []error{delivery.ErrExpired, delivery.ErrNotYet, delivery.ErrSignature, delivery.ErrUnknownKey, delivery.ErrClaims} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return delivery.ErrMalformed.Error()
}
