// Package cmaf packages encoded video and audio into CMAF tracks: one init
// segment per track and media segments (styp, moof, mdat) that each start
// with a sync sample, and writes the neutral HLS and DASH manifests that
// describe them. It is pure Go on Eyevinn's mp4ff; it does not encode.
package cmaf

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/Eyevinn/mp4ff/aac"
	"github.com/Eyevinn/mp4ff/avc"
	"github.com/Eyevinn/mp4ff/mp4"
)

// Track describes one input stream of the packager.
type Track struct {
	ID   int
	Kind string // "video" or "audio"
	// Name is the rendition ("720p", "audio"); Variant is "a", "b" or "".
	Name    string
	Variant string
	Codec   string // "h264" or "aac"
	// Extradata: H.264 SPS and PPS in Annex B, or the AAC AudioSpecificConfig.
	Extradata     []byte
	Width, Height int
	Timescale     uint32
	SampleRate    int
	Channels      int
	// Bitrate is the nominal bitrate (bits/s).
	Bitrate int64
}

// Sample is one encoded access unit, in decode order.
type Sample struct {
	// Data is H.264 in Annex B or raw AAC.
	Data []byte
	// PTS and DTS in the track's timescale (DTS may be negative).
	PTS, DTS int64
	// Duration is used for the track's last sample (others take the
	// distance to the next sample).
	Duration int64
	Keyframe bool
	// Segment is the index of the segment the sample belongs to; a video
	// segment must start with a keyframe.
	Segment int
}

// Segment describes one written media segment.
type Segment struct {
	// Index is the 0-based segment index; Number is Index+1 (file names and
	// DASH $Number$ start at 1).
	Index, Number int
	// Start and Duration are presentation times in the track's timescale.
	Start, Duration int64
	// Size is the segment's byte size.
	Size    int64
	Samples int
}

// Writer receives the packaged bytes.
type Writer interface {
	WriteInit(t Track, data []byte) error
	WriteSegment(t Track, s Segment, data []byte) error
}

// Packager builds CMAF segments from samples. It is not safe for concurrent
// use.
type Packager struct {
	w      Writer
	tracks map[int]*trackState
	order  []int
}

type trackState struct {
	Track
	init     *mp4.InitSegment
	codec    string // RFC 6381 codecs string
	shift    int64  // added to DTS: video, the first sample's reorder delay; audio, so decode times start at 0
	started  bool
	cur      int // current segment index
	pending  []Sample
	segments []Segment
	seq      uint32
	maxEnd   int64 // largest PTS+duration seen
}

// NewPackager returns a packager writing to w.
func NewPackager(w Writer) *Packager {
	return &Packager{w: w, tracks: map[int]*trackState{}}
}

// AddTrack registers a track and writes its init segment.
func (p *Packager) AddTrack(t Track) error {
	if _, dup := p.tracks[t.ID]; dup {
		return fmt.Errorf("cmaf: track %d added twice", t.ID)
	}
	if t.Timescale == 0 {
		return fmt.Errorf("cmaf: track %d (%s): zero timescale", t.ID, t.Name)
	}
	ts := &trackState{Track: t}
	init := mp4.CreateEmptyInit()
	switch t.Codec {
	case "h264":
		var spss, ppss [][]byte
		for _, nalu := range avc.ExtractNalusFromByteStream(t.Extradata) {
			switch avc.GetNaluType(nalu[0]) {
			case avc.NALU_SPS:
				spss = append(spss, nalu)
			case avc.NALU_PPS:
				ppss = append(ppss, nalu)
			}
		}
		if len(spss) == 0 || len(ppss) == 0 {
			return fmt.Errorf("cmaf: track %d (%s): no SPS/PPS in the codec configuration", t.ID, t.Name)
		}
		trak := init.AddEmptyTrack(t.Timescale, "video", "und")
		if err := trak.SetAVCDescriptor("avc1", spss, ppss, true); err != nil {
			return fmt.Errorf("cmaf: track %d (%s): %w", t.ID, t.Name, err)
		}
		sps, err := avc.ParseSPSNALUnit(spss[0], false)
		if err != nil {
			return fmt.Errorf("cmaf: track %d (%s): SPS: %w", t.ID, t.Name, err)
		}
		ts.codec = avc.CodecString("avc1", sps)
	case "aac":
		asc, err := aac.DecodeAudioSpecificConfig(bytes.NewReader(t.Extradata))
		if err != nil {
			return fmt.Errorf("cmaf: track %d (%s): AudioSpecificConfig: %w", t.ID, t.Name, err)
		}
		trak := init.AddEmptyTrack(t.Timescale, "audio", "und")
		if err := trak.SetAACDescriptor(asc.ObjectType, asc.SamplingFrequency); err != nil {
			return fmt.Errorf("cmaf: track %d (%s): %w", t.ID, t.Name, err)
		}
		ts.codec = fmt.Sprintf("mp4a.40.%d", asc.ObjectType)
	default:
		return fmt.Errorf("cmaf: track %d (%s): unsupported codec %q", t.ID, t.Name, t.Codec)
	}
	ts.init = init
	var buf bytes.Buffer
	if err := init.Encode(&buf); err != nil {
		return fmt.Errorf("cmaf: encode init %s: %w", t.Name, err)
	}
	if err := p.w.WriteInit(t, buf.Bytes()); err != nil {
		return err
	}
	p.tracks[t.ID] = ts
	p.order = append(p.order, t.ID)
	return nil
}

