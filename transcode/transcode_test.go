package transcode_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/transcode"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

type collect struct {
	mu      sync.Mutex
	tracks  []transcode.Track
	packets [][]transcode.Packet
}

func (c *collect) Tracks(ts []transcode.Track) error {
	c.tracks = ts
	c.packets = make([][]transcode.Packet, len(ts))
	return nil
}

func (c *collect) Packet(p transcode.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.Data = bytes.Clone(p.Data)
	c.packets[p.Track] = append(c.packets[p.Track], p)
	return nil
}

// rend is a fast rendition in plain CRF (deterministic with frame threads).
func rend(name string, w, h int) transcode.Rendition {
	return transcode.Rendition{Name: name, Width: w, Height: h, Bitrate: 500_000, CRF: 28, Preset: "ultrafast", Profile: "high"}
}

func ladderOpts() transcode.Options {
	return transcode.Options{
		Renditions:      []transcode.Rendition{rend("360p", 640, 360), rend("180p", 320, 180)},
		SegmentDuration: 2 * time.Second,
		Threads:         2,
	}
}

func TestLadderSegments(t *testing.T) {
	var sink collect
	opts := ladderOpts()
	opts.Audio = &transcode.AudioSettings{Bitrate: 96000, SampleRate: 48000}
	res, err := transcode.Run(t.Context(), testmedia.Clip(t, "main.mp4"), opts, &sink)
	if err != nil {
		t.Fatal(err)
	}
	if len(sink.tracks) != 3 || sink.tracks[2].Kind != transcode.Audio || res.Segments != 3 || res.FramesDecoded != 180 {
		t.Fatalf("tracks %+v, result %+v", sink.tracks, res)
	}
	var boundaries []string
	for _, tr := range sink.tracks[:2] {
		pk := sink.packets[tr.ID]
		if len(pk) != 180 {
			t.Errorf("%s: %d packets, want 180", tr.Name, len(pk))
		}
		var keys []string
		for i, p := range pk {
			first := i == 0 || p.Segment != pk[i-1].Segment
			if p.Keyframe != first {
				t.Errorf("%s packet %d (segment %d): keyframe %v, first of its segment %v", tr.Name, i, p.Segment, p.Keyframe, first)
			}
			if p.Keyframe {
				keys = append(keys, strconv.FormatInt(p.PTS, 10))
			}
		}
		boundaries = append(boundaries, strings.Join(keys, ","))
	}
	if boundaries[0] != "0,180000,360000" || boundaries[1] != boundaries[0] {
		t.Errorf("segment starts (90 kHz) per rendition: %v, want 0,180000,360000 in both", boundaries)
	}
	audio := sink.packets[2]
	if len(audio) < 270 { // 6 s at 48 kHz in 1024-sample frames
		t.Errorf("%d audio packets", len(audio))
	}
	for i := 1; i < len(audio); i++ {
		if audio[i].DTS <= audio[i-1].DTS {
			t.Fatalf("audio DTS not increasing at %d", i)
		}
	}
}

// Identical frames through the two variant encoders give identical bits,
// and a hook's change to one variant's luma reaches only that variant.
func TestVariantsAndHook(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	type seen struct{ frames, idx0 int }
	var mu sync.Mutex
	counts := map[[3]int]*seen{} // rendition, variant, segment
	hook := func(mark bool) transcode.FrameHook {
		return func(f *transcode.Frame) error {
			if f.Stride < f.Width || len(f.Luma) < f.Stride*f.Height {
				t.Errorf("luma plane %d bytes, stride %d, %dx%d", len(f.Luma), f.Stride, f.Width, f.Height)
			}
			mu.Lock()
			k := [3]int{f.Rendition, f.Variant, f.Segment}
			if counts[k] == nil {
				counts[k] = &seen{}
			}
			counts[k].frames++
			if f.Index == 0 {
				counts[k].idx0++
			}
			mu.Unlock()
			if mark && f.Variant == 1 {
				for y := 0; y < f.Height; y += 8 {
					row := f.Luma[y*f.Stride : y*f.Stride+f.Width]
					for x := range row {
						row[x] ^= 0x10
					}
				}
			}
			return nil
		}
	}
	for _, mark := range []bool{false, true} {
		var sink collect
		opts := ladderOpts()
		opts.Variants = 2
		opts.Hook = hook(mark)
		if _, err := transcode.Run(t.Context(), src, opts, &sink); err != nil {
			t.Fatal(err)
		}
		for ri := range 2 {
			a, b := sink.packets[2*ri], sink.packets[2*ri+1]
			same := len(a) == len(b)
			for i := 0; same && i < len(a); i++ {
				same = bytes.Equal(a[i].Data, b[i].Data) && a[i].PTS == b[i].PTS && a[i].Keyframe == b[i].Keyframe
			}
			if same == mark {
				t.Errorf("hook marking variant b: %v; rendition %d variants identical: %v", mark, ri, same)
			}
		}
	}
	for k, s := range counts {
		if s.frames != 2*60 || s.idx0 != 2 { // two runs, 60 frames per 2 s segment, one index 0
			t.Errorf("rendition %d variant %d segment %d: hook saw %d frames, %d with index 0", k[0], k[1], k[2], s.frames, s.idx0)
		}
	}
	if len(counts) != 2*2*3 {
		t.Errorf("hook saw %d (rendition, variant, segment) triples, want 12", len(counts))
	}
}

