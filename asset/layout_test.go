package asset_test

import (
	"errors"
	"testing"

	"github.com/abseal/abseal/asset"
)

func TestLayoutKeys(t *testing.T) {
	for _, tc := range []struct {
		ref        asset.Ref
		key, ctype string
		sealed     bool
	}{
		{asset.ManifestRef(), "assets/film/manifest.json", "application/json", false},
		{asset.HLSMaster(), "assets/film/hls/master.m3u8", "application/vnd.apple.mpegurl", false},
		{asset.HLSMedia("720p"), "assets/film/hls/720p.m3u8", "application/vnd.apple.mpegurl", false},
		{asset.DASH(), "assets/film/dash/manifest.mpd", "application/dash+xml", false},
		{asset.Init("720p"), "assets/film/720p/init.mp4", "application/octet-stream", true},
		{asset.Segment("720p", "a", 1), "assets/film/720p/a/seg-00001.m4s", "application/octet-stream", true},
		{asset.Segment("720p", "b", 123456), "assets/film/720p/b/seg-123456.m4s", "application/octet-stream", true},
		{asset.Segment("audio", "", 7), "assets/film/audio/seg-00007.m4s", "application/octet-stream", true},
		{asset.PaceInfo("720p", 7), "assets/film/720p/WMPaceInfo/seg-00007.m4s", "application/cbor", false},
	} {
		if got := tc.ref.Key("film"); got != tc.key {
			t.Errorf("%+v: key %s, want %s", tc.ref, got, tc.key)
		}
		if tc.ref.ContentType() != tc.ctype || tc.ref.Sealed() != tc.sealed {
			t.Errorf("%s: type %s sealed %v", tc.key, tc.ref.ContentType(), tc.ref.Sealed())
		}
		back, err := asset.ParseKey("film", tc.key)
		if err != nil || back != tc.ref {
			t.Errorf("ParseKey(%s) = %+v, %v", tc.key, back, err)
		}
	}
	if asset.ManifestKey("film") != "assets/film/manifest.json" || asset.Prefix("film") != "assets/film/" {
		t.Fatal("manifest key or prefix")
	}
	if asset.Segment("720p", "a", 3).Neutral() != asset.Segment("720p", "", 3) || asset.Segment("720p", "a", 3).File() != "seg-00003.m4s" {
		t.Fatal("neutral name or file")
	}
}

// Paths that name no object of the layout are refused, whatever a player
// or an attacker sends.
func TestLayoutParseRefuses(t *testing.T) {
	for _, p := range []string{
		"", "/", "720p", "720p/", "/720p/init.mp4", "720p//init.mp4", "720p/./init.mp4", "../720p/init.mp4",
		"720p/../audio/init.mp4", "720p/seg-1.m4s", "720p/seg-00000.m4s", "720p/seg-0000a.m4s", "720p/seg-.m4s",
		"720p/seg-+0001.m4s", "720p/seg-000001.m4s", "720p/c/seg-00001.m4s", "720p/a/init.mp4", "720p/a/b/seg-00001.m4s",
		"hls/init.mp4", "hls/sub/x.m3u8", "dash/other.mpd", "hls/.m3u8", "hls/../x.m3u8", "manifest.json/x",
		"WMPaceInfo/seg-00001.m4s", "720p/WMPaceInfo/init.mp4", "Bad Rung/init.mp4", "-x/init.mp4", "hls/a b.m3u8",
	} {
		if r, err := asset.Parse(p); !errors.Is(err, asset.ErrNotInLayout) {
			t.Errorf("Parse(%q) = %+v, %v; want ErrNotInLayout", p, r, err)
		}
	}
	if _, err := asset.ParseKey("film", "assets/other/720p/init.mp4"); !errors.Is(err, asset.ErrNotInLayout) {
		t.Errorf("another asset's key: %v", err)
	}
	for _, name := range []string{"hls", "dash", "assets", "master", "runs", "WMPaceInfo"} {
		if asset.ValidRung(name) {
			t.Errorf("rung name %q is taken by the layout", name)
		}
	}
}

// A run's objects sit under runs/<run>/; the manifest stays the one
// commit point, and a manifest finds its objects under the run it names.
func TestRunKeys(t *testing.T) {
	seg := asset.Segment("720p", "b", 9)
	if got := seg.RunKey("film", "r-2"); got != "assets/film/runs/r-2/720p/b/seg-00009.m4s" {
		t.Errorf("run key %s", got)
	}
	if seg.RunKey("film", "") != seg.Key("film") || asset.ManifestRef().RunKey("film", "r-2") != asset.ManifestKey("film") {
		t.Error("no run, or the manifest: the plain key")
	}
	m := &asset.Manifest{AssetID: "film", Run: "r-2"}
	if m.Key(asset.PaceInfo("720p", 3)) != "assets/film/runs/r-2/720p/WMPaceInfo/seg-00003.m4s" || m.Key(asset.HLSMaster()) != "assets/film/runs/r-2/hls/master.m3u8" {
		t.Error("manifest keys under its run")
	}
	if (&asset.Manifest{AssetID: "film"}).Key(asset.HLSMaster()) != "assets/film/hls/master.m3u8" {
		t.Error("a manifest without a run: the plain keys")
	}
}

func TestPosition(t *testing.T) {
	for i, want := range []int{-1, -1, 0, 1, 2} {
		if got := asset.Position(i, 2); got != want {
			t.Errorf("Position(%d, 2) = %d, want %d", i, got, want)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts is exactly what the
// layout builds.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"manifest.json", "hls/master.m3u8", "hls/720p.m3u8", "dash/manifest.mpd", "720p/init.mp4",
		"720p/a/seg-00001.m4s", "audio/seg-00002.m4s", "720p/WMPaceInfo/seg-00003.m4s", "720p/../x", "720p/seg-1.m4s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := asset.Parse(p)
		if err != nil {
			if !errors.Is(err, asset.ErrNotInLayout) {
				t.Fatalf("Parse(%q): %v", p, err)
			}
			return
		}
		if r.Path() != p {
			t.Fatalf("Parse(%q) = %+v, whose path is %q", p, r, r.Path())
		}
	})
}
