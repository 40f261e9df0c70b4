package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/forensic"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/transcode"
	"github.com/abseal/abseal/watermark"
)

// ErrSourceMissing is matched by the (permanent) error for a job whose
// source object does not exist.
var ErrSourceMissing = errors.New("source object not found")

// ErrSourceTooLarge is matched by the (permanent) error for a source over
// the size limit.
var ErrSourceTooLarge = errors.New("source over the size limit")

// ErrUnknownProfile is matched by the (permanent) error for a job naming a
// profile the worker does not have.
var ErrUnknownProfile = errors.New("unknown profile")

// Runner runs jobs: fetch the source, transcode and watermark it, package
// CMAF, seal every object with its rendition's DEK, store it, and write the
// playlists and the asset manifest last. It holds no state between jobs and
// is safe for concurrent use.
type Runner struct {
	// Sources returns the store of an ingest bucket.
	Sources func(bucket string) (storage.Store, error)
	// Out is the output bucket.
	Out storage.Store
	// KEK wraps the per-rendition DEKs.
	KEK *envelope.KEK
	// Profiles resolves a job's profile name.
	Profiles func(name string) (*profile.Profile, error)
	// WatermarkKey is the watermark master key; nil renders variant a only.
	WatermarkKey []byte
	// WatermarkIDBits is the wmid size (default 32); with the profile it
	// sets the pattern length written to the manifest.
	WatermarkIDBits int
	// SessionCode is the session code new assets get
	// (asset.CodeConvolutional, the default, or asset.CodeTardos: one
	// codeword bit per marked segment, scored against issued sessions).
	SessionCode string
	// Unmarked leading segments (position -1); default asset.DefaultUnmarked.
	Unmarked *int
	// TempDir holds each job's private temp dir (default os.TempDir()).
	TempDir string
	// MaxSourceBytes bounds a source's size (default 20 GiB).
	MaxSourceBytes int64
	// Threads is the CPU budget of one job (0: all CPUs).
	Threads int
	// Limits bound the source video (zero: transcode.DefaultLimits()).
	Limits transcode.Limits
	// Uploads is the number of concurrent object uploads per job (default 4).
	Uploads int
	// PutRetry bounds how long a failing put is retried before the job
	// fails transiently (default 2 minutes).
	PutRetry time.Duration
	// Stall, when set, is called at each fencing point of a run:
	// StallTranscode (the run's marker is written, rendering starts),
	// StallPut (the run's first segment is stored) and StallManifest
	// (everything is stored, the commit is next). Fault tests stop the
	// process there.
	Stall func(point, run string)
	// ChunkLength splits a job whose source is longer than 1.5 ×
	// ChunkLength into chunk tasks of about ChunkLength each (whole
	// segments), handed to SubmitChunks; any worker runs them
	// (RunChunk). 0 or a nil SubmitChunks: jobs are never split.
	ChunkLength  time.Duration
	SubmitChunks func(ctx context.Context, tasks []*asset.Job) error
	// SourceBlock is the size of one ranged read of a chunk's source
	// (0: storage.DefaultRangeBlock).
	SourceBlock int
	Log         *slog.Logger
}

// Fencing points (Runner.Stall).
const (
	StallTranscode = "transcode"
	StallPut       = "put"
	StallManifest  = "manifest"
)

func (r *Runner) stall(point, run string) {
	if r.Stall != nil {
		r.Stall(point, run)
	}
}

// Progress reports a running job's stage and completion.
type Progress struct {
	Stage   string  // fetch, transcode, manifest
	Percent float64 // of the whole job, 0-100
}

// Result is what a job produced.
type Result struct {
	Manifest    *asset.Manifest
	ManifestKey string
	// Skipped is true when the asset was already complete for the same
	// source digest and profile: nothing was redone (or another run of
	// the job committed first and this run's output was dropped).
	Skipped bool
	// Run is the run whose objects the manifest uses.
	Run string
	// Chunks is the number of chunks the job was split into (0: not
	// split; Manifest is then nil until the last chunk commits), and
	// ChunksDone how many of them are stored (RunChunk).
	Chunks, ChunksDone int
	Objects            int
	BytesIn            int64 // source bytes
	BytesOut           int64 // bytes stored (ciphertext and playlists)
	Stages             map[string]time.Duration
}

