package transcode_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/transcode"
)

// frames lists a track's frames per segment as "pts/duration" (90 kHz),
// in presentation order, and whether each segment starts with a keyframe.
func frames(t *testing.T, pk []transcode.Packet) map[int][]string {
	t.Helper()
	out := map[int][]string{}
	byPTS := slices.Clone(pk)
	for i, p := range pk {
		first := i == 0 || p.Segment != pk[i-1].Segment
		if first && !p.Keyframe {
			t.Errorf("segment %d starts without a keyframe", p.Segment)
		}
	}
	slices.SortFunc(byPTS, func(a, b transcode.Packet) int { return int(a.PTS - b.PTS) })
	for _, p := range byPTS {
		out[p.Segment] = append(out[p.Segment], fmt.Sprintf("%d/%d", p.PTS, p.Duration))
	}
	return out
}

// TestWindows: a source encoded whole and as three windows of segments
// gives, segment by segment, the same frames with the same timestamps and
// durations, every segment starting with a keyframe — for sources with
// B-frames and keyframes off the segment grid, open GOPs, a variable frame
// rate, and an MP4 edit list that hides the first frames of its first GOP.
func TestWindows(t *testing.T) {
	for _, clip := range []string{"chunk-bframes.mp4", "chunk-opengop.mp4", "chunk-vfr.mkv", "chunk-editlist.mp4"} {
		t.Run(clip, func(t *testing.T) {
			src := testmedia.Clip(t, clip)
			opts := transcode.Options{Renditions: []transcode.Rendition{rend("180p", 320, 180)}, SegmentDuration: 2 * time.Second, Threads: 2}
			var whole collect
			res, err := transcode.Run(t.Context(), src, opts, &whole)
			if err != nil {
				t.Fatal(err)
			}
			want := frames(t, whole.packets[0])
			got := map[int][]string{}
			var decoded, encoded int64
			windows := []transcode.Window{{From: 0, To: 3}, {From: 3, To: 7}, {From: 7}}
			for _, w := range windows {
				var part collect
				opts.Window = &w
				wres, err := transcode.Run(t.Context(), src, opts, &part)
				if err != nil {
					t.Fatalf("window %+v: %v", w, err)
				}
				decoded += wres.FramesDecoded
				encoded += wres.FramesEncoded
				for seg, fs := range frames(t, part.packets[0]) {
					if seg < w.From || w.To > 0 && seg >= w.To {
						t.Errorf("window %+v encoded segment %d", w, seg)
					}
					got[seg] = fs
				}
				if w.To == 0 && (wres.Segments != res.Segments || wres.Duration != res.Duration) {
					t.Errorf("last window: %d segments, %s; whole: %d, %s", wres.Segments, wres.Duration, res.Segments, res.Duration)
				}
			}
			if len(got) != len(want) || len(want) != res.Segments {
				t.Fatalf("windows gave %d segments, whole %d (result %d)", len(got), len(want), res.Segments)
			}
			for seg, fs := range want {
				if strings.Join(got[seg], " ") != strings.Join(fs, " ") {
					t.Errorf("segment %d: windows %v\nwhole %v", seg, got[seg], fs)
				}
			}
			if encoded != res.FramesEncoded {
				t.Errorf("windows encoded %d frames, whole %d", encoded, res.FramesEncoded)
			}
			t.Logf("%d segments, %d frames; decoded whole %d, in windows %d (%.1f %% more)", res.Segments, res.FramesEncoded,
				res.FramesDecoded, decoded, 100*float64(decoded-res.FramesDecoded)/float64(res.FramesDecoded))
		})
	}
}

// TestWindowAudio: the first window encodes all of the input's audio, the
// same packets as a whole run, and only its own video; a later window may
// not have audio.
func TestWindowAudio(t *testing.T) {
	src := testmedia.Clip(t, "sample.mp4")
	opts := transcode.Options{Renditions: []transcode.Rendition{rend("180p", 320, 180)}, SegmentDuration: 2 * time.Second, Threads: 2,
		Audio: &transcode.AudioSettings{Bitrate: 96000, SampleRate: 48000}}
	var whole, first collect
	if _, err := transcode.Run(t.Context(), src, opts, &whole); err != nil {
		t.Fatal(err)
	}
	opts.Window = &transcode.Window{From: 0, To: 2}
	res, err := transcode.Run(t.Context(), src, opts, &first)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 2 || len(first.packets[0]) != 120 {
		t.Fatalf("first window: %d segments, %d video packets, want 2 and 120", res.Segments, len(first.packets[0]))
	}
	wa, fa := whole.packets[1], first.packets[1]
	if len(wa) != len(fa) || len(wa) < 500 {
		t.Fatalf("audio packets: window %d, whole %d", len(fa), len(wa))
	}
	for i := range wa {
		if wa[i].PTS != fa[i].PTS || wa[i].Duration != fa[i].Duration || !bytes.Equal(wa[i].Data, fa[i].Data) {
			t.Fatalf("audio packet %d differs: %+v vs %+v", i, fa[i].PTS, wa[i].PTS)
		}
	}
	opts.Window = &transcode.Window{From: 2}
	if _, err := transcode.Run(t.Context(), src, opts, &collect{}); err == nil || !strings.Contains(err.Error(), "only a window from the start encodes the audio") {
		t.Fatalf("a later window with audio: %v", err)
	}
	// The audio alone (a chunked run's audio task): the whole run's audio
	// packets, byte for byte, and no video decoded.
	var alone collect
	opts.Renditions, opts.Window = nil, nil
	res, err = transcode.Run(t.Context(), src, opts, &alone)
	if err != nil {
		t.Fatal(err)
	}
	if len(alone.tracks) != 1 || alone.tracks[0].Kind != transcode.Audio || res.FramesDecoded != 0 {
		t.Fatalf("audio only: %d tracks, %d video frames decoded", len(alone.tracks), res.FramesDecoded)
	}
	if aa := alone.packets[0]; len(aa) != len(wa) {
		t.Fatalf("audio packets: alone %d, whole %d", len(aa), len(wa))
	}
	for i, p := range alone.packets[0] {
		if p.PTS != wa[i].PTS || p.Duration != wa[i].Duration || !bytes.Equal(p.Data, wa[i].Data) {
			t.Fatalf("audio-only packet %d differs from the whole run's", i)
		}
	}
	// A source without audio has no audio-only run.
	if _, err := transcode.Run(t.Context(), testmedia.Clip(t, "chunk-bframes.mp4"), opts, &collect{}); err == nil {
		t.Fatal("an audio-only run of a silent source succeeded")
	}
}
