package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
)

// MaxRangeParts is the most byte ranges one request may ask for; more is
// 416 (a player asks for one; many small ranges only multiply the
// response).
const MaxRangeParts = 4

// Handler serves the public port: /healthz and the media paths
//
//	/t/<token>/assets/<asset>/<object>   token in the path (recommended by the spec)
//	/assets/<asset>/<object>             token in the Authorization: Bearer or WMT header
//
// and, in CDN origin mode (Config.OriginSecret), /origin/assets/… for the
// CDN (origin.go). Anything else is 404, unclean paths ("//", "/./", "/../", a trailing
// "/") included: they are never redirected, as a redirect would repeat
// the token in its Location. Metrics and readiness are on AdminHandler.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.route) }

// AdminHandler serves the operator's port: /metrics, /readyz (503 while
// the deny-list is not current) and /healthz.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if s.cfg.Minting != nil {
		mux.HandleFunc("POST /v1/sessions", s.mint)
	}
	return mux
}

func healthz(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	allowed := s.cors(w, r)
	if r.Method == http.MethodOptions {
		s.options(w, r, allowed)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == "/healthz" {
		healthz(w, r)
		return
	}
	notFound := func() {
		s.requests.WithLabelValues("other", "404").Inc()
		http.Error(w, "not found", http.StatusNotFound)
	}
	if path.Clean(p) != p {
		notFound()
		return
	}
	if rest, ok := strings.CutPrefix(p, "/origin/"); ok {
		s.serveOrigin(w, r, rest)
		return
	}
	var token string
	if rest, ok := strings.CutPrefix(p, "/t/"); ok {
		tok, after, ok := strings.Cut(rest, "/")
		if !ok || tok == "" {
			notFound()
			return
		}
		token, p = tok, "/"+after
	} else {
		token = r.Header.Get("WMT")
		if a := r.Header.Get("Authorization"); token == "" && strings.HasPrefix(a, "Bearer ") {
			token = strings.TrimPrefix(a, "Bearer ")
		}
	}
	rest, ok := strings.CutPrefix(p, "/assets/")
	assetID, object, _ := strings.Cut(rest, "/")
	if !ok || assetID == "" || object == "" {
		notFound()
		return
	}
	s.serve(w, r, token, assetID, object)
}

// readyz answers 200 while the edge can serve: its deny-list is loaded
// and watched; 503 with the reason otherwise.
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if _, ready, why := s.revocationState(); !ready {
		http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// logAttrs name a request's object in logs: asset, rendition and segment
// number, never the object key or the variant.
func logAttrs(assetID string, ref asset.Ref, perr error) []any {
	attrs := []any{"asset", assetID}
	if perr != nil {
		return append(attrs, "kind", "other")
	}
	attrs = append(attrs, "kind", objectKind(ref, nil))
	if ref.Rung != "" {
		attrs = append(attrs, "rendition", ref.Rung)
	}
	if ref.Kind == asset.KindSegment {
		attrs = append(attrs, "segment", ref.Number)
	}
	return attrs
}

// stageError says which step of serving an object failed.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return "edge: " + e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func inStage(stage string, err error) error { return &stageError{stage: stage, err: err} }

func errorStage(err error) string {
	if se, ok := errors.AsType[*stageError](err); ok {
		return se.stage
	}
	return "other"
}

// errorClass names the kind of an internal error for logs, which must
// not carry its text (storage errors name object keys).
func errorClass(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, storage.ErrNotFound):
		return "not_found"
	case errors.Is(err, envelope.ErrAuthentication), errors.Is(err, sealed.ErrDigest):
		return "integrity"
	case errors.Is(err, envelope.ErrUnwrap):
		return "key"
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return "network"
	}
	return "internal"
}
