package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/profile"
)

// BenchmarkMarkedVsFFmpeg is the watermark's cost as a user sees it: whole
// processes side by side on a 1080p30 source with audio, the default
// ladder (1080/720/480/360) in A/B, costRounds runs of each command,
// alternating, medians:
//
//   - cli: the ffmpeg CLI, one decode, split, one scale per rung, two
//     libx264 encodes per rung with abseal's options, AAC once, fMP4
//     segments to disk;
//   - unmarked: worker process --variants 2;
//   - marked: worker process --variants 2 --watermark-key K (through the
//     KEK, as an operator runs it).
//
// Sources: natural (camera-like, testdata/make-clips.sh natural-1080p30.mp4,
// 20 s) and generated (a Mandelbrot zoom under full-frame noise,
// hd-1080p30.mp4, 30 s). Reported: wall, CPU (user+sys) and peak RSS of
// each command and the ratios to the CLI (goal for marked: <= 1.10 wall and
// CPU). Run with -benchtime 1x (make bench does).
// costRounds is how often each command runs: this machine's timings vary
// by several per cent from run to run, and the median of five settles.
// ABSEAL_COST_ROUNDS sets another count.
func costRounds(b *testing.B) int {
	v := os.Getenv("ABSEAL_COST_ROUNDS")
	if v == "" {
		return 5
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("ABSEAL_COST_ROUNDS=%q: want a positive count", v)
	}
	return n
}

func BenchmarkMarkedVsFFmpeg(b *testing.B) {
	root, err := devenv.ModuleRoot()
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	worker := filepath.Join(dir, "abseal-worker")
	if out, err := exec.Command("go", "build", "-o", worker, filepath.Join(root, "cmd", "worker")).CombinedOutput(); err != nil {
		b.Fatalf("build worker: %v\n%s", err, out)
	}
	kekPath := filepath.Join(dir, "kek.json")
	if err := envelope.CreateLocalKEK(kekPath); err != nil {
		b.Fatal(err)
	}
	kek, err := envelope.OpenKEK(b.Context(), kekPath, envelope.KEKOptions{})
	if err != nil {
		b.Fatal(err)
	}
	wmKey := filepath.Join(dir, "wm.key")
	if err := kek.CreateWatermarkKey(wmKey); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, clip string }{{"natural", "natural-1080p30.mp4"}, {"generated", "hd-1080p30.mp4"}} {
		b.Run(c.name, func(b *testing.B) {
			src := testmedia.Clip(b, c.clip)
			cmds := map[string]func(out string) *exec.Cmd{
				"cli": func(out string) *exec.Cmd {
					return exec.Command("ffmpeg", ffmpegLadderArgs(b, src, out)...)
				},
				"unmarked": func(out string) *exec.Cmd {
					return exec.Command(worker, "process", "--in", src, "--out", out, "--variants", "2", "--play", "none")
				},
				"marked": func(out string) *exec.Cmd {
					return exec.Command(worker, "process", "--in", src, "--out", out, "--variants", "2", "--play", "none",
						"--kek-uri", kekPath, "--watermark-key", wmKey, "--asset-id", "bench")
				},
			}
			order := []string{"cli", "unmarked", "marked"}
			runs := map[string][]usage{}
			for b.Loop() {
				for round := range costRounds(b) {
					for _, name := range order {
						out := filepath.Join(dir, fmt.Sprintf("%s-%d", name, round))
						if name == "cli" {
							os.MkdirAll(out, 0o755)
						}
						u, err := measure(cmds[name](out))
						if err != nil {
							b.Fatalf("%s: %v", name, err)
						}
						os.RemoveAll(out)
						runs[name] = append(runs[name], u)
						b.Logf("%s %s run %d: wall %.2fs cpu %.2fs (sys %.2fs) peak rss %d MiB", c.name, name, round+1,
							u.wall.Seconds(), u.cpu.Seconds(), u.sys.Seconds(), u.rss>>20)
					}
				}
			}
			med := map[string]usage{}
			for _, name := range order {
				med[name] = median(runs[name])
			}
			cli := med["cli"]
			var table strings.Builder
			fmt.Fprintf(&table, "\nCLI: `ffmpeg %s`\n", strings.Join(ffmpegLadderArgs(b, src, "OUT"), " "))
			fmt.Fprintf(&table, "\n| %s source | wall | CPU (user+sys) | sys | peak RSS | wall / CLI | CPU / CLI |\n|---|---:|---:|---:|---:|---:|---:|\n", c.name)
			for _, name := range order {
				m := med[name]
				fmt.Fprintf(&table, "| %s | %.1f s | %.1f s | %.1f s | %d MiB | %.2f | %.2f |\n", name, m.wall.Seconds(), m.cpu.Seconds(),
					m.sys.Seconds(), m.rss>>20, m.wall.Seconds()/cli.wall.Seconds(), m.cpu.Seconds()/cli.cpu.Seconds())
			}
			b.Log(table.String())
			for _, name := range order {
				m := med[name]
				b.ReportMetric(m.wall.Seconds(), name+"-wall-s")
				b.ReportMetric(m.cpu.Seconds(), name+"-cpu-s")
				b.ReportMetric(float64(m.rss>>20), name+"-rss-MiB")
			}
			for _, name := range order[1:] {
				b.ReportMetric(med[name].wall.Seconds()/cli.wall.Seconds(), name+"/cli-wall")
				b.ReportMetric(med[name].cpu.Seconds()/cli.cpu.Seconds(), name+"/cli-cpu")
			}
		})
	}
}

