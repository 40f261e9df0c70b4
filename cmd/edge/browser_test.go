package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/fs"
)

// servedSegment is one video segment the edge answered with 200.
type servedSegment struct {
	rung   string
	number int
	sum    [32]byte
}

// recorder wraps the edge's handler and keeps, per token, the video
// segments it served and their bytes' digests.
type recorder struct {
	next    http.Handler
	assetID string
	mu      sync.Mutex
	served  map[string][]servedSegment
}

type capture struct {
	http.ResponseWriter
	code int
	h    io.Writer
}

func (c *capture) WriteHeader(code int)        { c.code = code; c.ResponseWriter.WriteHeader(code) }
func (c *capture) Write(b []byte) (int, error) { c.h.Write(b); return c.ResponseWriter.Write(b) }

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	obj, ok := strings.CutPrefix(r.URL.Path, "/assets/"+rec.assetID+"/")
	ref, err := asset.Parse(obj)
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || err != nil || ref.Kind != asset.KindSegment || ref.Rung == "audio" || r.Method != http.MethodGet || r.Header.Get("Range") != "" {
		rec.next.ServeHTTP(w, r)
		return
	}
	h := sha256.New()
	c := &capture{ResponseWriter: w, code: 200, h: h}
	rec.next.ServeHTTP(c, r)
	if c.code == 200 {
		var s servedSegment
		s.rung, s.number = ref.Rung, ref.Number
		copy(s.sum[:], h.Sum(nil))
		rec.mu.Lock()
		rec.served[tok] = append(rec.served[tok], s)
		rec.mu.Unlock()
	}
}

func (rec *recorder) count(tok string) int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.served[tok])
}

