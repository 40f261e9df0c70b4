package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/watermark"
)

// edge serves sealed assets to sessions: it checks the session's token,
// picks variant A or B per segment from the token's pattern and the
// segment's WMPaceInfo, opens the sealed object and serves plaintext.
type edge struct {
	store       storage.Store
	kek         *envelope.KEK
	keys        *delivery.Keys
	patternKeys delivery.PatternKeys // for encrypted direct-mode patterns
	wmMaster    []byte               // for indirect mode (the asset's payload code)
	sequencing  bool
	revoked     interface{ Revoked(keys ...string) bool }
	log         *slog.Logger
	now         func() time.Time

	mu        sync.Mutex
	manifests map[string]*cachedManifest
	deks      map[string]*envelope.DEK
	paces     map[string]cmaf.PaceInfo
	patterns  map[string][]byte
	tokens    map[string]*delivery.Claims

	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	bytesOut prometheus.Counter
}

type cachedManifest struct {
	m       *pipeline.AssetManifest
	fetched time.Time
}

const cacheLimit = 100_000

func newEdge(store storage.Store, kek *envelope.KEK, keys *delivery.Keys, log *slog.Logger) *edge {
	e := &edge{
		store: store, kek: kek, keys: keys, sequencing: true, log: log, now: time.Now,
		manifests: map[string]*cachedManifest{}, deks: map[string]*envelope.DEK{},
		paces: map[string]cmaf.PaceInfo{}, patterns: map[string][]byte{}, tokens: map[string]*delivery.Claims{},
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abseal_edge_requests_total", Help: "Edge requests by kind and status code.",
		}, []string{"kind", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "abseal_edge_request_seconds", Help: "Edge request latency by kind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"kind"}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "abseal_edge_bytes_total", Help: "Plaintext bytes served."}),
	}
	e.reg.MustRegister(e.requests, e.latency, e.bytesOut, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return e
}

// handler routes /healthz, /metrics and the media paths:
//
//	/t/<token>/assets/<asset>/<object>   token in the path (recommended by the spec)
//	/assets/<asset>/<object>             token in the Authorization: Bearer or WMT header
func (e *edge) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /t/{token}/assets/{asset}/{object...}", func(w http.ResponseWriter, r *http.Request) {
		e.serve(w, r, r.PathValue("token"), r.PathValue("asset"), r.PathValue("object"))
	})
	mux.HandleFunc("GET /assets/{asset}/{object...}", func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("WMT")
		if a := r.Header.Get("Authorization"); tok == "" && strings.HasPrefix(a, "Bearer ") {
			tok = strings.TrimPrefix(a, "Bearer ")
		}
		e.serve(w, r, tok, r.PathValue("asset"), r.PathValue("object"))
	})
	return mux
}

// httpError is an error with the status the client gets. Its message is
// safe to show: it never names a variant or holds a token.
type httpError struct {
	code int
	msg  string
}

func (h *httpError) Error() string { return h.msg }

