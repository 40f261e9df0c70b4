package transcode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/asticode/go-astiav"
)

// Limits bound what an upload may be. Zero fields take the default.
type Limits struct {
	MaxWidth, MaxHeight int
	MaxDuration         time.Duration
	MaxFrames           int64
	MaxFileSize         int64
	// MaxStreams bounds the streams of any kind in the container.
	MaxStreams int
	// MaxCPUPerSecond and CPUSlack bound a transcode's CPU time: at most
	// MaxCPUPerSecond seconds per second of media decoded, plus CPUSlack.
	MaxCPUPerSecond float64
	CPUSlack        time.Duration
	// MaxMemory bounds the process's resident memory while a transcode
	// runs (bytes): set it below the machine's or container's limit, so
	// one upload fails cleanly instead of the worker being killed.
	MaxMemory int64
}

// DefaultLimits allow up to 8K, 4 hours, 4 hours of 120 fps, 100 GiB, 64
// streams, 50 CPU seconds per second of media (plus a minute) and 4 GiB of
// resident memory.
func DefaultLimits() Limits {
	return Limits{
		MaxWidth:    7680,
		MaxHeight:   4320,
		MaxDuration: 4 * time.Hour,
		MaxFrames:   4 * 3600 * 120,
		MaxFileSize: 100 << 30,
		MaxStreams:  64,
		// The default ladder with A/B variants costs about 2 CPU seconds
		// per second of 720p source; 50 leaves room for 8K sources and
		// slower presets.
		MaxCPUPerSecond: 50,
		CPUSlack:        time.Minute,
		MaxMemory:       4 << 30,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxWidth == 0 {
		l.MaxWidth = d.MaxWidth
	}
	if l.MaxHeight == 0 {
		l.MaxHeight = d.MaxHeight
	}
	if l.MaxDuration == 0 {
		l.MaxDuration = d.MaxDuration
	}
	if l.MaxFrames == 0 {
		l.MaxFrames = d.MaxFrames
	}
	if l.MaxFileSize == 0 {
		l.MaxFileSize = d.MaxFileSize
	}
	if l.MaxStreams == 0 {
		l.MaxStreams = d.MaxStreams
	}
	if l.MaxCPUPerSecond == 0 {
		l.MaxCPUPerSecond = d.MaxCPUPerSecond
	}
	if l.CPUSlack == 0 {
		l.CPUSlack = d.CPUSlack
	}
	if l.MaxMemory == 0 {
		l.MaxMemory = d.MaxMemory
	}
	return l
}

// maxPixels is the largest picture a decoder may allocate.
func (l Limits) maxPixels() int64 { return int64(l.MaxWidth) * int64(l.MaxHeight) }

// Info describes a probed input.
type Info struct {
	Size      int64
	Container string
	Duration  time.Duration
	Video     VideoInfo
	// Audio is nil when the input has no decodable audio stream.
	Audio *AudioInfo
}

// VideoInfo describes the video stream.
type VideoInfo struct {
	Codec string
	// Width and Height are the coded picture size.
	Width, Height int
	// DisplayWidth and DisplayHeight are the size as shown: sample aspect
	// ratio applied and rotation honoured.
	DisplayWidth, DisplayHeight int
	// Rotation is the clockwise rotation (0, 90, 180, 270) applied for display.
	Rotation int
	// FrameRate is the average frame rate (0 when unknown).
	FrameRate  float64
	Interlaced bool
	// Frames is the declared frame count (0 when the container does not say).
	Frames      int64
	PixelFormat string
	// Windowable: the stream declares its start time and has timestamps
	// of its own, so a window after the start can be placed
	// (Options.Window).
	Windowable bool
}

// AudioInfo describes the audio stream.
type AudioInfo struct {
	Codec      string
	SampleRate int
	Channels   int
}

// Probe opens path, checks it against limits and describes it. Problems with
// the file are *InputError values matching ErrEmpty, ErrNotVideo, ErrCorrupt
// or ErrOverLimit.
func Probe(ctx context.Context, path string, limits Limits) (*Info, error) {
	in, err := openInput(ctx, path, limits.withDefaults())
	if err != nil {
		return nil, err
	}
	defer in.close()
	return in.info, nil
}

// Input is what a probe or a run reads: bytes at offsets, of a known size,
// named in errors. Probe and Run read a file by path; ProbeInput and
// RunInput read any Input, such as a source in an object store fetched in
// ranges as the demuxer asks for them (a chunk of a long source reads the
// index and its window, not the whole file). An Input is read from one
// goroutine at a time.
type Input interface {
	io.ReaderAt
	Size() int64
	Name() string
}

// ProbeInput is Probe on an Input.
func ProbeInput(ctx context.Context, src Input, limits Limits) (*Info, error) {
	in, err := openFrom(ctx, src, limits.withDefaults(), nil)
	if err != nil {
		return nil, err
	}
	defer in.close()
	return in.info, nil
}

// input is an opened and validated file with its decoders.
type input struct {
	fc    *astiav.FormatContext
	vs    *astiav.Stream
	as    *astiav.Stream
	vdec  *astiav.CodecContext
	adec  *astiav.CodecContext
	rate  astiav.Rational // guessed video frame rate
	info  *Info
	frees []func()
}

// openDemuxer opens demuxer name on f in the sandbox: custom I/O over the
// opened file, nested opens refused, no protocol, only the allowed
// containers. The caller has checked name against Containers; the
// sandbox's own layers hold even if it has not.
func (in *input) openDemuxer(ctx context.Context, src Input, name string, limits Limits) error {
	ifmt := astiav.FindInputFormat(name)
	if ifmt == nil {
		return fmt.Errorf("transcode: FFmpeg has no demuxer %q", name)
	}
	ioc, err := inputIO(src)
	if err != nil {
		return err
	}
	in.frees = append(in.frees, ioc.Free)
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return errors.New("transcode: alloc format context failed")
	}
	in.frees = append(in.frees, fc.Free)
	if err := denyOpens(fc); err != nil {
		return err
	}
	fc.SetPb(ioc)
	ii := astiav.NewIOInterrupter()
	in.frees = append(in.frees, ii.Free)
	fc.SetIOInterrupter(ii)
	stop := context.AfterFunc(ctx, ii.Interrupt)
	in.frees = append(in.frees, func() { stop() })
	opts, err := demuxerOptions(limits)
	if err != nil {
		return err
	}
	defer opts.Free()
	if err := fc.OpenInput("", ifmt, opts); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("transcode: %w", ctx.Err())
		}
		short, _, _ := strings.Cut(name, ",")
		return inputErr(ErrCorrupt, err, "corrupt: the %s container cannot be read", short)
	}
	in.fc = fc
	in.frees = append(in.frees, fc.CloseInput)
	return nil
}

