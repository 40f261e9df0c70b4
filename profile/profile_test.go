package profile_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/profile"
)

func TestDefault(t *testing.T) {
	p := profile.Default()
	if p.Name != "default" || time.Duration(p.SegmentDuration) != 2*time.Second || len(p.Rungs) != 4 || p.Audio.Bitrate != 128000 {
		t.Fatalf("default profile: %+v", p)
	}
}

func TestLadder(t *testing.T) {
	p := profile.Default()
	for _, tc := range []struct {
		w, h int
		want []string // name:WxH
	}{
		{1920, 1080, []string{"1080p:1920x1080", "720p:1280x720", "480p:854x480", "360p:640x360"}},
		{1280, 720, []string{"720p:1280x720", "480p:854x480", "360p:640x360"}},
		{853, 480, []string{"480p:854x480", "360p:640x360"}}, // odd source width
		{1080, 1920, []string{"1080p:1080x1920", "720p:720x1280", "480p:480x854", "360p:360x640"}},
		{320, 240, []string{"360p:320x240"}}, // smaller than every rung: source size, never upscaled
		{321, 241, []string{"360p:320x240"}},
		{3840, 2160, []string{"1080p:1920x1080", "720p:1280x720", "480p:854x480", "360p:640x360"}},
	} {
		out, err := p.Ladder(tc.w, tc.h)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range out {
			got = append(got, o.Name+":"+itoa(o.Width)+"x"+itoa(o.Height))
			if o.Width%2 != 0 || o.Height%2 != 0 {
				t.Errorf("%dx%d: odd output %dx%d", tc.w, tc.h, o.Width, o.Height)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%dx%d: ladder %v, want %v", tc.w, tc.h, got, tc.want)
		}
	}
	if _, err := p.Ladder(0, 480); err == nil {
		t.Error("0x480 accepted")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestValidate(t *testing.T) {
	good := `{"name":"p","segment_duration":"2s","rungs":[{"name":"720p","size":720,"bitrate":3000000,"maxrate":3600000,"bufsize":7200000,"crf":23,"preset":"veryfast","h264_profile":"high"}],"audio":{"bitrate":128000,"sample_rate":48000}}`
	if _, err := profile.Parse([]byte(good)); err != nil {
		t.Fatalf("good profile: %v", err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{`"name":"p"`, `"name":"Bad Name"`, "name"},
		{`"2s"`, `"100ms"`, "segment_duration"},
		{`"2s"`, `2`, "duration"},
		{`"size":720`, `"size":721`, "size"},
		{`"bitrate":3000000`, `"bitrate":0`, "bitrate"},
		{`"maxrate":3600000`, `"maxrate":1000`, "maxrate"},
		{`"preset":"veryfast"`, `"preset":"warp"`, "preset"},
		{`"h264_profile":"high"`, `"h264_profile":"high10"`, "h264_profile"},
		{`"crf":23`, `"crf":60`, "crf"},
		{`"name":"720p"`, `"name":"audio"`, "reserved"},
		{`"sample_rate":48000`, `"sample_rate":22050`, "sample_rate"},
		{`"audio"`, `"audoi"`, "unknown field"},
		{`[{`, `[{"x":1,`, "unknown field"},
	} {
		bad := strings.Replace(good, tc.from, tc.to, 1)
		_, err := profile.Parse([]byte(bad))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s -> %s: err = %v, want it to mention %q", tc.from, tc.to, err, tc.want)
		}
	}
	order := strings.Replace(good, `"rungs":[`, `"rungs":[{"name":"360p","size":360,"bitrate":800000,"maxrate":0,"bufsize":0,"preset":"veryfast","h264_profile":"main"},`, 1)
	if _, err := profile.Parse([]byte(order)); err == nil || !strings.Contains(err.Error(), "ordered") {
		t.Errorf("unordered rungs: %v", err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(path, []byte(`{"name":"x"`), 0o644)
	if _, err := profile.Load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("truncated file: %v", err)
	}
	if _, err := profile.Load(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Fatal("missing file loaded")
	}
}
