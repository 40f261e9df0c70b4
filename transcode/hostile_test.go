package transcode_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abseal/abseal/internal/hostile"
	"github.com/abseal/abseal/transcode"
)

// Every hostile upload gets its verdict from Probe and from a transcode,
// quickly: rejected with the case's kind and reason, or transcoded. A case
// that plants a valid video beside the upload would transcode if the
// upload could make FFmpeg read it.
func TestHostileUploads(t *testing.T) {
	for _, c := range hostile.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			path, err := c.Make(dir)
			if err != nil {
				t.Fatal(err)
			}
			if c.Secret != "" {
				defer notRead(t, filepath.Join(dir, c.Secret))()
			}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			// Probe may pass an upload whose trouble shows only while
			// decoding; when it rejects, it gives the verdict.
			if _, err := transcode.Probe(ctx, path, transcode.Limits{}); err != nil || c.Want == nil {
				checkVerdict(t, "probe", c, err)
			}
			opts := transcode.Options{
				Renditions:      []transcode.Rendition{rend("180p", 320, 180)},
				SegmentDuration: 2 * time.Second,
				Audio:           &transcode.AudioSettings{Bitrate: 64000, SampleRate: 48000},
				Threads:         2,
			}
			start := time.Now()
			var sink collect
			_, err = transcode.Run(ctx, path, opts, &sink)
			checkVerdict(t, "transcode", c, err)
			if err == nil {
				checkIncreasing(t, &sink)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("transcode took %s, want at most 30 s", took.Round(time.Millisecond))
			}
		})
	}
}

func checkVerdict(t *testing.T, what string, c hostile.Case, err error) {
	t.Helper()
	t.Logf("%s: %v", what, err)
	if c.Want == nil {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	var ie *transcode.InputError
	if !errors.Is(err, c.Want) || !errors.As(err, &ie) || !strings.Contains(err.Error(), c.Reason) {
		t.Errorf("%s: err = %v, want %v containing %q", what, err, c.Want, c.Reason)
	}
}

// checkIncreasing fails unless every video track has packets with
// increasing decode times, as the CMAF packager needs.
func checkIncreasing(t *testing.T, sink *collect) {
	t.Helper()
	for _, tr := range sink.tracks {
		pk := sink.packets[tr.ID]
		if tr.Kind == transcode.Video && len(pk) == 0 {
			t.Errorf("track %s: no packets", tr.Name)
		}
		for i := 1; i < len(pk); i++ {
			if pk[i].DTS <= pk[i-1].DTS {
				t.Errorf("track %s: decode times not increasing at packet %d (%d then %d)", tr.Name, i, pk[i-1].DTS, pk[i].DTS)
				break
			}
		}
	}
}

// notRead records the access time of a planted file; the function it
// returns fails the test if the file was read since. Where the file
// system does not keep access times (noatime) it only logs that.
func notRead(t *testing.T, path string) func() {
	t.Helper()
	if !atimeKept(t) {
		t.Log("this file system does not update access times: the planted file is checked through the verdict only")
		return func() {}
	}
	before := atime(t, path)
	return func() {
		if after := atime(t, path); !after.Equal(before) {
			t.Errorf("the planted %s was read (access time %s, before %s)", filepath.Base(path), after, before)
		}
	}
}

func atime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return time.Unix(st.Atim.Sec, st.Atim.Nsec)
}

// atimeKept reports whether reading a fresh file in a test temp dir
// changes its access time.
func atimeKept(t *testing.T) bool {
	p := filepath.Join(t.TempDir(), "atime")
	if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := atime(t, p)
	time.Sleep(10 * time.Millisecond)
	if _, err := os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	return !atime(t, p).Equal(before)
}
