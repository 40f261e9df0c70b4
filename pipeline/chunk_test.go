package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/sealed"
)

// framesOf lists the presentation timestamps of a session's stream of the
// first rendition, as ffprobe reads the decoded frames.
func framesOf(t *testing.T, rig *fenceRig, m *asset.Manifest) string {
	t.Helper()
	var buf bytes.Buffer
	bits := make([]uint8, m.Watermark.PatternLen)
	for i := range bits {
		bits[i] = uint8(i % 2)
	}
	if err := sealed.WriteSession(t.Context(), rig.out, rig.kek, m, m.Video[0].Name, bits, &buf); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "session.mp4")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("ABSEAL_KEEP_SESSION"); d != "" {
		os.WriteFile(filepath.Join(d, m.AssetID+".mp4"), buf.Bytes(), 0o600)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=pts", "-of", "csv=p=0", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	// A frame with side data (the encoder's SEI at a chunk's start) gets
	// an empty column: only the timestamps are compared.
	return strings.ReplaceAll(strings.TrimSpace(string(out)), ",", "")
}

// chunked is the rig's runner splitting jobs into 4 s windows; the chunk
// tasks it submits are collected in *tasks.
func (r *fenceRig) chunked() (*pipeline.Runner, *[]*asset.Job) {
	tasks := &[]*asset.Job{}
	chunked := r.runner
	chunked.ChunkLength = 4 * time.Second
	chunked.SubmitChunks = func(_ context.Context, ts []*asset.Job) error {
		*tasks = append(*tasks, ts...)
		return nil
	}
	return &chunked, tasks
}

// TestChunkedRun: a job split into three chunk tasks, run out of order,
// one of them twice, gives an asset like the same job run whole: the same
// segments (numbers, times, durations, watermark positions) per rendition,
// a session stream whose decoded frames have the same timestamps, the
// audio in one piece; the manifest is written once, by the last chunk.
func TestChunkedRun(t *testing.T) {
	rig := newFenceRig(t)
	whole, err := rig.runner.Run(t.Context(), fenceJob("whole", "one.mp4"), nil)
	if err != nil || whole.Chunks != 0 {
		t.Fatalf("%+v %v", whole, err)
	}
	chunked, submitted := rig.chunked()
	res, err := chunked.Run(t.Context(), fenceJob("split", "one.mp4"), nil)
	tasks := *submitted
	if err != nil || res.Chunks != 4 || len(tasks) != 4 || res.Manifest != nil {
		t.Fatalf("split: %+v %v, %d tasks", res, err, len(tasks))
	}
	// Three windows and the audio's task, queued first.
	if c := tasks[0].Chunk; !c.Audio || c.Index != 3 {
		t.Fatalf("first task queued: %+v, want the audio's (index 3)", c)
	}
	byIndex := map[int]*asset.Job{}
	for _, task := range tasks {
		byIndex[task.Chunk.Index] = task
	}
	if _, err := rig.out.Stat(t.Context(), asset.ManifestKey("split")); err == nil {
		t.Fatal("a manifest before any chunk ran")
	}
	var last *pipeline.Result
	for i, k := range []int{2, 0, 3, 0, 1} {
		r, err := chunked.RunChunk(t.Context(), byIndex[k], nil)
		if err != nil {
			t.Fatalf("chunk %d: %v", k, err)
		}
		if (i == 3) != r.Skipped || (i == 4) != (r.Manifest != nil) {
			t.Fatalf("step %d, chunk %d: skipped %v, manifest %v", i, k, r.Skipped, r.Manifest != nil)
		}
		last = r
	}
	m := rig.check("split")
	if m.Run != last.Run || m.JobID != "split-one" {
		t.Fatalf("manifest run %s job %s", m.Run, m.JobID)
	}
	w := rig.check("whole")
	if len(m.Video) != len(w.Video) || (m.Audio == nil) != (w.Audio == nil) || m.Duration != w.Duration {
		t.Fatalf("chunked: %d renditions, audio %v, %.3f s; whole: %d, %v, %.3f s", len(m.Video), m.Audio != nil, m.Duration, len(w.Video), w.Audio != nil, w.Duration)
	}
	for i, r := range append(m.Video, *m.Audio) {
		wr := append(w.Video, *w.Audio)[i]
		if len(r.Segments) != len(wr.Segments) {
			t.Fatalf("%s: %d segments chunked, %d whole", r.Name, len(r.Segments), len(wr.Segments))
		}
		for j, s := range r.Segments {
			ws := wr.Segments[j]
			if s.Number != ws.Number || s.Time != ws.Time || s.Duration != ws.Duration || s.Position != ws.Position {
				t.Errorf("%s segment %d: chunked %+v, whole %+v", r.Name, j, s, ws)
			}
		}
	}
	if got, want := strings.Fields(framesOf(t, rig, m)), strings.Fields(framesOf(t, rig, w)); strings.Join(got, " ") != strings.Join(want, " ") {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("decoded frames: %d chunked, %d whole; first difference at frame %d: chunked %v, whole %v",
			len(got), len(want), i, got[max(0, i-2):min(len(got), i+3)], want[max(0, i-2):min(len(want), i+3)])
	}
	// The edge serves it: playlists, init and every segment.
	if n := rig.edge(t, "split")(); n != len(m.Video[0].Segments) {
		t.Fatalf("the edge served %d segments of %d", n, len(m.Video[0].Segments))
	}
	// A chunk task delivered again after the commit does nothing.
	if r, err := chunked.RunChunk(t.Context(), byIndex[1], nil); err != nil || !r.Skipped || r.Manifest == nil {
		t.Fatalf("chunk 1 after the commit: %+v %v", r, err)
	}
	rig.check("split")
}

