package pipeline

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/transcode"
)

// Chunked runs (the layout is asset/chunk.go). A job whose source is
// longer than 1.5 × Runner.ChunkLength is planned, not rendered: its run
// writes its marker, makes the renditions' data keys and writes the plan,
// and submits one chunk task per window of whole segments (SubmitChunks).
// Any worker runs any chunk (RunChunk): it fetches the source, checks it
// is the one planned, renders its window (transcode.Window: the same
// segment numbers, timestamps, watermark positions and A/B padding as a
// whole run) sealed with the plan's keys under an attempt prefix of its
// own, and writes its result only if no other attempt did. The chunk that
// finds every result written assembles the run: WMPaceInfo, playlists,
// the manifest, committed as any run's (fence.go). The first chunk also
// encodes all of the audio, in one piece.

// ChunkPlan is a chunked run's plan (asset.RunPlanKey).
type ChunkPlan struct {
	JobID  string           `json:"job_id"`
	Run    string           `json:"run"`
	Source asset.SourceInfo `json:"source"`
	// SourceETag is the store's tag of the source version planned: chunks
	// read that version in ranges (a plan without it has them fetch and
	// hash the whole source).
	SourceETag string    `json:"source_etag,omitempty"`
	Profile    string    `json:"profile"`
	CreatedAt  time.Time `json:"created_at"`
	// Base is the ETag of the asset manifest the run started from; Exists
	// is false when there was none.
	Base   string `json:"base_etag"`
	Exists bool   `json:"base_exists"`
	// Legacy: the base manifest is of schema 1 (its objects at the
	// asset's plain prefix, collected after the commit).
	Legacy bool `json:"base_legacy,omitempty"`
	// Chunks are the windows, in order; the last runs to the end.
	Chunks []transcode.Window `json:"chunks"`
	// AudioTask: the audio is a task of its own, numbered after the
	// windows (which then have no audio); otherwise chunk 0 encodes it.
	AudioTask bool `json:"audio_task,omitempty"`
	// DEKs are the renditions' wrapped data keys, by rendition name.
	DEKs map[string]asset.DEKInfo `json:"deks"`
}

// tasks is how many chunk tasks the run has.
func (pl *ChunkPlan) tasks() int {
	if pl.AudioTask {
		return len(pl.Chunks) + 1
	}
	return len(pl.Chunks)
}

// ChunkResult is what a chunk's winning attempt stored
// (asset.ChunkResultKey).
type ChunkResult struct {
	Index   int               `json:"index"`
	Attempt string            `json:"attempt"`
	Video   []asset.Rendition `json:"video"`
	Audio   *asset.Rendition  `json:"audio,omitempty"`
	// End is the media time at the chunk's end, in seconds.
	End float64 `json:"end"`
}

// chunkSpans splits a source of the given duration into windows of about
// ChunkLength (whole segments), or returns nil when it is not split.
func (r *Runner) chunkSpans(duration time.Duration, segDur time.Duration) []transcode.Window {
	if r.SubmitChunks == nil || r.ChunkLength <= 0 || duration <= r.ChunkLength*3/2 {
		return nil
	}
	per := max(1, int(r.ChunkLength/segDur))
	total := int((duration + segDur - 1) / segDur)
	n := max(1, (total+per/2)/per)
	if n < 2 {
		return nil
	}
	n = min(n, asset.MaxChunks)
	var out []transcode.Window
	for i := range n {
		w := transcode.Window{From: i * total / n, To: (i + 1) * total / n}
		if i == n-1 {
			w.To = 0
		}
		out = append(out, w)
	}
	return out
}