// TestBrowserPlayback: Debian's Chromium (headless) plays a session's
// stream with hls.js, Shaka Player and dash.js (pinned in
// web/package-lock.json) from a page on one origin, the edge on another
// (CORS with preflights: the token travels in the Authorization header).
// Each plays to the end (ended fires, currentTime reaches the duration,
// no player error), every video segment it got is the variant the
// session's pattern names, and a session revoked mid-stream stops.
func TestBrowserPlayback(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is not installed: run make deps (%v)", err)
	}
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	libs := map[string]string{
		"hls.min.js":               filepath.Join(root, "web", "node_modules", "hls.js", "dist", "hls.min.js"),
		"shaka-player.compiled.js": filepath.Join(root, "web", "node_modules", "shaka-player", "dist", "shaka-player.compiled.js"),
		"dash.all.min.js":          filepath.Join(root, "web", "node_modules", "dashjs", "dist", "modern", "umd", "dash.all.min.js"),
	}
	for _, p := range libs {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("the web players are not installed: run make deps (npm ci in web/): %v", err)
		}
	}

	// A sealed, watermarked asset: 12 s of 1280x720 with audio, one 360p
	// rung in 1 s segments (11 carry the mark), processed in chunks: three
	// 4 s windows and the audio's task, stitched by the manifest.
	ctx := t.Context()
	dir := t.TempDir()
	ingest, err := fs.New(filepath.Join(dir, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(testmedia.Clip(t, "sample.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.Put(ctx, "sample.mp4", src, storage.PutOptions{ContentType: asset.TypeVideo}); err != nil {
		t.Fatal(err)
	}
	src.Close()
	out, err := fs.New(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	kekPath := filepath.Join(dir, "kek.json")
	if err := envelope.CreateLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := envelope.OpenKEK(ctx, kekPath, envelope.KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	p, err := profile.Parse([]byte(`{"name":"web","segment_duration":"1s","rungs":[
		{"name":"360p","size":360,"bitrate":800000,"crf":26,"preset":"veryfast","h264_profile":"main"}],"audio":{"bitrate":96000,"sample_rate":48000}}`))
	if err != nil {
		t.Fatal(err)
	}
	const assetID = "web"
	runner := &pipeline.Runner{
		Sources:      func(string) (storage.Store, error) { return ingest, nil },
		Out:          out,
		KEK:          kek,
		Profiles:     func(string) (*profile.Profile, error) { return p, nil },
		WatermarkKey: master,
		TempDir:      dir,
		Log:          slog.New(slog.DiscardHandler),
		ChunkLength:  4 * time.Second,
	}
	var tasks []*asset.Job
	runner.SubmitChunks = func(_ context.Context, ts []*asset.Job) error {
		tasks = append(tasks, ts...)
		return nil
	}
	if _, err := runner.Run(ctx, &asset.Job{V: 1, JobID: "web-1", AssetID: assetID, Source: asset.Source{Bucket: "ingest", Key: "sample.mp4"}, Profile: "web", CreatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 4 {
		t.Fatalf("%d chunk tasks, want 3 windows and the audio's", len(tasks))
	}
	for _, task := range tasks {
		if _, err := runner.RunChunk(ctx, task, nil); err != nil {
			t.Fatal(err)
		}
	}
	m, err := sealed.ReadManifest(ctx, out, assetID)
	if err != nil {
		t.Fatal(err)
	}

	// The digests of both variants of every video segment.
	type segKey struct {
		rung   string
		number int
	}
	variantOf := map[segKey]map[[32]byte]string{}
	positions := map[segKey]int{}
	for i := range m.Video {
		r := &m.Video[i]
		dek, err := sealed.RenditionDEK(kek, assetID, r)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range r.Segments {
			k := segKey{r.Name, s.Number}
			variantOf[k], positions[k] = map[[32]byte]string{}, s.Position
			for _, v := range asset.Variants {
				o, ref := sealed.SegmentObject(r, s, v)
				b, err := sealed.OpenObject(ctx, out, dek, assetID, ref, o)
				if err != nil {
					t.Fatal(err)
				}
				variantOf[k][sha256.Sum256(b)] = v
			}
		}
	}
	code, err := sealed.SessionCode(master, m, 0)
	if err != nil {
		t.Fatal(err)
	}

	// The page's origin, then the edge on another one, with a deny-list.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /player.html", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(root, "web", "player.html"))
	})
	mux.HandleFunc("GET /lib/{name}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := libs[r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeFile(w, r, p)
	})
	page := httptest.NewServer(mux)
	defer page.Close()

	n := testenv.NATS(t)
	nc, err := nats.Connect(n.URL, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := queue.Open(ctx, nc, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	rv, err := queue.OpenRevocations(ctx, nc, queue.RevocationsConfig{CheckInterval: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tokKey, err := delivery.NewHMACKey([]byte("k1"), []byte("browser test token key, 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := edge.New(ctx, edge.Config{Store: out, KEK: kek, Tokens: delivery.NewKeys(tokKey), WatermarkMaster: master,
		Revocations: rv, AllowedOrigins: []string{page.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec := &recorder{next: e.Handler(), assetID: assetID, served: map[string][]servedSegment{}}
	edgeSrv := httptest.NewServer(rec)
	defer edgeSrv.Close()
	if strings.TrimPrefix(page.URL, "http://") == strings.TrimPrefix(edgeSrv.URL, "http://") {
		t.Fatal("the page and the edge share an origin")
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start chromium: %v", err)
	}

	type outcome struct {
		Ended       bool    `json:"ended"`
		CurrentTime float64 `json:"currentTime"`
		Duration    float64 `json:"duration"`
		Error       string  `json:"error"`
	}
	// play opens the page for one player and session and waits for its
	// outcome; during is called every poll while it plays.
	retried := map[string]bool{}
	var play func(player, manifest string, wmid uint64, extra url.Values, during func(tok string)) (outcome, string)
	play = func(player, manifest string, wmid uint64, extra url.Values, during func(tok string)) (outcome, string) {
		tok, err := edge.MintToken(edge.Session{Asset: assetID, WMID: wmid, TTL: time.Hour}, edge.TokenOptions{Manifest: m, WatermarkMaster: master}, tokKey, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		srcURL := edgeSrv.URL + "/assets/" + assetID + "/" + manifest
		q := url.Values{"player": {player}, "src": {srcURL}, "token": {tok}}
		for k, v := range extra {
			q[k] = v
		}
		u := page.URL + "/player.html?" + q.Encode()
		tab, cancel := chromedp.NewContext(browser)
		defer cancel()
		if err := chromedp.Do(tab, chromedp.Navigate(u)); err != nil {
			t.Fatalf("%s: open the page: %v", player, err)
		}
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			o, err := chromedp.Run(tab, chromedp.Evaluate[*outcome](`window.abResult`))
			if err != nil {
				t.Fatalf("%s: %v", player, err)
			}
			if o != nil {
				return *o, tok
			}
			if during != nil {
				during(tok)
			}
			time.Sleep(250 * time.Millisecond)
		}
		events, _ := chromedp.Run(tab, chromedp.Evaluate[[]string](`window.abEvents`))
		// dash.js now and then waits at the very end without ending the
		// stream (currentTime at the duration, no error): the session (a new
		// token) is played once more; a second stall, or any other, fails.
		if n := len(events); player == "dash" && n > 0 && strings.HasPrefix(events[n-1], "waiting@") && !retried[player] {
			if at, err := strconv.ParseFloat(strings.TrimPrefix(events[n-1], "waiting@"), 64); err == nil && at > 11.9 {
				retried[player] = true
				t.Logf("%s: stalled at the end (events %v); playing it once more", player, events)
				cancel()
				return play(player, manifest, wmid, extra, during)
			}
		}
		t.Fatalf("%s: no outcome in 90 s (events %v)", player, events)
		return outcome{}, ""
	}

	checkVariants := func(player, tok string, wmid uint64) {
		pat, err := code.Pattern(wmid)
		if err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		served := rec.served[tok]
		rec.mu.Unlock()
		marked := 0
		for _, s := range served {
			k := segKey{s.rung, s.number}
			got, ok := variantOf[k][s.sum]
			if !ok {
				t.Errorf("%s: %s segment %d: bytes of neither variant", player, s.rung, s.number)
				continue
			}
			want := delivery.Variant(delivery.PackBits(pat), len(pat), positions[k], true)
			if got != want {
				t.Errorf("%s: %s segment %d (position %d): variant %s, the session's pattern says %s", player, s.rung, s.number, positions[k], got, want)
			}
			if positions[k] >= 0 {
				marked++
			}
		}
		if marked < 10 {
			t.Errorf("%s: %d watermark-carrying segments served, want the whole stream's", player, marked)
		}
	}

	for i, pl := range []struct{ player, manifest string }{
		{"hls", "hls/master.m3u8"},
		{"shaka", "dash/manifest.mpd"},
		{"dash", "dash/manifest.mpd"},
	} {
		wmid := uint64(101 * (i + 1))
		o, tok := play(pl.player, pl.manifest, wmid, nil, nil)
		t.Logf("%s: %+v, %d video segments", pl.player, o, rec.count(tok))
		if o.Error != "" || !o.Ended || o.Duration < 11 || o.CurrentTime < o.Duration-0.1 {
			t.Errorf("%s: %+v, want played to the end with no error", pl.player, o)
		}
		checkVariants(pl.player, tok, wmid)
	}

	// Revoked mid-stream: hls.js fetching 2 s ahead gets 403 for the
	// segments after the revocation and stops with an error.
	const revoked = 909
	revokedAt := -1
	o, tok := play("hls", "hls/master.m3u8", revoked, url.Values{"buffer": {"2"}}, func(tok string) {
		if revokedAt < 0 && rec.count(tok) >= 3 {
			revokedAt = rec.count(tok)
			if err := rv.Revoke(ctx, edge.WMIDRevocationKey(revoked), "browser test"); err != nil {
				t.Fatal(err)
			}
		}
	})
	t.Logf("revoked after %d segments: %+v, %d segments served", revokedAt, o, rec.count(tok))
	if revokedAt < 0 || o.Ended || o.Error == "" || rec.count(tok) >= len(m.Video[0].Segments) {
		t.Errorf("revoked session: %+v after %d of %d segments, want playback stopped with an error", o, rec.count(tok), len(m.Video[0].Segments))
	}
}
