// Package pipeline is the worker's engine: it turns a source file into a
// packaged, described asset (Render) and, in the worker (Runner), fetches the
// source, seals every object, stores it and writes the asset manifest last.
//
// The contracts it produces (the job, the manifest, the object layout) live
// in package asset; reading a sealed asset back is package sealed.
package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/transcode"
	"github.com/abseal/abseal/watermark"
)

// ObjectWriter receives the objects of an asset, each named by its place
// in the asset's layout.
type ObjectWriter interface {
	WriteObject(ctx context.Context, ref asset.Ref, data []byte) error
}

// StoreWriter writes an asset's objects into a store at their
// asset-relative paths: a local asset directory (fs) as `worker process`
// and the tests lay it out.
type StoreWriter struct{ Store storage.Store }

// WriteObject implements ObjectWriter.
func (w StoreWriter) WriteObject(ctx context.Context, ref asset.Ref, data []byte) error {
	_, err := w.Store.Put(ctx, ref.Path(), bytes.NewReader(data), storage.PutOptions{ContentType: ref.ContentType()})
	return err
}

// RenderOptions tune a render.
type RenderOptions struct {
	// Variants is 1 (variant a only) or 2 (a and b). A watermark implies 2.
	Variants int
	// Watermark, when set, marks variants a and b with opposite signs.
	Watermark *WatermarkOptions
	// Hook is called for every frame (after the watermark, if any).
	Hook transcode.FrameHook
	// PairHook is called with both variants of every frame (two variants,
	// no Watermark: the watermark uses it).
	PairHook transcode.PairHook
	Threads  int
	Limits   transcode.Limits
	Progress func(done, total time.Duration)
	// Window, when set, renders one chunk: its segments only (and all of
	// the audio in the chunk from the start), without playlists, which
	// the run writes once every chunk is done (chunk.go).
	Window *transcode.Window
	// AudioOnly renders the audio alone (a chunked run's audio task, no
	// playlists); NoAudio a window without it (the run's audio is a task
	// of its own).
	AudioOnly, NoAudio bool
}

// WatermarkOptions configure the A/B forensic watermark of a render.
type WatermarkOptions struct {
	Embedder *watermark.Embedder
	// Unmarked is the number of leading segments that carry no mark
	// (position -1: every session gets variant a).
	Unmarked int
}

// RenderResult describes a rendered asset.
type RenderResult struct {
	Info       *transcode.Info
	Renditions []cmaf.Rendition // video, largest first; sizes are the stored (padded) ones
	Audio      *cmaf.Rendition
	// Positions[i] is the watermark position of video segment index i (all
	// -1 without a watermark).
	Positions []int
	Objects   int
	Bytes     int64
	Duration  time.Duration
}

// Render probes src, transcodes it along p's ladder (never upscaling),
// packages CMAF and writes the tracks and the neutral HLS and DASH
// manifests to out. Manifests are written last.
func Render(ctx context.Context, src string, p *profile.Profile, opts RenderOptions, out ObjectWriter) (*RenderResult, error) {
	return render(ctx, p, opts, out,
		func() (*transcode.Info, error) { return transcode.Probe(ctx, src, opts.Limits) },
		func(o transcode.Options, s transcode.Sink) (*transcode.Result, error) {
			return transcode.Run(ctx, src, o, s)
		})
}

// RenderInput is Render on a transcode.Input (a source read in ranges).
func RenderInput(ctx context.Context, src transcode.Input, p *profile.Profile, opts RenderOptions, out ObjectWriter) (*RenderResult, error) {
	return render(ctx, p, opts, out,
		func() (*transcode.Info, error) { return transcode.ProbeInput(ctx, src, opts.Limits) },
		func(o transcode.Options, s transcode.Sink) (*transcode.Result, error) {
			return transcode.RunInput(ctx, src, o, s)
		})
}

