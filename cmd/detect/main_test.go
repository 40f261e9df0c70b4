package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage/fs"
	"github.com/abseal/abseal/watermark"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

const masterKey = "forensic test master key, 32 b.."

// session writes the stream a session with wmid receives.
func session(t *testing.T, assetID string, code *watermark.Code, wmid uint64, positions []int) string {
	pat, err := code.Pattern(wmid)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "session.mp4")
	if err := detect.AssembleSession(assetID, "360p", pat, positions, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// renderAsset renders src with profile p as the watermarked asset id (key
// derived from masterKey) into a directory named after it, and returns the
// directory, the render's result and the asset's 16-bit wmid code.
func renderAsset(t *testing.T, src string, p *profile.Profile, id string) (string, *pipeline.RenderResult, *watermark.Code) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	st, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := watermark.DeriveAssetKey([]byte(masterKey), id)
	emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(time.Duration(p.SegmentDuration)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := pipeline.Render(t.Context(), src, p, pipeline.RenderOptions{Threads: 2,
		Watermark: &pipeline.WatermarkOptions{Embedder: emb, Unmarked: 1}}, pipeline.StoreWriter{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	code, err := watermark.SessionCode([]byte(masterKey), id, 16, 0)
	if err != nil {
		t.Fatal(err)
	}
	return dir, res, code
}

// A session's stream, re-encoded with libx264 CRF 28 at 640x360, names the
// session (and survives the other attacks of the slice below); an unmarked
// encode of the same source and a session of another asset made from the
// same source do not.
func TestDetectLeak(t *testing.T) {
	src := testmedia.Clip(t, "forensic-56s.mp4")
	p, err := profile.Parse([]byte(`{"name":"forensic","segment_duration":"0.5s","rungs":[
		{"name":"360p","size":360,"bitrate":1000000,"crf":23,"preset":"ultrafast","h264_profile":"main"}],"audio":{"bitrate":0}}`))
	if err != nil {
		t.Fatal(err)
	}
	assetID, res, code := renderAsset(t, src, p, "forensic")
	if len(res.Positions) < code.PatternLen()+1 {
		t.Fatalf("%d segments, the pattern needs %d", len(res.Positions), code.PatternLen()+1)
	}
	keyFile := filepath.Join(t.TempDir(), "wm.key")
	os.WriteFile(keyFile, []byte(masterKey), 0o600)

	detect := func(suspect string) watermark.Result {
		var out bytes.Buffer
		err := run(t.Context(), []string{"--asset", assetID, "--suspect", suspect, "--watermark-key", keyFile, "--allow-clear-watermark-key",
			"--segment-duration", "500ms", "--wmid-bits", "16", "--json"}, &out)
		if err != nil {
			t.Fatal(err)
		}
		var r watermark.Result
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return r
	}
	const wmid = 0xBEEF
	pat, _ := code.Pattern(wmid)
	sess := session(t, assetID, code, wmid, res.Positions)
	// A small slice of the attack matrix of make wm-report, with three of
	// the attacks that need registration (an off-centre re-frame to 9:16,
	// a mirror with an off-centre crop, the picture in a window).
	for _, at := range []struct {
		name string
		args []string
	}{
		{"libx264 CRF 28 at 640x360", testmedia.CRF28At360p},
		{"libx264 CRF 35 at 426x240", []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "35", "-vf", "scale=426:240"}},
		{"first 3.3 s trimmed, fps=30", []string{"-ss", "3.3", "-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-vf", "fps=30"}},
		{"10% crop, rescaled", []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-vf", "crop=iw*0.9:ih*0.9,scale=640:360"}},
		{"mirror, crop", []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-vf", "hflip,crop=iw*0.85:ih*0.9:iw*0.1:ih*0.04,scale=640:360"}},
		{"phone 9:16", []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-vf", "crop=ih*9/16:ih:iw*0.3:0,scale=360:640"}},
		{"picture in picture 50%", []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-filter_complex",
			"smptehdbars=size=640x360:rate=25,format=yuv420p[bg];[0:v]scale=320:180[s];[bg][s]overlay=280:150:shortest=1"}},
	} {
		r := detect(testmedia.Reencode(t, sess, at.args...))
		wrong, called := 0, 0
		for _, s := range r.Segments {
			if s.Bit != nil {
				called++
				if *s.Bit != int(pat[s.Position%len(pat)]) {
					wrong++
				}
			}
		}
		t.Logf("%s: %s; %d segments scored, %d called, %d wrong; offset %s, rate %.4f, cuts %v", at.name, r.Verdict, r.SegmentsUsed, called, wrong, r.Offset, r.Rate, r.Cuts)
		if r.Verdict != "identified" || r.WMID == nil || *r.WMID != wmid {
			t.Fatalf("%s: verdict %s wmid %v, want %d", at.name, r.Verdict, r.WMID, wmid)
		}
	}
	leak := testmedia.Reencode(t, sess, testmedia.CRF28At360p...)

	unmarked := testmedia.Reencode(t, src, "-c:v", "libx264", "-preset", "veryfast", "-crf", "28")
	if r := detect(unmarked); r.Verdict != "inconclusive" || r.WMID != nil {
		t.Fatalf("unmarked encode: verdict %s wmid %v", r.Verdict, r.WMID)
	}

	// The same title ingested as another asset carries that asset's marks:
	// its leak matches this asset's pictures frame for frame, yet must not
	// name a session of this asset.
	other, ores, ocode := renderAsset(t, src, p, "other")
	otherLeak := testmedia.Reencode(t, session(t, other, ocode, wmid, ores.Positions), testmedia.CRF28At360p...)
	if r := detect(otherLeak); r.Verdict != "inconclusive" || r.WMID != nil {
		t.Fatalf("another asset's leak: verdict %s wmid %v", r.Verdict, r.WMID)
	}

	var out bytes.Buffer
	if err := run(t.Context(), []string{"--asset", assetID, "--suspect", leak, "--watermark-key", keyFile, "--allow-clear-watermark-key",
		"--segment-duration", "500ms", "--wmid-bits", "16"}, &out); err != nil || !strings.Contains(out.String(), "verdict: identified") {
		t.Fatalf("summary: %v\n%s", err, out.String())
	}
}

// sealWithWorker seals clip with a real worker process into a fleet's
// MinIO: one rendition of the given height in 0.5 s segments, no audio,
// the worker's extra flags; it returns the fleet, the asset id and its
// checked manifest.
func sealWithWorker(t *testing.T, height int, clip string, timeout time.Duration, extra ...string) (*fleet.Fleet, string, *asset.Manifest) {
	t.Helper()
	f := fleet.New(t)
	fleet.WriteFile(t, filepath.Join(f.Profiles, "default.json"), fmt.Sprintf(`{"name":"default","segment_duration":"0.5s","rungs":[
		{"name":"%dp","size":%d,"bitrate":%d,"crf":23,"preset":"ultrafast","h264_profile":"main"}],"audio":{"bitrate":0}}`,
		height, height, map[int]int{180: 400_000, 360: 1_000_000}[height]))
	f.StartWorker("w1", append([]string{"--threads", "2"}, extra...)...)
	job, assetID := f.Upload("uploads/"+clip, testmedia.Clip(t, clip))
	if st := f.WaitState(job, timeout, fleet.Final); st.Status != asset.StatusDone {
		t.Fatalf("job: %+v", st)
	}
	return f, assetID, f.CheckAsset(assetID)
}

// detectFromBucket runs detect --bucket --json on leak against the fleet's
// sealed asset and returns its result.
func detectFromBucket(t *testing.T, f *fleet.Fleet, assetID, leak string) watermark.Result {
	t.Helper()
	t.Setenv("ABSEAL_S3_SECRET_KEY", f.MinIO.SecretKey)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--bucket", "assets", "--asset-id", assetID, "--s3-endpoint", f.MinIO.Endpoint,
		"--s3-access-key", f.MinIO.AccessKey, "--kek-uri", f.KEKPath, "--watermark-key", f.WMKey,
		"--suspect", leak, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var r watermark.Result
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	return r
}

// TestDetectFromBucket: the real worker seals a watermarked asset into
// MinIO; a session's stream (assembled from the sealed objects through the
// KEK) is re-encoded, and detect --bucket names the session from the
// manifest and the sealed renditions alone.
func TestDetectFromBucket(t *testing.T) {
	f, assetID, m := sealWithWorker(t, 360, "forensic-56s.mp4", 5*time.Minute, "--wmid-bits", "16")
	if m.Watermark.IDBits != 16 || m.Watermark.PatternLen != 108 || m.SegDur != 0.5 {
		t.Fatalf("manifest watermark %+v, segment duration %v", m.Watermark, m.SegDur)
	}
	code := f.SessionCode(m)
	const wmid = 0x5EA1
	pat, _ := code.Pattern(wmid)
	sess := filepath.Join(t.TempDir(), "session.mp4")
	fh, err := os.Create(sess)
	if err != nil {
		t.Fatal(err)
	}
	if err := sealed.WriteSession(t.Context(), f.Out, f.KEK, m, "", pat, fh); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	leak := testmedia.Reencode(t, sess, testmedia.CRF28At360p...)
	r := detectFromBucket(t, f, assetID, leak)
	if r.Verdict != "identified" || r.WMID == nil || *r.WMID != wmid {
		t.Fatalf("verdict %s wmid %v, want %d", r.Verdict, r.WMID, wmid)
	}
	// Without the KEK the sealed asset cannot be read.
	var out bytes.Buffer
	err = run(t.Context(), []string{"--bucket", "assets", "--asset-id", assetID, "--s3-endpoint", f.MinIO.Endpoint,
		"--s3-access-key", f.MinIO.AccessKey, "--watermark-key", f.WMKey, "--suspect", leak}, &out)
	if err == nil || !strings.Contains(err.Error(), "--kek-uri") {
		t.Fatalf("without a KEK: %v", err)
	}
}

// TestAccuseFromBucket: an asset sealed with the collusion-resistant
// session code (worker --session-code tardos), 3 minutes at 180p in 0.5 s
// segments. A single session's leak, scored against 10⁶ issued sessions,
// and two sessions' streams interleaved in 5-segment chunks, against
// 1,000, re-encoded: detect --wmids accuses the leakers and no one else;
// an unmarked copy accuses no one.
func TestAccuseFromBucket(t *testing.T) {
	src := testmedia.Clip(t, "natural-shots-180s-180p.mp4")
	f, assetID, m := sealWithWorker(t, 180, "natural-shots-180s-180p.mp4", 5*time.Minute, "--session-code", "tardos")
	marked := 0
	for _, sg := range m.Video[0].Segments {
		if sg.Position >= 0 {
			marked++
		}
	}
	if m.Watermark.Code != asset.CodeTardos || m.Watermark.PatternLen != marked || marked < 350 {
		t.Fatalf("manifest watermark %+v with %d marked segments", m.Watermark, marked)
	}
	code := f.SessionCode(m)
	leakOf := func(wmids ...uint64) string {
		var pats [][]uint8
		for _, w := range wmids {
			p, err := code.Pattern(w)
			if err != nil {
				t.Fatal(err)
			}
			pats = append(pats, p)
		}
		// Each position from one session in turn, 5 segments at a time.
		mixed := make([]uint8, len(pats[0]))
		for i := range mixed {
			mixed[i] = pats[(i/5)%len(pats)][i]
		}
		sess := filepath.Join(t.TempDir(), "session.mp4")
		fh, err := os.Create(sess)
		if err != nil {
			t.Fatal(err)
		}
		if err := sealed.WriteSession(t.Context(), f.Out, f.KEK, m, "", mixed, fh); err != nil {
			t.Fatal(err)
		}
		fh.Close()
		return testmedia.Reencode(t, sess, testmedia.CRF28At360p...)
	}
	t.Setenv("ABSEAL_S3_SECRET_KEY", f.MinIO.SecretKey)
	accuse := func(leak string, extra ...string) (detect.Accusation, error) {
		var out bytes.Buffer
		args := append([]string{"--bucket", "assets", "--asset-id", assetID, "--s3-endpoint", f.MinIO.Endpoint,
			"--s3-access-key", f.MinIO.AccessKey, "--kek-uri", f.KEKPath, "--watermark-key", f.WMKey,
			"--suspect", leak, "--json"}, extra...)
		var acc detect.Accusation
		if err := run(t.Context(), args, &out); err != nil {
			return acc, err
		}
		if err := json.Unmarshal(out.Bytes(), &acc); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		return acc, nil
	}
	for _, tc := range []struct {
		name    string
		leakers []uint64
		issued  string
	}{{"one session", []uint64{417_000}, "1-1000000"}, {"two sessions interleaved", []uint64{88, 903}, "1-1000"}} {
		acc, err := accuse(leakOf(tc.leakers...), "--wmids", tc.issued)
		if err != nil {
			t.Fatal(err)
		}
		var names []uint64
		for _, a := range acc.Accused {
			names = append(names, a.WMID)
			if !slices.Contains(tc.leakers, a.WMID) {
				t.Errorf("%s: innocent session %d accused (%+v)", tc.name, a.WMID, a)
			}
		}
		t.Logf("%s: %s %v from %d positions (thresholds %+v)", tc.name, acc.Verdict, names, acc.Positions, acc.Thresholds[:2])
		if acc.Verdict != "accused" || len(names) == 0 {
			t.Errorf("%s: verdict %s, want a leaker accused", tc.name, acc.Verdict)
		}
	}
	// Sessions minted through the registry: detect reads them from it
	// (no --wmids) and names the accused session's record.
	reg, err := queue.OpenRegistry(t.Context(), f.NC)
	if err != nil {
		t.Fatal(err)
	}
	var leaker uint64
	for i := range 40 {
		w, err := reg.Allocate(t.Context(), assetID)
		if err != nil {
			t.Fatal(err)
		}
		rec := queue.SessionRecord{Asset: assetID, WMID: w, Subject: fmt.Sprintf("subscriber-%d", i), TokenID: "00", IssuedAt: time.Now(), Expires: time.Now().Add(time.Hour), Mode: "indirect", Operator: "backend"}
		if err := reg.Record(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		if i == 29 {
			leaker = w
		}
	}
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--bucket", "assets", "--asset-id", assetID, "--s3-endpoint", f.MinIO.Endpoint,
		"--s3-access-key", f.MinIO.AccessKey, "--kek-uri", f.KEKPath, "--watermark-key", f.WMKey,
		"--suspect", leakOf(leaker), "--nats-url", f.NATS.URL}, &out); err != nil {
		t.Fatal(err)
	}
	t.Logf("with the registry:\n%s", out.String())
	if !strings.Contains(out.String(), fmt.Sprintf("accused: wmid %d, subject \"subscriber-29\"", leaker)) || strings.Count(out.String(), "accused: ") != 1 ||
		!strings.Contains(out.String(), "scored 40 sessions") {
		t.Fatalf("registry accusation:\n%s", out.String())
	}

	unmarked := testmedia.Reencode(t, src, "-c:v", "libx264", "-preset", "veryfast", "-crf", "28")
	if acc, err := accuse(unmarked, "--wmids", "1-1000"); err != nil || acc.Verdict != "inconclusive" || len(acc.Accused) != 0 {
		t.Fatalf("unmarked copy: %+v, %v", acc, err)
	}
	// Without --wmids and without a reachable registry, detect says what
	// to do.
	if _, err := accuse(unmarked, "--nats-url", "nats://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "--wmids") {
		t.Errorf("without --wmids or a registry: %v", err)
	}
	if _, err := accuse(unmarked, "--wmids", "5-1"); err == nil {
		t.Error("a backwards range was accepted")
	}
}