type usage struct {
	wall, cpu, sys time.Duration
	rss            int64
}

// measure runs cmd and returns its wall time and its rusage.
func measure(cmd *exec.Cmd) (usage, error) {
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(t0)
	if err != nil {
		return usage{}, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return usage{wall: wall, cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), sys: time.Duration(ru.Stime.Nano()), rss: ru.Maxrss << 10}, nil
}

// median takes each measure's median on its own.
func median(us []usage) usage {
	pick := func(f func(usage) int64) int64 {
		v := make([]int64, len(us))
		for i, u := range us {
			v[i] = f(u)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	return usage{
		wall: time.Duration(pick(func(u usage) int64 { return int64(u.wall) })),
		cpu:  time.Duration(pick(func(u usage) int64 { return int64(u.cpu) })),
		sys:  time.Duration(pick(func(u usage) int64 { return int64(u.sys) })),
		rss:  pick(func(u usage) int64 { return u.rss }),
	}
}

// ffmpegLadderArgs is the ffmpeg CLI command that does what worker process
// --variants 2 does, without sealing: one decode, one filter graph (8-bit
// 4:2:0, split, bicubic scale per rung), libx264 twice per rung with the
// same options (preset, profile, CRF, VBV cap, closed GOP, an IDR every
// segment), AAC once, each output cut into 2 s fragmented-MP4 segments in
// out.
func ffmpegLadderArgs(b *testing.B, src, out string) []string {
	p := profile.Default()
	ladder, err := p.Ladder(1920, 1080)
	if err != nil {
		b.Fatal(err)
	}
	seg := time.Duration(p.SegmentDuration).Seconds()
	const fps = 30
	segFrames := int(seg * fps)
	var fc strings.Builder
	fmt.Fprintf(&fc, "[0:v]format=yuv420p,split=%d", len(ladder))
	for i := range ladder {
		fmt.Fprintf(&fc, "[s%d]", i)
	}
	for i, r := range ladder {
		fmt.Fprintf(&fc, ";[s%d]scale=%d:%d:flags=bicubic,setsar=1,split=2[o%da][o%db]", i, r.Width, r.Height, i, i)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", src, "-filter_complex", fc.String()}
	segment := func(name string) []string {
		return []string{"-f", "segment", "-segment_time", strconv.FormatFloat(seg, 'f', -1, 64), "-segment_format", "mp4",
			"-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof", "-reset_timestamps", "0",
			filepath.Join(out, name+"-%05d.m4s")}
	}
	for i, r := range ladder {
		for _, v := range []string{"a", "b"} {
			args = append(args, "-map", fmt.Sprintf("[o%d%s]", i, v), "-c:v", "libx264",
				"-preset", r.Preset, "-profile:v", r.H264Profile, "-g", strconv.Itoa(2*segFrames),
				"-x264-params", fmt.Sprintf("scenecut=0:open-gop=0:min-keyint=%d:keyint=%d", segFrames, 2*segFrames),
				"-force_key_frames", fmt.Sprintf("expr:gte(t,n_forced*%g)", seg), "-forced-idr", "1")
			if r.CRF > 0 {
				args = append(args, "-crf", strconv.Itoa(r.CRF))
			}
			if r.MaxRate > 0 {
				args = append(args, "-maxrate", strconv.FormatInt(r.MaxRate, 10), "-bufsize", strconv.FormatInt(r.BufSize, 10))
			}
			args = append(args, segment(r.Name+"-"+v)...)
		}
	}
	return append(append(args, "-map", "0:a", "-c:a", "aac", "-b:a", strconv.FormatInt(p.Audio.Bitrate, 10),
		"-ar", strconv.Itoa(p.Audio.SampleRate), "-ac", "2"), segment("audio")...)
}