// Run runs job. Its errors are classified by IsPermanent.
func (r *Runner) Run(ctx context.Context, job *asset.Job, progress func(Progress)) (*Result, error) {
	if err := job.Validate(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = func(Progress) {}
	}
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p, err := r.Profiles(job.Profile)
	if err != nil {
		return nil, Permanent(fmt.Errorf("pipeline: %w %q: %v", ErrUnknownProfile, job.Profile, err))
	}
	res := &Result{ManifestKey: asset.ManifestKey(job.AssetID), Stages: map[string]time.Duration{}}
	stage := func(name string, start time.Time) { res.Stages[name] += time.Since(start) }

	jd, err := newJobDir(r.TempDir)
	if err != nil {
		return nil, err
	}
	defer jd.remove()
	dir := jd.path

	t0 := time.Now()
	progress(Progress{Stage: "fetch"})
	src, err := r.fetch(ctx, job.Source, dir)
	if err != nil {
		return nil, err
	}
	res.BytesIn = src.Size
	stage("fetch", t0)
	log.Info("source fetched", "bytes", src.Size, "took", time.Since(t0).Round(time.Millisecond).String())

	b, err := r.current(ctx, job.AssetID)
	if err != nil {
		return nil, err
	}
	if r.satisfies(b.m, job, src) {
		res.Manifest, res.Skipped, res.Run = b.m, true, b.m.Run
		return res, nil
	}

	t0 = time.Now()
	ropts := RenderOptions{Threads: r.Threads, Limits: r.Limits}
	if ropts.Limits == (transcode.Limits{}) {
		ropts.Limits = transcode.DefaultLimits()
	}
	if r.SubmitChunks != nil && r.ChunkLength > 0 {
		info, err := transcode.Probe(ctx, src.Path, ropts.Limits)
		if err != nil {
			return nil, err
		}
		if !info.Video.Windowable {
			log.Info("the source's video declares no start time: it is rendered whole, not split")
		} else if spans := r.chunkSpans(info.Duration, time.Duration(p.SegmentDuration)); spans != nil {
			return r.plan(ctx, job, p, src, info, spans, b, res, progress, log)
		}
	}
	var wm *asset.WatermarkInfo
	if ropts.Watermark, wm, err = r.watermark(job.AssetID, p); err != nil {
		return nil, err
	}
	ropts.Progress = func(done, total time.Duration) {
		if total > 0 {
			progress(Progress{Stage: "transcode", Percent: 5 + 90*min(1, done.Seconds()/total.Seconds())})
		}
	}
	// This run writes apart (fence.go): its marker first, then every
	// object under its prefix; whatever ends the run before it commits
	// deletes them.
	run := asset.NewRunID(time.Now())
	res.Run = run
	sw := newSealWriter(ctx, r, job.AssetID, run)
	defer sw.cancel()
	log = log.With("run", run)
	committed := false
	defer func() {
		if committed {
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if n, err := r.dropRun(cctx, job.AssetID, run); err != nil {
			log.Warn("the run's objects were not deleted; the next commit collects them", "err", err)
		} else {
			log.Debug("run objects deleted", "objects", n)
		}
	}()
	if err := r.startRun(sw, job, b); err != nil {
		return nil, err
	}
	r.stall(StallTranscode, run)
	rr, err := Render(ctx, src.Path, p, ropts, sw)
	if err == nil {
		err = writePaceInfo(ctx, sw, rr)
	}
	if werr := sw.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	stage("transcode", t0)
	if err := tardosLength(wm, rr.Positions); err != nil {
		return nil, err
	}

	t0 = time.Now()
	progress(Progress{Stage: "manifest", Percent: 96})
	m := newManifest(job, asset.SourceInfo{Source: job.Source, Size: src.Size, SHA256: src.SHA256}, run, rr.Duration.Seconds(),
		time.Duration(p.SegmentDuration).Seconds(), wm)
	for _, cr := range rr.Renditions {
		mr, err := sw.rendition(cr, rr.Positions)
		if err != nil {
			return nil, err
		}
		m.Video = append(m.Video, mr)
	}
	if rr.Audio != nil {
		mr, err := sw.rendition(*rr.Audio, nil)
		if err != nil {
			return nil, err
		}
		m.Audio = &mr
	}
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	r.stall(StallManifest, run)
	etag, other, err := r.commit(ctx, sw, b, data)
	if err != nil {
		return nil, err
	}
	if other != nil {
		// Another run committed first (this one stalled past its lease,
		// or raced it): its output stands and this run's is deleted.
		if !r.satisfies(other, job, src) {
			return nil, fmt.Errorf("pipeline: %w: run %s of job %s committed first; the job runs again", ErrSuperseded, other.Run, other.JobID)
		}
		log.Info("another run of the job committed first; this run's objects are deleted", "committed_run", other.Run)
		res.Manifest, res.Skipped, res.Run = other, true, other.Run
		return res, nil
	}
	committed = true
	r.collect(ctx, job.AssetID, run, etag, b.m, log)
	stage("manifest", t0)
	res.Manifest = m
	res.Objects = int(sw.objects.Load())
	res.BytesOut = sw.bytes.Load()
	progress(Progress{Stage: "manifest", Percent: 100})
	return res, nil
}

// watermark sets up the asset's watermark: the embedder and the manifest's
// description (nil, nil without a watermark key).
func (r *Runner) watermark(assetID string, p *profile.Profile) (*WatermarkOptions, *asset.WatermarkInfo, error) {
	if r.WatermarkKey == nil {
		return nil, nil, nil
	}
	unmarked := asset.DefaultUnmarked
	if r.Unmarked != nil {
		unmarked = *r.Unmarked
	}
	key, err := watermark.DeriveAssetKey(r.WatermarkKey, assetID)
	if err != nil {
		return nil, nil, Permanent(err)
	}
	emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(time.Duration(p.SegmentDuration)))
	if err != nil {
		return nil, nil, Permanent(err)
	}
	idBits := r.WatermarkIDBits
	if idBits == 0 {
		idBits = watermark.DefaultIDBits
	}
	code, err := watermark.SessionCode(r.WatermarkKey, assetID, idBits, 0)
	if err != nil {
		return nil, nil, Permanent(err)
	}
	kid := sha256.Sum256(append([]byte("abseal.watermark.keyid.v1:"), r.WatermarkKey...))
	wm := &asset.WatermarkInfo{Scheme: asset.WatermarkScheme, Version: 1, PatternLen: code.PatternLen(), IDBits: idBits,
		KeyID: hex.EncodeToString(kid[:8]), Unmarked: unmarked, Code: r.SessionCode}
	switch r.SessionCode {
	case asset.CodeConvolutional:
	case asset.CodeTardos:
		wm.IDBits = 0 // wmids are the registry's; the pattern length is set after rendering
	default:
		return nil, nil, Permanent(fmt.Errorf("session code %q is not supported", r.SessionCode))
	}
	return &WatermarkOptions{Embedder: emb, Unmarked: unmarked}, wm, nil
}

