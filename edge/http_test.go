package edge_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/storage"
)

// segmentPath is the neutral path of a watermark-carrying video segment.
func (v *fixtureEdge) segmentPath() (string, asset.Seg) {
	r := v.m.Video[0]
	for _, s := range r.Segments {
		if s.Position >= 0 {
			return "/assets/" + v.m.AssetID + "/" + asset.Segment(r.Name, "", s.Number).Path(), s
		}
	}
	v.t.Fatal("no watermark-carrying segment")
	return "", asset.Seg{}
}

// countingStore counts the opens of segment objects and, with fail,
// fails them as a remote store would: its error names the key.
type countingStore struct {
	storage.Store
	opens atomic.Int64
	fail  bool
}

func (c *countingStore) Open(ctx context.Context, key string, rng *storage.Range) (io.ReadCloser, error) {
	if strings.Contains(key, "/seg-") && !strings.Contains(key, "WMPaceInfo") {
		c.opens.Add(1)
		if c.fail {
			return nil, fmt.Errorf("s3: get object %s: connection reset by peer", key)
		}
	}
	return c.Store.Open(ctx, key, rng)
}

func getHdr(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// Many byte ranges are refused before anything is read or decrypted; up
// to MaxRangeParts are served from one decryption of the object.
func TestRangePartsBounded(t *testing.T) {
	cs := &countingStore{}
	v := newFixtureEdgeWith(t, func(c *edge.Config) { cs.Store = c.Store; c.Store = cs })
	seg, s := v.segmentPath()
	url := v.srv.URL + "/t/" + v.token(1) + seg
	// Distinct one-byte ranges, fewer than the segment's bytes (a server
	// that serves them all sends a part header per byte).
	ranges := make([]string, min(12_000, int(s.Size)-1))
	for i := range ranges {
		ranges[i] = fmt.Sprintf("%d-%d", i, i)
	}
	r, body := getHdr(t, url, "Range", "bytes="+strings.Join(ranges, ","))
	if r.StatusCode != http.StatusRequestedRangeNotSatisfiable || len(body) > 1024 {
		t.Fatalf("%d ranges on a %d-byte segment: %d, %d bytes", len(ranges), s.Size, r.StatusCode, len(body))
	}
	if n := cs.opens.Load(); n != 0 {
		t.Fatalf("%d ranges opened the segment %d times", len(ranges), n)
	}
	_, full := getHdr(t, url)
	cs.opens.Store(0)
	r, body = getHdr(t, url, "Range", "bytes=0-0,10-19,100-199,-5")
	if r.StatusCode != http.StatusPartialContent || !strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/byteranges") {
		t.Fatalf("4 ranges: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if !strings.Contains(string(body), string(full[100:200])) || len(body) > 2048 {
		t.Fatalf("4 ranges: a %d-byte body without the range asked for", len(body))
	}
	if n := cs.opens.Load(); n != 1 {
		t.Fatalf("4 ranges opened the segment %d times, want once", n)
	}
	if r, part := getHdr(t, url, "Range", "bytes=10-19"); r.StatusCode != 206 || string(part) != string(full[10:20]) {
		t.Fatalf("one range: %d %q", r.StatusCode, part)
	}
}

// Unclean or partial paths are 404, never a redirect, and no response
// header repeats the token.
func TestUncleanPathsNotRedirected(t *testing.T) {
	v := newFixtureEdge(t)
	tok := v.token(1)
	seg, _ := v.segmentPath()
	rend := v.m.Video[0].Name
	for _, p := range []string{
		"/t/" + tok + strings.Replace(seg, "/"+rend+"/", "//"+rend+"/", 1),
		"/t/" + tok + strings.Replace(seg, "/"+rend+"/", "/"+rend+"/./", 1),
		"/t/" + tok + strings.Replace(seg, "/"+rend+"/", "/hls/../"+rend+"/", 1),
		"/t/" + tok + "/assets/" + v.m.AssetID + "/hls/",
		"/t/" + tok + "/assets/" + v.m.AssetID,
		"/t/" + tok + "/assets/" + v.m.AssetID + "/",
		"/t/" + tok,
		"/t//assets/" + v.m.AssetID + "/hls/master.m3u8",
		"//t/" + tok + seg,
	} {
		r, body := getHdr(t, v.srv.URL+p)
		if r.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, r.StatusCode)
		}
		for k, vs := range r.Header {
			for _, val := range vs {
				if strings.Contains(val, tok) {
					t.Errorf("%s: header %s repeats the token", p, k)
				}
			}
		}
		if strings.Contains(string(body), tok) {
			t.Errorf("%s: the body repeats the token", p)
		}
	}
	if r, _ := getHdr(t, v.srv.URL+"/t/"+tok+seg); r.StatusCode != 200 {
		t.Fatalf("the clean path: %d", r.StatusCode)
	}
}

