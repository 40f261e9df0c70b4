package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
)

// chunkRun is one way of running the benchmark's job.
type chunkRun struct {
	name    string
	workers int
	threads string
	chunk   string // --chunk-length
}

// chunkFigures are what one way measured.
type chunkFigures struct {
	wall, cpu time.Duration
	chunks    []map[string]any // the chunks' "job done" records
	split     time.Time        // when the job was split
	starts    []time.Time      // when each chunk started
}

// BenchmarkChunked runs one job on a generated 2-minute 1080p source
// (default ladder, A/B watermark; a generated, noisy source) three ways in
// the same run: 1 worker with 2 threads, whole (--chunk-length 0); the
// same worker with the job in 30 s chunks (what chunking costs in CPU);
// and 2 workers with 1 thread each sharing the 30 s chunks (what it buys
// in wall time). It reports wall and CPU time of each, the ratios, and the
// per-chunk figures the time-to-publish model in the README uses: queue
// latency (split to a chunk's start), fetch, render and seal per chunk.
func BenchmarkChunked(b *testing.B) {
	clip := testmedia.Clip(b, "hd-1080p30-120s.mp4")
	ways := []chunkRun{
		{"whole, 1 worker x 2 threads", 1, "2", "0"},
		{"30 s chunks, 1 worker x 2 threads", 1, "2", "30s"},
		{"30 s chunks, 2 workers x 1 thread", 2, "1", "30s"},
	}
	for i := 0; i < b.N; i++ {
		var figs []chunkFigures
		for _, w := range ways {
			fl := fleet.New(b)
			os.Remove(filepath.Join(fl.Profiles, "default.json")) // the built-in ladder
			var ws []*fleet.Worker
			for k := range w.workers {
				ws = append(ws, fl.StartWorker(fmt.Sprintf("w%d", k), "--threads", w.threads, "--chunk-length", w.chunk))
			}
			time.Sleep(time.Second) // let them connect
			job, _ := fl.Upload(fmt.Sprintf("bench/chunked-%d.mp4", i), clip)
			start := time.Now()
			cpu0 := time.Duration(0)
			for _, wk := range ws {
				cpu0 += wk.CPU()
			}
			st := fl.WaitState(job, 60*time.Minute, fleet.Final)
			if st.Status != asset.StatusDone {
				b.Fatalf("%s: %+v", w.name, st)
			}
			f := chunkFigures{wall: time.Since(start)}
			for _, wk := range ws {
				f.cpu += wk.CPU()
				for _, l := range wk.Lines("job done") {
					if strings.Contains(fmt.Sprint(l["job_id"]), ".c") {
						f.chunks = append(f.chunks, l)
					}
				}
				for _, l := range wk.Lines("job split into chunks") {
					f.split, _ = time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"]))
				}
				for _, l := range wk.Lines("job started") {
					if strings.Contains(fmt.Sprint(l["job_id"]), ".c") {
						ts, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(l["time"]))
						f.starts = append(f.starts, ts)
					}
				}
			}
			f.cpu -= cpu0
			figs = append(figs, f)
			b.Logf("%s: wall %.1f s, CPU %.1f s, %d chunks", w.name, f.wall.Seconds(), f.cpu.Seconds(), len(f.chunks))
			for _, c := range f.chunks {
				b.Logf("  chunk %v: read %.1f MB, stages %v", c["job_id"], num(c["bytes_in"])/1e6, c["stages"])
			}
		}
		whole, serial, fleet2 := figs[0], figs[1], figs[2]
		b.ReportMetric(whole.wall.Seconds(), "whole-wall-s")
		b.ReportMetric(whole.cpu.Seconds(), "whole-cpu-s")
		b.ReportMetric(serial.cpu.Seconds()/whole.cpu.Seconds(), "chunked/whole-cpu")
		b.ReportMetric(serial.wall.Seconds()/whole.wall.Seconds(), "chunked/whole-wall(1-worker)")
		b.ReportMetric(fleet2.wall.Seconds()/whole.wall.Seconds(), "2-workers/whole-wall")
		b.ReportMetric(fleet2.cpu.Seconds()/whole.cpu.Seconds(), "2-workers/whole-cpu")
		// Per-chunk figures (the 2-worker way): queue latency from the
		// split to each chunk's start, and the chunks' stage times.
		var lat []float64
		for _, s := range fleet2.starts {
			if !fleet2.split.IsZero() {
				lat = append(lat, s.Sub(fleet2.split).Seconds())
			}
		}
		sort.Float64s(lat)
		if len(lat) > 0 {
			b.ReportMetric(lat[0], "first-chunk-latency-s")
		}
		m := measuredChunks{
			media: 120, tasks: float64(len(serial.chunks)),
			whole: whole.wall.Seconds(), serial: serial.wall.Seconds(), sourceBytes: float64(fileSize(b, clip)),
		}
		if len(lat) > 0 {
			m.latency = lat[0]
		}
		var fetchBytes, fetchWait float64
		for _, c := range serial.chunks {
			st, _ := c["stages"].(map[string]any)
			fetchBytes += num(c["bytes_in"])
			fetchWait += num(st["fetch"])
			// The audio's task is numbered after the windows.
			if strings.HasSuffix(fmt.Sprint(c["job_id"]), fmt.Sprintf(".c%d", len(serial.chunks)-1)) {
				m.audio = num(st["transcode"])
				b.ReportMetric(num(c["bytes_in"])/m.sourceBytes, "audio-task-read/source")
			}
		}
		if fetchWait > 0 {
			m.loopback = fetchBytes / fetchWait
		}
		for _, l := range m.report() {
			b.Log(l)
		}
	}
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}