// tardosLength sets a tardos-v1 asset's pattern length from the
// positions rendered: one codeword bit per marked segment, no repetition.
func tardosLength(wm *asset.WatermarkInfo, positions []int) error {
	if wm == nil || wm.Code != asset.CodeTardos {
		return nil
	}
	wm.PatternLen = 0
	for _, p := range positions {
		wm.PatternLen = max(wm.PatternLen, p+1)
	}
	if wm.PatternLen < 1 || wm.PatternLen > forensic.MaxPositions {
		return Permanent(fmt.Errorf("%d marked segments: the session code needs 1 to %d", wm.PatternLen, forensic.MaxPositions))
	}
	return nil
}

// newManifest starts the manifest of a run (renditions are added by the
// caller).
func newManifest(job *asset.Job, src asset.SourceInfo, run string, duration, segDur float64, wm *asset.WatermarkInfo) *asset.Manifest {
	m := &asset.Manifest{
		Schema: asset.ManifestVersion, AssetID: job.AssetID, JobID: job.JobID, Source: src, Profile: job.Profile,
		CreatedAt: time.Now().UTC(), Duration: duration, SegDur: segDur, Watermark: wm, Run: run,
	}
	m.HLS, m.DASH = m.Key(asset.HLSMaster()), m.Key(asset.DASH())
	return m
}

