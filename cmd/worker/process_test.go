package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/transcode"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

// testProfile is a small, fast ladder with 2 s segments. It uses plain CRF:
// with a VBV cap (maxrate) and frame threads, x264's rate control depends on
// thread timing, and two encodes of the same frames differ in their bits.
const testProfile = `{"name":"test","segment_duration":"2s","rungs":[
 {"name":"360p","size":360,"bitrate":800000,"crf":26,"preset":"ultrafast","h264_profile":"main"},
 {"name":"180p","size":180,"bitrate":300000,"crf":26,"preset":"ultrafast","h264_profile":"main"}],
 "audio":{"bitrate":96000,"sample_rate":48000}}`

func profileFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "profile.json")
	if err := os.WriteFile(p, []byte(testProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func process(t *testing.T, src string, extra ...string) (string, string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "asset")
	var stdout, stderr bytes.Buffer
	args := append([]string{"process", "--in", src, "--out", out, "--profile", profileFile(t), "--threads", "2"}, extra...)
	err := run(t.Context(), args, &stdout, &stderr)
	return out, stdout.String(), err
}

// probe returns ffprobe's count of decoded video frames and the duration.
func probe(t *testing.T, path string) (frames int, duration float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames:format=duration", "-of", "default=nw=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	for line := range strings.Lines(string(out)) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "nb_read_frames":
			frames, _ = strconv.Atoi(v)
		case "duration":
			duration, _ = strconv.ParseFloat(v, 64)
		}
	}
	return frames, duration
}

// decodeClean decodes every stream of a manifest and fails on any error.
func decodeClean(t *testing.T, manifest string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-xerror", "-i", manifest, "-map", "0", "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("decode %s: %v\n%s", manifest, err, out)
	}
}

// segmentInfo decodes a media segment: its first sample's NAL unit types,
// whether it is flagged sync, its decode time and sample count.
func segmentInfo(t *testing.T, path string) (firstVCL avc.NaluType, sync bool, samples int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Segments) != 1 || len(f.Segments[0].Fragments) != 1 || f.Segments[0].Styp == nil {
		t.Fatalf("%s: want one styp+moof+mdat segment", path)
	}
	frag := f.Segments[0].Fragments[0]
	fs, err := frag.GetFullSamples(nil)
	if err != nil || len(fs) == 0 {
		t.Fatalf("%s: samples: %v", path, err)
	}
	if types := avc.FindNaluTypesUpToFirstVideoNALU(fs[0].Data); len(types) > 0 {
		firstVCL = types[len(types)-1]
	}
	return firstVCL, mp4.IsSyncSampleFlags(fs[0].Flags), len(fs)
}

func TestProcessLadder(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	out, stdout, err := process(t, src, "--variants", "2")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(stdout)
	srcFrames, srcDur := probe(t, src)

	for _, rung := range []string{"360p", "180p"} {
		for _, v := range []string{"a", "b"} {
			segs, _ := filepath.Glob(filepath.Join(out, rung, v, "seg-*.m4s"))
			if len(segs) != 3 { // 6 s in 2 s segments
				t.Fatalf("%s/%s: %d segments, want 3", rung, v, len(segs))
			}
			total := 0
			for _, s := range segs {
				vcl, sync, n := segmentInfo(t, s)
				if vcl != avc.NALU_IDR || !sync {
					t.Errorf("%s: first sample is NAL type %d (sync %v), want an IDR", s, vcl, sync)
				}
				if n != 60 {
					t.Errorf("%s: %d frames, want 60 (2 s at 30 fps)", s, n)
				}
				total += n
			}
			if total != srcFrames {
				t.Errorf("%s/%s: %d frames, source has %d", rung, v, total, srcFrames)
			}
		}
		// With an identity hook the two variants encode the same frames
		// with the same settings: byte-identical output.
		for n := 1; n <= 3; n++ {
			a, _ := os.ReadFile(filepath.Join(out, rung, "a", "seg-0000"+strconv.Itoa(n)+".m4s"))
			b, _ := os.ReadFile(filepath.Join(out, rung, "b", "seg-0000"+strconv.Itoa(n)+".m4s"))
			if len(a) == 0 || !bytes.Equal(a, b) {
				t.Errorf("%s segment %d: variants a (%d bytes) and b (%d bytes) differ", rung, n, len(a), len(b))
			}
		}
	}
	master := filepath.Join(out, "hls", "master.m3u8")
	decodeClean(t, master)
	for _, pl := range []string{"360p", "180p"} {
		frames, dur := probe(t, filepath.Join(out, "hls", pl+".m3u8"))
		if frames != srcFrames || dur < srcDur-0.05 || dur > srcDur+0.1 {
			t.Errorf("hls %s: %d frames, %.3f s; source %d frames, %.3f s", pl, frames, dur, srcFrames, srcDur)
		}
	}
	mpd := filepath.Join(out, "dash", "manifest.mpd")
	decodeClean(t, mpd)
	if frames, _ := probe(t, mpd); frames != srcFrames {
		t.Errorf("dash: %d frames, source %d", frames, srcFrames)
	}
	pl, _ := os.ReadFile(master)
	for _, want := range []string{"#EXT-X-INDEPENDENT-SEGMENTS", "BANDWIDTH=", "AVERAGE-BANDWIDTH=", `CODECS="avc1.`, "RESOLUTION=640x360", "RESOLUTION=320x180", `TYPE=AUDIO`} {
		if !bytes.Contains(pl, []byte(want)) {
			t.Errorf("master playlist lacks %s:\n%s", want, pl)
		}
	}
	media, _ := os.ReadFile(filepath.Join(out, "hls", "360p.m3u8"))
	for _, want := range []string{"#EXT-X-MAP:URI=\"../360p/init.mp4\"", "#EXT-X-PLAYLIST-TYPE:VOD", "../360p/seg-00001.m4s", "#EXT-X-ENDLIST"} {
		if !bytes.Contains(media, []byte(want)) {
			t.Errorf("media playlist lacks %s:\n%s", want, media)
		}
	}
	if bytes.Contains(media, []byte("/a/")) || bytes.Contains(media, []byte("/b/")) {
		t.Errorf("media playlist names a variant:\n%s", media)
	}
}

