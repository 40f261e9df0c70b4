// Package transcode is abseal's only user of FFmpeg (through go-astiav): it
// probes uploads, decodes them and encodes renditions. It knows nothing of
// buckets, keys or queues.
package transcode

import (
	"context"
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// VideoInfo summarises a decoded video stream.
type VideoInfo struct {
	Codec         string
	Width, Height int
	Frames        int
}

// DecodeVideo decodes every frame of the best video stream of the file at
// path and reports what it found. It is the smallest complete decode loop:
// one packet and one frame, allocated once and unreferenced on every pass.
func DecodeVideo(ctx context.Context, path string) (VideoInfo, error) {
	var info VideoInfo
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return info, errors.New("transcode: alloc format context failed")
	}
	defer fc.Free()
	if err := fc.OpenInput(path, nil, nil); err != nil {
		return info, fmt.Errorf("transcode: open %s: %w", path, err)
	}
	defer fc.CloseInput()
	if err := fc.FindStreamInfo(nil); err != nil {
		return info, fmt.Errorf("transcode: %s: stream info: %w", path, err)
	}
	var vs *astiav.Stream
	for _, s := range fc.Streams() {
		if s.CodecParameters().MediaType() == astiav.MediaTypeVideo {
			vs = s
			break
		}
	}
	if vs == nil {
		return info, fmt.Errorf("transcode: %s: not a video (no video stream)", path)
	}
	codec := astiav.FindDecoder(vs.CodecParameters().CodecID())
	if codec == nil {
		return info, fmt.Errorf("transcode: %s: no decoder for %s", path, vs.CodecParameters().CodecID())
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return info, errors.New("transcode: alloc codec context failed")
	}
	defer cc.Free()
	if err := vs.CodecParameters().ToCodecContext(cc); err != nil {
		return info, fmt.Errorf("transcode: %s: codec parameters: %w", path, err)
	}
	if err := cc.Open(codec, nil); err != nil {
		return info, fmt.Errorf("transcode: %s: open decoder: %w", path, err)
	}
	info.Codec = codec.Name()

	pkt := astiav.AllocPacket()
	defer pkt.Free()
	frame := astiav.AllocFrame()
	defer frame.Free()

	receive := func() error {
		for {
			err := cc.ReceiveFrame(frame)
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("transcode: %s: decode: %w", path, err)
			}
			info.Width, info.Height = frame.Width(), frame.Height()
			info.Frames++
			frame.Unref()
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return info, fmt.Errorf("transcode: %s: %w", path, err)
		}
		err := fc.ReadFrame(pkt)
		if errors.Is(err, astiav.ErrEof) {
			break
		}
		if err != nil {
			return info, fmt.Errorf("transcode: %s: read: %w", path, err)
		}
		if pkt.StreamIndex() == vs.Index() {
			err = cc.SendPacket(pkt)
		}
		pkt.Unref()
		if err != nil {
			return info, fmt.Errorf("transcode: %s: decode: %w", path, err)
		}
		if err := receive(); err != nil {
			return info, err
		}
	}
	if err := cc.SendPacket(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return info, fmt.Errorf("transcode: %s: flush: %w", path, err)
	}
	return info, receive()
}
