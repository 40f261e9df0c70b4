package transcode

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/asticode/go-astiav"
)

// queueDepth bounds the frames waiting for one encoder.
const queueDepth = 4

// encoder is one libx264 encoder running in its own goroutine. Its frames
// come from a fixed pool: allocated once, unreferenced after every use.
type encoder struct {
	cc       *astiav.CodecContext
	track    int
	segTicks int64
	in       chan *astiav.Frame
	pool     chan *astiav.Frame
	frames   []*astiav.Frame
	pkt      *astiav.Packet
	once     sync.Once
}

func newVideoEncoder(rd Rendition, in *input, fps float64, segFrames, threads int) (*encoder, error) {
	codec := astiav.FindEncoderByName("libx264")
	if codec == nil {
		return nil, errors.New("transcode: FFmpeg has no libx264 encoder (run make deps)")
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return nil, errors.New("transcode: alloc encoder failed")
	}
	e := &encoder{cc: cc, in: make(chan *astiav.Frame, queueDepth), pool: make(chan *astiav.Frame, queueDepth+2)}
	ok := false
	defer func() {
		if !ok {
			e.free()
		}
	}()
	rate := in.rate
	if rate.Num() <= 0 || rate.Den() <= 0 {
		rate = astiav.NewRational(int(fps*1000+0.5), 1000)
	}
	cc.SetWidth(rd.Width)
	cc.SetHeight(rd.Height)
	cc.SetPixelFormat(astiav.PixelFormatYuv420P)
	cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	cc.SetTimeBase(astiav.NewRational(1, VideoTimescale))
	cc.SetFramerate(rate)
	cc.SetGopSize(2 * segFrames) // IDRs are forced at segment starts; this is only a ceiling
	cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	cc.SetThreadCount(threads)
	cc.SetColorRange(in.vdec.ColorRange())
	cc.SetColorSpace(in.vdec.ColorSpace())
	cc.SetColorPrimaries(in.vdec.ColorPrimaries())
	cc.SetColorTransferCharacteristic(in.vdec.ColorTransferCharacteristic())
	if rd.CRF == 0 {
		cc.SetBitRate(rd.Bitrate)
	}
	if rd.MaxRate > 0 {
		cc.SetRateControlMaxRate(rd.MaxRate)
		cc.SetRateControlBufferSize(int(rd.BufSize))
	}
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range x264Options(rd, segFrames) {
		if err := d.Set(k, v, astiav.NewDictionaryFlags()); err != nil {
			return nil, fmt.Errorf("transcode: encoder option %s: %w", k, err)
		}
	}
	if err := cc.Open(codec, d); err != nil {
		return nil, fmt.Errorf("transcode: open libx264 for %s (%dx%d): %w", rd.Name, rd.Width, rd.Height, err)
	}
	for range cap(e.pool) {
		f := astiav.AllocFrame()
		e.frames = append(e.frames, f)
		e.pool <- f
	}
	e.pkt = astiav.AllocPacket()
	ok = true
	return e, nil
}

// x264Options are the libx264 private options of a rendition: closed GOPs,
// no scene-cut keyframes, forced frames made IDR.
func x264Options(rd Rendition, segFrames int) map[string]string {
	o := map[string]string{
		"preset":     rd.Preset,
		"profile":    rd.Profile,
		"forced-idr": "1",
		"x264-params": "scenecut=0:open-gop=0:min-keyint=" + strconv.Itoa(max(1, segFrames)) +
			":keyint=" + strconv.Itoa(max(1, 2*segFrames)),
	}
	if rd.CRF > 0 {
		o["crf"] = strconv.Itoa(rd.CRF)
	}
	return o
}

// frame takes a free frame from the pool.
func (e *encoder) frame(ctx context.Context) (*astiav.Frame, error) {
	select {
	case f := <-e.pool:
		return f, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("transcode: %w", context.Cause(ctx))
	}
}

// release unreferences a frame and returns it to the pool.
func (e *encoder) release(f *astiav.Frame) {
	f.Unref()
	e.pool <- f
}

// send queues a frame for encoding.
func (e *encoder) send(ctx context.Context, f *astiav.Frame) error {
	select {
	case e.in <- f:
		return nil
	case <-ctx.Done():
		e.release(f)
		return fmt.Errorf("transcode: %w", context.Cause(ctx))
	}
}

func (e *encoder) closeInput() { e.once.Do(func() { close(e.in) }) }

// run encodes queued frames until the queue is closed, then flushes the
// encoder (unless ctx ended). The first error cancels the transcode.
func (e *encoder) run(ctx context.Context, cancel context.CancelCauseFunc, emit func(Packet) error) {
	failed := false
	fail := func(err error) {
		if !failed {
			failed = true
			cancel(err)
		}
	}
	for f := range e.in {
		if failed || ctx.Err() != nil {
			e.release(f)
			continue
		}
		err := e.cc.SendFrame(f)
		e.release(f)
		if err != nil {
			fail(fmt.Errorf("transcode: encode: %w", err))
			continue
		}
		if err := e.drain(emit); err != nil {
			fail(err)
		}
	}
	if failed || ctx.Err() != nil {
		return
	}
	if err := e.cc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		fail(fmt.Errorf("transcode: flush encoder: %w", err))
		return
	}
	if err := e.drain(emit); err != nil {
		fail(err)
	}
}

func (e *encoder) drain(emit func(Packet) error) error {
	for {
		err := e.cc.ReceivePacket(e.pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("transcode: encode: %w", err)
		}
		p := Packet{
			Track:    e.track,
			Data:     e.pkt.Data(),
			PTS:      e.pkt.Pts(),
			DTS:      e.pkt.Dts(),
			Duration: e.pkt.Duration(),
			Keyframe: e.pkt.Flags().Has(astiav.PacketFlagKey),
		}
		if e.segTicks > 0 && p.PTS > 0 {
			p.Segment = int(p.PTS / e.segTicks)
		}
		e.pkt.Unref()
		if err := emit(p); err != nil {
			return err
		}
	}
}

func (e *encoder) free() {
	if e.pkt != nil {
		e.pkt.Free()
	}
	for _, f := range e.frames {
		f.Free()
	}
	e.frames = nil
	e.cc.Free()
}
