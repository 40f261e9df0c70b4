package transcode

import (
	"errors"
	"fmt"
	"time"

	"github.com/asticode/go-astiav"
)

// audioPath decodes the audio stream, resamples it to stereo at the output
// rate in AAC-sized frames, and encodes AAC, all in the demuxing goroutine
// (it costs little next to video).
type audioPath struct {
	dec        *astiav.CodecContext
	graph      *astiav.FilterGraph
	src        *astiav.BuffersrcFilterContext
	sink       *astiav.BuffersinkFilterContext
	enc        *astiav.CodecContext
	dframe     *astiav.Frame
	fframe     *astiav.Frame
	pkt        *astiav.Packet
	track      int
	sampleRate int
	frees      []func()
	// samples decoded so far, at the decoder's rate: how much audio the
	// run has read (its CPU budget counts it).
	samples int64
}

// decoded is the audio decoded so far.
func (a *audioPath) decoded() time.Duration {
	if rate := a.dec.SampleRate(); rate > 0 {
		return time.Duration(a.samples * int64(time.Second) / int64(rate))
	}
	return 0
}

func newAudioPath(in *input, s AudioSettings) (_ *audioPath, err error) {
	a := &audioPath{dec: in.adec, sampleRate: s.SampleRate}
	defer func() {
		if err != nil {
			a.free()
		}
	}()
	if err := a.dec.Open(astiav.FindDecoder(in.as.CodecParameters().CodecID()), nil); err != nil {
		return nil, inputErr(ErrCorrupt, err, "corrupt: audio decoder cannot open the stream")
	}
	codec := astiav.FindEncoder(astiav.CodecIDAac)
	if codec == nil {
		return nil, errors.New("transcode: FFmpeg has no AAC encoder")
	}
	a.enc = astiav.AllocCodecContext(codec)
	a.frees = append(a.frees, a.enc.Free)
	a.enc.SetSampleRate(s.SampleRate)
	a.enc.SetChannelLayout(astiav.ChannelLayoutStereo)
	a.enc.SetSampleFormat(astiav.SampleFormatFltp)
	a.enc.SetBitRate(s.Bitrate)
	a.enc.SetTimeBase(astiav.NewRational(1, s.SampleRate))
	a.enc.SetFlags(a.enc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	if err := a.enc.Open(codec, nil); err != nil {
		return nil, fmt.Errorf("transcode: open AAC encoder: %w", err)
	}

	a.graph = astiav.AllocFilterGraph()
	a.frees = append(a.frees, a.graph.Free)
	if a.src, err = a.graph.NewBuffersrcFilterContext(astiav.FindFilterByName("abuffer"), "in"); err != nil {
		return nil, fmt.Errorf("transcode: audio source: %w", err)
	}
	params := astiav.AllocBuffersrcFilterContextParameters()
	defer params.Free()
	layout := a.dec.ChannelLayout()
	if !layout.Valid() {
		layout = astiav.ChannelLayoutStereo
	}
	params.SetChannelLayout(layout)
	params.SetSampleFormat(a.dec.SampleFormat())
	params.SetSampleRate(a.dec.SampleRate())
	params.SetTimeBase(in.as.TimeBase())
	if err = a.src.SetParameters(params); err != nil {
		return nil, fmt.Errorf("transcode: audio source parameters: %w", err)
	}
	if err = a.src.Initialize(nil); err != nil {
		return nil, fmt.Errorf("transcode: audio source: %w", err)
	}
	if a.sink, err = a.graph.NewBuffersinkFilterContext(astiav.FindFilterByName("abuffersink"), "out"); err != nil {
		return nil, fmt.Errorf("transcode: audio sink: %w", err)
	}
	outputs := astiav.AllocFilterInOut()
	defer outputs.Free()
	outputs.SetName("in")
	outputs.SetFilterContext(a.src.FilterContext())
	inputs := astiav.AllocFilterInOut()
	defer inputs.Free()
	inputs.SetName("out")
	inputs.SetFilterContext(a.sink.FilterContext())
	desc := fmt.Sprintf("aresample=%d,aformat=sample_fmts=fltp:channel_layouts=stereo,asetnsamples=n=%d:p=0",
		s.SampleRate, a.enc.FrameSize())
	if err = a.graph.Parse(desc, inputs, outputs); err != nil {
		return nil, fmt.Errorf("transcode: audio filter %q: %w", desc, err)
	}
	if err = a.graph.Configure(); err != nil {
		return nil, fmt.Errorf("transcode: configure audio filter: %w", err)
	}
	a.dframe = astiav.AllocFrame()
	a.frees = append(a.frees, a.dframe.Free)
	a.fframe = astiav.AllocFrame()
	a.frees = append(a.frees, a.fframe.Free)
	a.pkt = astiav.AllocPacket()
	a.frees = append(a.frees, a.pkt.Free)
	return a, nil
}

func (a *audioPath) free() {
	for i := len(a.frees) - 1; i >= 0; i-- {
		a.frees[i]()
	}
	a.frees = nil
}

// decode decodes one packet (nil flushes) and pushes the samples through.
func (a *audioPath) decode(pkt *astiav.Packet, r *run) error {
	if err := a.dec.SendPacket(pkt); err != nil && !errors.Is(err, astiav.ErrEof) {
		if errors.Is(err, astiav.ErrInvaliddata) {
			return nil // a damaged audio packet is concealed as silence
		}
		return fmt.Errorf("transcode: decode audio: %w", err)
	}
	for {
		err := a.dec.ReceiveFrame(a.dframe)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return nil // concealed, as above
		}
		a.dframe.SetPts(bestEffortTimestamp(a.dframe))
		a.samples += int64(a.dframe.NbSamples())
		err = a.src.AddFrame(a.dframe, astiav.NewBuffersrcFlags())
		a.dframe.Unref()
		if err != nil {
			return fmt.Errorf("transcode: filter audio: %w", err)
		}
		if err := a.pull(r); err != nil {
			return err
		}
	}
}