func TestProcessOddSources(t *testing.T) {
	for _, tc := range []struct {
		clip string
		w, h int // of the largest rendition
	}{
		{"ntsc-2997.mp4", 320, 180}, // 480x270: the 360 rung would upscale and is dropped
		{"film-23976.mp4", 320, 180},
		{"pal-25.mp4", 320, 180},
		{"hfr-60.mp4", 320, 180},
		{"vfr.mkv", 320, 180},
		{"odd-853x480.mp4", 640, 360},
		{"rotated.mp4", 360, 640},
		{"interlaced.ts", 450, 360},
		{"noaudio.mp4", 320, 180},
	} {
		t.Run(tc.clip, func(t *testing.T) {
			src := testmedia.Clip(t, tc.clip)
			out, _, err := process(t, src)
			if err != nil {
				t.Fatal(err)
			}
			srcFrames, srcDur := probe(t, src)
			master := filepath.Join(out, "hls", "master.m3u8")
			decodeClean(t, master)
			// The largest rung of the test ladder is 360 (or the source).
			rungs, _ := filepath.Glob(filepath.Join(out, "hls", "*p.m3u8"))
			if len(rungs) == 0 {
				t.Fatal("no rendition playlists")
			}
			pl, _ := os.ReadFile(master)
			if !bytes.Contains(pl, []byte("RESOLUTION="+strconv.Itoa(tc.w)+"x"+strconv.Itoa(tc.h))) {
				t.Errorf("no %dx%d rendition:\n%s", tc.w, tc.h, pl)
			}
			frames, dur := probe(t, rungs[0])
			if frames != srcFrames || dur < srcDur-0.1 || dur > srcDur+0.1 {
				t.Errorf("%d frames, %.3f s; source %d frames, %.3f s", frames, dur, srcFrames, srcDur)
			}
			checkSegmentDurations(t, rungs, 2.0, dur/float64(frames))
		})
	}
}

// checkSegmentDurations reads the EXTINF durations of media playlists: the
// same in every rendition, each within one frame of the target but the last,
// which may be shorter.
func checkSegmentDurations(t *testing.T, playlists []string, target, frame float64) {
	t.Helper()
	var first []string
	for _, pl := range playlists {
		data, err := os.ReadFile(pl)
		if err != nil {
			t.Fatal(err)
		}
		var durs []string
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "#EXTINF:"); ok {
				durs = append(durs, strings.TrimSuffix(v, ","))
			}
		}
		for i, d := range durs {
			f, _ := strconv.ParseFloat(d, 64)
			last := i == len(durs)-1
			if f > target+frame+0.001 || (!last && f < target-frame-0.001) {
				t.Errorf("%s: segment %d lasts %s s, target %.1f s, frame %.4f s", filepath.Base(pl), i+1, d, target, frame)
			}
		}
		if first == nil {
			first = durs
		} else if strings.Join(first, " ") != strings.Join(durs, " ") {
			t.Errorf("segment boundaries differ between renditions: %v vs %v", first, durs)
		}
	}
}

