package pipeline_test

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/transcode"
	"github.com/abseal/abseal/watermark"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

type discard struct{}

func (discard) WriteObject(context.Context, asset.Ref, []byte) error { return nil }

func threadCPU() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkEmbedShareOfEncode renders the 1080p rung of a generated 1080p
// clip as variants A and B with the watermark, and reports the CPU time
// spent embedding as a share of the CPU time of the whole render (decode,
// scale and the two libx264 encodes). Goal: <= 3 %.
func BenchmarkEmbedShareOfEncode(b *testing.B) {
	src := testmedia.Clip(b, "hd-1080p30.mp4")
	p := profile.Default()
	p.Rungs = p.Rungs[:1]
	p.Audio.Bitrate = 0
	key, _ := watermark.DeriveAssetKey([]byte("benchmark master key, 32 bytes.."), "bench")
	emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(time.Duration(p.SegmentDuration)))
	if err != nil {
		b.Fatal(err)
	}
	var embedCPU, total time.Duration
	frames := 0
	pair := func(a, bf *transcode.Frame) error {
		runtime.LockOSThread() // both clock readings on one thread
		t0 := threadCPU()
		emb.EmbedPair(a.Luma, a.Stride, bf.Luma, bf.Stride, a.Width, a.Height, a.Segment, a.PTS)
		embedCPU += threadCPU() - t0
		runtime.UnlockOSThread()
		frames += 2
		return nil
	}
	for b.Loop() {
		embedCPU, frames = 0, 0
		c0 := processCPU()
		if _, err := pipeline.Render(b.Context(), src, p, pipeline.RenderOptions{Variants: 2, PairHook: pair}, discard{}); err != nil {
			b.Fatal(err)
		}
		total = processCPU() - c0
	}
	b.ReportMetric(float64(embedCPU.Microseconds())/float64(frames), "embed-us/frame") // per variant frame
	b.ReportMetric(100*embedCPU.Seconds()/(total-embedCPU).Seconds(), "embed-%-of-encode")
}
