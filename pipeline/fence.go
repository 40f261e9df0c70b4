package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/storage"
)

// Fencing (asset/run.go has the rule): each run writes under its own
// prefix and commits with a conditional put of the manifest over the one
// it started from, so a stale run can neither overwrite the committed
// manifest nor any object the manifest names.

// ErrSuperseded is matched by the (transient) error of a run whose commit
// was refused because another job's run committed a manifest this job's
// output does not match: the job runs again over the new manifest.
var ErrSuperseded = errors.New("the asset's manifest changed while this run worked")

// cleanupTimeout bounds the deletion of a run's objects after the job's
// context ended.
const cleanupTimeout = time.Minute

// base is the asset manifest a run starts from.
type base struct {
	exists bool
	etag   string
	m      *asset.Manifest // nil when absent or unreadable
}

// current reads the asset's manifest and its ETag. The ETag is read first,
// so it is never newer than the bytes: a commit over it can only be
// refused, never let through on a manifest the run did not see.
func (r *Runner) current(ctx context.Context, assetID string) (base, error) {
	key := asset.ManifestKey(assetID)
	info, err := r.Out.Stat(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return base{}, nil
	}
	if err != nil {
		return base{}, fmt.Errorf("pipeline: read manifest: %w", err)
	}
	b := base{exists: true, etag: info.ETag}
	data, err := storage.ReadAll(ctx, r.Out, key)
	if errors.Is(err, storage.ErrNotFound) {
		return b, nil // deleted in between: the commit's If-Match will be refused
	}
	if err != nil {
		return base{}, fmt.Errorf("pipeline: read manifest: %w", err)
	}
	if m, err := asset.DecodeManifest(data); err == nil {
		b.m = m
	}
	return b, nil
}

// satisfies reports whether m is the output job would make from src.
func (r *Runner) satisfies(m *asset.Manifest, job *asset.Job, src *localSource) bool {
	return m != nil && m.Source.SHA256 == src.SHA256 && m.Profile == job.Profile && (m.Watermark != nil) == (r.WatermarkKey != nil)
}

// startRun writes the run's marker, its first object.
func (r *Runner) startRun(sw *sealWriter, job *asset.Job, b base) error {
	mk := asset.RunMarker{Run: sw.run, JobID: job.JobID, Start: time.Now().UTC(), Base: b.etag}
	data, err := json.Marshal(mk)
	if err != nil {
		return err
	}
	_, err = sw.putRetry(asset.RunMarkerKey(job.AssetID, sw.run), data, storage.PutOptions{ContentType: asset.TypeManifest, IfAbsent: true})
	return err
}

// commit puts the manifest over b. It returns the manifest's ETag, or
// the manifest another run committed first (won is false).
func (r *Runner) commit(ctx context.Context, sw *sealWriter, b base, data []byte) (etag string, other *asset.Manifest, err error) {
	opts := storage.PutOptions{ContentType: asset.ManifestRef().ContentType(), IfAbsent: !b.exists, IfMatch: b.etag}
	info, err := sw.putRetry(asset.ManifestKey(sw.assetID), data, opts)
	if err == nil {
		return info.ETag, nil, nil
	}
	if !errors.Is(err, storage.ErrPrecondition) {
		return "", nil, err
	}
	now, cerr := r.current(ctx, sw.assetID)
	if cerr != nil {
		return "", nil, cerr
	}
	if now.m != nil && now.m.Run == sw.run {
		// An earlier attempt of this put landed and its answer was lost.
		return now.etag, nil, nil
	}
	if now.m == nil {
		return "", nil, fmt.Errorf("pipeline: %w (it is now missing or unreadable)", ErrSuperseded)
	}
	return "", now.m, nil
}

// dropRun deletes a run's objects, its marker last, so an interrupted
// deletion is finished by the next collection.
func (r *Runner) dropRun(ctx context.Context, assetID, run string) (int, error) {
	marker := asset.RunMarkerKey(assetID, run)
	var keys []string
	for oi, err := range r.Out.List(ctx, asset.RunPrefix(assetID, run)) {
		if err != nil {
			return 0, err
		}
		if oi.Key != marker {
			keys = append(keys, oi.Key)
		}
	}
	for i, k := range append(keys, marker) {
		if err := r.Out.Delete(ctx, k); err != nil {
			return i, err
		}
	}
	return len(keys), nil
}

// collect deletes, after a commit whose manifest has ETag etag, every run
// of the asset that can no longer commit (its marker names another base:
// it started before this commit) and the objects of a schema-1 manifest
// this commit replaced. Runs that started from this commit are left alone.
func (r *Runner) collect(ctx context.Context, assetID, run, etag string, replaced *asset.Manifest, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	runs := map[string]bool{}
	var order []string
	for oi, err := range r.Out.List(ctx, asset.RunsPrefix(assetID)) {
		if err != nil {
			log.Warn("superseded runs not collected", "err", err)
			return
		}
		if id := asset.RunOf(assetID, oi.Key); id != "" && id != run && !runs[id] {
			runs[id] = true
			order = append(order, id)
		}
	}
	for _, id := range order {
		data, err := storage.ReadAll(ctx, r.Out, asset.RunMarkerKey(assetID, id))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			log.Warn("superseded run not collected", "run", id, "err", err)
			continue
		}
		if err == nil {
			if mk, derr := asset.DecodeRunMarker(data); derr == nil && mk.Base == etag {
				continue // started from this commit: it may still commit
			}
		}
		n, err := r.dropRun(ctx, assetID, id)
		if err != nil {
			log.Warn("superseded run not collected", "run", id, "err", err)
			continue
		}
		log.Info("superseded run collected", "run", id, "objects", n)
	}
	if replaced == nil || replaced.Run != "" {
		return
	}
	// The schema-1 layout: everything under the asset's prefix except the
	// manifest and the runs.
	n := 0
	for oi, err := range r.Out.List(ctx, asset.Prefix(assetID)) {
		if err != nil {
			log.Warn("replaced objects not collected", "err", err)
			return
		}
		if oi.Key == asset.ManifestKey(assetID) || strings.HasPrefix(oi.Key, asset.RunsPrefix(assetID)) {
			continue
		}
		if err := r.Out.Delete(ctx, oi.Key); err != nil {
			log.Warn("replaced objects not collected", "key", oi.Key, "err", err)
			return
		}
		n++
	}
	log.Info("replaced objects collected", "objects", n)
}
