package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/sealed"
)

const cdnSecret = "the CDN's origin secret for the abseal tests"

// originCounter counts the requests that reach the origin, per path.
type originCounter struct {
	next  http.Handler
	total atomic.Int64
	mu    sync.Mutex
	paths map[string]int
}

func (o *originCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.total.Add(1)
	o.mu.Lock()
	o.paths[r.URL.Path]++
	o.mu.Unlock()
	o.next.ServeHTTP(w, r)
}

// startCDN runs Debian's nginx as a caching reverse proxy on a loopback
// port in front of origin, adding the origin secret as a CDN's origin
// configuration does, and returns its base URL.
func startCDN(tb testing.TB, origin string) string {
	tb.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			tb.Fatalf("nginx is not installed: run make deps (%v)", err)
		}
		bin = "/usr/sbin/nginx"
	}
	dir := tb.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  proxy_cache_path %[1]s/cache levels=1:2 keys_zone=abseal:10m max_size=2g inactive=1h use_temp_path=off;
  server {
    listen %[2]s;
    location /origin/ {
      proxy_pass %[3]s;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Abseal-Origin-Secret "%[4]s";
      proxy_cache abseal;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 30s;
      add_header X-Cache $upstream_cache_status;
    }
  }
}
`, dir, addr, origin, cdnSecret)
	cp := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cp, []byte(conf), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", cp, "-e", filepath.Join(dir, "error.log"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			tb.Fatalf("nginx did not start: %s %s", out.String(), log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cdnSession fetches every video segment of rendition r for one session
// as a CDN edge function does: the WMPaceInfo sidecar through the cache,
// the session's bit at its position, then that variant's path through
// the cache. It returns the segments' bytes.
func cdnSession(tb testing.TB, client *http.Client, cdn, assetID string, r *asset.Rendition, pattern []byte, patLen int) [][]byte {
	var segs [][]byte
	get := func(path string) []byte {
		resp, err := client.Get(cdn + "/origin/assets/" + assetID + "/" + path)
		if err != nil {
			tb.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			tb.Fatalf("%s: %d %v", path, resp.StatusCode, err)
		}
		return b
	}
	for _, s := range r.Segments {
		pace, err := cmaf.ParsePaceInfo(get(asset.PaceInfo(r.Name, s.Number).Path()))
		if err != nil {
			tb.Fatal(err)
		}
		v := delivery.Variant(pattern, patLen, pace.Position, true)
		segs = append(segs, get(asset.Segment(r.Name, v, s.Number).Path()))
	}
	return segs
}

// TestCDNCachesVariants: with a caching proxy in front of the edge in
// origin mode, 24 sessions fetching a whole rendition cause one origin
// fetch per distinct object (at most both variants and the sidecar of
// each segment), not one per session; each session's bytes are those
// its token path gives.
func TestCDNCachesVariants(t *testing.T) {
	v := newFixtureEdge(t, false, func(c *edge.Config) { c.OriginSecret = []byte(cdnSecret) })
	oc := &originCounter{next: v.e.Handler(), paths: map[string]int{}}
	origin := httptest.NewServer(oc)
	defer origin.Close()
	cdn := startCDN(t, origin.URL)
	r := &v.m.Video[0]
	code, err := sealed.SessionCode(v.fx.Master, v.m, 0)
	if err != nil {
		t.Fatal(err)
	}
	const sessions = 24
	client := &http.Client{Timeout: 30 * time.Second}
	var wg sync.WaitGroup
	got := make([][][]byte, sessions)
	for i := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pat, err := code.Pattern(uint64(i + 1))
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = cdnSession(t, client, cdn, v.m.AssetID, r, delivery.PackBits(pat), len(pat))
		}()
	}
	wg.Wait()
	segs := len(r.Segments)
	oc.mu.Lock()
	for p, n := range oc.paths {
		if n != 1 {
			t.Errorf("%s reached the origin %d times", p, n)
		}
	}
	distinct := len(oc.paths)
	oc.mu.Unlock()
	t.Logf("%d sessions x %d segments (+ sidecars) through the cache: %d origin requests for %d distinct objects", sessions, segs, oc.total.Load(), distinct)
	if n := oc.total.Load(); n > int64(3*segs) || n < int64(segs) {
		t.Errorf("%d origin requests for %d sessions of %d segments: want at most 2 variants + 1 sidecar per segment", n, sessions, segs)
	}
	// The bytes match the token path for a few sessions.
	for i := range 3 {
		tok := v.token(edge.Session{WMID: uint64(i + 1)}, false)
		for k, s := range r.Segments {
			_, want := get(t, http.DefaultClient, origin.URL+"/t/"+tok+"/assets/"+v.m.AssetID+"/"+asset.Segment(r.Name, "", s.Number).Path())
			if !bytes.Equal(got[i][k], want) {
				t.Fatalf("session %d segment %d: the CDN's bytes differ from the token path's", i+1, s.Number)
			}
		}
	}
}

// BenchmarkCDNShape: 240 sessions fetch a whole rendition (the fixture's
// 96 segments), 16 at a time, either through a caching proxy (nginx) in
// front of the edge in origin mode, the CDN shape (the proxy keeps both
// variants; the variant picked per session by the client, as an edge
// function does), through the reference edge function itself
// (cdn/abseal-edge.mjs in one Node process, token checked per request,
// in front of the same cache), or from the edge's token paths, today's
// per-session decryption. Reported per shape: segments/s delivered to the
// sessions, and the requests that reached the origin.
func BenchmarkCDNShape(b *testing.B) {
	const sessions, conc = 240, 16
	dir := b.TempDir()
	hmacHex := hex.EncodeToString([]byte("BenchmarkCDNShape's token key, 32 bytes or more"))
	os.WriteFile(filepath.Join(dir, "hmac"), []byte(hmacHex), 0o600)
	hk, err := delivery.LoadKey(filepath.Join(dir, "hmac"))
	if err != nil {
		b.Fatal(err)
	}
	v := newFixtureEdge(b, false, func(c *edge.Config) {
		c.OriginSecret = []byte(cdnSecret)
		fixtureKey, _ := delivery.NewHMACKey([]byte("k1"), []byte("cmd/edge fixture token key, 32 b"))
		c.Tokens = delivery.NewKeys(fixtureKey, hk)
	})
	oc := &originCounter{next: v.e.Handler(), paths: map[string]int{}}
	origin := httptest.NewServer(oc)
	defer origin.Close()
	cdn := startCDN(b, origin.URL)
	fn := startEdgeFunction(b, map[string]any{"origin": cdn, "tokenKeys": []string{hmacHex}})
	r := &v.m.Video[0]
	code, err := sealed.SessionCode(v.fx.Master, v.m, 0)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	run := func(session func(i int)) time.Duration {
		start := time.Now()
		work := make(chan int)
		var wg sync.WaitGroup
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					session(i)
				}
			}()
		}
		for i := range sessions {
			work <- i
		}
		close(work)
		wg.Wait()
		return time.Since(start)
	}
	segs := len(r.Segments)
	for b.Loop() {
		oc.total.Store(0)
		cdnTime := run(func(i int) {
			pat, _ := code.Pattern(uint64(i + 1))
			cdnSession(b, client, cdn, v.m.AssetID, r, delivery.PackBits(pat), len(pat))
		})
		cdnOrigin := oc.total.Load()
		oc.total.Store(0)
		fnTime := run(func(i int) {
			tok, err := edge.MintToken(edge.Session{Asset: v.m.AssetID, WMID: uint64(i + 1), TTL: time.Hour},
				edge.TokenOptions{Manifest: v.m, Direct: true, WatermarkMaster: v.fx.Master}, hk, time.Now())
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range r.Segments {
				resp, err := client.Get(fn + "/t/" + tok + "/assets/" + v.m.AssetID + "/" + asset.Segment(r.Name, "", s.Number).Path())
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("edge function: %d %s", resp.StatusCode, body)
				}
			}
		})
		fnOrigin := oc.total.Load()
		oc.total.Store(0)
		edgeTime := run(func(i int) {
			tok := v.token(edge.Session{WMID: uint64(i + 1)}, false)
			for _, s := range r.Segments {
				resp, err := client.Get(origin.URL + "/t/" + tok + "/assets/" + v.m.AssetID + "/" + asset.Segment(r.Name, "", s.Number).Path())
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("token path: %d", resp.StatusCode)
				}
			}
		})
		edgeOrigin := oc.total.Load()
		n := float64(sessions * segs)
		b.ReportMetric(n/cdnTime.Seconds(), "cdn-segments/s")
		b.ReportMetric(float64(cdnOrigin), "cdn-origin-requests")
		b.ReportMetric(n/fnTime.Seconds(), "function-segments/s")
		b.ReportMetric(float64(fnOrigin), "function-origin-requests")
		b.ReportMetric(n/edgeTime.Seconds(), "edge-segments/s")
		b.ReportMetric(float64(edgeOrigin), "edge-origin-requests")
		b.Logf("%d sessions x %d segments: through the cache %.0f segments/s, %d origin requests (the first pass fills the cache); "+
			"through the JS edge function (one Node process) and the cache %.0f segments/s, %d origin requests; from the edge %.0f segments/s, %d origin requests",
			sessions, segs, n/cdnTime.Seconds(), cdnOrigin, n/fnTime.Seconds(), fnOrigin, n/edgeTime.Seconds(), edgeOrigin)
	}
}
