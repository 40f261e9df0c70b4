package pipeline

import (
	"context"
	"errors"
	"testing"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/transcode"
)

type writerFunc func(ref asset.Ref, data []byte) error

func (f writerFunc) WriteObject(_ context.Context, ref asset.Ref, data []byte) error {
	return f(ref, data)
}

func newTestSink(t *testing.T, out ObjectWriter) *packagerSink {
	w := &trackWriter{ctx: t.Context(), out: out, variants: 1, pending: map[segKey]pendingSegment{}, sizes: map[segKey]int64{}}
	return &packagerSink{pk: cmaf.NewPackager(w)}
}

// The packager's complaints about the media it is given are permanent
// (the same input gives them again); a failing store keeps its class.
func TestPackagingErrorClasses(t *testing.T) {
	discard := writerFunc(func(asset.Ref, []byte) error { return nil })
	audio := transcode.Track{ID: 0, Kind: transcode.Audio, Rendition: -1, Variant: -1, Name: "audio", Codec: "aac",
		Timescale: 48000, Extradata: []byte{0x11, 0x90}, SampleRate: 48000, Channels: 2}

	s := newTestSink(t, discard)
	if err := s.Tracks([]transcode.Track{audio}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // two samples at the same decode time
		if err := s.Packet(transcode.Packet{Track: 0, Data: []byte{1, 2, 3}, Duration: 1024}); err != nil {
			t.Fatal(err)
		}
	}
	if err := packaging(s.pk.Close()); err == nil || !IsPermanent(err) {
		t.Errorf("decode times not increasing: err = %v, permanent %v", err, IsPermanent(err))
	}

	video := transcode.Track{ID: 0, Kind: transcode.Video, Name: "180p", Codec: "h264", Width: 320, Height: 180, Timescale: 90000}
	if err := newTestSink(t, discard).Tracks([]transcode.Track{video}); err == nil || !IsPermanent(err) {
		t.Errorf("no SPS/PPS: err = %v, permanent %v", err, IsPermanent(err))
	}

	reset := errors.New("connection reset by peer")
	failing := writerFunc(func(asset.Ref, []byte) error { return reset })
	if err := newTestSink(t, failing).Tracks([]transcode.Track{audio}); !errors.Is(err, reset) || IsPermanent(err) {
		t.Errorf("store failure: err = %v, permanent %v; want the store's transient error", err, IsPermanent(err))
	}
}
