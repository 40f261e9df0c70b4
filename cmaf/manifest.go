package cmaf

import (
	"bytes"
	"fmt"
	"math"
	"strconv"

	"github.com/Eyevinn/dash-mpd/mpd"
	m3u8 "github.com/Eyevinn/hls-m3u8/m3u8"

	"github.com/abseal/abseal/asset"
)

// Rendition is what the manifests say about one published track. Its
// segments are those of variant A (variants have identical timing and size).
type Rendition struct {
	Name          string
	Kind          string // "video" or "audio"
	Codecs        string
	Width, Height int
	FrameRate     float64
	SampleRate    int
	Channels      int
	Timescale     uint32
	Segments      []Segment
}

// Bandwidth returns the peak and average bitrate measured from the
// segments (bits/s).
func (r Rendition) Bandwidth() (peak, average int64) {
	var bytes, ticks int64
	for _, s := range r.Segments {
		if s.Duration <= 0 {
			continue
		}
		bps := s.Size * 8 * int64(r.Timescale) / s.Duration
		peak = max(peak, bps)
		bytes += s.Size
		ticks += s.Duration
	}
	if ticks > 0 {
		average = bytes * 8 * int64(r.Timescale) / ticks
	}
	return peak, average
}

// Duration is the presentation duration in seconds.
func (r Rendition) Duration() float64 {
	if len(r.Segments) == 0 {
		return 0
	}
	first, last := r.Segments[0], r.Segments[len(r.Segments)-1]
	return float64(last.Start+last.Duration-first.Start) / float64(r.Timescale)
}

// Paths relative to the manifests: HLS playlists live in hls/, the MPD in
// dash/, and the tracks in <rendition>/ beside them (asset's layout). The
// names carry no variant: the delivery tier picks a/ or b/ per session.
func trackPath(r asset.Ref) string { return "../" + r.Path() }

// HLSMediaPlaylist is a rendition's VOD media playlist (fMP4 segments,
// EXT-X-MAP, EXT-X-INDEPENDENT-SEGMENTS).
func HLSMediaPlaylist(r Rendition) ([]byte, error) {
	pl, err := m3u8.NewMediaPlaylist(0, uint(len(r.Segments)))
	if err != nil {
		return nil, fmt.Errorf("cmaf: hls playlist %s: %w", r.Name, err)
	}
	pl.MediaType = m3u8.VOD
	pl.SetIndependentSegments(true)
	pl.SetDefaultMap(trackPath(asset.Init(r.Name)), 0, 0)
	maxDur := 0.0
	for _, s := range r.Segments {
		d := float64(s.Duration) / float64(r.Timescale)
		maxDur = math.Max(maxDur, d)
		if err := pl.Append(trackPath(asset.Segment(r.Name, "", s.Number)), d, ""); err != nil {
			return nil, fmt.Errorf("cmaf: hls playlist %s: %w", r.Name, err)
		}
	}
	pl.SetTargetDuration(uint(math.Round(maxDur)))
	pl.Close()
	if v, _ := pl.CalcMinVersion(); v > pl.Version() {
		pl.SetVersion(v) // 6: EXT-X-MAP outside an I-frame playlist
	}
	return pl.Encode().Bytes(), nil
}

// HLSMultivariant is the multivariant (master) playlist: one variant
// stream per video rendition, with the audio rendition as a group.
func HLSMultivariant(video []Rendition, audio *Rendition) []byte {
	master := m3u8.NewMasterPlaylist()
	master.SetIndependentSegments(true)
	var audioPeak, audioAvg int64
	var alts []*m3u8.Alternative
	if audio != nil {
		audioPeak, audioAvg = audio.Bandwidth()
		alts = []*m3u8.Alternative{{
			Type: "AUDIO", GroupId: "audio", Name: "audio", URI: asset.HLSMedia(audio.Name).File(),
			Default: true, Autoselect: true, Channels: &m3u8.Channels{Amount: audio.Channels},
		}}
	}
	for _, v := range video {
		peak, avg := v.Bandwidth()
		params := m3u8.VariantParams{
			Bandwidth:        uint32(peak + audioPeak),
			AverageBandwidth: uint32(avg + audioAvg),
			Codecs:           v.Codecs,
			Resolution:       fmt.Sprintf("%dx%d", v.Width, v.Height),
			FrameRate:        math.Round(v.FrameRate*1000) / 1000,
			Alternatives:     alts,
		}
		if audio != nil {
			params.Codecs += "," + audio.Codecs
			params.Audio = "audio"
		}
		master.Append(asset.HLSMedia(v.Name).File(), nil, params)
	}
	return master.Encode().Bytes()
}

