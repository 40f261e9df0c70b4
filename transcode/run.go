package transcode

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/asticode/go-astiav"
)

// VideoTimescale is the timescale of video tracks (ticks per second).
const VideoTimescale = 90000

// Rendition is one output picture size with its encoder settings.
type Rendition struct {
	Name          string
	Width, Height int
	// Bitrate is the target in bits/s; with CRF > 0 the encoder runs in
	// capped constant-quality mode and Bitrate is only signalled.
	Bitrate          int64
	MaxRate, BufSize int64
	CRF              int
	Preset           string // libx264 preset
	Profile          string // H.264 profile: baseline, main, high
}

// AudioSettings select the AAC output (stereo).
type AudioSettings struct {
	Bitrate    int64
	SampleRate int
}

// Options configure a transcode.
type Options struct {
	Renditions []Rendition
	// SegmentDuration is the segment length: every segment starts with an
	// IDR frame, at the first frame at or after n×SegmentDuration.
	SegmentDuration time.Duration
	// Variants is how many encoders each rendition has (1, or 2 for A/B).
	// Every variant gets the same scaled frames and identical settings.
	Variants int
	// Hook, when set, is called for every frame of every variant between
	// scaling and encoding. It may change the luma plane in place.
	Hook FrameHook
	// PairHook, when set with two variants, is called once per frame with
	// both variants' frames (a is variant 0, b variant 1): the A/B
	// watermark marks both in one pass. Without Hook, a's luma plane holds
	// the picture and b's luma plane holds undefined bytes: the hook must
	// write every picture byte of b (watermark.Embedder.EmbedPair does;
	// CopyLuma copies a frame left alone), and b shares a's chroma, so no
	// copy of the picture is made for b. With Hook also set, both planes
	// hold the picture, in two writable buffers.
	PairHook PairHook
	// Audio, when set and the input has audio, encodes AAC once.
	Audio *AudioSettings
	// Threads is the CPU budget of this transcode (decoder, filters and each
	// encoder); 0 means all CPUs. Two concurrent jobs on one machine should
	// each get half.
	Threads int
	Limits  Limits
	// Progress, when set, is called as media time advances (at most once per
	// segment) with the time done and the input's duration.
	Progress func(done, total time.Duration)
	// Window, when set, encodes only some of the segments (a chunk of the
	// input), numbered and timed as in a run over the whole input.
	Window *Window
	// With no Renditions and Audio set, the run encodes only the audio
	// (all of it, placed on the video's time line as in a full run): the
	// video stream is discarded, its packets not decoded.
}

// Window selects the segments [From, To) of a run (To 0: to the end of the
// input). The run seeks to the keyframe at or before the window's start,
// decodes from there and encodes the frames from segment From's first
// frame on: every segment of the window has the frames, timestamps and
// segment index it has in a run over the whole input, so windows of one
// input can be encoded apart and put side by side. Only a window from
// the start may have Options.Audio, and then it encodes the whole input's
// audio in one piece (no boundaries in it: no gaps, no priming at chunk
// starts), reading on past the window without decoding the video. A
// window after the start needs an input whose video stream declares its
// start time.
type Window struct {
	From, To int
}

// windowSeekMargin is how far before a window's start the run seeks, so
// that a keyframe whose timestamp is a little late (reordered frames,
// rounding) still comes before the window's first frame.
const windowSeekMargin = time.Second

// Frame is what a FrameHook sees: the picture's 8-bit luma plane, in place.
type Frame struct {
	// Luma is the Y plane: Height rows of Stride bytes, of which the first
	// Width are picture. It points into FFmpeg's frame buffer: valid only
	// during the hook call, never to be retained.
	Luma          []byte
	Stride        int
	Width, Height int
	// PTS is the presentation time from the start of the output.
	PTS time.Duration
	// Segment is the index of the frame's segment (0-based); Index is the
	// frame's position within it (0 is the segment's IDR frame).
	Segment, Index int
	// Rendition and Variant say which encoder the frame goes to.
	Rendition, Variant int
}

// CopyLuma copies src's luma picture (Width×Height bytes) into f's.
func (f *Frame) CopyLuma(src *Frame) {
	for y := range min(f.Height, src.Height) {
		copy(f.Luma[y*f.Stride:y*f.Stride+f.Width], src.Luma[y*src.Stride:y*src.Stride+src.Width])
	}
}