// TestChunkReadsWindow: a chunk reads the source in ranges: the last of
// five chunks of a source with a keyframe every 2.5 s reads the file's
// index and its window (from the keyframe before it), not the whole file.
func TestChunkReadsWindow(t *testing.T) {
	rig := newFenceRig(t)
	rig.upload("kf.mp4", testmedia.Clip(t, "chunk-bframes.mp4"))
	chunked, submitted := rig.chunked()
	chunked.SourceBlock = 16 << 10
	_, err := chunked.Run(t.Context(), fenceJob("kf", "kf.mp4"), nil)
	tasks := *submitted
	if err != nil || len(tasks) != 5 || tasks[4].Chunk.Index != 4 {
		t.Fatalf("split: %v, %d tasks (a silent source has no audio task)", err, len(tasks))
	}
	src, err := rig.ingest.Stat(t.Context(), "kf.mp4")
	if err != nil {
		t.Fatal(err)
	}
	r, err := chunked.RunChunk(t.Context(), tasks[4], nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.BytesIn <= 0 || r.BytesIn > src.Size*2/5 {
		t.Fatalf("the last of 5 chunks read %d bytes of the %d-byte source", r.BytesIn, src.Size)
	}
	t.Logf("the last of 5 chunks read %d of %d bytes", r.BytesIn, src.Size)
	// A forged task (on the jobs stream anyone with publish rights can
	// reach): an audio task the plan does not have, a window it does not
	// name. Each fails permanently and renders nothing.
	for _, c := range []asset.ChunkTask{{Index: 0, Audio: true}, {Index: 1, From: 2, To: 9}} {
		bad := *tasks[0]
		c.ParentID, c.Run, c.Count = tasks[0].Chunk.ParentID, tasks[0].Chunk.Run, tasks[0].Chunk.Count
		bad.Chunk, bad.JobID = &c, asset.ChunkJobID(c.ParentID, c.Run, c.Index)
		if _, err := chunked.RunChunk(t.Context(), &bad, nil); !pipeline.IsPermanent(err) || !strings.Contains(fmt.Sprint(err), "not in the run's plan") {
			t.Fatalf("forged chunk %+v: %v", c, err)
		}
	}
}

// TestChunkSourceChanged: a source replaced after its job was split fails
// the chunks that read it with the reason, and nothing of theirs is kept.
func TestChunkSourceChanged(t *testing.T) {
	rig := newFenceRig(t)
	chunked, submitted := rig.chunked()
	_, err := chunked.Run(t.Context(), fenceJob("changed", "one.mp4"), nil)
	tasks := *submitted
	if err != nil || len(tasks) != 4 {
		t.Fatalf("split: %v, %d tasks", err, len(tasks))
	}
	rig.upload("one.mp4", testmedia.Clip(t, "main.mp4"))
	_, err = chunked.RunChunk(t.Context(), tasks[2], nil)
	if err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "changed since the job was split") {
		t.Fatalf("chunk of a replaced source: %v (permanent %v)", err, pipeline.IsPermanent(err))
	}
	for info, err := range rig.out.List(t.Context(), asset.RunsPrefix("changed")) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(info.Key, "/chunks/") {
			t.Fatalf("a failed chunk left %s", info.Key)
		}
	}
}
