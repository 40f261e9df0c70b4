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
				b.Logf("  chunk %v: stages %v", c["job_id"], c["stages"])
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
			media: 120, chunks: float64(len(serial.chunks)),
			whole: whole.wall.Seconds(), serial: serial.wall.Seconds(), sourceBytes: float64(fileSize(b, clip)),
		}
		if len(lat) > 0 {
			m.latency = lat[0]
		}
		var fetchBytes, fetchWait float64
		var others []float64
		for _, c := range serial.chunks {
			st, _ := c["stages"].(map[string]any)
			fetchBytes += num(c["bytes_in"])
			fetchWait += num(st["fetch"])
			if strings.HasSuffix(fmt.Sprint(c["job_id"]), ".c0") {
				m.first = num(st["transcode"])
				m.firstBytes = num(c["bytes_in"])
			} else {
				others = append(others, num(st["transcode"]))
				m.windowBytes += num(c["bytes_in"])
			}
		}
		if len(others) > 0 {
			m.windowBytes /= float64(len(others))
			m.other = mean(others)
		}
		if fetchWait > 0 {
			m.loopback = fetchBytes / fetchWait
		}
		b.ReportMetric(m.firstBytes/m.sourceBytes, "chunk0-read/source")
		b.ReportMetric(m.windowBytes/m.sourceBytes, "chunk-read/source")
		for _, l := range m.report() {
			b.Log(l)
		}
	}
}

// measuredChunks are the benchmark's figures the time-to-publish model
// starts from (seconds, bytes; one worker of this machine, 2 threads).
type measuredChunks struct {
	media, chunks float64 // the source's length and the chunks it was split into
	whole, serial float64 // wall time whole and chunked, one worker
	latency       float64 // split to the first chunk's start
	first, other  float64 // chunk 0's render (with the audio) and the others' mean
	sourceBytes   float64
	firstBytes    float64 // chunk 0's reads
	windowBytes   float64 // another chunk's reads
	loopback      float64 // bytes/s of ranged reads from MinIO on loopback
}

// model is the time to publish a title of d seconds with n workers and
// chunks of l seconds, each worker fetching at bw bytes/s. The parts:
// the parent fetches and hashes the whole source, then plans; chunk 0
// renders its window and all of the audio, reading the whole source; the
// others read the file's index and their window; the per-chunk overhead
// (queue latency, probe, decode warm-up, putting the result, the last
// chunk's assembly) is what chunking added to the one-worker run, per
// chunk. Chunks go to workers in order as they free up.
func (m measuredChunks) model(d, l float64, n int, bw float64) (wall float64, chunks int) {
	rate := m.whole / m.media // wall seconds per media second, whole run
	perChunk := max(0, (m.serial-m.whole)/m.chunks)
	audio := max(0, m.first-m.other) / m.media // chunk 0's extra per media second
	bps := m.sourceBytes / m.media
	chunks = max(1, int(d/l+0.5))
	cl := d / float64(chunks)
	plan := bps * d / bw
	t := make([]float64, chunks)
	for i := range t {
		t[i] = perChunk + rate*cl + bps*cl/bw
	}
	t[0] += audio*d + bps*(d-cl)/bw
	free := make([]float64, n)
	end := 0.0
	for _, c := range t {
		k := 0
		for j := range free {
			if free[j] < free[k] {
				k = j
			}
		}
		free[k] += c
		end = max(end, free[k])
	}
	return plan + end, chunks
}

func (m measuredChunks) report() []string {
	out := []string{fmt.Sprintf("model inputs: whole %.0f s and chunked %.0f s for %.0f s of media in %.0f chunks (one worker); first-chunk latency %.2f s; chunk 0 %.0f s, others %.0f s; reads: chunk 0 %.0f%%, others %.0f%% of the %.0f MB source; loopback reads %.0f MB/s",
		m.whole, m.serial, m.media, m.chunks, m.latency, m.first, m.other, 100*m.firstBytes/m.sourceBytes, 100*m.windowBytes/m.sourceBytes, m.sourceBytes/1e6, m.loopback/1e6)}
	const d = 7200.0
	bw := 125e6 // 1 Gbit/s to the store per worker
	whole := m.whole/m.media*d + m.sourceBytes/m.media*d/bw
	out = append(out, fmt.Sprintf("time to publish a 2 h title (this source's bitrate, %.0f Mbit/s; 1 Gbit/s to the store per worker): one worker whole %.1f h", 8*m.sourceBytes/m.media/1e6, whole/3600))
	for _, l := range []float64{180, 60} {
		for _, n := range []int{1, 10, 50} {
			t, c := m.model(d, l, n, bw)
			out = append(out, fmt.Sprintf("  %3.0f s chunks (%d), %2d workers: %6.1f min, speed-up %5.1f (%.2f N)", l, c, n, t/60, whole/t, whole/t/float64(n)))
		}
	}
	return out
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
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
