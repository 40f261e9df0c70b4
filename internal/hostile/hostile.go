// Package hostile makes uploads that attack a transcoding worker: files
// that make FFmpeg read other files, recurse, allocate huge pictures, run
// for hours, or are not video at all, each with the verdict the worker
// must reach. The transcode tests run them through transcode.Probe and
// transcode.Run; a worker test can upload the same files.
//
// The files are generated at run time (with the ffmpeg CLI where media is
// needed) and stay small: a few MB at most.
package hostile

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/abseal/abseal/transcode"
)

// Case is one hostile upload.
type Case struct {
	Name string
	// File is the upload's file name (the worker itself calls every
	// upload "source"; a test may keep the name).
	File string
	// Want is the kind of transcode.InputError the upload is rejected
	// with (transcode.ErrNotVideo, …), or nil when it must transcode.
	Want error
	// Reason is text of the rejection's message.
	Reason string
	// Limits, when not zero, are the limits the verdict holds for (a case
	// that would take long with the defaults states smaller ones).
	Limits transcode.Limits
	// Secret, when not empty, is the name of a planted media file beside
	// the upload that the upload refers to: had it been read, the
	// transcode would have succeeded.
	Secret string
	make   func(c Case, dir, path string) error
}

// Make writes the upload into dir (with any file it refers to) and
// returns its path.
func (c Case) Make(dir string) (string, error) {
	path := filepath.Join(dir, c.File)
	if err := c.make(c, dir, path); err != nil {
		return "", fmt.Errorf("hostile: make %s: %w", c.Name, err)
	}
	return path, nil
}

// Cases are every hostile upload.
func Cases() []Case {
	return []Case{
		{
			Name: "dash-local-file", File: "upload.mp4", Secret: "secret.mp4",
			Want: transcode.ErrNotVideo, Reason: `container "dash" not allowed`,
			make: func(c Case, dir, path string) error {
				secret, err := plant(dir, c.Secret)
				if err != nil {
					return err
				}
				return os.WriteFile(path, []byte(`<?xml version="1.0"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT2S" minBufferTime="PT1S" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">
<Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="100000" width="320" height="240" codecs="avc1.42c00d">
<BaseURL>file://`+secret+`</BaseURL><SegmentBase/></Representation></AdaptationSet></Period></MPD>
`), 0o600)
			},
		},
		{
			Name: "hls-local-file", File: "upload.m3u8", Secret: "secret.ts",
			Want: transcode.ErrNotVideo, Reason: "not a video",
			make: func(c Case, dir, path string) error {
				secret, err := plant(dir, c.Secret)
				if err != nil {
					return err
				}
				return os.WriteFile(path, []byte("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:2.0,\n"+
					secret+"\n#EXT-X-ENDLIST\n"), 0o600)
			},
		},
		{
			Name: "concat-sibling", File: "upload.mp4", Secret: "secret.mp4",
			Want: transcode.ErrNotVideo, Reason: `container "concat" not allowed`,
			make: func(c Case, dir, path string) error {
				if _, err := plant(dir, c.Secret); err != nil {
					return err
				}
				return os.WriteFile(path, []byte("ffconcat version 1.0\nfile "+c.Secret+"\n"), 0o600)
			},
		},
		{
			Name: "concat-self", File: "source",
			Want: transcode.ErrNotVideo, Reason: `container "concat" not allowed`,
			make: func(c Case, dir, path string) error {
				return os.WriteFile(path, []byte("ffconcat version 1.0\nfile source\n"), 0o600)
			},
		},
	}
}

// plant writes a short, valid video named name into dir (its container
// from the extension) and returns its absolute path.
func plant(dir, name string) (string, error) {
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return p, ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=2",
		"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", p)
}

// ffmpeg runs the ffmpeg CLI quietly.
func ffmpeg(args ...string) error {
	cmd := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-y"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ffmpeg %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