// Codecs returns the RFC 6381 codecs string of a track ("avc1.64001f").
func (p *Packager) Codecs(id int) string {
	if ts, ok := p.tracks[id]; ok {
		return ts.codec
	}
	return ""
}

// ErrNoKeyframe is matched by the error for a video segment that would not
// start with a keyframe.
var ErrNoKeyframe = errors.New("segment does not start with a keyframe")

// Write adds a sample. A sample of a new segment index flushes the previous
// segment.
func (p *Packager) Write(id int, s Sample) error {
	ts, ok := p.tracks[id]
	if !ok {
		return fmt.Errorf("cmaf: sample for unknown track %d", id)
	}
	if !ts.started {
		ts.started = true
		ts.cur = s.Segment
		switch {
		case ts.Kind == "video" && s.PTS > s.DTS:
			// The encoder's reorder delay: decode times move up by it, so
			// a stream whose first picture is not at 0 (a chunk of a longer
			// run) gets the decode times it has in the whole run.
			ts.shift = s.PTS - s.DTS
		case ts.Kind != "video" && s.DTS < 0:
			ts.shift = -s.DTS
		}
		if ts.Kind == "video" && !s.Keyframe {
			return fmt.Errorf("cmaf: %s: first sample: %w", ts.Name, ErrNoKeyframe)
		}
	}
	if s.Segment < ts.cur {
		s.Segment = ts.cur // a late sample (audio priming) stays in the current segment
	}
	if s.Segment != ts.cur {
		if ts.Kind == "video" && !s.Keyframe {
			return fmt.Errorf("cmaf: %s segment %d: %w", ts.Name, s.Segment, ErrNoKeyframe)
		}
		if err := p.flush(ts, s.DTS); err != nil {
			return err
		}
		ts.cur = s.Segment
	}
	s.Data = bytes.Clone(s.Data)
	ts.pending = append(ts.pending, s)
	return nil
}

// Close writes every track's last segment.
func (p *Packager) Close() error {
	for _, id := range p.order {
		ts := p.tracks[id]
		if len(ts.pending) == 0 {
			continue
		}
		last := ts.pending[len(ts.pending)-1]
		d := last.Duration
		if d <= 0 && len(ts.pending) > 1 {
			d = last.DTS - ts.pending[len(ts.pending)-2].DTS
		}
		if err := p.flush(ts, last.DTS+max(d, 1)); err != nil {
			return err
		}
	}
	return nil
}

// Segments returns the segments written for a track so far.
func (p *Packager) Segments(id int) []Segment {
	if ts, ok := p.tracks[id]; ok {
		return slices.Clone(ts.segments)
	}
	return nil
}

// flush writes the pending samples as one segment; nextDTS is the decode
// time of the sample that follows the last one.
func (p *Packager) flush(ts *trackState, nextDTS int64) error {
	if len(ts.pending) == 0 {
		return nil
	}
	ts.seq++
	frag, err := mp4.CreateFragment(ts.seq, 1)
	if err != nil {
		return fmt.Errorf("cmaf: fragment: %w", err)
	}
	start := int64(-1)
	for i, s := range ts.pending {
		next := nextDTS
		if i+1 < len(ts.pending) {
			next = ts.pending[i+1].DTS
		}
		dur := next - s.DTS
		if dur <= 0 {
			return fmt.Errorf("cmaf: %s segment %d: decode times not increasing (%d then %d)", ts.Name, ts.cur, s.DTS, next)
		}
		data := s.Data
		flags := mp4.NonSyncSampleFlags
		if ts.Kind == "video" {
			data = avc.ConvertByteStreamToNaluSample(s.Data)
		}
		if s.Keyframe {
			flags = mp4.SyncSampleFlags
		}
		decode := s.DTS + ts.shift
		pts := s.PTS + ts.shift
		if ts.Kind == "video" {
			// Decode times are moved to start at 0; presentation times are
			// kept (negative composition offsets, trun version 1).
			pts = s.PTS
		}
		frag.AddFullSample(mp4.FullSample{
			Sample: mp4.Sample{
				Flags:                 flags,
				Dur:                   uint32(dur),
				Size:                  uint32(len(data)),
				CompositionTimeOffset: int32(pts - decode),
			},
			DecodeTime: uint64(decode),
			Data:       data,
		})
		if start < 0 || pts < start {
			start = pts
		}
		ts.maxEnd = max(ts.maxEnd, pts+dur)
	}
	seg := mp4.NewMediaSegment()
	seg.AddFragment(frag)
	var buf bytes.Buffer
	if err := seg.Encode(&buf); err != nil {
		return fmt.Errorf("cmaf: encode segment: %w", err)
	}
	info := Segment{Index: ts.cur, Number: ts.cur + 1, Start: start, Size: int64(buf.Len()), Samples: len(ts.pending)}
	if n := len(ts.segments); n > 0 {
		prev := &ts.segments[n-1]
		prev.Duration = start - prev.Start
	}
	info.Duration = ts.maxEnd - start
	if err := p.w.WriteSegment(ts.Track, info, buf.Bytes()); err != nil {
		return err
	}
	ts.segments = append(ts.segments, info)
	ts.pending = ts.pending[:0]
	return nil
}