func (a *audioPath) flush(r *run) error {
	if err := a.decode(nil, r); err != nil {
		return err
	}
	if err := a.src.AddFrame(nil, astiav.NewBuffersrcFlags()); err != nil {
		return fmt.Errorf("transcode: flush audio filter: %w", err)
	}
	if err := a.pull(r); err != nil {
		return err
	}
	if err := a.enc.SendFrame(nil); err != nil && !errors.Is(err, astiav.ErrEof) {
		return fmt.Errorf("transcode: flush AAC encoder: %w", err)
	}
	return a.drain(r)
}

// pull encodes the resampled frames that are ready. Timestamps are moved to
// the video's origin; audio before the first video frame is dropped.
func (a *audioPath) pull(r *run) error {
	tb := astiav.NewRational(1, a.sampleRate)
	for {
		err := a.sink.GetFrame(a.fframe, astiav.NewBuffersinkFlags())
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("transcode: resample audio: %w", err)
		}
		pts := astiav.RescaleQ(a.fframe.Pts(), a.sink.TimeBase(), tb) - astiav.RescaleQ(r.t0, astiav.NewRational(1, VideoTimescale), tb)
		if r.t0 < 0 || pts < 0 {
			a.fframe.Unref()
			continue
		}
		a.fframe.SetPts(pts)
		err = a.enc.SendFrame(a.fframe)
		a.fframe.Unref()
		if err != nil {
			return fmt.Errorf("transcode: encode AAC: %w", err)
		}
		if err := a.drain(r); err != nil {
			return err
		}
	}
}

func (a *audioPath) drain(r *run) error {
	for {
		err := a.enc.ReceivePacket(a.pkt)
		if errors.Is(err, astiav.ErrEagain) || errors.Is(err, astiav.ErrEof) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("transcode: encode AAC: %w", err)
		}
		p := Packet{
			Track: a.track, Data: a.pkt.Data(), PTS: a.pkt.Pts(), DTS: a.pkt.Dts(),
			Duration: a.pkt.Duration(), Keyframe: true,
		}
		if p.PTS > 0 {
			p.Segment = int(p.PTS * VideoTimescale / int64(a.sampleRate) / r.segTicks)
		}
		a.pkt.Unref()
		if err := r.emit(p); err != nil {
			return err
		}
	}
}
