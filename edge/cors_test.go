package edge_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
)

func do(t *testing.T, method, url string, hdr ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// A player page on another origin: its preflight is answered, media and
// errors carry the CORS headers for allowed origins only, and preflights
// are counted.
func TestCORS(t *testing.T) {
	const page = "https://player.example.com"
	v := newFixtureEdgeWith(t, func(c *edge.Config) { c.AllowedOrigins = []string{page, "http://localhost:8080"} })
	seg, _ := v.segmentPath()
	tok := v.token(7)

	// Preflight of a header-token request with a Range.
	r := do(t, "OPTIONS", v.srv.URL+seg, "Origin", page, "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization,range")
	h := r.Header
	if r.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != page || h.Get("Access-Control-Max-Age") != "600" ||
		!strings.Contains(h.Get("Vary"), "Origin") {
		t.Fatalf("preflight: %d %v", r.StatusCode, h)
	}
	for _, want := range []string{"Authorization", "WMT", "Range"} {
		if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
			t.Errorf("preflight allows headers %q, not %s", h.Get("Access-Control-Allow-Headers"), want)
		}
	}
	if !strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") {
		t.Errorf("preflight allows methods %q", h.Get("Access-Control-Allow-Methods"))
	}
	// Origins compare as browsers send them (lower case).
	if r := do(t, "OPTIONS", v.srv.URL+seg, "Origin", "HTTP://LOCALHOST:8080", "Access-Control-Request-Method", "GET"); r.StatusCode != 204 {
		t.Errorf("preflight from the second origin: %d", r.StatusCode)
	}
	// Another origin, another method.
	if r := do(t, "OPTIONS", v.srv.URL+seg, "Origin", "https://evil.example", "Access-Control-Request-Method", "GET"); r.StatusCode != 403 ||
		r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", r.StatusCode, r.Header)
	}
	if r := do(t, "OPTIONS", v.srv.URL+seg, "Origin", page, "Access-Control-Request-Method", "DELETE"); r.StatusCode != 405 {
		t.Errorf("preflight for DELETE: %d", r.StatusCode)
	}

	// The media request: allowed origin, header token, a byte range.
	r = do(t, "GET", v.srv.URL+seg, "Origin", page, "Authorization", "Bearer "+tok, "Range", "bytes=0-99")
	h = r.Header
	if r.StatusCode != 206 || h.Get("Access-Control-Allow-Origin") != page || !strings.Contains(h.Get("Vary"), "Origin") ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), "Content-Range") ||
		!strings.Contains(h.Get("Access-Control-Expose-Headers"), "Content-Length") || h.Get("Content-Type") != asset.TypeVideo {
		t.Fatalf("segment: %d %v", r.StatusCode, h)
	}
	// Errors carry the headers too, so the player can read the refusal.
	r = do(t, "GET", v.srv.URL+seg, "Origin", page)
	if r.StatusCode != 401 || r.Header.Get("Access-Control-Allow-Origin") != page {
		t.Errorf("401: %d %v", r.StatusCode, r.Header)
	}
	// Another origin gets the object (a browser withholds it) but no grant.
	r = do(t, "GET", v.srv.URL+seg, "Origin", "https://evil.example", "WMT", tok)
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(r.Header.Get("Vary"), "Origin") {
		t.Errorf("other origin: %d %v", r.StatusCode, r.Header)
	}

	admin := httptest.NewServer(v.e.AdminHandler())
	defer admin.Close()
	_, metrics := getHdr(t, admin.URL+"/metrics")
	for _, want := range []string{`abseal_edge_requests_total{code="204",kind="preflight"} 2`, `abseal_edge_requests_total{code="403",kind="preflight"} 1`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// Without an allow-list the edge sends no CORS headers and refuses
// preflights; "*" grants any origin; bad origins are refused at start.
func TestCORSConfig(t *testing.T) {
	v := newFixtureEdge(t)
	seg, _ := v.segmentPath()
	r := do(t, "GET", v.srv.URL+"/t/"+v.token(1)+seg, "Origin", "https://player.example.com")
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Vary") != "" {
		t.Errorf("no allow-list: %d %v", r.StatusCode, r.Header)
	}
	if r := do(t, "OPTIONS", v.srv.URL+seg, "Origin", "https://player.example.com", "Access-Control-Request-Method", "GET"); r.StatusCode != 403 {
		t.Errorf("preflight without an allow-list: %d", r.StatusCode)
	}
	if r := do(t, "OPTIONS", v.srv.URL+seg); r.StatusCode != 204 || !strings.Contains(r.Header.Get("Allow"), "GET") {
		t.Errorf("plain OPTIONS: %d %v", r.StatusCode, r.Header)
	}
	if r := do(t, "POST", v.srv.URL+seg); r.StatusCode != 405 || r.Header.Get("Allow") != "GET, HEAD, OPTIONS" {
		t.Errorf("POST: %d %v", r.StatusCode, r.Header)
	}

	w := newFixtureEdgeWith(t, func(c *edge.Config) { c.AllowedOrigins = []string{"*"} })
	r = do(t, "GET", w.srv.URL+"/t/"+w.token(1)+seg, "Origin", "https://anyone.example")
	if r.StatusCode != 200 || r.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("any origin: %d %v", r.StatusCode, r.Header)
	}

	for _, bad := range []string{"player.example.com", "https://player.example.com/app", "ftp://player.example.com", "https://user@player.example.com", "https://"} {
		fx := v.fx
		_, err := edge.New(t.Context(), edge.Config{Store: fx.Store, KEK: fx.KEK, Tokens: delivery.NewKeys(v.key), AllowedOrigins: []string{bad}})
		if err == nil || !strings.Contains(err.Error(), "allowed origin") {
			t.Errorf("origin %q: err = %v", bad, err)
		}
	}
}

// Audio is served as audio, video as video.
func TestContentTypePerTrack(t *testing.T) {
	v := newFixtureEdge(t)
	if v.m.Audio == nil {
		t.Fatal("the fixture has no audio")
	}
	tok := v.token(3)
	for _, tc := range []struct {
		ref  asset.Ref
		want string
	}{
		{asset.Init(v.m.Audio.Name), asset.TypeAudio},
		{asset.Segment(v.m.Audio.Name, "", 1), asset.TypeAudio},
		{asset.Init(v.m.Video[0].Name), asset.TypeVideo},
		{asset.Segment(v.m.Video[0].Name, "", 1), asset.TypeVideo},
	} {
		url := v.srv.URL + "/t/" + tok + "/assets/" + v.m.AssetID + "/" + tc.ref.Path()
		for _, rng := range []string{"", "bytes=0-9"} {
			r := do(t, "GET", url, "Range", rng)
			if r.StatusCode/100 != 2 || r.Header.Get("Content-Type") != tc.want {
				t.Errorf("%s (range %q): %d %s, want %s", tc.ref.Path(), rng, r.StatusCode, r.Header.Get("Content-Type"), tc.want)
			}
		}
	}
}