// plan writes a chunked run's marker and plan and submits its chunks.
func (r *Runner) plan(ctx context.Context, job *asset.Job, p *profile.Profile, src *localSource, info *transcode.Info,
	spans []transcode.Window, b base, res *Result, progress func(Progress), log *slog.Logger) (*Result, error) {
	run := asset.NewRunID(time.Now())
	sw := newSealWriter(ctx, r, job.AssetID, run)
	defer sw.cancel()
	done := false
	defer func() {
		if !done {
			r.dropRunAfter(ctx, job.AssetID, run, log)
		}
	}()
	if err := r.startRun(sw, job, b); err != nil {
		return nil, err
	}
	ladder, err := p.Ladder(info.Video.DisplayWidth, info.Video.DisplayHeight)
	if err != nil {
		return nil, Permanent(err)
	}
	rungs := make([]string, 0, len(ladder)+1)
	for _, o := range ladder {
		rungs = append(rungs, o.Name)
	}
	audio := p.Audio.Bitrate > 0 && info.Audio != nil
	if audio {
		rungs = append(rungs, asset.AudioRung)
	}
	pl := ChunkPlan{JobID: job.JobID, Run: run, Source: asset.SourceInfo{Source: job.Source, Size: src.Size, SHA256: src.SHA256}, SourceETag: src.ETag,
		Profile: job.Profile, CreatedAt: time.Now().UTC(), Base: b.etag, Exists: b.exists, Legacy: b.m != nil && b.m.Run == "", Chunks: spans, AudioTask: audio, DEKs: map[string]asset.DEKInfo{}}
	for _, rung := range rungs {
		d, err := sw.dek(rung)
		if err != nil {
			return nil, err
		}
		pl.DEKs[rung] = asset.DEKInfo{KEKURI: d.KEKURI(), Wrapped: d.Wrapped()}
	}
	data, err := json.Marshal(pl)
	if err != nil {
		return nil, err
	}
	if _, err := sw.putRetry(asset.RunPlanKey(job.AssetID, run), data, storage.PutOptions{ContentType: asset.TypeManifest, IfAbsent: true}); err != nil {
		return nil, err
	}
	// The audio's task comes first in the queue: it reads the whole
	// source, and its encode is the longest single piece of a long title.
	tasks := make([]*asset.Job, 0, pl.tasks())
	for i := range pl.tasks() {
		t := *job
		t.JobID = asset.ChunkJobID(job.JobID, run, i)
		t.CreatedAt = pl.CreatedAt
		t.Chunk = &asset.ChunkTask{ParentID: job.JobID, Run: run, Index: i, Count: pl.tasks()}
		if i < len(spans) {
			t.Chunk.From, t.Chunk.To = spans[i].From, spans[i].To
		} else {
			t.Chunk.Audio = true
		}
		if err := t.Validate(); err != nil {
			return nil, Permanent(err)
		}
		if t.Chunk.Audio {
			tasks = slices.Insert(tasks, 0, &t)
		} else {
			tasks = append(tasks, &t)
		}
	}
	// The job's state says it is split before any chunk can move it on.
	progress(Progress{Stage: fmt.Sprintf("split into %d chunks", len(tasks)), Percent: 5})
	if err := r.SubmitChunks(ctx, tasks); err != nil {
		return nil, fmt.Errorf("pipeline: submit %d chunks: %w", len(tasks), err)
	}
	done = true
	log.Info("job split into chunks", "run", run, "chunks", len(spans), "audio_task", pl.AudioTask, "segments_per_chunk", spans[0].To-spans[0].From)
	res.Run, res.Chunks = run, len(tasks)
	return res, nil
}

// dropRunAfter deletes a run's objects after its context may have ended.
func (r *Runner) dropRunAfter(ctx context.Context, assetID, run string, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if n, err := r.dropRun(cctx, assetID, run); err != nil {
		log.Warn("the run's objects were not deleted; the next commit collects them", "run", run, "err", err)
	} else {
		log.Debug("run objects deleted", "run", run, "objects", n)
	}
}

// dropPrefix deletes every object under prefix.
func (r *Runner) dropPrefix(ctx context.Context, prefix string, log *slog.Logger) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for oi, err := range r.Out.List(cctx, prefix) {
		if err == nil {
			err = r.Out.Delete(cctx, oi.Key)
		}
		if err != nil {
			log.Warn("objects not deleted; the next commit collects them", "prefix", prefix, "err", err)
			return
		}
	}
}

