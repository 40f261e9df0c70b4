package asset_test

import (
	"strings"
	"testing"

	"github.com/abseal/abseal/asset"
)

// TestManifestSessionCode: a manifest names its session code; a code this
// build does not know, or a pattern length outside wmpatlen's range, is
// refused with the reason rather than served with the wrong variants.
func TestManifestSessionCode(t *testing.T) {
	doc := func(wm string) []byte {
		return []byte(`{"schema":1,"asset_id":"a","created_at":"2026-01-01T00:00:00Z","watermark":` + wm + `}`)
	}
	for wm, want := range map[string]string{
		`{"scheme":"abseal-luma-ab","pattern_length":140}`:                    "",
		`{"scheme":"abseal-luma-ab","pattern_length":359,"code":"tardos-v1"}`: "",
		`{"scheme":"abseal-luma-ab","pattern_length":140,"code":"rs-255"}`:    `session code "rs-255"`,
		`{"scheme":"abseal-luma-ab","pattern_length":0,"code":"tardos-v1"}`:   "pattern length 0",
		`{"scheme":"abseal-luma-ab","pattern_length":70000}`:                  "pattern length 70000",
	} {
		_, err := asset.DecodeManifest(doc(wm))
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s: %v, want %q", wm, err, want)
		}
	}
}

// A manifest's run names a directory of keys: it must be an id, never a
// path that leaves the asset's prefix.
func TestManifestRun(t *testing.T) {
	for run, ok := range map[string]bool{"": true, "r1-9f3a": true, "../other": false, "a/b": false, ".hidden": false} {
		doc := `{"schema":1,"asset_id":"a","created_at":"2026-01-01T00:00:00Z","run":"` + run + `"}`
		m, err := asset.DecodeManifest([]byte(doc))
		if ok != (err == nil) || ok && m.Run != run {
			t.Errorf("run %q: %v", run, err)
		}
	}
}
