package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/sealed"
)

// TestStalledWorker: two live workers on one job, with real processes.
// Worker 1 stops itself (SIGSTOP) at a fencing point: its run's marker
// written and rendering not begun, its first segment stored, or
// everything stored but the manifest. The ack wait passes, worker 2 takes
// the job and completes it; worker 1 gets SIGCONT and runs on. Afterwards
// there is exactly one manifest, naming worker 2's run; every object it
// names opens at its place with its digest and nothing else of the asset
// is left (worker 1 deleted its own run); the edge serves a session from
// it, and (at the manifest point) the detector names that session from a
// re-encoded copy.
func TestStalledWorker(t *testing.T) {
	for _, point := range []string{pipeline.StallTranscode, pipeline.StallPut, pipeline.StallManifest} {
		t.Run(point, func(t *testing.T) {
			f := fleet.New(t)
			fleet.WriteFile(t, filepath.Join(f.Profiles, "default.json"), `{"name":"default","segment_duration":"0.5s","rungs":[
				{"name":"360p","size":360,"bitrate":1000000,"crf":23,"preset":"ultrafast","h264_profile":"main"}],"audio":{"bitrate":0}}`)
			flags := []string{"--threads", "2", "--wmid-bits", "16"}
			w1 := f.StartWorkerEnv("stalled", []string{"ABSEAL_TEST_STALL_AT=" + point}, flags...)
			job, assetID := f.Upload("uploads/stall.mp4", testmedia.Clip(t, "forensic-56s.mp4"))
			for deadline := time.Now().Add(3 * time.Minute); !w1.Stopped(); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("worker 1 never stopped at %s:\n%s", point, w1.Logs.String())
				}
			}
			stalledRun, _ := waitLine(t, w1, "stopping at a fault-injection point (ABSEAL_TEST_STALL_AT)")["run"].(string)
			time.Sleep(4 * time.Second) // past the ack wait (3s)
			w2 := f.StartWorker("second", flags...)
			if st := f.WaitState(job, 4*time.Minute, fleet.Final); st.Status != asset.StatusDone || st.Worker != "second" {
				t.Fatalf("state %+v, want done by the second worker", st)
			}
			done := waitLine(t, w2, "job done")
			if done["skipped"] != false {
				t.Fatalf("worker 2: %v", done)
			}
			w1.Signal(t, syscall.SIGCONT)
			stale := waitLine(t, w1, "job done")
			if stale["skipped"] != true {
				t.Fatalf("worker 1 after SIGCONT: %v, want done by the other run", stale)
			}
			m := f.CheckAsset(assetID)
			if n := f.Manifests(); n != 1 {
				t.Fatalf("%d manifests, want 1", n)
			}
			if m.Run == stalledRun || m.Run != done["run"] {
				t.Fatalf("manifest run %s; worker 1 ran %s, worker 2 %v", m.Run, stalledRun, done["run"])
			}
			if len(w1.Lines("another run of the job committed first; this run's objects are deleted")) != 1 {
				t.Fatalf("worker 1 did not end as done by the other run:\n%s", w1.Logs.String())
			}
			// A session through the edge (byte for byte the session's
			// stream); at the last fencing point, where worker 1 had
			// stored every object, re-encoded and identified too.
			const wmid = 0x2C5A
			sess := edgeSession(t, f, m, wmid)
			if point != pipeline.StallManifest {
				return
			}
			leak := testmedia.Reencode(t, sess, testmedia.CRF28At360p...)
			r := detectFromBucket(t, f, assetID, leak)
			if r.Verdict != "identified" || r.WMID == nil || *r.WMID != wmid {
				t.Fatalf("verdict %s wmid %v, want %d", r.Verdict, r.WMID, wmid)
			}
		})
	}
}

// waitLine waits for w's first log record with msg.
func waitLine(t *testing.T, w *fleet.Worker, msg string) map[string]any {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if l := w.Lines(msg); len(l) > 0 {
			return l[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s never logged %q:\n%s", w.Name, msg, w.Logs.String())
		}
	}
}

// edgeSession fetches the first rendition as session wmid through an edge
// over the fleet's bucket, as a player does (HLS), and writes the stream
// to a file.
func edgeSession(t *testing.T, f *fleet.Fleet, m *asset.Manifest, wmid uint64) string {
	t.Helper()
	ctx := t.Context()
	master, _, err := envelope.ReadWatermarkKey(f.WMKey, f.KEK, false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := delivery.NewHMACKey([]byte("t1"), []byte("TestStalledWorker token key, 32 b"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := edge.New(ctx, edge.Config{Store: f.Out, KEK: f.KEK, Tokens: delivery.NewKeys(key), WatermarkMaster: master})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	tok, err := edge.MintToken(edge.Session{Asset: m.AssetID, WMID: wmid, TTL: time.Hour}, edge.TokenOptions{Manifest: m}, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	get := func(u string) []byte { return testenv.Get200(t, u) }
	base, _ := url.Parse(hs.URL + "/t/" + tok + "/assets/" + m.AssetID + "/" + asset.HLSMedia(m.Video[0].Name).Path())
	var stream bytes.Buffer
	segs := 0
	sc := bufio.NewScanner(bytes.NewReader(get(base.String())))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
			u, _ := base.Parse(strings.Trim(strings.TrimPrefix(line, "#EXT-X-MAP:URI="), `"`))
			stream.Write(get(u.String()))
		case line != "" && !strings.HasPrefix(line, "#"):
			u, _ := base.Parse(line)
			stream.Write(get(u.String()))
			segs++
		}
	}
	if segs != len(m.Video[0].Segments) {
		t.Fatalf("the edge served %d segments, the manifest has %d", segs, len(m.Video[0].Segments))
	}
	// The edge's bytes are the session's: the same as assembled from the
	// sealed objects with the session's pattern.
	code, err := sealed.SessionCode(master, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	pat, err := code.Pattern(wmid)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := sealed.WriteSession(ctx, f.Out, f.KEK, m, m.Video[0].Name, pat, &want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stream.Bytes(), want.Bytes()) {
		t.Fatalf("the edge's stream (%d bytes) differs from the session's (%d bytes)", stream.Len(), want.Len())
	}
	p := filepath.Join(t.TempDir(), fmt.Sprintf("session-%d.mp4", wmid))
	if err := os.WriteFile(p, stream.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
