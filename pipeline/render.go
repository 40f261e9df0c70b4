// Package pipeline runs abseal's jobs: it turns a source file into a
// packaged, described asset (Render) and, in the worker, seals and stores it.
package pipeline

import (
	"context"
	"fmt"
	"path"
	"sync/atomic"
	"time"

	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/transcode"
)

// ObjectWriter receives the objects of an asset. Keys are relative to the
// asset's root ("720p/init.mp4", "720p/a/seg-00001.m4s", "hls/master.m3u8").
type ObjectWriter interface {
	WriteObject(ctx context.Context, key string, data []byte) error
}

// RenderOptions tune a render.
type RenderOptions struct {
	// Variants is 1 (variant a only) or 2 (a and b).
	Variants int
	Hook     transcode.FrameHook
	Threads  int
	Limits   transcode.Limits
	Progress func(done, total time.Duration)
}

// RenderResult describes a rendered asset.
type RenderResult struct {
	Info       *transcode.Info
	Renditions []cmaf.Rendition // video, largest first
	Audio      *cmaf.Rendition
	Objects    int
	Bytes      int64
	Duration   time.Duration
}

// Variant names, as in object keys (a/, b/).
var variantNames = []string{"a", "b"}

// Render probes src, transcodes it along p's ladder (never upscaling),
// packages CMAF and writes the tracks and the neutral HLS and DASH
// manifests to out. Manifests are written last.
func Render(ctx context.Context, src string, p *profile.Profile, opts RenderOptions, out ObjectWriter) (*RenderResult, error) {
	info, err := transcode.Probe(ctx, src, opts.Limits)
	if err != nil {
		return nil, err
	}
	ladder, err := p.Ladder(info.Video.DisplayWidth, info.Video.DisplayHeight)
	if err != nil {
		return nil, err
	}
	topts := transcode.Options{
		SegmentDuration: time.Duration(p.SegmentDuration),
		Variants:        max(opts.Variants, 1),
		Hook:            opts.Hook,
		Threads:         opts.Threads,
		Limits:          opts.Limits,
		Progress:        opts.Progress,
	}
	for _, o := range ladder {
		topts.Renditions = append(topts.Renditions, transcode.Rendition{
			Name: o.Name, Width: o.Width, Height: o.Height,
			Bitrate: o.Bitrate, MaxRate: o.MaxRate, BufSize: o.BufSize, CRF: o.CRF,
			Preset: o.Preset, Profile: o.H264Profile,
		})
	}
	if p.Audio.Bitrate > 0 {
		topts.Audio = &transcode.AudioSettings{Bitrate: p.Audio.Bitrate, SampleRate: p.Audio.SampleRate}
	}
	w := &trackWriter{ctx: ctx, out: out}
	s := &packagerSink{pk: cmaf.NewPackager(w)}
	res, err := transcode.Run(ctx, src, topts, s)
	if err != nil {
		return nil, err
	}
	if err := s.pk.Close(); err != nil {
		return nil, err
	}

	rr := &RenderResult{Info: info, Duration: res.Duration}
	for _, t := range s.tracks {
		if t.Variant != "a" && t.Variant != "" {
			continue
		}
		r := cmaf.Rendition{
			Name: t.Name, Kind: t.Kind, Codecs: s.pk.Codecs(t.ID), Width: t.Width, Height: t.Height,
			FrameRate: info.Video.FrameRate, SampleRate: t.SampleRate, Channels: t.Channels,
			Timescale: t.Timescale, Segments: s.pk.Segments(t.ID),
		}
		if t.Kind == "audio" {
			rr.Audio = &r
		} else {
			rr.Renditions = append(rr.Renditions, r)
		}
	}
	for _, r := range append(append([]cmaf.Rendition{}, rr.Renditions...), deref(rr.Audio)...) {
		pl, err := cmaf.HLSMediaPlaylist(r)
		if err != nil {
			return nil, err
		}
		if err := w.put(path.Join("hls", r.Name+".m3u8"), pl); err != nil {
			return nil, err
		}
	}
	mpd, err := cmaf.DASHManifest(rr.Renditions, rr.Audio)
	if err != nil {
		return nil, err
	}
	if err := w.put("dash/manifest.mpd", mpd); err != nil {
		return nil, err
	}
	if err := w.put("hls/master.m3u8", cmaf.HLSMultivariant(rr.Renditions, rr.Audio)); err != nil {
		return nil, err
	}
	rr.Objects, rr.Bytes = int(w.objects.Load()), w.bytes.Load()
	return rr, nil
}

func deref(r *cmaf.Rendition) []cmaf.Rendition {
	if r == nil {
		return nil
	}
	return []cmaf.Rendition{*r}
}

// TrackKey is the object key of a track's file: <rendition>/init.mp4,
// <rendition>/<variant>/seg-NNNNN.m4s, audio/seg-NNNNN.m4s.
func TrackKey(t cmaf.Track, file string) string {
	if t.Variant == "" || file == cmaf.InitName {
		return path.Join(t.Name, file)
	}
	return path.Join(t.Name, t.Variant, file)
}

// trackWriter names the packager's output and counts it.
type trackWriter struct {
	ctx     context.Context
	out     ObjectWriter
	objects atomic.Int64
	bytes   atomic.Int64
}

func (w *trackWriter) put(key string, data []byte) error {
	if err := w.out.WriteObject(w.ctx, key, data); err != nil {
		return fmt.Errorf("pipeline: write %s: %w", key, err)
	}
	w.objects.Add(1)
	w.bytes.Add(int64(len(data)))
	return nil
}

func (w *trackWriter) WriteInit(t cmaf.Track, data []byte) error {
	if t.Variant != "a" && t.Variant != "" {
		return nil // variants share the init segment (identical settings)
	}
	return w.put(TrackKey(t, cmaf.InitName), data)
}

func (w *trackWriter) WriteSegment(t cmaf.Track, s cmaf.Segment, data []byte) error {
	return w.put(TrackKey(t, cmaf.SegmentName(s.Number)), data)
}

// packagerSink adapts transcode's output to the CMAF packager.
type packagerSink struct {
	pk     *cmaf.Packager
	tracks []cmaf.Track
}

func (s *packagerSink) Tracks(ts []transcode.Track) error {
	for _, t := range ts {
		ct := cmaf.Track{
			ID: t.ID, Name: t.Name, Codec: t.Codec, Extradata: t.Extradata,
			Width: t.Width, Height: t.Height, Timescale: uint32(t.Timescale),
			SampleRate: t.SampleRate, Channels: t.Channels, Bitrate: t.Bitrate,
		}
		if t.Kind == transcode.Audio {
			ct.Kind = "audio"
		} else {
			ct.Kind = "video"
			ct.Variant = variantNames[t.Variant]
		}
		if err := s.pk.AddTrack(ct); err != nil {
			return err
		}
		s.tracks = append(s.tracks, ct)
	}
	return nil
}

func (s *packagerSink) Packet(p transcode.Packet) error {
	return s.pk.Write(p.Track, cmaf.Sample{
		Data: p.Data, PTS: p.PTS, DTS: p.DTS, Duration: p.Duration, Keyframe: p.Keyframe, Segment: p.Segment,
	})
}
