package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/internal/fixture"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
)

// fixtureEdge is an edge serving the sealed-v1 fixture (a filesystem
// store), without the worker, MinIO or FFmpeg.
type fixtureEdge struct {
	t    testing.TB
	fx   *fixture.SealedV1
	m    *asset.Manifest
	key  *delivery.Key
	e    *edge.Server
	logs *fleet.LockedBuffer
	// natsURL is the JetStream server of the deny-list, when there is one.
	natsURL string
	nc      *nats.Conn
}

// newFixtureEdge makes the edge; with a deny-list, it watches one on a
// new embedded JetStream server (checked every 100ms). cfg, if not nil,
// adjusts the configuration.
func newFixtureEdge(t testing.TB, denyList bool, cfg func(*edge.Config)) *fixtureEdge {
	t.Helper()
	fx := fixture.LoadSealedV1(t)
	m, err := sealed.ReadManifest(t.Context(), fx.Store, fx.AssetID)
	if err != nil {
		t.Fatal(err)
	}
	key, err := delivery.NewHMACKey([]byte("k1"), []byte("cmd/edge fixture token key, 32 b"))
	if err != nil {
		t.Fatal(err)
	}
	v := &fixtureEdge{t: t, fx: fx, m: m, key: key, logs: &fleet.LockedBuffer{}}
	log := slog.New(slog.NewJSONHandler(v.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := edge.Config{Store: fx.Store, KEK: fx.KEK, Tokens: delivery.NewKeys(key), WatermarkMaster: fx.Master, Log: log}
	if denyList {
		n := testenv.NATS(t)
		v.natsURL = n.URL
		if v.nc, err = nats.Connect(n.URL, nats.MaxReconnects(-1)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(v.nc.Close)
		_, err = queue.Open(t.Context(), v.nc, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		rv, err := queue.OpenRevocations(t.Context(), v.nc, queue.RevocationsConfig{CheckInterval: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		c.Revocations = rv
	}
	if cfg != nil {
		cfg(&c)
	}
	if v.e, err = edge.New(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.e.Close)
	return v
}

// token mints a session token; direct carries the pattern.
func (v *fixtureEdge) token(s edge.Session, direct bool) string {
	v.t.Helper()
	s.Asset = v.m.AssetID
	if s.TTL == 0 {
		s.TTL = time.Hour
	}
	tok, err := edge.MintToken(s, edge.TokenOptions{Manifest: v.m, Direct: direct, WatermarkMaster: v.fx.Master}, v.key, time.Now())
	if err != nil {
		v.t.Fatal(err)
	}
	return tok
}

// segment is the neutral path of a watermark-carrying video segment.
func (v *fixtureEdge) segment() string {
	r := v.m.Video[0]
	for _, s := range r.Segments {
		if s.Position >= 0 {
			return "/assets/" + v.m.AssetID + "/" + asset.Segment(r.Name, "", s.Number).Path()
		}
	}
	v.t.Fatal("the fixture has no watermark-carrying segment")
	return ""
}

// get requests url with header pairs and returns the response and body.
func get(t testing.TB, client *http.Client, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// serve serves h on a test server closed at the end of the test.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// waitStatus polls url until it answers want, for at most d.
func waitStatus(t *testing.T, url string, want int, d time.Duration, hdr ...string) *http.Response {
	t.Helper()
	start := time.Now()
	for {
		r, body := get(t, http.DefaultClient, url, hdr...)
		if r.StatusCode == want {
			return r
		}
		if time.Since(start) > d {
			t.Fatalf("%s: still %d %q after %s, want %d", url, r.StatusCode, body[:min(len(body), 80)], d, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