// A pair hook gets b with a luma plane of its own and a's chroma: b
// copied from a encodes to a's bits; b changed on every row leaves a's
// bits as they are without a hook, and b's differ.
func TestPairHook(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	encode := func(pair transcode.PairHook) *collect {
		var sink collect
		opts := ladderOpts()
		opts.Variants = 2
		opts.PairHook = pair
		if _, err := transcode.Run(t.Context(), src, opts, &sink); err != nil {
			t.Fatal(err)
		}
		return &sink
	}
	same := func(a, b []transcode.Packet) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !bytes.Equal(a[i].Data, b[i].Data) || a[i].PTS != b[i].PTS {
				return false
			}
		}
		return true
	}
	plain := encode(nil)
	copied := encode(func(a, b *transcode.Frame) error {
		if &a.Luma[0] == &b.Luma[0] {
			t.Error("a and b share a luma plane")
		}
		b.CopyLuma(a)
		return nil
	})
	changed := encode(func(a, b *transcode.Frame) error {
		for y := range b.Height {
			for x := range b.Width {
				b.Luma[y*b.Stride+x] = a.Luma[y*a.Stride+x] ^ 0x10
			}
		}
		return nil
	})
	for ri := range 2 {
		if !same(copied.packets[2*ri], copied.packets[2*ri+1]) {
			t.Errorf("rendition %d: b copied from a encodes differently from a", ri)
		}
		if !same(copied.packets[2*ri], plain.packets[2*ri]) {
			t.Errorf("rendition %d: a with a copying pair hook differs from a without a hook", ri)
		}
		if !same(changed.packets[2*ri], plain.packets[2*ri]) {
			t.Errorf("rendition %d: writing b changed a", ri)
		}
		if same(changed.packets[2*ri+1], plain.packets[2*ri+1]) {
			t.Errorf("rendition %d: b written by the hook encodes as without a hook", ri)
		}
	}
}

func TestCancel(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(t.Context())
	var cancelled time.Time
	opts := ladderOpts()
	opts.Variants = 2
	opts.Hook = func(f *transcode.Frame) error {
		if f.Segment == 1 && cancelled.IsZero() {
			cancelled = time.Now()
			cancel()
		}
		return nil
	}
	_, err := transcode.Run(ctx, src, opts, &collect{})
	took := time.Since(cancelled)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if took > time.Second {
		t.Errorf("stopped %s after cancellation, want within 1 s", took)
	}
	// The encoder goroutines are gone.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after a cancelled transcode, %d before", n, before)
	}
}

// A hook error and a sink error stop the transcode with that error.
func TestErrorsStop(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	boom := errors.New("boom")
	opts := ladderOpts()
	opts.Hook = func(f *transcode.Frame) error {
		if f.Segment == 1 {
			return boom
		}
		return nil
	}
	if _, err := transcode.Run(t.Context(), src, opts, &collect{}); !errors.Is(err, boom) {
		t.Fatalf("hook error: err = %v", err)
	}
	if _, err := transcode.Run(t.Context(), src, ladderOpts(), failingSink{boom}); !errors.Is(err, boom) {
		t.Fatalf("sink error: err = %v", err)
	}
}

type failingSink struct{ err error }

func (failingSink) Tracks([]transcode.Track) error  { return nil }
func (f failingSink) Packet(transcode.Packet) error { return f.err }

// rss is the process's resident set in bytes.
func rss(t *testing.T) int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Transcoding the same clip 20 times does not grow the process: every
// FFmpeg allocation is freed.
func TestNoLeakOver20Runs(t *testing.T) {
	src := testmedia.Clip(t, "pal-25.mp4")
	opts := ladderOpts()
	opts.Variants = 2
	opts.Hook = func(*transcode.Frame) error { return nil }
	var after5 int64
	for i := range 20 {
		if _, err := transcode.Run(t.Context(), src, opts, &collect{}); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		transcode.ReleaseMemory()
		if i == 4 {
			after5 = rss(t)
		}
	}
	after20 := rss(t)
	t.Logf("RSS after 5 runs %d MiB, after 20 runs %d MiB", after5>>20, after20>>20)
	if growth := after20 - after5; growth > 16<<20 {
		t.Errorf("RSS grew by %d MiB over 15 more transcodes", growth>>20)
	}
}

