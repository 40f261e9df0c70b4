package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/watermark"
)

type discardWriter struct{}

func (discardWriter) WriteObject(context.Context, asset.Ref, []byte) error { return nil }

// BenchmarkJobOverhead measures one job on a generated 30 s 1080p clip
// with the default ladder and the A/B watermark, two ways in the same run:
// bare (pipeline.Render in this process, objects discarded: no queue, no
// sealing, no upload) and end to end (from the source object's arrival in
// the ingest bucket: MinIO event → JetStream job → worker process: fetch,
// render, seal, put, manifest → job state done). The client's upload of the
// source is reported apart. Goal: end to end <= 1.05 x bare.
func BenchmarkJobOverhead(b *testing.B) {
	clip := testmedia.Clip(b, "hd-1080p30.mp4")
	key, err := watermark.DeriveAssetKey([]byte("0123456789abcdef0123456789abcdef"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	p := profile.Default()
	emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(time.Duration(p.SegmentDuration)))
	if err != nil {
		b.Fatal(err)
	}
	var bare, e2e, worker, upload time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := pipeline.Render(b.Context(), clip, p, pipeline.RenderOptions{Threads: 0,
			Watermark: &pipeline.WatermarkOptions{Embedder: emb, Unmarked: 1}}, discardWriter{}); err != nil {
			b.Fatal(err)
		}
		bareRun := time.Since(start)
		bare += bareRun

		fl := fleet.New(b)
		os.Remove(filepath.Join(fl.Profiles, "default.json")) // the built-in ladder
		fl.StartWorker("bench", "--threads", "0")
		start = time.Now()
		job, _ := fl.Upload(fmt.Sprintf("bench/hd-%d.mp4", i), clip)
		upload += time.Since(start)
		start = time.Now() // the job: from the uploaded object to its asset
		st := fl.WaitState(job, 20*time.Minute, fleet.Final)
		e2eRun := time.Since(start)
		e2e += e2eRun
		if st.Status != asset.StatusDone {
			b.Fatalf("job: %+v", st)
		}
		for _, d := range st.Stages {
			worker += time.Duration(d * float64(time.Second))
		}
		b.Logf("run %d: bare %.2fs, end to end %.2fs, worker stages (s): %v", i, bareRun.Seconds(), e2eRun.Seconds(), st.Stages)
	}
	n := float64(b.N)
	b.ReportMetric(bare.Seconds()/n, "bare-s")
	b.ReportMetric(e2e.Seconds()/n, "e2e-s")
	b.ReportMetric(worker.Seconds()/n, "worker-s")
	b.ReportMetric(e2e.Seconds()/bare.Seconds(), "e2e/bare")
	b.ReportMetric(upload.Seconds()/n, "source-upload-s")
}

// BenchmarkJobsPerHour runs 6 jobs (a 6 s 640x360 clip, default ladder,
// A/B watermark) on 1 worker and on 3 workers sharing the queue, and
// reports jobs per hour for each.
func BenchmarkJobsPerHour(b *testing.B) {
	clip := testmedia.Clip(b, "main.mp4")
	for _, workers := range []int{1, 3} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				fl := fleet.New(b)
				os.Remove(filepath.Join(fl.Profiles, "default.json"))
				for w := range workers {
					fl.StartWorker(fmt.Sprintf("w%d", w), "--threads", "0")
				}
				time.Sleep(time.Second) // let them connect
				start := time.Now()
				var jobs []string
				for j := range 6 {
					id, _ := fl.Upload(fmt.Sprintf("batch/clip-%d.mp4", j), clip)
					jobs = append(jobs, id)
				}
				for _, id := range jobs {
					if st := fl.WaitState(id, 20*time.Minute, fleet.Final); st.Status != asset.StatusDone {
						b.Fatalf("job %s: %+v", id, st)
					}
				}
				total += time.Since(start)
			}
			b.ReportMetric(6*float64(b.N)/total.Hours(), "jobs/h")
		})
	}
}