func TestProcessBadInput(t *testing.T) {
	for _, tc := range []struct {
		clip string
		kind error
		msg  string
	}{
		{"empty.mp4", transcode.ErrEmpty, "empty file"},
		{"notvideo.txt", transcode.ErrNotVideo, "not a video"},
		{"audioonly.m4a", transcode.ErrNotVideo, "not a video: audio only"},
		{"truncated.mp4", transcode.ErrCorrupt, "corrupt"},
		{"cut-short.mp4", transcode.ErrCorrupt, "corrupt at 00:00:0"},
	} {
		t.Run(tc.clip, func(t *testing.T) {
			out, _, err := process(t, testmedia.Clip(t, tc.clip))
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.kind, tc.msg)
			}
			if exitCode(err) != 3 {
				t.Errorf("exit code %d, want 3 for bad input", exitCode(err))
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output %s left behind after a failure", out)
			}
		})
	}
}

func TestProcessUsage(t *testing.T) {
	var o, e bytes.Buffer
	for _, args := range [][]string{nil, {"frob"}, {"process"}, {"process", "--in", "x"}, {"process", "--in", "x", "--out", "y", "--play", "c"}} {
		if err := run(t.Context(), args, &o, &e); exitCode(err) != 2 {
			t.Errorf("%v: err %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
}

// With a watermark key, marked segments differ between variants a and b,
// both variants of every segment have the same size, the unmarked first
// segment is the same in both, and both variants play cleanly.
func TestProcessWatermark(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	key := filepath.Join(t.TempDir(), "wm.key")
	if err := os.WriteFile(key, []byte("watermark master key for tests.."), 0o600); err != nil {
		t.Fatal(err)
	}
	outs := map[string]string{}
	for _, v := range []string{"a", "b"} {
		out, _, err := process(t, src, "--watermark-key", key, "--allow-clear-watermark-key", "--asset-id", "clip", "--unmarked", "1", "--play", v)
		if err != nil {
			t.Fatal(err)
		}
		outs[v] = out
		decodeClean(t, filepath.Join(out, "hls", "master.m3u8"))
		if frames, _ := probe(t, filepath.Join(out, "hls", "360p.m3u8")); frames != 180 {
			t.Errorf("variant %s: %d frames, want 180", v, frames)
		}
	}
	out := outs["a"]
	for _, rung := range []string{"360p", "180p"} {
		for n := 1; n <= 3; n++ {
			name := "seg-0000" + strconv.Itoa(n) + ".m4s"
			a, _ := os.ReadFile(filepath.Join(out, rung, "a", name))
			b, _ := os.ReadFile(filepath.Join(out, rung, "b", name))
			if len(a) == 0 || len(a) != len(b) {
				t.Errorf("%s %s: variants of %d and %d bytes, want equal sizes", rung, name, len(a), len(b))
			}
			if same := bytes.Equal(a, b); same != (n == 1) {
				t.Errorf("%s %s: variants identical %v (segment 1 is unmarked)", rung, name, same)
			}
		}
	}
}

// worker process reads the watermark key through the KEK: a wrapped key
// works with --kek-uri, a clear key is refused unless it is allowed
// explicitly, and a wrapped key without the KEK says what is missing.
func TestProcessWatermarkKeyFile(t *testing.T) {
	src := testmedia.Clip(t, "main.mp4")
	dir := t.TempDir()
	clearKey := filepath.Join(dir, "clear.key")
	if err := os.WriteFile(clearKey, []byte("watermark master key for tests.."), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := process(t, src, "--watermark-key", clearKey); !errors.Is(err, envelope.ErrClearWatermarkKey) {
		t.Fatalf("clear key without --allow-clear-watermark-key: %v", err)
	}
	kekPath := filepath.Join(dir, "kek.json")
	if err := envelope.CreateLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := envelope.OpenKEK(t.Context(), kekPath, envelope.KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wrapped := filepath.Join(dir, "wrapped.key")
	if err := kek.CreateWatermarkKey(wrapped); err != nil {
		t.Fatal(err)
	}
	if _, _, err := process(t, src, "--watermark-key", wrapped); err == nil || !strings.Contains(err.Error(), "give the KEK") {
		t.Fatalf("wrapped key without --kek-uri: %v", err)
	}
	out, _, err := process(t, src, "--watermark-key", wrapped, "--kek-uri", kekPath, "--play", "none")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(out, "360p", "a", "seg-00003.m4s"))
	b, _ := os.ReadFile(filepath.Join(out, "360p", "b", "seg-00003.m4s"))
	if len(a) == 0 || len(a) != len(b) || bytes.Equal(a, b) {
		t.Fatalf("wrapped key: variants of a marked segment: %d and %d bytes, equal %v", len(a), len(b), bytes.Equal(a, b))
	}
}