// readPlan reads a run's plan; nil when it is gone (the run was collected).
func (r *Runner) readPlan(ctx context.Context, assetID, run string) (*ChunkPlan, error) {
	data, err := storage.ReadAll(ctx, r.Out, asset.RunPlanKey(assetID, run))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: read the run's plan: %w", err)
	}
	var pl ChunkPlan
	if err := json.Unmarshal(data, &pl); err != nil {
		return nil, Permanent(fmt.Errorf("pipeline: the run's plan: %w", err))
	}
	return &pl, nil
}

// RunChunk runs one chunk task. Result.Skipped is true when there was
// nothing to do (another attempt stored the chunk, the run is committed
// or can no longer commit); Result.Manifest is set when this chunk was the
// last and committed the run.
func (r *Runner) RunChunk(ctx context.Context, task *asset.Job, progress func(Progress)) (*Result, error) {
	if err := task.Validate(); err != nil {
		return nil, err
	}
	c := task.Chunk
	if c == nil {
		return nil, Permanent(errors.New("pipeline: not a chunk task"))
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("run", c.Run, "chunk", c.Index)
	res := &Result{ManifestKey: asset.ManifestKey(task.AssetID), Run: c.Run, Stages: map[string]time.Duration{}}
	pl, err := r.readPlan(ctx, task.AssetID, c.Run)
	if err != nil {
		return nil, err
	}
	b, err := r.current(ctx, task.AssetID)
	if err != nil {
		return nil, err
	}
	switch {
	case pl == nil:
		log.Info("the chunk's run is gone (collected after another commit); nothing to do")
		res.Skipped = true
		return res, nil
	case b.m != nil && b.m.Run == c.Run:
		res.Skipped, res.Manifest = true, b.m
		return res, nil
	case b.exists != pl.Exists || b.etag != pl.Base:
		log.Info("another run committed since the chunk's run started; its commit would be refused, nothing to do")
		res.Skipped = true
		return res, nil
	case c.Audio != (pl.AudioTask && c.Index == len(pl.Chunks)),
		!c.Audio && (c.Index >= len(pl.Chunks) || pl.Chunks[c.Index] != (transcode.Window{From: c.From, To: c.To})):
		return nil, Permanent(fmt.Errorf("pipeline: chunk %d [%d, %d) (audio %v) is not in the run's plan", c.Index, c.From, c.To, c.Audio))
	}
	p, err := r.Profiles(task.Profile)
	if err != nil {
		return nil, Permanent(fmt.Errorf("pipeline: %w %q: %v", ErrUnknownProfile, task.Profile, err))
	}
	if _, err := r.readResult(ctx, task.AssetID, c.Run, c.Index); err == nil {
		log.Info("the chunk is already stored by another attempt")
		res.Skipped = true
		return r.assembleIfLast(ctx, task, pl, p, res, log)
	}

	jd, err := newJobDir(r.TempDir)
	if err != nil {
		return nil, err
	}
	defer jd.remove()
	// The source: read in ranges when the plan names its version (a
	// chunk fetches its window, not the whole file); a plan without one
	// (written by an older worker) has the whole file fetched and hashed.
	t0 := time.Now()
	progress(Progress{Stage: "fetch"})
	var (
		src     *localSource
		ranged  *storage.RangeReader
		recheck func(context.Context) error
	)
	if pl.SourceETag != "" {
		if ranged, recheck, err = r.openRanged(ctx, pl.Source, pl.SourceETag); err != nil {
			return nil, err
		}
	} else {
		if src, err = r.fetch(ctx, task.Source, jd.path); err != nil {
			return nil, err
		}
		res.BytesIn = src.Size
		res.Stages["fetch"] = time.Since(t0)
		if src.SHA256 != pl.Source.SHA256 {
			return nil, Permanent(fmt.Errorf("pipeline: the source %s changed since the job was split (sha256 %s, planned %s)", task.Source, src.SHA256[:12], pl.Source.SHA256[:12]))
		}
	}

	t0 = time.Now()
	ropts := RenderOptions{Threads: r.Threads, Limits: r.Limits, Window: &transcode.Window{From: c.From, To: c.To}, NoAudio: pl.AudioTask}
	if c.Audio {
		ropts.Window, ropts.NoAudio, ropts.AudioOnly = nil, false, true
	}
	if ropts.Limits == (transcode.Limits{}) {
		ropts.Limits = transcode.DefaultLimits()
	}
	if ropts.Watermark, _, err = r.watermark(task.AssetID, p); err != nil {
		return nil, err
	}
	ropts.Progress = func(done, total time.Duration) {
		from := time.Duration(c.From) * time.Duration(p.SegmentDuration)
		to := total
		if c.To > 0 {
			to = min(total, time.Duration(c.To)*time.Duration(p.SegmentDuration))
		}
		if to > from {
			progress(Progress{Stage: "transcode", Percent: 5 + 90*min(1, max(0, (done-from).Seconds()/(to-from).Seconds()))})
		}
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	attempt := hex.EncodeToString(rnd[:])
	sw := newSealWriter(ctx, r, task.AssetID, c.Run)
	defer sw.cancel()
	sw.keyOf = func(ref asset.Ref) string { return ref.ChunkKey(task.AssetID, c.Run, c.Index, attempt) }
	for rung, d := range pl.DEKs {
		dek, err := r.KEK.UnwrapDEK(d.Wrapped, envelope.RenditionAD(task.AssetID, rung))
		if err != nil {
			return nil, Permanent(fmt.Errorf("pipeline: the plan's data key for %s: %w", rung, err))
		}
		sw.deks[rung] = dek
	}
	stored := false
	defer func() {
		if !stored {
			r.dropPrefix(ctx, asset.ChunkAttemptPrefix(task.AssetID, c.Run, c.Index, attempt), log)
		}
	}()
	var rr *RenderResult
	if ranged != nil {
		rr, err = RenderInput(ctx, ranged, p, ropts, sw)
		n, reqs, wait := ranged.Fetched()
		res.BytesIn, res.Stages["fetch"] = n, wait
		log.Debug("chunk source read in ranges", "bytes", n, "requests", reqs, "of", ranged.Size())
		// A source replaced mid-read can look corrupt to the decoder: its
		// change is the reason, whatever the render said.
		if cerr := recheck(ctx); err == nil || IsPermanent(cerr) {
			err = cerr
		}
	} else {
		rr, err = Render(ctx, src.Path, p, ropts, sw)
	}
	if werr := sw.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	res.Stages["transcode"] = time.Since(t0)
	cr := ChunkResult{Index: c.Index, Attempt: attempt, End: rr.Duration.Seconds()}
	for _, rd := range rr.Renditions {
		mr, err := sw.rendition(rd, rr.Positions)
		if err != nil {
			return nil, err
		}
		cr.Video = append(cr.Video, mr)
	}
	if rr.Audio != nil {
		mr, err := sw.rendition(*rr.Audio, nil)
		if err != nil {
			return nil, err
		}
		cr.Audio = &mr
	}
	data, err := json.Marshal(cr)
	if err != nil {
		return nil, err
	}
	_, err = sw.putRetry(asset.ChunkResultKey(task.AssetID, c.Run, c.Index), data, storage.PutOptions{ContentType: asset.TypeManifest, IfAbsent: true})
	if errors.Is(err, storage.ErrPrecondition) {
		log.Info("another attempt stored the chunk first; this attempt's objects are deleted")
		res.Skipped = true
		return r.assembleIfLast(ctx, task, pl, p, res, log)
	}
	if err != nil {
		return nil, err
	}
	stored = true
	res.Objects, res.BytesOut = int(sw.objects.Load()), sw.bytes.Load()
	log.Info("chunk stored", "attempt", attempt, "audio", c.Audio, "video_renditions", len(cr.Video))
	return r.assembleIfLast(ctx, task, pl, p, res, log)
}

func (r *Runner) readResult(ctx context.Context, assetID, run string, chunk int) (*ChunkResult, error) {
	data, err := storage.ReadAll(ctx, r.Out, asset.ChunkResultKey(assetID, run, chunk))
	if err != nil {
		return nil, err
	}
	var cr ChunkResult
	if err := json.Unmarshal(data, &cr); err != nil {
		return nil, Permanent(fmt.Errorf("pipeline: chunk %d's result: %w", chunk, err))
	}
	if cr.Index != chunk || len(cr.Video) == 0 && cr.Audio == nil {
		return nil, Permanent(fmt.Errorf("pipeline: chunk %d's result names chunk %d with %d renditions", chunk, cr.Index, len(cr.Video)))
	}
	return &cr, nil
}

// ChunksDone counts the stored chunks of a run.
func (r *Runner) ChunksDone(ctx context.Context, assetID, run string) (int, error) {
	n := 0
	for oi, err := range r.Out.List(ctx, asset.ChunkResultsPrefix(assetID, run)) {
		if err != nil {
			return 0, err
		}
		if _, ok := asset.ChunkOfResult(assetID, run, oi.Key); ok {
			n++
		}
	}
	return n, nil
}

// assembleIfLast assembles and commits the run when every chunk is stored.
func (r *Runner) assembleIfLast(ctx context.Context, task *asset.Job, pl *ChunkPlan, p *profile.Profile, res *Result, log *slog.Logger) (*Result, error) {
	c := task.Chunk
	n, err := r.ChunksDone(ctx, task.AssetID, c.Run)
	if err != nil {
		return nil, fmt.Errorf("pipeline: count the run's chunks: %w", err)
	}
	res.ChunksDone, res.Chunks = n, pl.tasks()
	if n < pl.tasks() {
		return res, nil
	}
	t0 := time.Now()
	var results []*ChunkResult
	for i := range pl.tasks() {
		cr, err := r.readResult(ctx, task.AssetID, c.Run, i)
		if err != nil {
			return nil, fmt.Errorf("pipeline: read chunk %d's result: %w", i, err)
		}
		results = append(results, cr)
	}
	parent := *task
	parent.JobID, parent.Chunk = pl.JobID, nil
	_, wm, err := r.watermark(task.AssetID, p)
	if err != nil {
		return nil, err
	}
	// Every chunk's encoders were set up alike: their init segments must
	// be the same bytes as chunk 0's, which the manifest names; the
	// others are deleted once the run is committed.
	if err := r.sameInits(ctx, task.AssetID, pl, results); err != nil {
		return nil, err
	}
	// The renditions, chunk after chunk; the audio of the audio task or
	// of chunk 0.
	audio := results[0].Audio
	if pl.AudioTask {
		audio = results[len(pl.Chunks)].Audio
		if audio == nil {
			return nil, Permanent(errors.New("pipeline: the audio task stored no audio"))
		}
	}
	last := results[len(pl.Chunks)-1]
	results = results[:len(pl.Chunks)]
	video := slices.Clone(results[0].Video)
	for _, cr := range results[1:] {
		if len(cr.Video) != len(video) {
			return nil, Permanent(fmt.Errorf("pipeline: chunk %d has %d renditions, chunk 0 has %d", cr.Index, len(cr.Video), len(video)))
		}
		for i := range video {
			if cr.Video[i].Name != video[i].Name {
				return nil, Permanent(fmt.Errorf("pipeline: chunk %d's rendition %d is %s, chunk 0's %s", cr.Index, i, cr.Video[i].Name, video[i].Name))
			}
			video[i].Segments = append(slices.Clone(video[i].Segments), cr.Video[i].Segments...)
		}
	}
	var positions []int
	for _, s := range video[0].Segments {
		positions = append(positions, s.Position)
	}
	if err := tardosLength(wm, positions); err != nil {
		return nil, err
	}
	sw := newSealWriter(ctx, r, task.AssetID, c.Run)
	defer sw.cancel()
	rr := &RenderResult{Positions: positions}
	for i := range video {
		video[i].Bitrate, video[i].PeakBitrate = 0, 0
		cm := cmafRendition(video[i])
		video[i].PeakBitrate, video[i].Bitrate = cm.Bandwidth()
		rr.Renditions = append(rr.Renditions, cm)
	}
	if audio != nil {
		cm := cmafRendition(*audio)
		rr.Audio = &cm
	}
	err = writePaceInfo(ctx, sw, rr)
	if err == nil {
		err = writePlaylists(rr.Renditions, rr.Audio, func(ref asset.Ref, data []byte) error { return sw.WriteObject(ctx, ref, data) })
	}
	if werr := sw.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	m := newManifest(&parent, pl.Source, c.Run, last.End, time.Duration(p.SegmentDuration).Seconds(), wm)
	m.Video, m.Audio = video, audio
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	r.stall(StallManifest, c.Run)
	b := base{exists: pl.Exists, etag: pl.Base}
	etag, other, err := r.commit(ctx, sw, b, data)
	if err != nil {
		return nil, err
	}
	if other != nil {
		log.Info("another run committed first; this run's objects are collected by it")
		res.Skipped = true
		return res, nil
	}
	var replaced *asset.Manifest
	if pl.Legacy {
		replaced = &asset.Manifest{} // schema 1: no run
	}
	r.collect(ctx, task.AssetID, c.Run, etag, replaced, log)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, cr := range results[1:] {
		for _, rd := range append(slices.Clone(cr.Video), derefRendition(cr.Audio)...) {
			if audio != nil && rd.Init.Key == audio.Init.Key {
				continue
			}
			if err := r.Out.Delete(cctx, rd.Init.Key); err != nil {
				log.Warn("a chunk's init segment was not deleted", "chunk", cr.Index, "rendition", rd.Name, "err", err)
			}
		}
	}
	res.Stages["manifest"] = time.Since(t0)
	res.Manifest = m
	log.Info("run assembled and committed", "chunks", len(results), "segments", len(video[0].Segments))
	return res, nil
}

// cmafRendition is the packaging view of a manifest rendition (for the
// playlists and the bitrates).
func cmafRendition(r asset.Rendition) cmaf.Rendition {
	out := cmaf.Rendition{Name: r.Name, Kind: r.Kind, Codecs: r.Codecs, Width: r.Width, Height: r.Height,
		FrameRate: r.FrameRate, SampleRate: r.SampleRate, Channels: r.Channels, Timescale: r.Timescale}
	for _, s := range r.Segments {
		out.Segments = append(out.Segments, cmaf.Segment{Index: s.Index, Number: s.Number, Start: s.Time, Duration: s.Duration, Size: s.Size})
	}
	return out
}

func derefRendition(r *asset.Rendition) []asset.Rendition {
	if r == nil {
		return nil
	}
	return []asset.Rendition{*r}
}

// sameInits checks that every chunk's init segments open to the same
// bytes as chunk 0's.
func (r *Runner) sameInits(ctx context.Context, assetID string, pl *ChunkPlan, results []*ChunkResult) error {
	want := map[string][]byte{}
	for i, cr := range results {
		for _, rd := range append(slices.Clone(cr.Video), derefRendition(cr.Audio)...) {
			d, ok := pl.DEKs[rd.Name]
			if !ok {
				return Permanent(fmt.Errorf("pipeline: chunk %d has rendition %s, which the plan does not", cr.Index, rd.Name))
			}
			if i > 0 && rd.Name == asset.AudioRung {
				continue
			}
			dek, err := r.KEK.UnwrapDEK(d.Wrapped, envelope.RenditionAD(assetID, rd.Name))
			if err != nil {
				return err
			}
			plain, err := sealed.OpenObject(ctx, r.Out, dek, assetID, asset.Init(rd.Name), rd.Init)
			if err != nil {
				return fmt.Errorf("pipeline: chunk %d's %s init segment: %w", cr.Index, rd.Name, err)
			}
			if i == 0 {
				want[rd.Name] = plain
			} else if !bytes.Equal(plain, want[rd.Name]) {
				return Permanent(fmt.Errorf("pipeline: chunk %d's %s init segment differs from chunk 0's: the encoders were not set up alike", cr.Index, rd.Name))
			}
		}
	}
	return nil
}
