package transcode_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/transcode"
)

// BenchmarkLadderVsFFmpeg transcodes a generated 1080p 30 s clip along the
// default ladder in process, then has the ffmpeg CLI produce the same
// renditions with the same settings from one decode, and reports the ratios
// of wall time and CPU time (goal: <= 1.10), and peak RSS. The /ab case
// encodes every rendition twice (variants A and B) on both sides (goal:
// <= 1.05). Run with -benchtime 1x (make bench does).
func BenchmarkLadderVsFFmpeg(b *testing.B) {
	src := testmedia.Clip(b, "hd-1080p30.mp4")
	p := profile.Default()
	ladder, err := p.Ladder(1920, 1080)
	if err != nil {
		b.Fatal(err)
	}
	threads := runtime.NumCPU()
	for _, variants := range []int{1, 2} {
		name := "single"
		if variants == 2 {
			name = "ab"
		}
		b.Run(name, func(b *testing.B) {
			opts := transcode.Options{SegmentDuration: time.Duration(p.SegmentDuration), Variants: variants, Threads: threads,
				Audio: &transcode.AudioSettings{Bitrate: p.Audio.Bitrate, SampleRate: p.Audio.SampleRate}}
			for _, o := range ladder {
				opts.Renditions = append(opts.Renditions, transcode.Rendition{Name: o.Name, Width: o.Width, Height: o.Height,
					Bitrate: o.Bitrate, MaxRate: o.MaxRate, BufSize: o.BufSize, CRF: o.CRF, Preset: o.Preset, Profile: o.H264Profile})
			}
			var ourWall, ourCPU, cliWall, cliCPU time.Duration
			var ourRSS, cliRSS int64
			for b.Loop() {
				resetPeakRSS()
				cpu0, t0 := selfCPU(), time.Now()
				if _, err := transcode.Run(b.Context(), src, opts, discard{}); err != nil {
					b.Fatal(err)
				}
				ourWall, ourCPU, ourRSS = time.Since(t0), selfCPU()-cpu0, peakRSS()

				args := ffmpegArgs(src, opts, threads)
				cmd := exec.CommandContext(b.Context(), "ffmpeg", args...)
				t0 = time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
				}
				cliWall = time.Since(t0)
				ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
				cliCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
				cliRSS = ru.Maxrss << 10
			}
			b.ReportMetric(ourWall.Seconds(), "abseal-wall-s")
			b.ReportMetric(cliWall.Seconds(), "ffmpeg-wall-s")
			b.ReportMetric(ourWall.Seconds()/cliWall.Seconds(), "wall-ratio")
			b.ReportMetric(ourCPU.Seconds()/cliCPU.Seconds(), "cpu-ratio")
			b.ReportMetric(float64(ourRSS>>20), "abseal-peak-rss-MiB")
			b.ReportMetric(float64(cliRSS>>20), "ffmpeg-peak-rss-MiB")
		})
	}
}

// ffmpegArgs is the ffmpeg CLI command that produces the same renditions as
// opts: one decode, one filter graph, libx264 with the same options per
// output (twice per rendition for A/B), AAC once, into the null muxer.
func ffmpegArgs(src string, opts transcode.Options, threads int) []string {
	n := len(opts.Renditions)
	var fc strings.Builder
	fmt.Fprintf(&fc, "[0:v]format=yuv420p,split=%d", n)
	for i := range n {
		fmt.Fprintf(&fc, "[s%d]", i)
	}
	for i, r := range opts.Renditions {
		fmt.Fprintf(&fc, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1", i, r.Width, r.Height)
		if opts.Variants == 2 {
			fmt.Fprintf(&fc, ",split=2[o%da][o%db]", i, i)
		} else {
			fmt.Fprintf(&fc, "[o%da]", i)
		}
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-threads", strconv.Itoa(threads),
		"-i", src, "-filter_complex", fc.String(), "-filter_complex_threads", strconv.Itoa(threads)}
	fps := 30
	seg := int(opts.SegmentDuration.Seconds() * float64(fps))
	for i, r := range opts.Renditions {
		for v := range opts.Variants {
			args = append(args, "-map", fmt.Sprintf("[o%d%c]", i, 'a'+v), "-c:v", "libx264", "-threads", strconv.Itoa(threads),
				"-preset", r.Preset, "-profile:v", r.Profile, "-g", strconv.Itoa(2*seg),
				"-x264-params", fmt.Sprintf("scenecut=0:open-gop=0:min-keyint=%d:keyint=%d", seg, 2*seg),
				"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%g)", opts.SegmentDuration.Seconds()), "-forced-idr", "1")
			if r.CRF > 0 {
				args = append(args, "-crf", strconv.Itoa(r.CRF))
			} else {
				args = append(args, "-b:v", strconv.FormatInt(r.Bitrate, 10))
			}
			if r.MaxRate > 0 {
				args = append(args, "-maxrate", strconv.FormatInt(r.MaxRate, 10), "-bufsize", strconv.FormatInt(r.BufSize, 10))
			}
			args = append(args, "-f", "null", "-")
		}
	}
	if opts.Audio != nil {
		args = append(args, "-map", "0:a", "-c:a", "aac", "-b:a", strconv.FormatInt(opts.Audio.Bitrate, 10),
			"-ar", strconv.Itoa(opts.Audio.SampleRate), "-ac", "2", "-f", "null", "-")
	}
	return args
}

type discard struct{}

func (discard) Tracks([]transcode.Track) error { return nil }
func (discard) Packet(transcode.Packet) error  { return nil }

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS restarts the kernel's peak-RSS counter of this process.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func peakRSS() int64 {
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}