// FrameHook may change a frame's luma plane before it is encoded.
type FrameHook func(f *Frame) error

// PairHook may change both variants of a frame before they are encoded.
type PairHook func(a, b *Frame) error

// TrackKind tells video from audio tracks.
type TrackKind int

const (
	Video TrackKind = iota
	Audio
)

// Track describes one encoded output stream.
type Track struct {
	ID   int
	Kind TrackKind
	// Rendition and Variant index Options.Renditions and the variants
	// (-1 for audio).
	Rendition, Variant int
	Name               string
	Codec              string // "h264" or "aac"
	Width, Height      int
	Timescale          int
	// Extradata is the codec configuration: H.264 SPS and PPS (Annex B) or
	// the AAC AudioSpecificConfig.
	Extradata  []byte
	SampleRate int
	Channels   int
	Bitrate    int64
}

// Packet is one encoded access unit.
type Packet struct {
	Track int
	// Data is the encoded bytes (H.264 in Annex B, raw AAC).
	Data []byte
	// PTS, DTS and Duration are in the track's timescale.
	PTS, DTS, Duration int64
	Keyframe           bool
	// Segment is the index of the segment the packet belongs to.
	Segment int
}

// Sink receives the encoded output. Calls are never concurrent.
type Sink interface {
	// Tracks is called once, before any packet.
	Tracks(tracks []Track) error
	// Packet is called for every encoded packet, in decode order per track.
	Packet(p Packet) error
}

// Result summarises a finished transcode.
type Result struct {
	Info          *Info
	Tracks        []Track
	FramesDecoded int64
	// FramesEncoded is the number of frames each video encoder received.
	FramesEncoded int64
	Segments      int
	// Duration is the output's video duration.
	Duration time.Duration
}

// Run decodes the input once, scales it once per rendition, and encodes
// every rendition's variants and the audio into sink. A cancelled ctx stops
// it promptly; everything allocated is freed on every return path.
func Run(ctx context.Context, path string, opts Options, sink Sink) (*Result, error) {
	return run1(ctx, opts, sink, func(ctx context.Context, limits Limits) (*input, error) {
		return openInput(ctx, path, limits)
	})
}

// RunInput is Run on an Input.
func RunInput(ctx context.Context, src Input, opts Options, sink Sink) (*Result, error) {
	return run1(ctx, opts, sink, func(ctx context.Context, limits Limits) (*input, error) {
		return openFrom(ctx, src, limits, nil)
	})
}

func run1(ctx context.Context, opts Options, sink Sink, open func(context.Context, Limits) (*input, error)) (*Result, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	limits := opts.Limits.withDefaults()
	in, err := open(ctx, limits)
	if err != nil {
		return nil, err
	}
	defer in.close()
	r := &run{ctx: ctx, cancel: cancel, opts: opts, limits: limits, in: in, sink: sink, threads: opts.Threads}
	if r.threads <= 0 {
		r.threads = runtime.NumCPU()
	}
	defer r.close()
	if err := r.setup(); err != nil {
		return nil, err
	}
	return r.loop()
}

func (o *Options) validate() error {
	if len(o.Renditions) == 0 && o.Audio == nil {
		return errors.New("transcode: no renditions")
	}
	if o.SegmentDuration < 100*time.Millisecond {
		return fmt.Errorf("transcode: segment duration %s too short", o.SegmentDuration)
	}
	if o.Variants == 0 {
		o.Variants = 1
	}
	if o.Variants < 1 || o.Variants > 2 {
		return fmt.Errorf("transcode: %d variants (want 1 or 2)", o.Variants)
	}
	if w := o.Window; w != nil {
		switch {
		case w.From < 0 || w.To < 0 || w.To != 0 && w.To <= w.From:
			return fmt.Errorf("transcode: window [%d, %d) is empty or negative", w.From, w.To)
		case o.Audio != nil && w.From > 0:
			return errors.New("transcode: only a window from the start encodes the audio (all of it)")
		case len(o.Renditions) == 0:
			return errors.New("transcode: an audio-only run has no window")
		}
	}
	for i, rd := range o.Renditions {
		if rd.Width <= 0 || rd.Height <= 0 || rd.Width%2 != 0 || rd.Height%2 != 0 {
			return fmt.Errorf("transcode: rendition %d (%s): size %dx%d must be positive and even", i, rd.Name, rd.Width, rd.Height)
		}
	}
	return nil
}

