package asset_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

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
// path that leaves the asset's prefix. Schema 2 names a run, schema 1
// (written before runs wrote apart) never does, and other schemas are
// refused.
func TestManifestRun(t *testing.T) {
	for _, c := range []struct {
		schema int
		run    string
		want   string
	}{
		{1, "", ""}, {2, "r1-9f3a", ""}, {2, "20261207T210608Z-0a1b2c3d4e5f", ""},
		{2, "../other", `run "../other"`}, {2, "a/b", `run "a/b"`}, {2, ".hidden", `run ".hidden"`},
		{2, "", "names no run"}, {1, "r1-9f3a", "cannot name a run"}, {3, "r1", "schema 3 is not supported"},
		{0, "", "schema 0 is not supported"},
	} {
		doc := fmt.Sprintf(`{"schema":%d,"asset_id":"a","created_at":"2026-01-01T00:00:00Z","run":%q}`, c.schema, c.run)
		m, err := asset.DecodeManifest([]byte(doc))
		if c.want == "" && (err != nil || m.Run != c.run) || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("schema %d run %q: %v, want %q", c.schema, c.run, err, c.want)
		}
	}
}

// A run id is a valid id (it becomes a key element), sorts by start time
// and does not repeat; RunOf finds it back from any key under the run.
func TestRunIDs(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 21, 6, 8, 0, time.UTC)
	a, b := asset.NewRunID(t0), asset.NewRunID(t0.Add(time.Second))
	if !asset.ValidID(a) || !asset.ValidID(b) || a >= b || a == asset.NewRunID(t0) {
		t.Fatalf("run ids %q %q", a, b)
	}
	for key, want := range map[string]string{
		asset.Segment("720p", "b", 3).RunKey("film", a): a,
		asset.RunMarkerKey("film", a):                   a,
		asset.Segment("720p", "b", 3).Key("film"):       "",
		asset.ManifestKey("film"):                       "",
		"assets/film/runs/../x/y":                       "",
		"assets/other/runs/" + a + "/hls/master.m3u8":   "",
		"assets/film/runs/" + a:                         "",
	} {
		if got := asset.RunOf("film", key); got != want {
			t.Errorf("RunOf(%q) = %q, want %q", key, got, want)
		}
	}
	mk, err := asset.DecodeRunMarker([]byte(`{"run":"` + a + `","base_etag":"\"e1\""}`))
	if err != nil || mk.Run != a || mk.Base != `"e1"` {
		t.Fatalf("marker: %+v %v", mk, err)
	}
	if _, err := asset.DecodeRunMarker([]byte(`{"run":"../x"}`)); err == nil {
		t.Fatal("a marker naming a path was accepted")
	}
}