// openVideoDecoder opens the video decoder with threads threads (0: as
// many as FFmpeg likes). No decoded picture may be larger than the limits
// allow: a bigger one is a decoding error, not an allocation.
func (in *input) openVideoDecoder(threads int, limits Limits) error {
	in.vdec.SetThreadCount(threads)
	d := astiav.NewDictionary()
	defer d.Free()
	if err := d.Set("max_pixels", strconv.FormatInt(limits.maxPixels(), 10), astiav.NewDictionaryFlags()); err != nil {
		return fmt.Errorf("transcode: decoder option max_pixels: %w", err)
	}
	if err := in.vdec.Open(astiav.FindDecoder(in.vs.CodecParameters().CodecID()), d); err != nil {
		return inputErr(ErrCorrupt, err, "corrupt: video decoder cannot open the stream")
	}
	return nil
}

func (in *input) close() {
	for i := len(in.frees) - 1; i >= 0; i-- {
		in.frees[i]()
	}
	in.frees = nil
}

// fileInput is an opened regular file as an Input.
type fileInput struct {
	*os.File
	size int64
}

func (f fileInput) Size() int64 { return f.size }

func openInput(ctx context.Context, path string, limits Limits) (*input, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("transcode: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("transcode: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, inputErr(ErrNotVideo, nil, "not a video: not a regular file")
	}
	return openFrom(ctx, fileInput{f, fi.Size()}, limits, func() { f.Close() })
}