// run is the state of one transcode.
type run struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	opts    Options
	limits  Limits
	in      *input
	sink    Sink
	threads int

	mu     sync.Mutex // serialises sink calls
	tracks []Track

	video *videoGraph
	encs  [][]*encoder // [rendition][variant]
	audio *audioPath
	wg    sync.WaitGroup

	pkt    *astiav.Packet
	pools  []*lumaPool // per rendition: variant B's luma planes
	dframe *astiav.Frame
	sframe *astiav.Frame

	segTicks   int64
	t0         int64 // first video pts in VideoTimescale, or -1
	lastSeg    []int
	segIndex   []int
	lastOut    []int64 // last output pts per rendition, or -1
	nominalDur int64
	decoded    int64
	encoded    int64
	maxPTS     int64
	lastReport int
	frees      []func()

	// Limits enforced while decoding.
	budget  *budget
	sizer   *sizer
	packets int
	// decodedTicks is the media decoded, summed frame by frame (in
	// VideoTimescale): unlike the timestamps it grows with every frame,
	// whatever the timestamps do.
	decodedTicks int64
	// genPTS makes the frames' timestamps from their index and the frame
	// rate: raw elementary streams have none of their own.
	genPTS bool
	// windowDone: every frame of the window has been encoded (Options.Window).
	windowDone bool
}

// audioOnly: the run encodes the audio only (Options).
func (r *run) audioOnly() bool { return len(r.opts.Renditions) == 0 }

func (r *run) close() {
	for i := len(r.frees) - 1; i >= 0; i-- {
		r.frees[i]()
	}
	r.frees = nil
}

