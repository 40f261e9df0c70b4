package main

import (
	"fmt"
	"testing"
)

// measuredChunks are the chunking benchmark's figures the time-to-publish
// model starts from (seconds and bytes; one worker of the benchmark's
// machine with 2 threads).
type measuredChunks struct {
	media         float64 // the source's length
	tasks         float64 // chunk tasks it was split into (windows and the audio's)
	whole, serial float64 // wall time whole and chunked, one worker
	latency       float64 // split to the first chunk's start
	audio         float64 // the audio task's time
	sourceBytes   float64
	loopback      float64 // bytes/s of ranged reads from MinIO on loopback
}

// Model settings: the store's bandwidth per worker, and how much of the
// source a window reads beyond its own length (the keyframe before it, a
// block at each end).
const (
	modelBandwidth = 125e6 // 1 Gbit/s
	modelLookback  = 10.0  // seconds of source
	modelBlocks    = 8 << 20
)

// publish is the modelled time to publish a title of d seconds with n
// workers and windows of about l seconds:
//   - the parent job fetches and hashes the whole source, probes it and
//     plans (the fetch is serial, before any chunk);
//   - the audio task, queued first, encodes all of the audio at the
//     measured rate and reads the whole source;
//   - each window renders at the whole run's rate (wall seconds per media
//     second on one worker), reads its window and lookback, and pays the
//     per-task overhead chunking added in the benchmark (probe, decode
//     warm-up, putting the result; the queue latency besides);
//   - tasks go to workers in queue order as they free up.
//
// It returns the time and the number of windows.
func (m measuredChunks) publish(d, l float64, n int, bw float64) (float64, int) {
	rate := m.whole / m.media
	bps := m.sourceBytes / m.media
	over := max(0, (m.serial-m.whole)/m.tasks) + max(0, m.latency)
	windows := max(1, int(d/l+0.5))
	wl := d / float64(windows)
	tasks := []float64{m.audio/m.media*d + bps*d/bw + over}
	for range windows {
		tasks = append(tasks, rate*wl+(bps*(wl+modelLookback)+modelBlocks)/bw+over)
	}
	free := make([]float64, n)
	end := 0.0
	for _, t := range tasks {
		k := 0
		for j := range free {
			if free[j] < free[k] {
				k = j
			}
		}
		free[k] += t
		end = max(end, free[k])
	}
	return bps*d/bw + end, windows
}

// wholeRun is the modelled time of the title on one worker, not split.
func (m measuredChunks) wholeRun(d, bw float64) float64 {
	return m.whole/m.media*d + m.sourceBytes/m.media*d/bw
}

// firstBelow is the smallest worker count at which the modelled speed-up
// falls under 0.8 per worker (0 if none up to 200).
func (m measuredChunks) firstBelow(d, l, bw float64) int {
	for n := 1; n <= 200; n++ {
		t, _ := m.publish(d, l, n, bw)
		if m.wholeRun(d, bw)/t < 0.8*float64(n) {
			return n
		}
	}
	return 0
}

func (m measuredChunks) report() []string {
	const d = 7200.0
	bw := modelBandwidth
	out := []string{
		fmt.Sprintf("model inputs: whole %.1f s and chunked %.1f s for %.0f s of media in %.0f tasks (one worker, 2 threads); first-chunk latency %.2f s; audio task %.1f s; source %.1f MB (%.1f Mbit/s); loopback ranged reads %.0f MB/s",
			m.whole, m.serial, m.media, m.tasks, m.latency, m.audio, m.sourceBytes/1e6, 8*m.sourceBytes/m.media/1e6, m.loopback/1e6),
		fmt.Sprintf("time to publish a 2 h title at this bitrate, 1 Gbit/s to the store per worker; one worker, whole: %.2f h", m.wholeRun(d, bw)/3600),
	}
	for _, l := range []float64{180, 60, 30} {
		for _, n := range []int{1, 10, 50} {
			t, w := m.publish(d, l, n, bw)
			sp := m.wholeRun(d, bw) / t
			out = append(out, fmt.Sprintf("  %3.0f s windows (%d + audio), %2d workers: %6.1f min, speed-up %5.1f = %.2f N", l, w, n, t/60, sp, sp/float64(n)))
		}
		out = append(out, fmt.Sprintf("  %3.0f s windows: the speed-up first falls under 0.8 N at %d workers", l, m.firstBelow(d, l, bw)))
	}
	return out
}

// TestPublishModel checks the model's arithmetic on figures of the kind
// the benchmark measures: one worker takes as long as the whole run plus
// the chunks' overhead, ten workers are about ten times faster, and more
// workers than tasks gain nothing.
func TestPublishModel(t *testing.T) {
	m := measuredChunks{media: 120, tasks: 5, whole: 240, serial: 250, latency: 0.01, audio: 3, sourceBytes: 72e6}
	const d = 7200.0
	one, w := m.publish(d, 180, 1, modelBandwidth)
	whole := m.wholeRun(d, modelBandwidth)
	if w != 40 || one < whole || one > whole*1.1 {
		t.Fatalf("one worker: %.0f s for %d windows, whole %.0f s", one, w, whole)
	}
	ten, _ := m.publish(d, 180, 10, modelBandwidth)
	if sp := whole / ten; sp < 8 || sp > 10 {
		t.Fatalf("ten workers: speed-up %.1f", sp)
	}
	fifty, _ := m.publish(d, 180, 50, modelBandwidth)
	hundred, _ := m.publish(d, 180, 100, modelBandwidth)
	if fifty != hundred {
		t.Fatalf("with 41 tasks, 50 workers take %.0f s and 100 %.0f s", fifty, hundred)
	}
	if n := m.firstBelow(d, 180, modelBandwidth); n < 11 || n > 50 {
		t.Fatalf("the speed-up falls under 0.8 N at %d workers", n)
	}
	for _, l := range m.report() {
		t.Log(l)
	}
}
