// Package testmedia gives tests the clips of testdata/make-clips.sh,
// generated once per test binary with the ffmpeg CLI.
package testmedia

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/transcode"
)

var (
	mu  sync.Mutex
	dir string
)

// Main runs a package's tests with FFmpeg's messages limited to errors and
// removes the generated clips afterwards. Call it from TestMain:
// os.Exit(testmedia.Main(m)).
func Main(m *testing.M) int {
	transcode.RouteLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)), slog.LevelError)
	code := m.Run()
	mu.Lock()
	if dir != "" {
		os.RemoveAll(dir)
	}
	mu.Unlock()
	return code
}

// Clip returns the path of a generated clip (see testdata/make-clips.sh for
// the names), making it on first use. A missing ffmpeg fails the test.
func Clip(t testing.TB, name string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		d, err := os.MkdirTemp("", "abseal-clips-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Fatalf("testmedia: ffmpeg is not installed: run `make deps` (%v)", err)
	}
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root, "testdata", "make-clips.sh"), dir, name)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testmedia: make %s: %v\n%s", name, err, strings.TrimSpace(string(out)))
	}
	return p
}

// CRF28At360p are the ffmpeg arguments of the reference leak: libx264 CRF
// 28, scaled to 640x360.
var CRF28At360p = []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-vf", "scale=640:360"}

// Reencode runs the ffmpeg CLI on in with args (an attack: re-encode,
// scale, crop, trim) and returns the output file, in a test temp dir.
func Reencode(t testing.TB, in string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "leak.mp4")
	cmd := exec.Command("ffmpeg", append(append([]string{"-hide_banner", "-v", "error", "-y", "-i", in}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}