func render(ctx context.Context, p *profile.Profile, opts RenderOptions, out ObjectWriter,
	probe func() (*transcode.Info, error), run func(transcode.Options, transcode.Sink) (*transcode.Result, error)) (*RenderResult, error) {
	info, err := probe()
	if err != nil {
		return nil, err
	}
	ladder, err := p.Ladder(info.Video.DisplayWidth, info.Video.DisplayHeight)
	if err != nil {
		return nil, Permanent(err) // the source's size: the same every time
	}
	variants := max(opts.Variants, 1)
	hook := opts.Hook
	pair := opts.PairHook
	unmarked := 1 << 30
	if wm := opts.Watermark; wm != nil {
		variants, unmarked = 2, wm.Unmarked
		pair = markPair(wm)
	}
	topts := transcode.Options{
		SegmentDuration: time.Duration(p.SegmentDuration),
		Variants:        variants,
		Hook:            hook,
		PairHook:        pair,
		Threads:         opts.Threads,
		Limits:          opts.Limits,
		Progress:        opts.Progress,
		Window:          opts.Window,
	}
	for _, o := range ladder {
		if opts.AudioOnly {
			break
		}
		topts.Renditions = append(topts.Renditions, transcode.Rendition{
			Name: o.Name, Width: o.Width, Height: o.Height,
			Bitrate: o.Bitrate, MaxRate: o.MaxRate, BufSize: o.BufSize, CRF: o.CRF,
			Preset: o.Preset, Profile: o.H264Profile,
		})
	}
	if p.Audio.Bitrate > 0 && !opts.NoAudio && (opts.Window == nil || opts.Window.From == 0) {
		topts.Audio = &transcode.AudioSettings{Bitrate: p.Audio.Bitrate, SampleRate: p.Audio.SampleRate}
	}
	w := &trackWriter{ctx: ctx, out: out, variants: variants, pending: map[segKey]pendingSegment{}, sizes: map[segKey]int64{}}
	s := &packagerSink{pk: cmaf.NewPackager(w)}
	res, err := run(topts, s)
	if err != nil {
		return nil, err
	}
	if err := s.pk.Close(); err != nil {
		return nil, packaging(err)
	}

	if err := w.unpaired(); err != nil {
		return nil, packaging(err)
	}
	rr := &RenderResult{Info: info, Duration: res.Duration}
	for _, t := range s.tracks {
		if t.Variant != asset.VariantA && t.Variant != "" {
			continue
		}
		r := cmaf.Rendition{
			Name: t.Name, Kind: t.Kind, Codecs: s.pk.Codecs(t.ID), Width: t.Width, Height: t.Height,
			FrameRate: info.Video.FrameRate, SampleRate: t.SampleRate, Channels: t.Channels,
			Timescale: t.Timescale, Segments: s.pk.Segments(t.ID),
		}
		for i, seg := range r.Segments {
			if size, ok := w.sizes[segKey{t.Name, seg.Number}]; ok {
				r.Segments[i].Size = size
			}
		}
		if t.Kind == "audio" {
			rr.Audio = &r
		} else {
			rr.Renditions = append(rr.Renditions, r)
		}
	}
	if len(rr.Renditions) > 0 {
		for _, seg := range rr.Renditions[0].Segments {
			rr.Positions = append(rr.Positions, asset.Position(seg.Index, unmarked))
		}
	}
	if opts.Window == nil && !opts.AudioOnly {
		if err := writePlaylists(rr.Renditions, rr.Audio, w.put); err != nil {
			return nil, err
		}
	}
	rr.Objects, rr.Bytes = int(w.objects.Load()), w.bytes.Load()
	return rr, nil
}

// writePlaylists writes the neutral HLS media playlists, the DASH MPD and,
// last, the HLS multivariant playlist of the renditions.
func writePlaylists(video []cmaf.Rendition, audio *cmaf.Rendition, put func(asset.Ref, []byte) error) error {
	for _, r := range append(append([]cmaf.Rendition{}, video...), deref(audio)...) {
		pl, err := cmaf.HLSMediaPlaylist(r)
		if err != nil {
			return packaging(err)
		}
		if err := put(asset.HLSMedia(r.Name), pl); err != nil {
			return err
		}
	}
	mpd, err := cmaf.DASHManifest(video, audio)
	if err != nil {
		return packaging(err)
	}
	if err := put(asset.DASH(), mpd); err != nil {
		return err
	}
	return put(asset.HLSMaster(), cmaf.HLSMultivariant(video, audio))
}

func deref(r *cmaf.Rendition) []cmaf.Rendition {
	if r == nil {
		return nil
	}
	return []cmaf.Rendition{*r}
}

// trackRef names a track's segment number n: <rendition>/<variant>/seg-N,
// or <rendition>/seg-N for a track without variants (audio).
func trackRef(t cmaf.Track, n int) asset.Ref { return asset.Segment(t.Name, t.Variant, n) }

