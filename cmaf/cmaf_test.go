package cmaf_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/Eyevinn/mp4ff/mp4"

	"github.com/abseal/abseal/cmaf"
)

var update = flag.Bool("update", false, "rewrite the golden manifests in testdata/")

// Codec configurations of a 320x240 libx264 stream and of 48 kHz AAC-LC
// stereo, as the encoders produce them.
var (
	h264Config = []byte{0, 0, 0, 1, 103, 66, 192, 13, 218, 5, 7, 236, 4, 64, 0, 0, 3, 0, 64, 0, 175, 200, 3, 197, 10, 168, 0, 0, 0, 1, 104, 206, 9, 200}
	aacConfig  = []byte{17, 144, 86, 229, 0}
	// An IDR and a non-IDR slice NAL unit in Annex B (contents irrelevant).
	idr    = []byte{0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x10}
	nonIDR = []byte{0, 0, 0, 1, 0x41, 0x9a, 0x02, 0x03}
)

type memWriter struct {
	inits    map[string][]byte
	segments map[string][][]byte
}

func (m *memWriter) WriteInit(t cmaf.Track, data []byte) error {
	m.inits[t.Name+t.Variant] = data
	return nil
}

func (m *memWriter) WriteSegment(t cmaf.Track, s cmaf.Segment, data []byte) error {
	m.segments[t.Name+t.Variant] = append(m.segments[t.Name+t.Variant], data)
	return nil
}

func newPackager(t *testing.T) (*cmaf.Packager, *memWriter) {
	w := &memWriter{inits: map[string][]byte{}, segments: map[string][][]byte{}}
	p := cmaf.NewPackager(w)
	if err := p.AddTrack(cmaf.Track{ID: 0, Kind: "video", Name: "240p", Variant: "a", Codec: "h264", Extradata: h264Config, Width: 320, Height: 240, Timescale: 90000}); err != nil {
		t.Fatal(err)
	}
	if err := p.AddTrack(cmaf.Track{ID: 1, Kind: "audio", Name: "audio", Codec: "aac", Extradata: aacConfig, Timescale: 48000, SampleRate: 48000, Channels: 2}); err != nil {
		t.Fatal(err)
	}
	return p, w
}

