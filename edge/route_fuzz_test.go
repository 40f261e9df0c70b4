package edge_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzHandlerPath: whatever the path, the public handler never redirects
// and repeats no token in its headers.
func FuzzHandlerPath(f *testing.F) {
	v := newFixtureEdgeWith(f, nil)
	tok := v.token(1)
	for _, p := range []string{
		"/healthz", "/metrics", "/t/" + tok + "/assets/fixture-v1/hls/master.m3u8",
		"/t/" + tok + "/assets/fixture-v1//90p/seg-00002.m4s", "/t/" + tok + "/assets/fixture-v1/90p/../hls/master.m3u8",
		"/t/" + tok + "/assets/fixture-v1", "/t/" + tok, "/assets/fixture-v1/90p/a/seg-00002.m4s", "//", "/t//assets/x/y",
	} {
		f.Add(p)
	}
	h := v.e.Handler()
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		req := httptest.NewRequest("GET", "http://edge/", nil)
		req.URL.Path, req.URL.RawPath = p, ""
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 300 && w.Code < 400 {
			t.Fatalf("%q: redirect %d to %q", p, w.Code, w.Header().Get("Location"))
		}
		for k, vs := range w.Header() {
			for _, val := range vs {
				if strings.Contains(val, tok) {
					t.Fatalf("%q: header %s repeats the token", p, k)
				}
			}
		}
		if w.Code == http.StatusOK && strings.Contains(p, "//") {
			t.Fatalf("%q: an unclean path served", p)
		}
	})
}
