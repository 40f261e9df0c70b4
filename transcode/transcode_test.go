package transcode_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abseal/abseal/transcode"
)

// ffmpeg runs the ffmpeg CLI installed by make deps.
func ffmpeg(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatalf("ffmpeg is not installed: run `make deps` (%v)", err)
	}
	out, err := exec.CommandContext(t.Context(), bin, append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestDecodeGeneratedClip proves go-astiav links against FFmpeg 7.1 and
// decodes an H.264 clip made by libx264.
func TestDecodeGeneratedClip(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	ffmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", clip)
	info, err := transcode.DecodeVideo(t.Context(), clip)
	if err != nil {
		t.Fatal(err)
	}
	if info.Codec != "h264" || info.Width != 320 || info.Height != 240 || info.Frames != 50 {
		t.Fatalf("decoded %+v, want h264 320x240 with 50 frames", info)
	}
}

func TestDecodeRejectsNonVideo(t *testing.T) {
	dir := t.TempDir()
	audio := filepath.Join(dir, "tone.m4a")
	ffmpeg(t, "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", audio)
	if _, err := transcode.DecodeVideo(t.Context(), audio); err == nil || !strings.Contains(err.Error(), "not a video") {
		t.Fatalf("audio-only file: err = %v, want not a video", err)
	}
	if _, err := transcode.DecodeVideo(t.Context(), filepath.Join(dir, "missing.mp4")); err == nil {
		t.Fatal("missing file decoded")
	}
}
