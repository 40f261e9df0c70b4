package edge

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Web players on another origin than the edge fetch media with CORS: the
// edge answers the origins it is told to (Config.AllowedOrigins) with
// Access-Control-Allow-Origin on every response (errors too, so a player
// can read why it was refused), Vary: Origin for caches, and exposes the
// headers a player reads for byte ranges. A preflight (OPTIONS with
// Access-Control-Request-Method, sent because the token travels in the
// Authorization or WMT header, or a Range is asked for) gets 204 with
// the methods and headers the edge accepts.

// DefaultCORSMaxAge is how long a browser may cache a preflight's answer.
const DefaultCORSMaxAge = 10 * time.Minute

const (
	corsMethods = "GET, HEAD"
	corsHeaders = "Authorization, WMT, Range"
	corsExpose  = "Content-Length, Content-Range, Accept-Ranges"
)

// CheckOrigins reports whether list is a valid allow-list for
// Config.AllowedOrigins, naming the first bad entry.
func CheckOrigins(list []string) error {
	_, _, err := normalizeOrigins(list)
	return err
}

// normalizeOrigins checks an allow-list of origins ("scheme://host[:port]"
// or "*" for any) and returns it lower-cased, as browsers send origins.
func normalizeOrigins(list []string) (map[string]bool, bool, error) {
	if len(list) == 0 {
		return nil, false, nil
	}
	set, any := map[string]bool{}, false
	for _, o := range list {
		o = strings.TrimSpace(o)
		if o == "*" {
			any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return nil, false, fmt.Errorf("edge: config: allowed origin %q: want scheme://host[:port] (http or https, no path) or *", o)
		}
		set[strings.ToLower(u.Scheme+"://"+u.Host)] = true
	}
	return set, any, nil
}

// cors sets the CORS headers of a response to r and reports whether r's
// origin is allowed.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(s.origins) == 0 && !s.anyOrigin {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !s.anyOrigin && !s.origins[strings.ToLower(origin)] {
		return false
	}
	if s.anyOrigin {
		h.Set("Access-Control-Allow-Origin", "*")
	} else {
		h.Set("Access-Control-Allow-Origin", origin)
	}
	h.Set("Access-Control-Expose-Headers", corsExpose)
	return true
}

// options answers OPTIONS: a CORS preflight from an allowed origin for GET
// or HEAD gets 204 with what the edge accepts; from another origin 403; a
// plain OPTIONS 204 with Allow.
func (s *Server) options(w http.ResponseWriter, r *http.Request, allowed bool) {
	code := http.StatusNoContent
	h := w.Header()
	method := r.Header.Get("Access-Control-Request-Method")
	switch {
	case method == "":
		h.Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(code)
	case !allowed:
		code = http.StatusForbidden
		http.Error(w, "origin not allowed", code)
	case method != http.MethodGet && method != http.MethodHead:
		code = http.StatusMethodNotAllowed
		h.Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", code)
	default:
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", strconv.Itoa(int(s.corsMaxAge.Seconds())))
		w.WriteHeader(code)
	}
	s.requests.WithLabelValues("preflight", strconv.Itoa(code)).Inc()
	s.log.Debug("edge: preflight", "origin_allowed", allowed, "method", method, "code", code)
}