func (r *run) setup() error {
	in := r.in
	if r.audioOnly() {
		if in.as == nil {
			return inputErr(ErrNotVideo, nil, "an audio-only run of a source without audio")
		}
		// The video's packets are skipped by the demuxer (not read at all
		// from an indexed container).
		in.vs.SetDiscard(astiav.DiscardAll)
		r.windowDone = true
	} else {
		in.vdec.SetThreadType(astiav.ThreadTypeFrame)
		if err := in.openVideoDecoder(r.threads, r.limits); err != nil {
			return err
		}
	}
	r.segTicks = int64(r.opts.SegmentDuration) * VideoTimescale / int64(time.Second)
	// The output's origin is the video stream's start, so audio that comes
	// first in the file is placed right.
	r.t0 = -1
	if st := in.vs.StartTime(); st != astiav.NoPtsValue {
		r.t0 = astiav.RescaleQ(st, in.vs.TimeBase(), astiav.NewRational(1, VideoTimescale))
	}
	r.lastSeg = make([]int, len(r.opts.Renditions))
	r.segIndex = make([]int, len(r.opts.Renditions))
	r.lastOut = make([]int64, len(r.opts.Renditions))
	for i := range r.lastSeg {
		r.lastSeg[i], r.lastOut[i] = -1, -1
	}
	r.budget = newBudget(r.limits)
	r.genPTS = rawVideo(in.info.Container)
	if w := r.opts.Window; w != nil && w.From > 0 {
		if r.t0 < 0 || r.genPTS {
			return fmt.Errorf("transcode: window: the video stream declares no start time, so a window cannot be placed (encode it whole)")
		}
		start := r.t0 + int64(w.From)*r.segTicks - int64(windowSeekMargin)*VideoTimescale/int64(time.Second)
		ts := astiav.RescaleQ(max(start, r.t0), astiav.NewRational(1, VideoTimescale), in.vs.TimeBase())
		if err := in.fc.SeekFrame(in.vs.Index(), ts, astiav.NewSeekFlags(astiav.SeekFlagBackward)); err != nil {
			return fmt.Errorf("transcode: window: seek to segment %d: %w", w.From, err)
		}
	}
	if r.sizer = newSizer(in.vdec); r.sizer != nil {
		r.frees = append(r.frees, r.sizer.free)
	}
	fps := in.info.Video.FrameRate
	if fps <= 0 || fps > 240 {
		fps = 25
	}
	r.nominalDur = int64(float64(VideoTimescale)/fps + 0.5)

	var err error
	if !r.audioOnly() {
		if r.video, err = newVideoGraph(in, r.opts.Renditions, r.threads); err != nil {
			return err
		}
		r.frees = append(r.frees, r.video.free)
	}

	segFrames := int(r.opts.SegmentDuration.Seconds()*fps + 0.5)
	for ri, rd := range r.opts.Renditions {
		var row []*encoder
		for v := range r.opts.Variants {
			e, err := newVideoEncoder(rd, in, fps, segFrames, r.threads)
			if err != nil {
				return err
			}
			r.frees = append(r.frees, e.free)
			e.track = len(r.tracks)
			e.segTicks = r.segTicks
			r.tracks = append(r.tracks, Track{
				ID: e.track, Kind: Video, Rendition: ri, Variant: v, Name: rd.Name, Codec: "h264",
				Width: rd.Width, Height: rd.Height, Timescale: VideoTimescale,
				Extradata: e.cc.ExtraData(), Bitrate: rd.Bitrate,
			})
			row = append(row, e)
		}
		r.encs = append(r.encs, row)
	}
	if r.opts.Audio != nil && in.as != nil {
		a, err := newAudioPath(in, *r.opts.Audio)
		if err != nil {
			return err
		}
		r.frees = append(r.frees, a.free)
		a.track = len(r.tracks)
		r.tracks = append(r.tracks, Track{
			ID: a.track, Kind: Audio, Rendition: -1, Variant: -1, Name: "audio", Codec: "aac",
			Timescale: a.enc.SampleRate(), Extradata: a.enc.ExtraData(), SampleRate: a.enc.SampleRate(),
			Channels: 2, Bitrate: r.opts.Audio.Bitrate,
		})
		r.audio = a
	}
	if err := r.sink.Tracks(r.tracks); err != nil {
		return fmt.Errorf("transcode: sink: %w", err)
	}

	// Variant B's luma pools, made at the first frame of each rendition
	// (their size follows the scaler's stride).
	r.pools = make([]*lumaPool, len(r.opts.Renditions))
	r.frees = append(r.frees, func() {
		for _, p := range r.pools {
			if p != nil {
				p.free()
			}
		}
	})
	r.pkt = astiav.AllocPacket()
	r.frees = append(r.frees, r.pkt.Free)
	r.dframe = astiav.AllocFrame()
	r.frees = append(r.frees, r.dframe.Free)
	r.sframe = astiav.AllocFrame()
	r.frees = append(r.frees, r.sframe.Free)

	// Encoders run concurrently, each in its own goroutine, fed through
	// bounded queues; stopping them is the first thing close does.
	for _, row := range r.encs {
		for _, e := range row {
			r.wg.Go(func() { e.run(r.ctx, r.cancel, r.emit) })
		}
	}
	r.frees = append(r.frees, r.stopEncoders)
	return nil
}

// stopEncoders closes the encoders' queues (they flush unless cancelled)
// and waits for them.
func (r *run) stopEncoders() {
	for _, row := range r.encs {
		for _, e := range row {
			e.closeInput()
		}
	}
	r.wg.Wait()
}

// lumaPool is rendition ri's pool of variant B luma planes, big enough for
// a's.
func (r *run) lumaPool(ri int, a *astiav.Frame) *lumaPool {
	_, stride := lumaPlane(a)
	size := stride*a.Height() + 64
	if p := r.pools[ri]; p == nil || p.size < size {
		if p != nil {
			p.free()
		}
		r.pools[ri] = newLumaPool(size)
	}
	return r.pools[ri]
}

// emit hands a packet to the sink.
func (r *run) emit(p Packet) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.sink.Packet(p); err != nil {
		return fmt.Errorf("transcode: sink: %w", err)
	}
	return nil
}

func (r *run) segmentOf(pts int64) int {
	if pts < 0 {
		return 0
	}
	return int(pts / r.segTicks)
}

