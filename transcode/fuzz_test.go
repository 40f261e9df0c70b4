package transcode_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/abseal/abseal/transcode"
)

// Probe takes any bytes: it returns a description or an *InputError,
// quickly, and never reads another file. The committed corpus
// (testdata/fuzz/FuzzProbe) holds the heads of real containers and the
// playlists and lists that name other files.
func FuzzProbe(f *testing.F) {
	f.Add([]byte("ffconcat version 1.0\nfile source\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n/etc/passwd\n#EXT-X-ENDLIST\n"))
	f.Add([]byte(`<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period><AdaptationSet><Representation id="1" bandwidth="1"><BaseURL>file:///etc/passwd</BaseURL><SegmentBase/></Representation></AdaptationSet></Period></MPD>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "source")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		start := time.Now()
		_, err := transcode.Probe(ctx, p, transcode.Limits{MaxWidth: 1920, MaxHeight: 1080})
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("probe took %s (%v)", took, err)
		}
		var ie *transcode.InputError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("not an input error: %v", err)
		}
	})
}