// markPair embeds the watermark in both variants of a frame in one pass
// (writing all of b's luma, which transcode leaves undefined):
// variant a (0) with sign +1, b (1) with -1; segments before the first
// position stay unmarked.
func markPair(wm *WatermarkOptions) transcode.PairHook {
	return func(a, b *transcode.Frame) error {
		if asset.Position(a.Segment, wm.Unmarked) >= 0 {
			wm.Embedder.EmbedPair(a.Luma, a.Stride, b.Luma, b.Stride, a.Width, a.Height, a.Segment, a.PTS)
		} else {
			b.CopyLuma(a) // b's plane starts undefined
		}
		return nil
	}
}

// trackWriter names the packager's output and counts it. With two variants
// it holds the first of a segment's variants until the other arrives, pads
// them to the same size and writes both.
type trackWriter struct {
	ctx      context.Context
	out      ObjectWriter
	variants int
	pending  map[segKey]pendingSegment // the first-arrived variant of a segment
	sizes    map[segKey]int64          // stored (padded) size of each segment
	objects  atomic.Int64
	bytes    atomic.Int64
}

type segKey struct {
	name   string
	number int
}

type pendingSegment struct {
	variant string
	data    []byte
}

// writeError is an error of the ObjectWriter (storage, sealing): it keeps
// its own class, often transient.
type writeError struct{ err error }

func (e writeError) Error() string { return e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// packaging classifies an error of packaging the encoded media: the
// writer's errors keep their class; every other one comes from the media
// the packager was given, which a retry would give it again, so it is
// permanent.
func packaging(err error) error {
	var we writeError
	if err == nil || errors.As(err, &we) {
		return err
	}
	return Permanent(err)
}

func (w *trackWriter) put(ref asset.Ref, data []byte) error {
	if err := w.out.WriteObject(w.ctx, ref, data); err != nil {
		return writeError{fmt.Errorf("pipeline: write %s: %w", ref, err)}
	}
	w.objects.Add(1)
	w.bytes.Add(int64(len(data)))
	return nil
}

func (w *trackWriter) WriteInit(t cmaf.Track, data []byte) error {
	if t.Variant != asset.VariantA && t.Variant != "" {
		return nil // variants share the init segment (identical settings)
	}
	return w.put(asset.Init(t.Name), data)
}

func (w *trackWriter) WriteSegment(t cmaf.Track, s cmaf.Segment, data []byte) error {
	k := segKey{t.Name, s.Number}
	if t.Variant == "" || w.variants < 2 {
		w.sizes[k] = int64(len(data))
		return w.put(trackRef(t, s.Number), data)
	}
	other, ok := w.pending[k]
	if !ok {
		w.pending[k] = pendingSegment{variant: t.Variant, data: data}
		return nil
	}
	delete(w.pending, k)
	if other.variant == t.Variant {
		return fmt.Errorf("pipeline: %s segment %d: variant %s written twice", t.Name, s.Number, t.Variant)
	}
	a, b := data, other.data
	if t.Variant == asset.VariantB {
		a, b = other.data, data
	}
	a, b, err := cmaf.PadEqual(a, b)
	if err != nil {
		return err
	}
	w.sizes[k] = int64(len(a))
	if err := w.put(asset.Segment(t.Name, asset.VariantA, s.Number), a); err != nil {
		return err
	}
	return w.put(asset.Segment(t.Name, asset.VariantB, s.Number), b)
}

// unpaired reports a segment whose other variant never came.
func (w *trackWriter) unpaired() error {
	for k := range w.pending {
		return fmt.Errorf("pipeline: %s segment %d: only one variant was encoded", k.name, k.number)
	}
	return nil
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
			ct.Variant = asset.Variants[t.Variant]
		}
		if err := s.pk.AddTrack(ct); err != nil {
			return packaging(err)
		}
		s.tracks = append(s.tracks, ct)
	}
	return nil
}

func (s *packagerSink) Packet(p transcode.Packet) error {
	return packaging(s.pk.Write(p.Track, cmaf.Sample{
		Data: p.Data, PTS: p.PTS, DTS: p.DTS, Duration: p.Duration, Keyframe: p.Keyframe, Segment: p.Segment,
	}))
}