// DASHManifest is a static MPD with one video and one audio adaptation set,
// SegmentTemplate with $Number$ and a SegmentTimeline.
func DASHManifest(video []Rendition, audio *Rendition) ([]byte, error) {
	m := mpd.NewMPD("static")
	m.Profiles = "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"
	m.MinBufferTime = mpd.Seconds2DurPtr(2)
	// The presentation lasts as long as its longest track: an audio track
	// that runs past the video (AAC frames end after the last picture)
	// would otherwise be cut short, and players wait at the end for media
	// the MPD says is not there.
	var dur float64
	for _, r := range video {
		dur = math.Max(dur, r.Duration())
	}
	if audio != nil {
		dur = math.Max(dur, audio.Duration())
	}
	m.MediaPresentationDuration = mpd.Seconds2DurPtrFloat64(dur)
	p := mpd.NewPeriod()
	p.Id = "p0"
	p.Start = mpd.Seconds2DurPtr(0)
	m.Periods = append(m.Periods, p)
	m.BaseURL = append(m.BaseURL, mpd.NewBaseURL("../"))

	if len(video) > 0 {
		as := mpd.NewAdaptationSetWithParams("video", asset.TypeVideo, true, 1)
		as.Id = mpd.Ptr(uint32(0))
		as.SegmentTemplate = template(video[0])
		for _, r := range video {
			peak, _ := r.Bandwidth()
			rep := mpd.NewRepresentation()
			rep.Id = r.Name
			rep.Bandwidth = uint32(peak)
			rep.Codecs = r.Codecs
			rep.Width, rep.Height = uint32(r.Width), uint32(r.Height)
			rep.Sar = "1:1"
			if r.FrameRate > 0 {
				rep.FrameRate = mpd.FrameRateType(frameRate(r.FrameRate))
			}
			as.Representations = append(as.Representations, rep)
		}
		p.AdaptationSets = append(p.AdaptationSets, as)
	}
	if audio != nil {
		as := mpd.NewAdaptationSetWithParams("audio", asset.TypeAudio, true, 1)
		as.Id = mpd.Ptr(uint32(1))
		as.SegmentTemplate = template(*audio)
		peak, _ := audio.Bandwidth()
		rep := mpd.NewRepresentation()
		rep.Id = audio.Name
		rep.Bandwidth = uint32(peak)
		rep.Codecs = audio.Codecs
		rep.AudioSamplingRate = mpd.Ptr(mpd.UIntVectorType(strconv.Itoa(audio.SampleRate)))
		as.Representations = append(as.Representations, rep)
		p.AdaptationSets = append(p.AdaptationSets, as)
	}
	var buf bytes.Buffer
	if _, err := m.Write(&buf, "  ", true); err != nil {
		return nil, fmt.Errorf("cmaf: write MPD: %w", err)
	}
	return buf.Bytes(), nil
}

// template is a SegmentTemplate whose timeline is that of r (all renditions
// of an adaptation set share their segment boundaries).
func template(r Rendition) *mpd.SegmentTemplateType {
	st := &mpd.SegmentTemplateType{
		Initialization: asset.DASHInitTemplate,
		Media:          asset.DASHMediaTemplate,
	}
	st.Timescale = mpd.Ptr(r.Timescale)
	st.StartNumber = mpd.Ptr(uint32(1))
	tl := &mpd.SegmentTimelineType{}
	for i, s := range r.Segments {
		var e *mpd.S
		if n := len(tl.S); n > 0 && tl.S[n-1].D == uint64(s.Duration) {
			tl.S[n-1].R++
			continue
		}
		e = &mpd.S{D: uint64(s.Duration)}
		if i == 0 {
			e.T = mpd.Ptr(uint64(max(s.Start, 0)))
		}
		tl.S = append(tl.S, e)
	}
	st.SegmentTimeline = tl
	return st
}

func frameRate(f float64) string {
	for _, den := range []int{1, 1001} {
		num := f * float64(den)
		if math.Abs(num-math.Round(num)) < 0.01 {
			if den == 1 {
				return strconv.Itoa(int(math.Round(num)))
			}
			return fmt.Sprintf("%d/%d", int(math.Round(num)), den)
		}
	}
	return strconv.FormatFloat(f, 'f', 3, 64)
}