// loop demuxes, decodes and feeds the filter graph until the end of input.
func (r *run) loop() (*Result, error) {
	in := r.in
	fail := func(err error) (*Result, error) {
		r.cancel(err) // the encoders stop without flushing
		r.stopEncoders()
		return nil, err
	}
	for {
		if err := r.ctx.Err(); err != nil {
			return fail(fmt.Errorf("transcode: %w", context.Cause(r.ctx)))
		}
		err := in.fc.ReadFrame(r.pkt)
		if errors.Is(err, astiav.ErrEof) {
			break
		}
		if err != nil {
			if r.ctx.Err() != nil {
				return fail(fmt.Errorf("transcode: %w", context.Cause(r.ctx)))
			}
			return fail(inputErr(ErrCorrupt, err, "corrupt at %s: the container cannot be read further", clock(r.mediaTime())))
		}
		if r.packets++; r.packets%budgetEvery == 0 {
			if err := r.budget.check(r.decodedMedia()); err != nil {
				r.pkt.Unref()
				return fail(err)
			}
		}
		switch r.pkt.StreamIndex() {
		case in.vs.Index():
			if !r.windowDone {
				err = r.decodeVideo(r.pkt)
			}
		case r.audioIndex():
			err = r.audio.decode(r.pkt, r)
		}
		r.pkt.Unref()
		if err != nil {
			return fail(err)
		}
		if r.windowDone && r.audio == nil {
			break // the rest of the input is after the window
		}
	}
	// Flush the decoders, the graphs, then the encoders.
	if !r.audioOnly() {
		if err := r.decodeVideo(nil); err != nil {
			return fail(err)
		}
		if err := r.video.src.AddFrame(nil, astiav.NewBuffersrcFlags()); err != nil {
			return fail(fmt.Errorf("transcode: flush filters: %w", err))
		}
		if err := r.pullVideo(); err != nil {
			return fail(err)
		}
	}
	if r.audio != nil {
		if err := r.audio.flush(r); err != nil {
			return fail(err)
		}
	}
	r.stopEncoders()
	if err := context.Cause(r.ctx); err != nil {
		return nil, err
	}
	if r.audioOnly() {
		return &Result{Info: r.in.info, Tracks: r.tracks}, nil
	}
	if r.decoded == 0 {
		return nil, inputErr(ErrCorrupt, nil, "corrupt: no video frame could be decoded")
	}
	if d := r.in.info.Duration; d > 2*time.Second && r.mediaTime() < d*9/10-time.Second && !r.windowDone {
		return nil, inputErr(ErrCorrupt, nil, "corrupt at %s: the video ends early (declared duration %s)", clock(r.mediaTime()), clock(d))
	}
	if r.opts.Progress != nil {
		r.opts.Progress(r.mediaTime(), r.in.info.Duration)
	}
	return &Result{
		Info:          r.in.info,
		Tracks:        r.tracks,
		FramesDecoded: r.decoded,
		FramesEncoded: r.encoded,
		Segments:      r.segmentOf(r.maxPTS) + 1,
		Duration:      r.mediaTime(),
	}, nil
}

func (r *run) audioIndex() int {
	if r.audio == nil {
		return -1
	}
	return r.in.as.Index()
}

// decodedMedia is how much media has been decoded: the larger of the
// output's timestamps and the frames' summed durations.
func (r *run) decodedMedia() time.Duration {
	d := max(r.mediaTime(), time.Duration(r.decodedTicks*int64(time.Second)/VideoTimescale))
	if r.audio != nil {
		d = max(d, r.audio.decoded())
	}
	return d
}

// mediaTime is how far the video output has got.
func (r *run) mediaTime() time.Duration {
	if r.t0 < 0 {
		return 0
	}
	return time.Duration((r.maxPTS + r.nominalDur) * int64(time.Second) / VideoTimescale)
}

