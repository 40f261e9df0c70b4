package transcode_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abseal/abseal/transcode"
)

// ffmpeg runs the ffmpeg CLI installed by make deps.
func ffmpeg(t testing.TB, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is not installed: run `make deps` (%v)", err)
	}
	out, err := exec.Command(bin, append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// clip makes a moving, textured test clip.
func clip(t testing.TB, name string, extra ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	args := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=5",
		"-f", "lavfi", "-i", "sine=frequency=440:duration=5"}
	args = append(args, extra...)
	args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", p)
	ffmpeg(t, args...)
	return p
}

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

func rend(name string, w, h int) transcode.Rendition {
	return transcode.Rendition{Name: name, Width: w, Height: h, Bitrate: 500_000, MaxRate: 600_000, BufSize: 1_200_000, CRF: 28, Preset: "ultrafast", Profile: "high"}
}

func TestLadderSegments(t *testing.T) {
	src := clip(t, "src.mp4")
	var sink collect
	res, err := transcode.Run(t.Context(), src, transcode.Options{
		Renditions:      []transcode.Rendition{rend("240p", 320, 240), rend("120p", 160, 120)},
		SegmentDuration: 2 * time.Second,
		Audio:           &transcode.AudioSettings{Bitrate: 96000, SampleRate: 48000},
		Threads:         2,
	}, &sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("result: %+v", *res)
	if len(sink.tracks) != 3 || sink.tracks[2].Kind != transcode.Audio {
		t.Fatalf("tracks: %+v", sink.tracks)
	}
	for _, tr := range sink.tracks[:2] {
		pk := sink.packets[tr.ID]
		if len(pk) != 125 {
			t.Errorf("%s: %d packets, want 125", tr.Name, len(pk))
		}
		var keys []int
		for i, p := range pk {
			if p.Keyframe {
				keys = append(keys, i)
			}
		}
		t.Logf("%s: keyframes at packets %v", tr.Name, keys)
	}
}