// localSource is a fetched source file.
type localSource struct {
	Path   string
	Size   int64
	SHA256 string
	ETag   string
}

// fetch streams the source into a private temp file, bounded by
// MaxSourceBytes, hashing it on the way.
func (r *Runner) fetch(ctx context.Context, s asset.Source, dir string) (*localSource, error) {
	limit := r.MaxSourceBytes
	if limit <= 0 {
		limit = 20 << 30
	}
	st, err := r.Sources(s.Bucket)
	if err != nil {
		return nil, Permanent(fmt.Errorf("pipeline: source %s: %w", s, err))
	}
	info, err := st.Stat(ctx, s.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, Permanent(fmt.Errorf("pipeline: %w: %s", ErrSourceMissing, s))
	case err != nil:
		return nil, fmt.Errorf("pipeline: source %s: %w", s, err)
	case info.Size > limit:
		return nil, Permanent(fmt.Errorf("pipeline: %w: %s is %d bytes, limit %d", ErrSourceTooLarge, s, info.Size, limit))
	}
	rc, err := st.Open(ctx, s.Key, nil)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, Permanent(fmt.Errorf("pipeline: %w: %s", ErrSourceMissing, s))
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: source %s: %w", s, err)
	}
	defer rc.Close()
	f, err := os.OpenFile(path.Join(dir, "source"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pipeline: temp file: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(storage.ContextReader(ctx, rc), limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: fetch %s: %w", s, err)
	}
	if n > limit {
		return nil, Permanent(fmt.Errorf("pipeline: %w: %s is over %d bytes", ErrSourceTooLarge, s, limit))
	}
	// The bytes read are the version stat saw (its ETag names them) unless
	// the object was replaced meanwhile.
	after, err := st.Stat(ctx, s.Key)
	if err != nil {
		return nil, fmt.Errorf("pipeline: source %s after the fetch: %w", s, err)
	}
	if after.ETag != info.ETag || n != info.Size {
		return nil, fmt.Errorf("pipeline: source %s changed while it was fetched", s)
	}
	return &localSource{Path: f.Name(), Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), ETag: info.ETag}, nil
}

// openRanged opens the version of a run's source its plan names, to be
// read in ranges (storage.RangeReader): a chunk reads its window and the
// file's index, not the whole source.
func (r *Runner) openRanged(ctx context.Context, want asset.SourceInfo, etag string) (*storage.RangeReader, func(context.Context) error, error) {
	s := want.Source
	st, err := r.Sources(s.Bucket)
	if err != nil {
		return nil, nil, Permanent(fmt.Errorf("pipeline: source %s: %w", s, err))
	}
	info, err := st.Stat(ctx, s.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil, Permanent(fmt.Errorf("pipeline: %w: %s", ErrSourceMissing, s))
	case err != nil:
		return nil, nil, fmt.Errorf("pipeline: source %s: %w", s, err)
	case info.ETag != etag || info.Size != want.Size:
		return nil, nil, Permanent(fmt.Errorf("pipeline: the source %s changed since the job was split (%d bytes, planned %d)", s, info.Size, want.Size))
	}
	// check tells whether the object is still the version read.
	check := func(ctx context.Context) error {
		after, err := st.Stat(ctx, s.Key)
		if err == nil && (after.ETag != info.ETag || after.Size != info.Size) {
			return Permanent(fmt.Errorf("pipeline: the source %s changed while the chunk read it", s))
		}
		return err
	}
	return storage.NewRangeReader(ctx, st, info, r.SourceBlock, 0), check, nil
}

// writePaceInfo writes the WMPaceInfo sidecar of every video segment:
// its watermark position and size, beside the segment (asset.PaceInfo).
func writePaceInfo(ctx context.Context, w ObjectWriter, rr *RenderResult) error {
	for _, r := range rr.Renditions {
		for i, seg := range r.Segments {
			pos := -1
			if i < len(rr.Positions) {
				pos = rr.Positions[i]
			}
			b, err := cmaf.MarshalPaceInfo(pos, seg.Size)
			if err != nil {
				return Permanent(err)
			}
			if err := w.WriteObject(ctx, asset.PaceInfo(r.Name, seg.Number), b); err != nil {
				return err
			}
		}
	}
	return nil
}