func (r *run) decodeVideo(pkt *astiav.Packet) error {
	if pkt != nil && r.sizer != nil {
		if w, h := r.sizer.size(pkt.Data()); w > r.limits.MaxWidth || h > r.limits.MaxHeight {
			return inputErr(ErrOverLimit, nil, "resolution %dx%d at %s over limit %dx%d", w, h, clock(r.decodedMedia()), r.limits.MaxWidth, r.limits.MaxHeight)
		}
	}
	if err := r.in.vdec.SendPacket(pkt); err != nil && !errors.Is(err, astiav.ErrEof) {
		if errors.Is(err, astiav.ErrInvaliddata) {
			return inputErr(ErrCorrupt, err, "corrupt at %s: undecodable video", clock(r.mediaTime()))
		}
		return fmt.Errorf("transcode: decode video: %w", err)
	}
	for {
		err := r.in.vdec.ReceiveFrame(r.dframe)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return inputErr(ErrCorrupt, err, "corrupt at %s: undecodable video", clock(r.mediaTime()))
		}
		if err := r.checkFrame(r.dframe); err != nil {
			r.dframe.Unref()
			return err
		}
		err = r.video.src.AddFrame(r.dframe, astiav.NewBuffersrcFlags())
		r.dframe.Unref()
		if err != nil {
			return fmt.Errorf("transcode: filter video: %w", err)
		}
		if err := r.pullVideo(); err != nil {
			return err
		}
	}
}

// checkFrame counts a decoded frame against the limits and gives it its
// timestamp.
func (r *run) checkFrame(f *astiav.Frame) error {
	l := r.limits
	if f.Width() > l.MaxWidth || f.Height() > l.MaxHeight {
		return inputErr(ErrOverLimit, nil, "resolution %dx%d at %s over limit %dx%d", f.Width(), f.Height(), clock(r.decodedMedia()), l.MaxWidth, l.MaxHeight)
	}
	tb := r.in.vs.TimeBase()
	pts := bestEffortTimestamp(f)
	if r.genPTS || pts == astiav.NoPtsValue {
		rate := r.in.rate
		if rate.Num() <= 0 || rate.Den() <= 0 {
			rate = astiav.NewRational(25, 1)
		}
		pts = astiav.RescaleQ(r.decoded, astiav.NewRational(rate.Den(), rate.Num()), tb)
		setFrameDuration(f, 0) // the encoder side uses the nominal duration
	}
	f.SetPts(pts)
	r.decoded++
	dur := astiav.RescaleQ(frameDuration(f), tb, astiav.NewRational(1, VideoTimescale))
	if dur <= 0 || dur > 10*r.nominalDur {
		dur = r.nominalDur
	}
	r.decodedTicks += dur
	if r.decoded > l.MaxFrames {
		return inputErr(ErrOverLimit, nil, "%d frames decoded, over limit %d", r.decoded, l.MaxFrames)
	}
	media := r.decodedMedia()
	if media > l.MaxDuration {
		return inputErr(ErrOverLimit, nil, "decoded duration %s over limit %s", clock(media), clock(l.MaxDuration))
	}
	if declared := r.in.info.Duration; declaredOverrun(media, declared) {
		return inputErr(ErrOverLimit, nil, "decoded duration %s over limit: the container declares %s", clock(media), clock(declared))
	}
	return nil
}

