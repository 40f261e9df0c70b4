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
	// Reason is text of the rejection's message. Verdicts hold for
	// transcode.DefaultLimits.
	Reason string
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
		{
			Name: "image-single-png", File: "upload.mp4",
			Want: transcode.ErrNotVideo, Reason: `container "png_pipe" not allowed`,
			make: func(c Case, dir, path string) error {
				return ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1", "-c:v", "png", "-f", "image2pipe", path)
			},
		},
		{
			Name: "png-16000x16000-mkv", File: "upload.mkv",
			Want: transcode.ErrOverLimit, Reason: "resolution 16000x16000 over limit 7680x4320",
			make: func(c Case, dir, path string) error { return hugePNGs(dir, path, 16000, 6) },
		},
		{
			// The same pictures, but the Matroska header says 320×240: only
			// the decoders' pixel limit stands between them and the memory.
			Name: "png-16000x16000-small-header", File: "upload.mkv",
			Want: transcode.ErrOverLimit, Reason: "the decoder refused the pictures (the container declares 320x240)",
			make: func(c Case, dir, path string) error {
				if err := hugePNGs(dir, path, 16000, 6); err != nil {
					return err
				}
				return shrinkMatroskaSize(path, 16000, 320, 240)
			},
		},
		{
			Name: "ts-resolution-switch", File: "upload.ts",
			Want: transcode.ErrOverLimit, Reason: "resolution 8000x8000 at 00:00:0",
			make: func(c Case, dir, path string) error { return resolutionSwitch(dir, path) },
		},
		{
			// The container's duration (from its first and last timestamps)
			// is 2 s; the timestamps restart every 2 s for 2 minutes.
			Name: "ts-decodes-longer", File: "upload.ts",
			Want: transcode.ErrOverLimit, Reason: "the container declares 00:00:02",
			make: func(c Case, dir, path string) error { return repeatedTS(dir, path, 60) },
		},
		{
			Name: "raw-h264", File: "upload.h264",
			make: func(c Case, dir, path string) error {
				return ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
					"-pix_fmt", "yuv420p", "-f", "h264", path)
			},
		},
		{
			Name: "zip-with-video", File: "upload.mp4", Secret: "secret.mp4",
			Want: transcode.ErrNotVideo, Reason: "not a video",
			make: func(c Case, dir, path string) error { return archive(dir, path, c.Secret, writeZip) },
		},
		{
			Name: "tar-with-video", File: "upload.mp4", Secret: "secret.mp4",
			Want: transcode.ErrNotVideo, Reason: "not a video",
			make: func(c Case, dir, path string) error { return archive(dir, path, c.Secret, writeTar) },
		},
		{
			Name: "html", File: "upload.mp4",
			Want: transcode.ErrNotVideo, Reason: "not a video",
			make: text(`<!DOCTYPE html><html><head><title>x</title></head><body><video src="file:///etc/passwd"></video></body></html>` + "\n"),
		},
		{
			Name: "svg", File: "upload.mp4",
			Want: transcode.ErrNotVideo, Reason: "not a video",
			make: text(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="320" height="240">` +
				`<image xlink:href="file:///etc/passwd" width="320" height="240"/></svg>` + "\n"),
		},
		{
			Name: "srt-subtitles", File: "upload.mp4",
			Want: transcode.ErrNotVideo, Reason: `container "srt" not allowed`,
			make: text("1\n00:00:00,000 --> 00:00:02,000\n<font face=\"file:///etc/passwd\">hello</font>\n\n2\n00:00:02,000 --> 00:00:04,000\nworld\n"),
		},
		{
			Name: "ass-subtitles", File: "upload.mp4",
			Want: transcode.ErrNotVideo, Reason: `container "ass" not allowed`,
			make: text("[Script Info]\nScriptType: v4.00+\nPlayResX: 320\nPlayResY: 240\n\n[V4+ Styles]\n" +
				"Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n" +
				"Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,1,0,2,10,10,10,1\n\n" +
				"[Fonts]\nfontname: /etc/passwd\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n" +
				"Dialogue: 0,0:00:00.00,0:00:02.00,Default,,0,0,0,,hello\n"),
		},
		{
			Name: "mp4-bogus-stsz", File: "upload.mp4",
			Want: transcode.ErrCorrupt, Reason: "corrupt",
			make: func(c Case, dir, path string) error { return bogusSTSZ(path) },
		},
		{
			// Zero frames: the muxer writes no video track at all.
			Name: "zero-duration", File: "upload.mp4",
			Want: transcode.ErrNotVideo, Reason: "not a video: no video stream",
			make: func(c Case, dir, path string) error {
				return ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-frames:v", "0", "-c:v", "libx264", "-preset", "ultrafast", path)
			},
		},
		{
			Name: "negative-timestamps", File: "upload.mkv",
			make: func(c Case, dir, path string) error {
				return ffmpeg("-f", "lavfi", "-i", "testsrc=size=320x240:rate=25:duration=3", "-c:v", "libx264", "-preset", "ultrafast",
					"-pix_fmt", "yuv420p", "-output_ts_offset", "-1", "-avoid_negative_ts", "disabled", path)
			},
		},
		{
			Name: "streams-1000", File: "upload.mkv",
			Want: transcode.ErrOverLimit, Reason: "streams over limit 64",
			make: func(c Case, dir, path string) error { return manyStreams(path, 1000) },
		},
		{
			Name: "empty", File: "upload.mp4",
			Want: transcode.ErrEmpty, Reason: "empty file",
			make: func(c Case, dir, path string) error { return os.WriteFile(path, nil, 0o600) },
		},
		{
			Name: "truncated-mp4", File: "upload.mp4",
			Want: transcode.ErrCorrupt, Reason: "corrupt",
			make: func(c Case, dir, path string) error { return truncated(dir, path) },
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
