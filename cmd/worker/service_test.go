package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/queue"
)

// httpAddr returns the worker's /healthz address from its log.
func httpAddr(t *testing.T, w *fleet.Worker) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l := w.Lines("http listening"); len(l) > 0 {
			return l[0]["addr"].(string)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("worker %s never listened:\n%s", w.Name, w.Logs.String())
	return ""
}

// waitLines waits until w has logged n records with msg for which keep is
// true, and returns them.
func waitLines(t *testing.T, w *fleet.Worker, msg string, n int, keep func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var out []map[string]any
		for _, l := range w.Lines(msg) {
			if keep(l) {
				out = append(out, l)
			}
		}
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %s logged %d %q records, want %d:\n%s", w.Name, len(out), msg, n, w.Logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logTime is the time of a log record.
func logTime(t *testing.T, rec map[string]any) time.Time {
	t.Helper()
	s, _ := rec["time"].(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("log record %v: time: %v", rec, err)
	}
	return ts
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestFleetUploadToReady: an upload becomes a job by itself, the asset is
// sealed and described, announced, and the same upload again is no new job.
func TestFleetUploadToReady(t *testing.T) {
	f := fleet.New(t)
	w := f.StartWorker("w1")
	addr := httpAddr(t, w)
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := get(t, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	clip := testmedia.Clip(t, "main.mp4")
	jobID, assetID := f.Upload("uploads/My Clip+1.mp4", clip)
	st := f.WaitState(jobID, 3*time.Minute, fleet.Final)
	if st.Status != asset.StatusDone || st.Manifest != "assets/"+asset.ManifestKey(assetID) {
		t.Fatalf("state %+v", st)
	}
	m := f.CheckAsset(assetID)
	if m.Source.Key != "uploads/My Clip+1.mp4" || m.JobID != jobID || m.Audio == nil {
		t.Fatalf("manifest source %+v job %s audio %v", m.Source, m.JobID, m.Audio != nil)
	}
	evs := f.ReadyEvents()
	if len(evs) != 1 || evs[0]["asset_id"] != assetID || evs[0]["manifest"] != asset.ManifestKey(assetID) {
		t.Fatalf("ready events %+v", evs)
	}
	// The same object uploaded again: a second event, the same job id,
	// which the jobs stream takes as a duplicate.
	f.Upload("uploads/My Clip+1.mp4", clip)
	intake := waitLines(t, w, "queue: upload became a job", 2, func(l map[string]any) bool { return l["key"] == "uploads/My Clip+1.mp4" })
	if l := intake[1]; l["job_id"] != jobID || l["duplicate"] != true {
		t.Fatalf("the repeated upload event: %v, want job %s as a duplicate", l, jobID)
	}
	js, err := f.NC.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.StreamInfo(queue.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.LastSeq != 1 {
		t.Fatalf("the jobs stream took %d messages, want 1 (a repeated upload event must not make a second job)", info.State.LastSeq)
	}
	if n := len(w.Lines("job started")); n != 1 {
		t.Fatalf("%d jobs started, want 1 (a repeated upload event must not make a second job)", n)
	}
	// The same asset and source under another job id: acked as complete
	// without redoing it.
	again := asset.Job{V: 1, JobID: "job-again", AssetID: assetID, Profile: "default", RequestedBy: "test",
		CreatedAt: time.Now(), Source: m.Source.Source}
	if _, err := f.Q.Submit(t.Context(), "", again.JobID, again.Encode()); err != nil {
		t.Fatal(err)
	}
	if st := f.WaitState("job-again", time.Minute, fleet.Final); st.Status != asset.StatusDone {
		t.Fatalf("job-again: %+v", st)
	}
	if l := w.Lines("job done"); len(l) != 2 || l[1]["skipped"] != true {
		t.Fatalf("job-again was not skipped: %v", l)
	}
	if m2 := f.CheckAsset(assetID); m2.JobID != jobID {
		t.Fatalf("the skipped job rewrote the manifest (job %s)", m2.JobID)
	}
	_, metrics := get(t, "http://"+addr+"/metrics")
	for _, want := range []string{`abseal_jobs_total{outcome="done"} 1`, `abseal_jobs_total{outcome="skipped"} 1`, "abseal_stage_duration_seconds_bucket", "abseal_output_bytes_total", "abseal_jobs_in_flight 0"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(w.Logs.String(), f.MinIO.SecretKey) {
		t.Fatal("the worker logged the S3 secret key")
	}
}

// TestFleetBadInputThenGood: a corrupt source and a bad job message become
// dead letters with their reasons, and the worker goes on serving.
func TestFleetBadInputThenGood(t *testing.T) {
	f := fleet.New(t)
	w := f.StartWorker("w1")
	badPath := t.TempDir() + "/garbage.mp4"
	fleet.WriteFile(t, badPath, strings.Repeat("this is not a video\n", 500))
	badJob, _ := f.Upload("uploads/garbage.mp4", badPath)
	st := f.WaitState(badJob, time.Minute, fleet.Final)
	if st.Status != asset.StatusFailed || !strings.Contains(st.Reason, "not a video") {
		t.Fatalf("corrupt source: state %+v, want failed with \"not a video\"", st)
	}
	if _, err := f.Q.Submit(t.Context(), "", "job-broken", []byte(`{"v":2,"job_id":"job-broken"}`)); err != nil {
		t.Fatal(err)
	}
	good, assetID := f.Upload("uploads/good.mp4", testmedia.Clip(t, "main.mp4"))
	if st := f.WaitState(good, 3*time.Minute, fleet.Final); st.Status != asset.StatusDone {
		t.Fatalf("good job after bad ones: %+v", st)
	}
	f.CheckAsset(assetID)
	dl, err := f.Q.DeadLetters(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, d := range dl {
		reasons[d.JobID] = d.Reason
	}
	if !strings.Contains(reasons[badJob], "not a video") || !strings.Contains(reasons["job-broken"], "schema version 2") {
		t.Fatalf("dead letters %v", reasons)
	}
	if n := len(w.Lines("job started")); n != 2 {
		t.Fatalf("%d jobs started, want 2 (the bad message is rejected before it starts)", n)
	}
}

// TestFleetKillMidJob: a worker SIGKILLed in the middle of a job; the job
// comes back to another worker and completes once.
func TestFleetKillMidJob(t *testing.T) {
	f := fleet.New(t)
	a := f.StartWorker("victim")
	job, assetID := f.Upload("uploads/long.mp4", testmedia.Clip(t, "forensic-56s.mp4"))
	f.WaitState(job, 2*time.Minute, func(s asset.State) bool { return s.Stage == "transcode" && s.Percent >= 20 })
	a.Stop(t, syscall.SIGKILL)
	b := f.StartWorker("survivor")
	st := f.WaitState(job, 4*time.Minute, fleet.Final)
	if st.Status != asset.StatusDone || st.Worker != "survivor" || st.Attempt != 2 {
		t.Fatalf("state %+v, want done by survivor on attempt 2", st)
	}
	f.CheckAsset(assetID)
	if n := f.Manifests(); n != 1 {
		t.Fatalf("%d manifests, want 1", n)
	}
	if n := len(b.Lines("job done")); n != 1 {
		t.Fatalf("survivor finished %d jobs, want 1", n)
	}
}

// TestFleetCrashesExhaustJob: every worker that takes a job dies holding
// it (SIGKILL mid-transcode) until its three deliveries (the fleet's
// max-deliver) are spent, and no worker runs when the last one dies. The
// next worker to start dead-letters the job with its reason without
// running it, its state says failed, and the jobs stream is empty: the
// job is neither lost nor stuck, without relying on any advisory.
func TestFleetCrashesExhaustJob(t *testing.T) {
	f := fleet.New(t)
	job, _ := f.Upload("uploads/crashy.mp4", testmedia.Clip(t, "forensic-56s.mp4"))
	for attempt := 1; attempt <= 3; attempt++ {
		w := f.StartWorker(fmt.Sprintf("doomed-%d", attempt))
		f.WaitState(job, 2*time.Minute, func(s asset.State) bool {
			return s.Attempt == attempt && s.Stage == "transcode" && s.Percent >= 5
		})
		w.Stop(t, syscall.SIGKILL)
	}
	time.Sleep(4 * time.Second) // past the ack wait (3s), with no worker running
	next := f.StartWorker("next")
	st := f.WaitState(job, time.Minute, fleet.Final)
	if st.Status != asset.StatusFailed || !strings.Contains(st.Reason, "no worker finished it in 3 deliveries") {
		t.Fatalf("state %+v, want failed: no worker finished it in 3 deliveries", st)
	}
	dl, err := f.Q.DeadLetters(t.Context())
	if err != nil || len(dl) != 1 || dl[0].JobID != job || dl[0].Deliveries != 3 || dl[0].Worker != "next" {
		t.Fatalf("dead letters %+v, %v", dl, err)
	}
	if n := len(next.Lines("job started")); n != 0 {
		t.Fatalf("the next worker ran the exhausted job %d times", n)
	}
	if n := len(next.Lines("job exhausted its deliveries")); n != 1 {
		t.Fatalf("%d exhausted-job records in the next worker's log", n)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		n, err := f.Q.Pending(t.Context())
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs left in the stream (%v)", n, err)
		}
	}
}

// TestFleetGracefulShutdown: SIGTERM mid-job with a short grace: the
// worker exits promptly and hands the job back; another finishes it.
func TestFleetGracefulShutdown(t *testing.T) {
	f := fleet.New(t)
	a := f.StartWorker("leaving", "--shutdown-grace", "1s")
	job, assetID := f.Upload("uploads/long.mp4", testmedia.Clip(t, "forensic-56s.mp4"))
	f.WaitState(job, 2*time.Minute, func(s asset.State) bool { return s.Stage == "transcode" && s.Percent >= 15 })
	start := time.Now()
	a.Stop(t, syscall.SIGTERM)
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("worker took %s to stop with a 1s grace", d)
	}
	if len(a.Lines("job interrupted by shutdown, handed back")) != 1 {
		t.Fatal("the interrupted job was not handed back")
	}
	f.StartWorker("staying")
	st := f.WaitState(job, 4*time.Minute, fleet.Final)
	if st.Status != asset.StatusDone || st.Worker != "staying" {
		t.Fatalf("state %+v", st)
	}
	f.CheckAsset(assetID)
}

// TestFleetMinIOOutage: the object store goes away for 10 s in the middle
// of a job; the job completes after it returns.
func TestFleetMinIOOutage(t *testing.T) {
	f := fleet.New(t)
	f.StartWorker("w1")
	job, assetID := f.Upload("uploads/long.mp4", testmedia.Clip(t, "forensic-56s.mp4"))
	f.WaitState(job, 2*time.Minute, func(s asset.State) bool { return s.Stage == "transcode" && s.Percent >= 15 })
	f.MinIO.Close()
	time.Sleep(10 * time.Second)
	f.StartMinIO()
	st := f.WaitState(job, 4*time.Minute, fleet.Final)
	if st.Status != asset.StatusDone {
		t.Fatalf("state %+v", st)
	}
	f.CheckAsset(assetID)
}

// TestFleetNATSRestart: the NATS server restarts under a running worker;
// it reconnects, finishes its job and takes the next.
func TestFleetNATSRestart(t *testing.T) {
	f := fleet.New(t)
	w := f.StartWorker("w1")
	job, assetID := f.Upload("uploads/long.mp4", testmedia.Clip(t, "forensic-56s.mp4"))
	f.WaitState(job, 2*time.Minute, func(s asset.State) bool { return s.Stage == "transcode" && s.Percent >= 15 })
	f.NATS.Close()
	time.Sleep(2 * time.Second)
	f.StartNATS()
	st := f.WaitState(job, 4*time.Minute, fleet.Final)
	if st.Status != asset.StatusDone {
		t.Fatalf("state %+v", st)
	}
	f.CheckAsset(assetID)
	// The next job, submitted after the restart.
	j, err := asset.NewJob(asset.Source{Bucket: "ingest", Key: "uploads/long.mp4"}, "after-restart", "", "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Q.Submit(t.Context(), "", j.JobID, j.Encode()); err != nil {
		t.Fatal(err)
	}
	if st := f.WaitState(j.JobID, 4*time.Minute, fleet.Final); st.Status != asset.StatusDone {
		t.Fatalf("job after the restart: %+v", st)
	}
	if len(w.Lines("nats reconnected")) == 0 {
		t.Fatal("the worker never logged a reconnect")
	}
}

// TestFleetThreeWorkersSixJobs: jobs spread over a fleet (one worker runs
// two jobs at a time), each done once.
func TestFleetThreeWorkersSixJobs(t *testing.T) {
	f := fleet.New(t)
	ws := []*fleet.Worker{f.StartWorker("w1", "--concurrency", "2"), f.StartWorker("w2"), f.StartWorker("w3")}
	clip := testmedia.Clip(t, "noaudio.mp4")
	var jobs []string
	for i := range 6 {
		j, _ := f.Upload("uploads/clip-"+string(rune('a'+i))+".mp4", clip)
		jobs = append(jobs, j)
	}
	for _, j := range jobs {
		if st := f.WaitState(j, 4*time.Minute, fleet.Final); st.Status != asset.StatusDone {
			t.Fatalf("job %s: %+v", j, st)
		}
	}
	started, done := map[string]int{}, 0
	for _, w := range ws {
		for _, l := range w.Lines("job started") {
			started[l["job_id"].(string)]++
		}
		done += len(w.Lines("job done"))
	}
	for _, j := range jobs {
		if started[j] != 1 {
			t.Errorf("job %s started %d times", j, started[j])
		}
	}
	// w1 ran two of its jobs at the same time: one started while another
	// was running (from its start to its "job done").
	type span struct{ start, end time.Time }
	spans := map[string]*span{}
	for _, l := range ws[0].Lines("job started") {
		spans[l["job_id"].(string)] = &span{start: logTime(t, l)}
	}
	for _, l := range ws[0].Lines("job done") {
		if sp := spans[l["job_id"].(string)]; sp != nil {
			sp.end = logTime(t, l)
		}
	}
	overlap := false
	for i, a := range spans {
		for j, b := range spans {
			if i != j && !a.end.IsZero() && !b.end.IsZero() && !b.start.Before(a.start) && b.start.Before(a.end) {
				overlap = true
			}
		}
	}
	if !overlap {
		var got []string
		for id, sp := range spans {
			got = append(got, fmt.Sprintf("%s %s–%s", id, sp.start.Format("15:04:05.000"), sp.end.Format("15:04:05.000")))
		}
		t.Errorf("w1 (--concurrency 2) never ran two jobs at once: %v", got)
	}
	if done != 6 || f.Manifests() != 6 || len(f.ReadyEvents()) != 6 {
		t.Fatalf("done %d, manifests %d, ready events %d; want 6 each", done, f.Manifests(), len(f.ReadyEvents()))
	}
}

// TestFleetChunkedJob: with --chunk-length 4s a 12 s upload (2 s
// segments) is split into three chunk tasks and the audio's on the jobs
// stream; two
// workers take them, the last chunk commits the manifest once, the job's
// state is done and one asset-ready event announces it; a chunk's own
// state says done too.
func TestFleetChunkedJob(t *testing.T) {
	f := fleet.New(t)
	ws := []*fleet.Worker{f.StartWorker("w1", "--chunk-length", "4s"), f.StartWorker("w2", "--chunk-length", "4s")}
	job, assetID := f.Upload("uploads/chunked.mp4", testmedia.Clip(t, "sample.mp4"))
	// The job's state shows progress across the chunks before it is done.
	if st := f.WaitState(job, 4*time.Minute, func(s asset.State) bool { return s.Final() || strings.HasPrefix(s.Stage, "chunks: ") }); !strings.HasSuffix(st.Stage, " of 4 done") {
		t.Fatalf("no progress across chunks in the job's state: %+v", st)
	}
	st := f.WaitState(job, 4*time.Minute, fleet.Final)
	if st.Status != asset.StatusDone || st.Manifest != "assets/"+asset.ManifestKey(assetID) {
		t.Fatalf("state %+v", st)
	}
	m := f.CheckAsset(assetID)
	if m.JobID != job || m.Audio == nil || len(m.Video[0].Segments) != 6 {
		t.Fatalf("manifest job %s, audio %v, %d segments", m.JobID, m.Audio != nil, len(m.Video[0].Segments))
	}
	if n := f.Manifests(); n != 1 {
		t.Fatalf("%d manifests", n)
	}
	stored, split := 0, 0
	for _, w := range ws {
		stored += len(w.Lines("chunk stored"))
		split += len(w.Lines("job split into chunks"))
	}
	if stored != 4 || split != 1 {
		t.Fatalf("%d chunks stored, %d splits; want 4 (3 windows and the audio) and 1", stored, split)
	}
	evs := f.ReadyEvents()
	if len(evs) != 1 || evs[0]["job_id"] != job || evs[0]["asset_id"] != assetID {
		t.Fatalf("ready events %+v", evs)
	}
	cs := f.WaitState(asset.ChunkJobID(job, m.Run, 2), time.Second, fleet.Final)
	if cs.Status != asset.StatusDone {
		t.Fatalf("chunk 3's state %+v", cs)
	}
}

// TestFleetChunkFailsJob: a permanent error in one chunk fails the job
// with that chunk's reason. The source is replaced as soon as the job is
// split, so its chunks find another version than the one planned (or see
// it change under them). The worker keeps serving: the replacement's own
// upload event makes a job that is done, and its commit collects the
// failed run.
func TestFleetChunkFailsJob(t *testing.T) {
	f := fleet.New(t)
	f.StartWorker("w1", "--chunk-length", "4s")
	job, assetID := f.Upload("uploads/replaced.mp4", testmedia.Clip(t, "sample.mp4"))
	f.WaitState(job, 2*time.Minute, func(s asset.State) bool { return s.Final() || strings.HasPrefix(s.Stage, "split into") })
	job2, _ := f.Upload("uploads/replaced.mp4", testmedia.Clip(t, "main.mp4"))
	st := f.WaitState(job, 4*time.Minute, fleet.Final)
	if st.Status != asset.StatusFailed || !strings.HasPrefix(st.Reason, "chunk ") || !strings.Contains(st.Reason, "changed") {
		t.Fatalf("the split job's state: %+v", st)
	}
	t.Logf("reason: %s", st.Reason)
	if st2 := f.WaitState(job2, 4*time.Minute, fleet.Final); st2.Status != asset.StatusDone {
		t.Fatalf("the replacement's job: %+v", st2)
	}
	if m := f.CheckAsset(assetID); m.JobID != job2 {
		t.Fatalf("the asset is job %s's, want %s's", m.JobID, job2)
	}
}
