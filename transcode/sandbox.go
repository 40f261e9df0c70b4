package transcode

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/asticode/go-astiav"
)

// Containers are the FFmpeg demuxers an upload may be read with, by their
// full FFmpeg names. Each reads one file and opens no other: playlists and
// manifests (dash, hls), concat lists, image sequences and anything else
// that names further files or URLs are not here, so an upload can never make
// the worker read something besides itself. Audio-only containers are
// listed so that such uploads are told "audio only" rather than
// "container not allowed".
func Containers() []string {
	return []string{
		"mov,mp4,m4a,3gp,3g2,mj2",
		"matroska,webm",
		"mpegts",
		"avi",
		"flv",
		"mxf",
		"mpeg",      // MPEG program stream
		"mpegvideo", // raw MPEG-1/2 video
		"m4v",       // raw MPEG-4 part 2 video
		"h264",      // raw H.264 (Annex B)
		"hevc",      // raw H.265 (Annex B)
		"ogg",
		"wav",
		"mp3",
		"aac",
		"flac",
	}
}

// containerAllowed reports whether demuxer name is one of Containers.
func containerAllowed(name string) bool { return slices.Contains(Containers(), name) }

const (
	// formatProbeMax is how much of the file is looked at to tell its
	// container: FFmpeg's own ceiling (PROBE_BUF_MAX).
	formatProbeMax = 1 << 20
	// streamProbeSize and streamAnalyzeDuration bound how much is read and
	// decoded to learn the streams' parameters.
	streamProbeSize       = 16 << 20
	streamAnalyzeDuration = 10_000_000 // µs
	// ioBufferSize is the read buffer between the file and the demuxer.
	ioBufferSize = 64 << 10
)

// avseekSize and avseekForce are FFmpeg's AVSEEK_SIZE and AVSEEK_FORCE
// whence flags.
const (
	avseekSize  = 0x10000
	avseekForce = 0x20000
)

// probeContainer names the demuxer FFmpeg would pick for in from its
// content alone (as av_probe_input_buffer2 does: growing reads until the
// score is sure, up to formatProbeMax), or "" when none fits. The file name
// is not used: an upload's name says nothing reliable.
func probeContainer(in Input) (string, error) {
	n := int(min(in.Size(), formatProbeMax))
	var buf []byte
	for probe := min(2048, n); ; probe = min(probe*2, n) {
		// The prefix is read as the probe grows (a source read in ranges
		// fetches only what is looked at).
		if len(buf) < probe {
			more := make([]byte, probe-len(buf))
			if _, err := io.ReadFull(io.NewSectionReader(in, int64(len(buf)), int64(len(more))), more); err != nil {
				return "", fmt.Errorf("transcode: read %s: %w", in.Name(), err)
			}
			buf = append(buf, more...)
		}
		name, score := probeFormat(buf[:probe])
		// Below the last read a weak guess waits for more data.
		if score > probeScoreRetry || (probe == n && score > 0) {
			return name, nil
		}
		if probe == n {
			return "", nil
		}
	}
}

// inputIO feeds a demuxer from an input through a custom AVIOContext: the
// demuxer gets bytes, never a path or URL, so no FFmpeg protocol is
// reachable from an upload.
func inputIO(in Input) (*astiav.IOContext, error) {
	size := in.Size()
	f := io.NewSectionReader(in, 0, size)
	read := func(b []byte) (int, error) {
		n, err := f.Read(b)
		if n > 0 {
			return n, nil
		}
		if err == nil {
			err = io.EOF
		}
		return 0, err
	}
	seek := func(offset int64, whence int) (int64, error) {
		whence &^= avseekForce
		if whence == avseekSize {
			return size, nil
		}
		return f.Seek(offset, whence)
	}
	ioc, err := astiav.AllocIOContext(ioBufferSize, false, read, seek, nil)
	if err != nil {
		return nil, fmt.Errorf("transcode: io context: %w", err)
	}
	return ioc, nil
}

// demuxerOptions are the format context's options for an upload: only the
// probed, allowed demuxer, no protocol at all (a nested open that got past
// the custom I/O finds every protocol refused), bounded stream probing, a
// stream ceiling, and no external references in QuickTime files.
func demuxerOptions(limits Limits) (*astiav.Dictionary, error) {
	d := astiav.NewDictionary()
	for _, kv := range [][2]string{
		{"format_whitelist", strings.Join(Containers(), ",")},
		{"protocol_whitelist", ""},
		{"probesize", strconv.Itoa(streamProbeSize)},
		{"analyzeduration", strconv.Itoa(streamAnalyzeDuration)},
		{"max_streams", strconv.Itoa(limits.MaxStreams + 1)},
		{"enable_drefs", "0"},
		{"use_absolute_path", "0"},
	} {
		if err := d.Set(kv[0], kv[1], astiav.NewDictionaryFlags()); err != nil {
			d.Free()
			return nil, fmt.Errorf("transcode: demuxer option %s: %w", kv[0], err)
		}
	}
	return d, nil
}

// rawVideo reports whether a demuxer reads an elementary video stream,
// which carries no timestamps.
func rawVideo(container string) bool {
	switch container {
	case "h264", "hevc", "m4v", "mpegvideo":
		return true
	}
	return false
}