// pullVideo takes every frame the scalers have ready.
func (r *run) pullVideo() error {
	for ri, sink := range r.video.sinks {
		for {
			err := sink.GetFrame(r.sframe, astiav.NewBuffersinkFlags())
			if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
				break
			}
			if err != nil {
				return fmt.Errorf("transcode: scale %s: %w", r.opts.Renditions[ri].Name, err)
			}
			err = r.encodeFrame(ri, sink.TimeBase())
			r.sframe.Unref()
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// encodeFrame sends the scaled frame in r.sframe to every variant's encoder.
func (r *run) encodeFrame(ri int, tb astiav.Rational) error {
	f := r.sframe
	pts := astiav.RescaleQ(f.Pts(), tb, astiav.NewRational(1, VideoTimescale))
	if r.t0 < 0 {
		r.t0 = pts
	}
	pts -= r.t0
	if pts < 0 || pts <= r.lastOut[ri] {
		// Before the first frame of the output, or not after the last one
		// (timestamps that jump back): dropped, so the output's times
		// always increase.
		return nil
	}
	r.lastOut[ri] = pts
	dur := astiav.RescaleQ(frameDuration(f), tb, astiav.NewRational(1, VideoTimescale))
	if dur <= 0 {
		dur = r.nominalDur
	}
	seg := r.segmentOf(pts)
	if w := r.opts.Window; w != nil {
		if seg < w.From {
			return nil // decoded on the way to the window
		}
		if w.To > 0 && seg >= w.To {
			r.windowDone = true
			return nil
		}
	}
	idr := seg != r.lastSeg[ri]
	if idr {
		r.lastSeg[ri], r.segIndex[ri] = seg, 0
	}
	index := r.segIndex[ri]
	r.segIndex[ri]++
	if ri == 0 {
		r.maxPTS = max(r.maxPTS, pts)
		r.encoded++
		if r.opts.Progress != nil && idr && seg > r.lastReport {
			r.lastReport = seg
			r.opts.Progress(time.Duration(pts*int64(time.Second)/VideoTimescale), r.in.info.Duration)
		}
	}
	hf := func(out *astiav.Frame, v int) Frame {
		luma, stride := lumaPlane(out)
		return Frame{
			Luma: luma, Stride: stride, Width: out.Width(), Height: out.Height(),
			PTS:     time.Duration(pts * int64(time.Second) / VideoTimescale),
			Segment: seg, Index: index, Rendition: ri, Variant: v,
		}
	}
	var outs [2]*astiav.Frame
	release := func() {
		for v, out := range outs {
			if out != nil {
				r.encs[ri][v].release(out)
			}
		}
	}
	stamp := func(out *astiav.Frame) {
		out.SetPts(pts)
		setFrameDuration(out, dur)
		if idr {
			out.SetPictureType(astiav.PictureTypeI)
		} else {
			out.SetPictureType(astiav.PictureTypeNone)
		}
	}
	if r.opts.PairHook != nil && r.opts.Variants == 2 && r.opts.Hook == nil {
		// A takes the scaled frame, B gets a luma plane of its own and
		// shares A's chroma: the pair hook writes B's luma from A's, so no
		// copy of the picture is made for B.
		for v := range 2 {
			out, err := r.encs[ri][v].frame(r.ctx)
			if err != nil {
				release()
				return err
			}
			outs[v] = out
		}
		outs[0].MoveRef(f)
		stamp(outs[0])
		if err := pairFrames(outs[0], outs[1], r.lumaPool(ri, outs[0])); err != nil {
			release()
			return fmt.Errorf("transcode: variant b frame: %w", err)
		}
		stamp(outs[1])
		a, b := hf(outs[0], 0), hf(outs[1], 1)
		if err := r.opts.PairHook(&a, &b); err != nil {
			release()
			return fmt.Errorf("transcode: frame hook: %w", err)
		}
	} else {
		// The last variant takes the scaled frame's own reference, the
		// others a reference each; a hook makes each one writable (a copy
		// only where a buffer is shared). All variants are hooked before
		// any is sent.
		hooked := r.opts.Hook != nil || r.opts.PairHook != nil
		var hfs [2]Frame
		for v := r.opts.Variants - 1; v >= 0; v-- {
			out, err := r.encs[ri][v].frame(r.ctx)
			if err != nil {
				release()
				return err
			}
			outs[v] = out
			if v == 0 {
				out.MoveRef(f)
			} else if err := out.Ref(f); err != nil {
				release()
				return fmt.Errorf("transcode: ref frame: %w", err)
			}
			stamp(out)
			if hooked {
				if err := out.MakeWritable(); err != nil {
					release()
					return fmt.Errorf("transcode: make frame writable: %w", err)
				}
				hfs[v] = hf(out, v)
			}
		}
		if r.opts.PairHook != nil && r.opts.Variants == 2 {
			if err := r.opts.PairHook(&hfs[0], &hfs[1]); err != nil {
				release()
				return fmt.Errorf("transcode: frame hook: %w", err)
			}
		}
		if r.opts.Hook != nil {
			for v := r.opts.Variants - 1; v >= 0; v-- {
				if err := r.opts.Hook(&hfs[v]); err != nil {
					release()
					return fmt.Errorf("transcode: frame hook: %w", err)
				}
			}
		}
	}
	for v := r.opts.Variants - 1; v >= 0; v-- {
		out := outs[v]
		outs[v] = nil
		if err := r.encs[ri][v].send(r.ctx, out); err != nil {
			release()
			return err
		}
	}
	return nil
}