// feed writes 5 s of 25 fps video with two B-frames' delay (DTS starts
// negative) in 2 s segments, and 5 s of AAC with encoder priming.
func feed(t *testing.T, p *cmaf.Packager) {
	const fd = 3600 // 90 kHz ticks per frame at 25 fps
	for i := range 125 {
		s := cmaf.Sample{Data: nonIDR, DTS: int64(i-2) * fd, PTS: int64(i) * fd, Duration: fd, Segment: i / 50}
		if i%50 == 0 {
			s.Data, s.Keyframe = idr, true
		}
		if err := p.Write(0, s); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 236 {
		pts := int64(i-1) * 1024
		seg := 0
		if pts > 0 {
			seg = int(pts * 90000 / 48000 / 180000)
		}
		if err := p.Write(1, cmaf.Sample{Data: []byte{0x21, byte(i)}, DTS: pts, PTS: pts, Duration: 1024, Keyframe: true, Segment: seg}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSegments(t *testing.T) {
	p, w := newPackager(t)
	feed(t, p)
	if p.Codecs(0) != "avc1.42C00D" || p.Codecs(1) != "mp4a.40.2" {
		t.Fatalf("codecs %q %q", p.Codecs(0), p.Codecs(1))
	}
	segs := p.Segments(0)
	if len(segs) != 3 {
		t.Fatalf("%d video segments", len(segs))
	}
	for i, want := range []struct{ start, dur int64 }{{0, 180000}, {180000, 180000}, {360000, 90000}} {
		if segs[i].Start != want.start || segs[i].Duration != want.dur || segs[i].Number != i+1 {
			t.Errorf("segment %d: %+v, want start %d duration %d", i, segs[i], want.start, want.dur)
		}
	}
	if _, err := mp4.DecodeFile(bytes.NewReader(w.inits["240pa"])); err != nil {
		t.Fatalf("init segment: %v", err)
	}
	for i, data := range w.segments["240pa"] {
		f, err := mp4.DecodeFile(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		frag := f.Segments[0].Fragments[0]
		samples, err := frag.GetFullSamples(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !mp4.IsSyncSampleFlags(samples[0].Flags) || samples[0].PresentationTime() != segs[i].Start {
			t.Errorf("segment %d: first sample sync %v at %d, want sync at %d", i, mp4.IsSyncSampleFlags(samples[0].Flags), samples[0].PresentationTime(), segs[i].Start)
		}
		if samples[0].DecodeTime != uint64(i*50*3600) {
			t.Errorf("segment %d: decode time %d (decode times start at 0)", i, samples[0].DecodeTime)
		}
	}
	if a := p.Segments(1); len(a) != 3 || a[0].Start != 0 {
		t.Errorf("audio segments %+v", a)
	}
}

func TestKeyframeRequired(t *testing.T) {
	p, _ := newPackager(t)
	if err := p.Write(0, cmaf.Sample{Data: nonIDR, DTS: 0, PTS: 0, Duration: 3600}); !errors.Is(err, cmaf.ErrNoKeyframe) {
		t.Fatalf("first sample not a keyframe: err = %v", err)
	}
	p, _ = newPackager(t)
	p.Write(0, cmaf.Sample{Data: idr, Keyframe: true, Duration: 3600})
	if err := p.Write(0, cmaf.Sample{Data: nonIDR, DTS: 3600, PTS: 3600, Segment: 1}); !errors.Is(err, cmaf.ErrNoKeyframe) {
		t.Fatalf("segment starting without a keyframe: err = %v", err)
	}
	if err := p.Write(7, cmaf.Sample{}); err == nil {
		t.Fatal("sample for an unknown track accepted")
	}
	if err := p.AddTrack(cmaf.Track{ID: 9, Name: "x", Codec: "h264", Extradata: []byte{1, 2, 3}, Timescale: 90000}); err == nil {
		t.Fatal("track without SPS/PPS accepted")
	}
}

// The manifests are compared with golden files (go test ./cmaf -update
// rewrites them).
func TestManifestsGolden(t *testing.T) {
	p, _ := newPackager(t)
	feed(t, p)
	video := []cmaf.Rendition{{Name: "240p", Kind: "video", Codecs: p.Codecs(0), Width: 320, Height: 240, FrameRate: 25, Timescale: 90000, Segments: p.Segments(0)}}
	audio := &cmaf.Rendition{Name: "audio", Kind: "audio", Codecs: p.Codecs(1), SampleRate: 48000, Channels: 2, Timescale: 48000, Segments: p.Segments(1)}
	media, err := cmaf.HLSMediaPlaylist(video[0])
	if err != nil {
		t.Fatal(err)
	}
	mpd, err := cmaf.DASHManifest(video, audio)
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{
		"240p.m3u8":    media,
		"master.m3u8":  cmaf.HLSMultivariant(video, audio),
		"manifest.mpd": mpd,
	} {
		golden := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./cmaf -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s:\n%s", name, golden, got)
		}
	}
}

func TestBandwidth(t *testing.T) {
	r := cmaf.Rendition{Timescale: 1000, Segments: []cmaf.Segment{{Duration: 2000, Size: 250_000}, {Duration: 2000, Size: 500_000}, {Duration: 1000, Size: 50_000}}}
	peak, avg := r.Bandwidth()
	if peak != 2_000_000 || avg != 1_280_000 {
		t.Fatalf("peak %d avg %d", peak, avg)
	}
}

// The MPD lasts as long as its longest track: audio that runs past the
// video (AAC's last frame ends after the last picture) is not cut off.
func TestDASHDurationLongestTrack(t *testing.T) {
	video := []cmaf.Rendition{{Name: "720p", Kind: "video", Codecs: "avc1.64001f", Width: 1280, Height: 720, FrameRate: 30, Timescale: 90000,
		Segments: []cmaf.Segment{{Start: 0, Duration: 6 * 90000, Size: 1000}, {Start: 6 * 90000, Duration: 6 * 90000, Size: 1000}}}}
	audio := &cmaf.Rendition{Name: "audio", Kind: "audio", Codecs: "mp4a.40.2", SampleRate: 48000, Channels: 2, Timescale: 48000,
		Segments: []cmaf.Segment{{Start: 0, Duration: 288768, Size: 500}, {Start: 288768, Duration: 288768, Size: 500}}} // 12.032 s
	for _, tc := range []struct {
		audio *cmaf.Rendition
		want  string
	}{{audio, `mediaPresentationDuration="PT12.032S"`}, {nil, `mediaPresentationDuration="PT12S"`}} {
		b, err := cmaf.DASHManifest(video, tc.audio)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(tc.want)) {
			t.Errorf("audio %v: want %s in\n%s", tc.audio != nil, tc.want, b)
		}
	}
}
