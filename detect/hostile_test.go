package detect

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A suspect is any file someone hands the detector: strips and pictures
// whose sample aspect makes them strips are refused with their size named
// (at the suspect's area they would decode to frames thousands of pixels
// wide); a 9:16 phone copy is read at its own aspect.
func TestSuspectAspect(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, size, vf string
		ok             bool
	}{
		{"strip 2048x16", "2048x16", "", false},
		{"strip 16x1024", "16x1024", "", false},
		{"320x240 with sample aspect 64:1", "320x240", "setsar=64/1", false},
		{"phone 360x640", "360x640", "", true},
		{"2.39:1 scope 1280x536", "1280x536", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".mp4")
			args := []string{"-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=" + tc.size + ":rate=25:duration=1"}
			if tc.vf != "" {
				args = append(args, "-vf", tc.vf)
			}
			args = append(args, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", out)
			if o, err := exec.CommandContext(t.Context(), "ffmpeg", args...).CombinedOutput(); err != nil {
				t.Fatalf("make %s: %v: %s", tc.name, err, o)
			}
			sus, _, err := DecodeSuspect(t.Context(), out)
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), "outside 1:16 to 16:1") {
					t.Fatalf("err = %v, want the aspect refused", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(sus.Frames) != 25 || sus.W*sus.H > 2*SuspectArea {
				t.Fatalf("%d frames of %dx%d", len(sus.Frames), sus.W, sus.H)
			}
		})
	}
}