func TestProbe(t *testing.T) {
	info, err := transcode.Probe(t.Context(), testmedia.Clip(t, "main.mp4"), transcode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if v := info.Video; v.Width != 640 || v.Height != 360 || v.FrameRate != 30 || v.Rotation != 0 || v.Interlaced || info.Audio == nil || info.Audio.SampleRate != 48000 {
		t.Errorf("main.mp4: %+v audio %+v", v, info.Audio)
	}
	rot, err := transcode.Probe(t.Context(), testmedia.Clip(t, "rotated.mp4"), transcode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if v := rot.Video; v.Rotation != 90 || v.DisplayWidth != 360 || v.DisplayHeight != 640 {
		t.Errorf("rotated.mp4: rotation %d, display %dx%d; want 90 (clockwise), 360x640", v.Rotation, v.DisplayWidth, v.DisplayHeight)
	}
	il, err := transcode.Probe(t.Context(), testmedia.Clip(t, "interlaced.ts"), transcode.Limits{})
	if err != nil || !il.Video.Interlaced {
		t.Errorf("interlaced.ts: interlaced %v, %v", il != nil && il.Video.Interlaced, err)
	}
	odd, err := transcode.Probe(t.Context(), testmedia.Clip(t, "odd-853x480.mp4"), transcode.Limits{})
	if err != nil || odd.Video.DisplayWidth != 853 {
		t.Errorf("odd-853x480.mp4: %+v, %v", odd, err)
	}
}

func TestLimits(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	for _, tc := range []struct {
		l    transcode.Limits
		want string
	}{
		{transcode.Limits{MaxWidth: 320, MaxHeight: 4320}, "resolution 640x360 over limit 320x4320"},
		{transcode.Limits{MaxDuration: 3 * time.Second}, "duration 00:00:06 over limit 00:00:03"},
		{transcode.Limits{MaxFrames: 100}, "180 frames over limit 100"},
		{transcode.Limits{MaxFileSize: 1000}, "over limit 1000"},
	} {
		_, err := transcode.Probe(t.Context(), src, tc.l)
		var ie *transcode.InputError
		if !errors.Is(err, transcode.ErrOverLimit) || !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want ErrOverLimit %q", tc.l, err, tc.want)
		}
	}
}

// The limits that only decoding can check stop a transcode with a
// permanent over-limit error naming the limit and the measured value.
func TestDecodeLimits(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	for _, tc := range []struct {
		l    transcode.Limits
		want string
	}{
		{transcode.Limits{MaxCPUPerSecond: 1e-9, CPUSlack: time.Nanosecond}, "s per second of media + 1ns)"},
		{transcode.Limits{MaxMemory: 1 << 20}, "over limit 1 MiB"},
	} {
		opts := ladderOpts()
		opts.Limits = tc.l
		_, err := transcode.Run(t.Context(), src, opts, &collect{})
		var ie *transcode.InputError
		if !errors.Is(err, transcode.ErrOverLimit) || !errors.As(err, &ie) || !ie.Permanent() || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want ErrOverLimit %q", tc.l, err, tc.want)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	for _, o := range []transcode.Options{
		{SegmentDuration: 2 * time.Second},
		{Renditions: []transcode.Rendition{rend("x", 641, 360)}, SegmentDuration: 2 * time.Second},
		{Renditions: []transcode.Rendition{rend("x", 640, 360)}, SegmentDuration: time.Millisecond},
		{Renditions: []transcode.Rendition{rend("x", 640, 360)}, SegmentDuration: 2 * time.Second, Variants: 3},
	} {
		if _, err := transcode.Run(t.Context(), src, o, &collect{}); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
}

func TestDecodeGray(t *testing.T) {
	n := 0
	var last time.Duration
	err := transcode.DecodeGray(t.Context(), testmedia.Clip(t, "rotated.mp4"), 36, 64, func(f transcode.GrayFrame) error {
		if f.W != 36 || f.H != 64 || len(f.Y) != 36*64 {
			t.Fatalf("frame %dx%d, %d bytes", f.W, f.H, len(f.Y))
		}
		if n > 0 && f.PTS <= last {
			t.Fatalf("frame %d: pts %s after %s", n, f.PTS, last)
		}
		last = f.PTS
		n++
		return nil
	})
	if err != nil || n != 120 {
		t.Fatalf("decoded %d frames (want 120): %v", n, err)
	}
}