// openFrom opens and validates src; done, when set, is called when the
// input is closed (or fails to open).
func openFrom(ctx context.Context, src Input, limits Limits, done func()) (_ *input, err error) {
	in := &input{}
	if done != nil {
		in.frees = append(in.frees, done)
	}
	defer func() {
		if err != nil {
			in.close()
		}
	}()
	size := src.Size()
	if size == 0 {
		return nil, inputErr(ErrEmpty, nil, "empty file (0 bytes)")
	}
	if size > limits.MaxFileSize {
		return nil, inputErr(ErrOverLimit, nil, "file size %d bytes over limit %d", size, limits.MaxFileSize)
	}
	in.info = &Info{Size: size}

	// The container is told from the content and must be on the list;
	// the demuxer then reads the input through custom I/O.
	name, err := probeContainer(src)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if looksLikeMedia(src) {
			return nil, inputErr(ErrCorrupt, nil, "corrupt: the container cannot be read")
		}
		return nil, inputErr(ErrNotVideo, nil, "not a video: unrecognised file format")
	}
	if !containerAllowed(name) {
		return nil, inputErr(ErrNotVideo, nil, "not a video: container %q not allowed", name)
	}
	if err := in.openDemuxer(ctx, src, name, limits); err != nil {
		return nil, err
	}
	fc := in.fc
	in.info.Container = name
	if err := checkStreams(fc, limits); err != nil {
		return nil, err
	}
	// A container that declares a picture too large is refused before any
	// of it is decoded.
	declared := map[int][2]int{}
	for _, s := range fc.Streams() {
		cp := s.CodecParameters()
		if cp.MediaType() != astiav.MediaTypeVideo {
			continue
		}
		if cp.Width() > limits.MaxWidth || cp.Height() > limits.MaxHeight {
			return nil, inputErr(ErrOverLimit, nil, "resolution %dx%d over limit %dx%d", cp.Width(), cp.Height(), limits.MaxWidth, limits.MaxHeight)
		}
		declared[s.Index()] = [2]int{cp.Width(), cp.Height()}
	}
	if err := findStreamInfo(fc, limits.maxPixels()); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("transcode: %w", ctx.Err())
		}
		return nil, inputErr(ErrCorrupt, err, "corrupt: stream parameters cannot be read")
	}
	if err := checkStreams(fc, limits); err != nil {
		return nil, err
	}
	if d := fc.Duration(); d > 0 {
		in.info.Duration = time.Duration(d) * time.Microsecond // AV_TIME_BASE is 1 MHz
	}

	for _, s := range fc.Streams() {
		cp := s.CodecParameters()
		switch cp.MediaType() {
		case astiav.MediaTypeVideo:
			if in.vs == nil && !s.DispositionFlags().Has(astiav.DispositionFlagAttachedPic) {
				in.vs = s
			}
		case astiav.MediaTypeAudio:
			if in.as == nil && astiav.FindDecoder(cp.CodecID()) != nil && cp.SampleRate() > 0 {
				in.as = s
			}
		}
	}
	if in.vs == nil {
		what := "no video stream"
		if in.as != nil {
			what = "audio only, no video stream"
		}
		return nil, inputErr(ErrNotVideo, nil, "not a video: %s", what)
	}
	cp := in.vs.CodecParameters()
	codec := astiav.FindDecoder(cp.CodecID())
	if codec == nil {
		return nil, inputErr(ErrNotVideo, nil, "not a video: no decoder for video codec %s", cp.CodecID())
	}
	w, h := cp.Width(), cp.Height()
	if d := declared[in.vs.Index()]; (w <= 0 || h <= 0) && d[0] > 0 && d[1] > 0 {
		// The decoder refused the stream's picture size (FFmpeg then
		// clears it) though the container declared one within the limits.
		return nil, inputErr(ErrOverLimit, nil, "resolution over limit %dx%d or invalid: the decoder refused the pictures (the container declares %dx%d)",
			limits.MaxWidth, limits.MaxHeight, d[0], d[1])
	}
	if w <= 0 || h <= 0 || cp.PixelFormat() == astiav.PixelFormatNone {
		return nil, inputErr(ErrCorrupt, nil, "corrupt: video stream has no decodable picture (%dx%d)", w, h)
	}
	if w > limits.MaxWidth || h > limits.MaxHeight {
		return nil, inputErr(ErrOverLimit, nil, "resolution %dx%d over limit %dx%d", w, h, limits.MaxWidth, limits.MaxHeight)
	}
	if in.info.Duration > limits.MaxDuration {
		return nil, inputErr(ErrOverLimit, nil, "duration %s over limit %s", clock(in.info.Duration), clock(limits.MaxDuration))
	}
	rate := fc.GuessFrameRate(in.vs, nil)
	in.rate = rate
	v := VideoInfo{
		Codec:       codec.Name(),
		Width:       w,
		Height:      h,
		Frames:      in.vs.NbFrames(),
		PixelFormat: cp.PixelFormat().String(),
	}
	if rate.Num() > 0 && rate.Den() > 0 {
		v.FrameRate = rate.Float64()
	}
	frames := v.Frames
	if frames == 0 && v.FrameRate > 0 {
		frames = int64(in.info.Duration.Seconds() * v.FrameRate)
	}
	if frames > limits.MaxFrames {
		return nil, inputErr(ErrOverLimit, nil, "%d frames over limit %d", frames, limits.MaxFrames)
	}
	if m, ok := cp.SideData().DisplayMatrix().Get(); ok {
		// FFmpeg's rotation is counter-clockwise; the picture is turned back
		// clockwise by the same angle (as the ffmpeg CLI's autorotate does).
		r := int(math.Round(-m.Rotation()))
		v.Rotation = ((r % 360) + 360) % 360 / 90 * 90
	}
	dw := w
	if sar := cp.SampleAspectRatio(); sar.Num() > 0 && sar.Den() > 0 && sar.Num() != sar.Den() {
		dw = int(math.Round(float64(w) * sar.Float64()))
	}
	v.DisplayWidth, v.DisplayHeight = dw, h
	if v.Rotation == 90 || v.Rotation == 270 {
		v.DisplayWidth, v.DisplayHeight = h, dw
	}

	vdec := astiav.AllocCodecContext(codec)
	if vdec == nil {
		return nil, errors.New("transcode: alloc decoder failed")
	}
	in.frees = append(in.frees, vdec.Free)
	if err := cp.ToCodecContext(vdec); err != nil {
		return nil, fmt.Errorf("transcode: video codec parameters: %w", err)
	}
	vdec.SetFramerate(rate)
	vdec.SetTimeBase(in.vs.TimeBase())
	in.vdec = vdec
	v.Interlaced = fieldOrderInterlaced(vdec)
	v.Windowable = in.vs.StartTime() != astiav.NoPtsValue && !rawVideo(in.info.Container)
	in.info.Video = v

	if in.as != nil {
		acp := in.as.CodecParameters()
		acodec := astiav.FindDecoder(acp.CodecID())
		adec := astiav.AllocCodecContext(acodec)
		if adec == nil {
			return nil, errors.New("transcode: alloc audio decoder failed")
		}
		in.frees = append(in.frees, adec.Free)
		if err := acp.ToCodecContext(adec); err != nil {
			return nil, fmt.Errorf("transcode: audio codec parameters: %w", err)
		}
		adec.SetTimeBase(in.as.TimeBase())
		in.adec = adec
		in.info.Audio = &AudioInfo{Codec: acodec.Name(), SampleRate: acp.SampleRate(), Channels: acp.ChannelLayout().Channels()}
	}
	return in, nil
}