func fail(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

func (e *edge) serve(w http.ResponseWriter, r *http.Request, token, asset, object string) {
	start := time.Now()
	kind := objectKind(object)
	n, err := e.serveObject(w, r, token, asset, object)
	code := http.StatusOK
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			e.log.Error("edge: internal error", "asset", asset, "object", object, "err", err)
			he = &httpError{code: http.StatusBadGateway, msg: "upstream error"}
		}
		code = he.code
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="abseal"`)
		}
		http.Error(w, he.msg, code)
	} else if r.Header.Get("Range") != "" && n >= 0 {
		code = http.StatusPartialContent
	}
	e.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
	e.latency.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	// Logs name the asset and object, never the token or the variant.
	e.log.Debug("edge: request", "asset", asset, "object", object, "code", code, "took", time.Since(start).String())
}

func objectKind(object string) string {
	switch {
	case strings.HasPrefix(object, "hls/"), strings.HasPrefix(object, "dash/"):
		return "manifest"
	case strings.HasSuffix(object, cmaf.InitName):
		return "init"
	case strings.HasSuffix(object, ".m4s"):
		return "segment"
	}
	return "other"
}

// serveObject checks the token and serves one object; it returns the
// plaintext size served.
func (e *edge) serveObject(w http.ResponseWriter, r *http.Request, token, asset, object string) (int, error) {
	if token == "" {
		return 0, fail(http.StatusUnauthorized, "a watermarking token is required")
	}
	c, err := e.verify(token)
	if err != nil {
		return 0, fail(http.StatusUnauthorized, "token refused: %s", publicReason(err))
	}
	if c.Audience != asset {
		return 0, fail(http.StatusForbidden, "the token is not for this asset")
	}
	var rk []string
	if c.WMID != nil {
		rk = append(rk, "wmid-"+strconv.FormatUint(*c.WMID, 10))
	}
	if c.Subject != "" {
		rk = append(rk, "sub-"+c.Subject)
	}
	if e.revoked != nil && e.revoked.Revoked(rk...) {
		return 0, fail(http.StatusForbidden, "the session is revoked")
	}
	m, err := e.manifest(r.Context(), asset)
	if err != nil {
		return 0, err
	}
	clean := path.Clean(object)
	if clean != object || strings.HasPrefix(clean, "..") || strings.Contains(clean, "/WMPaceInfo/") {
		return 0, fail(http.StatusNotFound, "no such object")
	}
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch kind := objectKind(object); kind {
	case "manifest":
		data, err := storage.ReadAll(r.Context(), e.store, pipeline.AssetPrefix(asset)+object)
		if errors.Is(err, storage.ErrNotFound) {
			return 0, fail(http.StatusNotFound, "no such object")
		}
		if err != nil {
			return 0, err
		}
		ctype := "application/vnd.apple.mpegurl"
		if strings.HasPrefix(object, "dash/") {
			ctype = "application/dash+xml"
		}
		return e.write(w, r, data, ctype), nil
	case "init", "segment":
		rung, file := path.Split(object)
		rung = strings.TrimSuffix(rung, "/")
		if strings.Contains(rung, "/") || rung == "" {
			return 0, fail(http.StatusNotFound, "no such object")
		}
		rend, err := m.FindRendition(rung)
		if err != nil || rung == "" {
			return 0, fail(http.StatusNotFound, "no such rendition")
		}
		dek, err := e.dek(m, rend)
		if err != nil {
			return 0, err
		}
		var obj pipeline.Object
		var size int64
		variant := ""
		if kind == "init" {
			obj = rend.Init
		} else {
			seg, ok := findSegment(rend, file)
			if !ok {
				return 0, fail(http.StatusNotFound, "no such segment")
			}
			obj, size = seg.Variants["a"], seg.Size
			if rend.Kind == "video" {
				pace, err := e.pace(r.Context(), asset, rung, file)
				if err != nil {
					return 0, err
				}
				pattern, err := e.pattern(token, c, m)
				if err != nil {
					return 0, err
				}
				variant = delivery.Variant(pattern, int(c.PatternLen), pace.Position, e.sequencing)
				o, ok := seg.Variants[variant]
				if !ok {
					return 0, fail(http.StatusBadRequest, "segment has no variant for this position")
				}
				obj = o
			}
		}
		if kind == "segment" && r.Header.Get("Range") == "" && size > 0 {
			return e.stream(w, r, dek, asset, rung, variant, obj, size)
		}
		data, err := pipeline.OpenObjectFast(r.Context(), e.store, dek, asset, rung, variant, obj)
		if err != nil {
			return 0, err
		}
		return e.write(w, r, data, "video/mp4"), nil
	}
	return 0, fail(http.StatusNotFound, "no such object")
}

// stream decrypts a whole segment from the store straight into the
// response: Tink's streaming AEAD releases plaintext only segment by
// authenticated segment, so a damaged object ends the response early
// (shorter than its Content-Length) and is logged.
func (e *edge) stream(w http.ResponseWriter, r *http.Request, dek *envelope.DEK, asset, rung, variant string, obj pipeline.Object, size int64) (int, error) {
	rc, err := e.store.Open(r.Context(), obj.Key, nil)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, fail(http.StatusNotFound, "no such segment")
	}
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	place := envelope.Place{Asset: asset, Rung: rung, Variant: variant, Object: path.Base(obj.Key)}
	pr, err := dek.Open(rc, place.AD())
	if err != nil {
		return 0, err
	}
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Accept-Ranges", "bytes")
	n, err := io.Copy(w, pr)
	e.bytesOut.Add(float64(n))
	if err != nil && r.Context().Err() == nil {
		e.log.Error("edge: segment broke off", "asset", asset, "object", path.Join(rung, path.Base(obj.Key)), "err", err)
	}
	return int(n), nil
}

// write serves data with byte-range support (no Last-Modified, no ETag:
// nothing that could tell variants apart).
func (e *edge) write(w http.ResponseWriter, r *http.Request, data []byte, ctype string) int {
	w.Header().Set("Content-Type", ctype)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
	e.bytesOut.Add(float64(len(data)))
	return len(data)
}

func publicReason(err error) string {
	for _, e := range []error{delivery.ErrExpired, delivery.ErrNotYet, delivery.ErrSignature, delivery.ErrUnknownKey, delivery.ErrClaims} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return delivery.ErrMalformed.Error()
}

func findSegment(r *pipeline.Rendition, file string) (pipeline.Seg, bool) {
	var n int
	if _, err := fmt.Sscanf(file, "seg-%05d.m4s", &n); err != nil || cmaf.SegmentName(n) != file {
		return pipeline.Seg{}, false
	}
	i := n - 1
	if i < 0 || i >= len(r.Segments) || r.Segments[i].Number != n {
		for _, s := range r.Segments {
			if s.Number == n {
				return s, true
			}
		}
		return pipeline.Seg{}, false
	}
	return r.Segments[i], true
}

// manifest returns an asset's manifest, cached for a minute.
func (e *edge) manifest(ctx context.Context, asset string) (*pipeline.AssetManifest, error) {
	e.mu.Lock()
	cm := e.manifests[asset]
	e.mu.Unlock()
	if cm != nil && time.Since(cm.fetched) < time.Minute {
		return cm.m, nil
	}
	m, err := pipeline.ReadManifest(ctx, e.store, asset)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fail(http.StatusNotFound, "no such asset")
	}
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.manifests) > cacheLimit {
		e.manifests = map[string]*cachedManifest{}
	}
	e.manifests[asset] = &cachedManifest{m: m, fetched: time.Now()}
	e.mu.Unlock()
	return m, nil
}

// dek unwraps a rendition's DEK once and keeps it in memory.
func (e *edge) dek(m *pipeline.AssetManifest, r *pipeline.Rendition) (*envelope.DEK, error) {
	key := m.AssetID + "/" + r.Name + "/" + string(r.DEK.Wrapped[:min(16, len(r.DEK.Wrapped))])
	e.mu.Lock()
	d := e.deks[key]
	e.mu.Unlock()
	if d != nil {
		return d, nil
	}
	d, err := pipeline.RenditionDEK(e.kek, m.AssetID, r)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.deks) > cacheLimit {
		e.deks = map[string]*envelope.DEK{}
	}
	e.deks[key] = d
	e.mu.Unlock()
	return d, nil
}

// pace reads a segment's WMPaceInfo sidecar (cached). A segment without
// one cannot be sequenced: 400.
func (e *edge) pace(ctx context.Context, asset, rung, file string) (cmaf.PaceInfo, error) {
	key := pipeline.AssetPrefix(asset) + path.Join(rung, cmaf.WMPaceInfoDir, file)
	e.mu.Lock()
	p, ok := e.paces[key]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	data, err := storage.ReadAll(ctx, e.store, key)
	if errors.Is(err, storage.ErrNotFound) {
		return p, fail(http.StatusBadRequest, "no WMPaceInfo for this segment")
	}
	if err != nil {
		return p, err
	}
	if p, err = cmaf.ParsePaceInfo(data); err != nil {
		return p, fail(http.StatusBadRequest, "unusable WMPaceInfo for this segment")
	}
	e.mu.Lock()
	if len(e.paces) > cacheLimit {
		e.paces = map[string]cmaf.PaceInfo{}
	}
	e.paces[key] = p
	e.mu.Unlock()
	return p, nil
}

// pattern returns the session's packed pattern (cached per token).
func (e *edge) pattern(token string, c *delivery.Claims, m *pipeline.AssetManifest) ([]byte, error) {
	e.mu.Lock()
	p, ok := e.patterns[token]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	if m.Watermark == nil {
		return []byte{}, nil // nothing to sequence: every segment is variant A
	}
	if int(c.PatternLen) != m.Watermark.PatternLen {
		return nil, fail(http.StatusBadRequest, "wmpatlen %d does not match the asset's pattern length %d", c.PatternLen, m.Watermark.PatternLen)
	}
	var derive delivery.Deriver
	if e.wmMaster != nil {
		derive = func(wmid, opID, keyVer uint64) ([]uint8, error) {
			key, err := watermark.DeriveAssetKey(e.wmMaster, m.AssetID)
			if err != nil {
				return nil, err
			}
			code, err := watermark.NewCode(key, m.Watermark.IDBits, opID)
			if err != nil {
				return nil, err
			}
			return code.Pattern(wmid)
		}
	}
	p, err := delivery.SessionPatternWith(c, e.patternKeys, derive)
	if err != nil {
		return nil, fail(http.StatusUnauthorized, "token pattern unusable: %s", publicReason(err))
	}
	e.mu.Lock()
	if len(e.patterns) > cacheLimit {
		e.patterns = map[string][]byte{}
	}
	e.patterns[token] = p
	e.mu.Unlock()
	return p, nil
}

// verify checks a token, remembering tokens that verified so that a
// session's segment requests do not each redo the MAC or signature; the
// expiry is checked on every request.
func (e *edge) verify(token string) (*delivery.Claims, error) {
	now := e.now()
	e.mu.Lock()
	c, ok := e.tokens[token]
	e.mu.Unlock()
	if ok {
		if now.Unix() > c.Expiry+int64(e.keys.Leeway/time.Second) {
			return nil, fmt.Errorf("delivery: %w", delivery.ErrExpired)
		}
		return c, nil
	}
	c, err := e.keys.Verify(token, now)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if len(e.tokens) > cacheLimit {
		e.tokens = map[string]*delivery.Claims{}
	}
	e.tokens[token] = c
	e.mu.Unlock()
	return c, nil
}
