package transcode

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/asticode/go-astiav"
)

// Each layer of the sandbox under the allow-list stops, on its own, a
// DASH manifest (fed through custom I/O, as uploads are) from reading the
// video it names; without them the manifest reads it.
func TestSandboxLayers(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10:duration=1",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", secret)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	mpd := filepath.Join(dir, "upload.mp4")
	if err := os.WriteFile(mpd, []byte(`<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S" minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
<Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="100000" width="160" height="120" codecs="avc1.42c00d">
<BaseURL>file://`+secret+`</BaseURL><SegmentBase/></Representation></AdaptationSet></Period></MPD>
`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		deny  bool
		opts  map[string]string
		reads bool
	}{
		{name: "no layer", reads: true},
		{name: "nested opens denied", deny: true},
		{name: "no protocol", opts: map[string]string{"protocol_whitelist": ""}},
	} {
		streams, err := openDASH(t, mpd, tc.deny, tc.opts)
		if read := err == nil && streams > 0; read != tc.reads {
			t.Errorf("%s: the manifest read the planted video: %v (want %v; %d streams, err %v)", tc.name, read, tc.reads, streams, err)
		}
	}
}

// openDASH opens path with the DASH demuxer through custom I/O and
// returns how many streams it found.
func openDASH(t *testing.T, path string, deny bool, opts map[string]string) (int, error) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	ioc, err := inputIO(fileInput{f, fi.Size()})
	if err != nil {
		t.Fatal(err)
	}
	defer ioc.Free()
	fc := astiav.AllocFormatContext()
	defer fc.Free()
	if deny {
		if err := denyOpens(fc); err != nil {
			t.Fatal(err)
		}
	}
	fc.SetPb(ioc)
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range opts {
		if err := d.Set(k, v, astiav.NewDictionaryFlags()); err != nil {
			t.Fatal(err)
		}
	}
	if err := fc.OpenInput("", astiav.FindInputFormat("dash"), d); err != nil {
		return 0, err
	}
	defer fc.CloseInput()
	return fc.NbStreams(), nil
}