// checkStreams enforces MaxStreams. The demuxer stops adding streams one
// past the limit (max_streams), so the count said is a lower bound.
func checkStreams(fc *astiav.FormatContext, limits Limits) error {
	if n := fc.NbStreams(); n > limits.MaxStreams {
		return inputErr(ErrOverLimit, nil, "%d or more streams over limit %d", n, limits.MaxStreams)
	}
	return nil
}

// looksLikeMedia sniffs the first bytes for common media containers, to tell
// a damaged video from a file that is not one at all.
func looksLikeMedia(f io.ReaderAt) bool {
	head := make([]byte, 16)
	n, _ := io.ReadFull(io.NewSectionReader(f, 0, 16), head)
	head = head[:n]
	switch {
	case n >= 8 && (bytes.Equal(head[4:8], []byte("ftyp")) || bytes.Equal(head[4:8], []byte("moov")) ||
		bytes.Equal(head[4:8], []byte("mdat")) || bytes.Equal(head[4:8], []byte("free")) || bytes.Equal(head[4:8], []byte("wide"))):
		return true // ISO BMFF / QuickTime
	case bytes.HasPrefix(head, []byte{0x1a, 0x45, 0xdf, 0xa3}):
		return true // Matroska / WebM
	case bytes.HasPrefix(head, []byte("RIFF")):
		return true // AVI
	case n > 0 && head[0] == 0x47:
		return true // MPEG-TS sync byte
	case bytes.HasPrefix(head, []byte("FLV")):
		return true
	}
	return false
}
