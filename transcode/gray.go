package transcode

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astiav"
)

// GrayFrame is a decoded picture's luma, scaled to the requested size.
type GrayFrame struct {
	// PTS is the presentation time from the stream's start.
	PTS time.Duration
	// Y holds W×H bytes, rows without padding. It is reused: valid only
	// during the callback.
	Y    []byte
	W, H int
}

// DecodeGray decodes the video of path (rotation and interlacing handled as
// in a transcode) and calls fn with every frame's luma scaled to w×h. It is
// what the watermark detector and the quality report read videos with.
func DecodeGray(ctx context.Context, path string, w, h int, fn func(GrayFrame) error) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("transcode: gray size %dx%d", w, h)
	}
	in, err := openInput(ctx, path, DefaultLimits())
	if err != nil {
		return err
	}
	defer in.close()
	if err := in.openVideoDecoder(0, DefaultLimits()); err != nil {
		return err
	}
	g, err := newGraph(in, fmt.Sprintf("scale=%d:%d:flags=area,format=gray", w, h), 0)
	if err != nil {
		return err
	}
	defer g.free()
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	df := astiav.AllocFrame()
	defer df.Free()
	sf := astiav.AllocFrame()
	defer sf.Free()
	buf := make([]byte, w*h)
	start := int64(-1)
	tb := g.sinks[0].TimeBase()

	pull := func() error {
		for {
			err := g.sinks[0].GetFrame(sf, astiav.NewBuffersinkFlags())
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("transcode: scale: %w", err)
			}
			plane, stride := lumaPlane(sf)
			for y := range h {
				copy(buf[y*w:(y+1)*w], plane[y*stride:y*stride+w])
			}
			pts := astiav.RescaleQ(sf.Pts(), tb, astiav.NewRational(1, 1000000))
			if start < 0 {
				start = pts
			}
			sf.Unref()
			if err := fn(GrayFrame{PTS: time.Duration(pts-start) * time.Microsecond, Y: buf, W: w, H: h}); err != nil {
				return err
			}
		}
	}
	decode := func(p *astiav.Packet) error {
		if err := in.vdec.SendPacket(p); err != nil && !errors.Is(err, astiav.ErrEof) && !errors.Is(err, astiav.ErrInvaliddata) {
			return fmt.Errorf("transcode: decode: %w", err)
		}
		for {
			err := in.vdec.ReceiveFrame(df)
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				return nil
			}
			if err != nil {
				return nil // a damaged frame is skipped: suspects are often damaged
			}
			df.SetPts(bestEffortTimestamp(df))
			err = g.src.AddFrame(df, astiav.NewBuffersrcFlags())
			df.Unref()
			if err != nil {
				return fmt.Errorf("transcode: filter: %w", err)
			}
			if err := pull(); err != nil {
				return err
			}
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("transcode: %w", err)
		}
		err := in.fc.ReadFrame(pkt)
		if errors.Is(err, astiav.ErrEof) {
			break
		}
		if err != nil {
			break // read what could be read
		}
		if pkt.StreamIndex() == in.vs.Index() {
			err = decode(pkt)
		}
		pkt.Unref()
		if err != nil {
			return err
		}
	}
	if err := decode(nil); err != nil {
		return err
	}
	if err := g.src.AddFrame(nil, astiav.NewBuffersrcFlags()); err != nil {
		return fmt.Errorf("transcode: flush filter: %w", err)
	}
	return pull()
}
