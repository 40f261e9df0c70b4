package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/storage"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

type result struct {
	code           int
	stdout, stderr string
}

func enqueue(t *testing.T, f *fleet.Fleet, stdin string, args ...string) result {
	t.Helper()
	t.Setenv("ABSEAL_S3_SECRET_KEY", f.MinIO.SecretKey)
	base := []string{"--nats-url", f.NATS.URL, "--s3-endpoint", f.MinIO.Endpoint, "--s3-access-key", f.MinIO.AccessKey}
	if len(args) > 0 && args[0] == "status" {
		args = append(append([]string{"status"}, base...), args[1:]...)
	} else {
		args = append(base, args...)
	}
	var out, errb bytes.Buffer
	err := run(t.Context(), args, strings.NewReader(stdin), &out, &errb)
	return result{exitCode(err), out.String(), errb.String() + errString(err)}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// putClip puts a clip into the ingest bucket (the worker runs without the
// upload intake, so only the CLI makes jobs).
func putClip(t *testing.T, f *fleet.Fleet, key, clip string) {
	t.Helper()
	fh, err := os.Open(clip)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	if _, err := f.Ingest.Put(t.Context(), key, fh, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestEnqueue(t *testing.T) {
	f := fleet.New(t)
	f.StartWorker("w1", "--intake=false") // jobs come from the CLI only
	putClip(t, f, "ops/clip.mp4", testmedia.Clip(t, "noaudio.mp4"))

	if r := enqueue(t, f, "", "--bucket", "ingest", "--key", "ops/missing.mp4"); r.code != 3 || !strings.Contains(r.stderr, "source not found: s3://ingest/ops/missing.mp4") {
		t.Fatalf("missing source: %+v", r)
	}
	if r := enqueue(t, f, "", "--bucket", "ingest"); r.code != 2 {
		t.Fatalf("usage: %+v", r)
	}
	r := enqueue(t, f, "", "--bucket", "ingest", "--key", "ops/clip.mp4", "--asset-id", "clip-1", "--wait", "--timeout", "3m")
	if r.code != 0 || !strings.Contains(r.stdout, "done: manifest s3://assets/assets/clip-1/manifest.json") {
		t.Fatalf("--wait: %+v", r)
	}
	if !strings.Contains(r.stderr, "running transcode") {
		t.Errorf("--wait showed no progress: %s", r.stderr)
	}
	jobID := strings.Fields(r.stdout)[0]
	// Submitting the same request again is the same job.
	r = enqueue(t, f, "", "--bucket", "ingest", "--key", "ops/clip.mp4", "--asset-id", "clip-1", "--json")
	var sub map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &sub); err != nil || sub["job_id"] != jobID || sub["duplicate"] != true {
		t.Fatalf("second submit: %+v (%v)", r, err)
	}
	r = enqueue(t, f, "", "status", jobID, "--json")
	var st asset.State
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 0 || st.Status != asset.StatusDone {
		t.Fatalf("status: %+v (%v)", r, err)
	}
	if r := enqueue(t, f, "", "status", "job-nope"); r.code != 1 || !strings.Contains(r.stderr, "no such job") {
		t.Fatalf("status of an unknown job: %+v", r)
	}

	// Batch mode, with one bad source: every good key is submitted, the
	// exit code reports the failure.
	bad := t.TempDir() + "/bad.mp4"
	fleet.WriteFile(t, bad, strings.Repeat("garbage ", 1000))
	putClip(t, f, "ops/bad.mp4", bad)
	putClip(t, f, "ops/clip2.mp4", testmedia.Clip(t, "noaudio.mp4"))
	r = enqueue(t, f, "ops/clip2.mp4\n\n# comment\nops/bad.mp4\nops/nothere.mp4\n", "--bucket", "ingest", "--stdin", "--wait", "--timeout", "3m")
	if r.code != 3 {
		t.Fatalf("batch: exit %d, want 3 (a missing source)\n%+v", r.code, r)
	}
	if !strings.Contains(r.stdout, "done: manifest") || !strings.Contains(r.stdout, "failed: ") || !strings.Contains(r.stdout, "not a video") {
		t.Fatalf("batch output: %+v", r)
	}
	// The failed job alone: exit code 4 with the dead-letter reason.
	r = enqueue(t, f, "", "--bucket", "ingest", "--key", "ops/bad.mp4", "--wait", "--timeout", "1m")
	if r.code != 4 || !strings.Contains(r.stderr, "not a video") {
		t.Fatalf("failed job: %+v", r)
	}
}
