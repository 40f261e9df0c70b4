package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/sealed"
)

var loadTime = flag.Duration("load-time", 10*time.Second, "duration of each load run in BenchmarkEdgeLoad")

// load sends GETs for urls (round robin) from conc clients for d and
// returns requests/s and the 99th-percentile latency. Every response must
// be 200 with the body size given for its URL.
func load(tb testing.TB, urls []string, sizes []int64, conc int, d time.Duration) (rps float64, p99 time.Duration) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var failed error // guarded by mu
	fail := func(err error) {
		mu.Lock()
		if failed == nil {
			failed = err
		}
		mu.Unlock()
	}
	start := time.Now()
	for c := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for i := c; ctx.Err() == nil; i++ {
				t0 := time.Now()
				resp, err := client.Get(urls[i%len(urls)])
				if err != nil {
					if ctx.Err() == nil {
						fail(err)
					}
					break
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil && ctx.Err() != nil {
					break // cut off at the end of the run
				}
				if resp.StatusCode != 200 || err != nil || n != sizes[i%len(urls)] {
					fail(fmt.Errorf("%s: %d, %d of %d bytes (%v)", urls[i%len(urls)], resp.StatusCode, n, sizes[i%len(urls)], err))
					break
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if failed != nil {
		tb.Fatal(failed)
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	return float64(len(lat)) / elapsed.Seconds(), lat[len(lat)*99/100]
}

// BenchmarkEdgeLoad measures segment requests through the edge (token
// check, A/B choice, decryption, serve) next to the same sealed objects
// served as stored (no token, no decryption), both from the same MinIO in
// the same run, by a load generator on loopback. Goal: edge/raw >= 0.7.
func BenchmarkEdgeLoad(b *testing.B) {
	f := fleet.New(b)
	f.StartWorker("w1", "--threads", "2")
	job, assetID := f.Upload("uploads/load.mp4", testmedia.Clip(b, "main.mp4"))
	if st := f.WaitState(job, 5*time.Minute, fleet.Final); st.Status != asset.StatusDone {
		b.Fatalf("job: %+v", st)
	}
	m, err := sealed.ReadManifest(b.Context(), f.Out, assetID)
	if err != nil {
		b.Fatal(err)
	}
	var s settings
	fl := flag.NewFlagSet("bench", flag.ContinueOnError)
	s.flags(fl)
	s.nats.URL, s.s3.Endpoint, s.s3.AccessKey, s.kekc.URI, s.wmKey.Path = f.NATS.URL, f.MinIO.Endpoint, f.MinIO.AccessKey, f.KEKPath, f.WMKey
	s.tokenKey = filepath.Join(b.TempDir(), "token.key")
	fleet.WriteFile(b, s.tokenKey, hex.EncodeToString([]byte("edge bench token key, 32 bytes.."))+"\n")
	b.Setenv("ABSEAL_S3_SECRET_KEY", f.MinIO.SecretKey)
	e, closeFn, err := newEdgeFromSettings(b.Context(), &s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer closeFn()
	edgeSrv := httptest.NewServer(e.Handler())
	defer edgeSrv.Close()
	// The same objects as stored: one GET from MinIO, streamed out.
	rawSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc, err := f.Out.Open(r.Context(), r.URL.Path[1:], nil)
		if err != nil {
			http.Error(w, err.Error(), 404)
			return
		}
		defer rc.Close()
		w.Header().Set("Content-Type", "video/mp4")
		io.Copy(w, rc)
	}))
	defer rawSrv.Close()

	var out, errb = new(bytesBuffer), new(bytesBuffer)
	args := []string{"token", "--nats-url", s.nats.URL, "--s3-endpoint", s.s3.Endpoint, "--s3-access-key", s.s3.AccessKey,
		"--token-key-file", s.tokenKey, "--asset", assetID, "--wmid", "77"}
	if err := run(b.Context(), args, out, errb); err != nil {
		b.Fatalf("token: %v %s", err, errb)
	}
	tok := out.trimmed()
	r := m.Video[0]
	var edgeURLs, rawURLs []string
	var edgeSizes, rawSizes []int64
	for _, sg := range r.Segments {
		edgeSizes = append(edgeSizes, sg.Size)
		rawSizes = append(rawSizes, sg.Variants["a"].Size)
		edgeURLs = append(edgeURLs, edgeSrv.URL+"/t/"+tok+"/assets/"+assetID+"/"+r.Name+"/"+asset.SegmentFile(sg.Number))
		rawURLs = append(rawURLs, rawSrv.URL+"/"+sg.Variants["a"].Key)
	}
	const conc = 16
	b.ResetTimer()
	var eRPS, rRPS float64
	var eP99, rP99 time.Duration
	for range b.N {
		rRPS, rP99 = load(b, rawURLs, rawSizes, conc, *loadTime)
		eRPS, eP99 = load(b, edgeURLs, edgeSizes, conc, *loadTime)
	}
	b.ReportMetric(eRPS, "edge-req/s")
	b.ReportMetric(float64(eP99.Microseconds())/1000, "edge-p99-ms")
	b.ReportMetric(rRPS, "raw-req/s")
	b.ReportMetric(float64(rP99.Microseconds())/1000, "raw-p99-ms")
	b.ReportMetric(eRPS/rRPS, "edge/raw")
	b.ReportMetric(float64(r.Segments[0].Size)/1024, "segment-KiB")
}

// TestEdgeLoadSlice is a small, fast slice of BenchmarkEdgeLoad: under 16
// concurrent clients the edge answers every request with 200 and the
// segment's full plaintext (load fails otherwise), and every client gets
// at least one request through in the second. Throughput itself is a
// figure for make bench, not an assertion: under -race on a shared
// machine it varies several-fold.
func TestEdgeLoadSlice(t *testing.T) {
	*loadTime = time.Second
	res := testing.Benchmark(BenchmarkEdgeLoad)
	if res.N == 0 || res.Extra["edge-req/s"] < 16 || res.Extra["raw-req/s"] < 16 {
		t.Fatalf("load slice: %+v", res)
	}
	t.Logf("edge %.0f req/s (p99 %.1f ms), raw %.0f req/s, ratio %.2f",
		res.Extra["edge-req/s"], res.Extra["edge-p99-ms"], res.Extra["raw-req/s"], res.Extra["edge/raw"])
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *bytesBuffer) String() string              { return string(w.b) }
func (w *bytesBuffer) trimmed() string {
	s := string(w.b)
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}