// /metrics and /readyz are on the admin handler only.
func TestAdminHandlerOnly(t *testing.T) {
	v := newFixtureEdge(t)
	admin := httptest.NewServer(v.e.AdminHandler())
	defer admin.Close()
	seg, _ := v.segmentPath()
	getHdr(t, v.srv.URL+seg) // a 401, counted
	for _, p := range []string{"/metrics", "/readyz"} {
		if r, _ := getHdr(t, v.srv.URL+p); r.StatusCode != 404 {
			t.Errorf("public %s: %d, want 404", p, r.StatusCode)
		}
	}
	if r, _ := getHdr(t, v.srv.URL+"/healthz"); r.StatusCode != 200 {
		t.Errorf("public /healthz: %d", r.StatusCode)
	}
	r, metrics := getHdr(t, admin.URL+"/metrics")
	if r.StatusCode != 200 || !strings.Contains(string(metrics), `abseal_edge_requests_total{code="401",kind="segment"}`) {
		t.Errorf("admin /metrics: %d, without the refused request", r.StatusCode)
	}
	if r, _ := getHdr(t, admin.URL+"/readyz"); r.StatusCode != 200 {
		t.Errorf("admin /readyz: %d", r.StatusCode)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An internal error is logged with the asset, rendition, segment number
// and an error class, never the object key (which names the variant).
func TestInternalErrorLogNamesNoVariant(t *testing.T) {
	cs := &countingStore{fail: true}
	logs := &lockedBuffer{}
	v := newFixtureEdgeWith(t, func(c *edge.Config) {
		cs.Store = c.Store
		c.Store = cs
		c.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	seg, s := v.segmentPath()
	for _, hdr := range [][]string{nil, {"Range", "bytes=0-99"}} {
		if r, body := getHdr(t, v.srv.URL+"/t/"+v.token(1)+seg, hdr...); r.StatusCode != http.StatusBadGateway || strings.Contains(string(body), "seg-") {
			t.Fatalf("failing store %v: %d %q", hdr, r.StatusCode, body)
		}
	}
	out := logs.String()
	if strings.Count(out, `"msg":"edge: internal error"`) != 2 {
		t.Fatalf("want two internal error lines:\n%s", out)
	}
	for _, bad := range []string{"/a/", "/b/", "seg-", "connection reset"} {
		if strings.Contains(out, bad) {
			t.Errorf("the log holds %q:\n%s", bad, out)
		}
	}
	for _, want := range []string{`"asset":"` + v.m.AssetID + `"`, `"rendition":"` + v.m.Video[0].Name + `"`, fmt.Sprintf(`"segment":%d`, s.Number), `"class":"internal"`, `"stage":"open"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %s:\n%s", want, out)
		}
	}
}

// HEAD of a segment gives its headers (the size of what GET sends).
func TestHeadSegment(t *testing.T) {
	v := newFixtureEdge(t)
	seg, s := v.segmentPath()
	req, _ := http.NewRequestWithContext(t.Context(), "HEAD", v.srv.URL+"/t/"+v.token(1)+seg, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != s.Size {
		t.Fatalf("HEAD: %d, Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, s.Size)
	}
}
