package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
)

// sealWriter is the ObjectWriter of a job: it seals every track object with
// its rendition's DEK (associated data: the object's place, sealed.Place)
// and uploads it at its key, a few uploads at a time so the encoders do not
// wait on the network. Playlists and WMPaceInfo sidecars hold no media and
// are stored as they are.
type sealWriter struct {
	ctx     context.Context
	cancel  context.CancelFunc
	r       *Runner
	assetID string
	run     string // the run's objects go under asset.RunPrefix
	// keyOf is where an object goes (default: ref.RunKey under run).
	keyOf func(asset.Ref) string
	queue chan upload
	wg    sync.WaitGroup

	mu   sync.Mutex
	deks map[string]*envelope.DEK
	objs map[asset.Ref]asset.Object
	err  error

	objects atomic.Int64
	bytes   atomic.Int64
	stored  sync.Once // the first segment (Runner.Stall)
}

type upload struct {
	key     string // full key
	data    []byte
	ctype   string
	segment bool
}

func newSealWriter(ctx context.Context, r *Runner, assetID, run string) *sealWriter {
	ctx, cancel := context.WithCancel(ctx)
	n := r.Uploads
	if n <= 0 {
		n = 4
	}
	w := &sealWriter{ctx: ctx, cancel: cancel, r: r, assetID: assetID, run: run, queue: make(chan upload, n),
		deks: map[string]*envelope.DEK{}, objs: map[asset.Ref]asset.Object{}}
	for range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for u := range w.queue {
				if w.failed() != nil {
					continue
				}
				if _, err := w.putRetry(u.key, u.data, storage.PutOptions{ContentType: u.ctype}); err != nil {
					w.fail(err)
				} else if u.segment {
					w.stored.Do(func() { w.r.stall(StallPut, w.run) })
				}
			}
		}()
	}
	return w
}

func (w *sealWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *sealWriter) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.cancel()
}

// wait finishes the uploads and returns the first error.
func (w *sealWriter) wait() error {
	close(w.queue)
	w.wg.Wait()
	return w.failed()
}

// WriteObject implements ObjectWriter. A sealed object is buffered whole:
// its digest goes into the manifest before the upload is queued.
func (w *sealWriter) WriteObject(ctx context.Context, ref asset.Ref, data []byte) error {
	if err := w.failed(); err != nil {
		return err
	}
	key := ref.RunKey(w.assetID, w.run)
	if w.keyOf != nil && ref.Sealed() {
		key = w.keyOf(ref)
	}
	if !ref.Sealed() {
		return w.enqueue(ctx, upload{key: key, data: data, ctype: ref.ContentType()})
	}
	dek, err := w.dek(ref.Rung)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Grow(len(data) + len(data)/1024 + 256)
	place := sealed.Place(w.assetID, ref)
	sw, err := dek.Seal(&buf, place.AD())
	if err != nil {
		return fmt.Errorf("pipeline: seal %s: %w", place, err)
	}
	if _, err := sw.Write(data); err != nil {
		return fmt.Errorf("pipeline: seal %s: %w", place, err)
	}
	if err := sw.Close(); err != nil {
		return fmt.Errorf("pipeline: seal %s: %w", place, err)
	}
	sum := sha256.Sum256(buf.Bytes())
	w.mu.Lock()
	w.objs[ref] = asset.Object{Key: key, Size: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:])}
	w.mu.Unlock()
	return w.enqueue(ctx, upload{key: key, data: buf.Bytes(), ctype: ref.ContentType(), segment: ref.Kind == asset.KindSegment})
}

func (w *sealWriter) enqueue(ctx context.Context, u upload) error {
	select {
	case w.queue <- u:
		return nil
	case <-w.ctx.Done():
		if err := w.failed(); err != nil {
			return err
		}
		return w.ctx.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// dek returns the rendition's DEK, making it on first use.
func (w *sealWriter) dek(rung string) (*envelope.DEK, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if d, ok := w.deks[rung]; ok {
		return d, nil
	}
	d, err := w.r.KEK.NewDEK(envelope.RenditionAD(w.assetID, rung))
	if err != nil {
		return nil, fmt.Errorf("pipeline: new data key for %s/%s: %w", w.assetID, rung, err)
	}
	w.deks[rung] = d
	return d, nil
}

// putRetry stores an object, retrying transient failures with backoff for
// up to PutRetry, so a short S3 outage does not cost the transcode. A
// failed precondition is not retried: it is returned at once
// (storage.ErrPrecondition).
func (w *sealWriter) putRetry(key string, data []byte, opts storage.PutOptions) (storage.ObjectInfo, error) {
	limit := w.r.PutRetry
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	deadline := time.Now().Add(limit)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		info, err := w.r.Out.Put(w.ctx, key, bytes.NewReader(data), opts)
		if err == nil {
			w.objects.Add(1)
			w.bytes.Add(int64(len(data)))
			return info, nil
		}
		if errors.Is(err, storage.ErrPrecondition) {
			return info, err
		}
		if w.ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return info, fmt.Errorf("pipeline: put %s (attempt %d): %w", key, attempt, err)
		}
		if w.r.Log != nil {
			w.r.Log.Warn("put failed, retrying", "key", key, "attempt", attempt, "in", delay, "err", err)
		}
		select {
		case <-time.After(delay):
		case <-w.ctx.Done():
			return info, fmt.Errorf("pipeline: put %s: %w", key, w.ctx.Err())
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// rendition describes a sealed rendition for the asset manifest.
func (w *sealWriter) rendition(r cmaf.Rendition, positions []int) (asset.Rendition, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	peak, avg := r.Bandwidth()
	out := asset.Rendition{
		Name: r.Name, Kind: r.Kind, Codecs: r.Codecs, Width: r.Width, Height: r.Height,
		FrameRate: r.FrameRate, SampleRate: r.SampleRate, Channels: r.Channels,
		Bitrate: avg, PeakBitrate: peak, Timescale: r.Timescale,
	}
	dek := w.deks[r.Name]
	if dek == nil {
		return out, fmt.Errorf("pipeline: rendition %s has no data key", r.Name)
	}
	out.DEK = asset.DEKInfo{KEKURI: dek.KEKURI(), Wrapped: dek.Wrapped()}
	var ok bool
	if out.Init, ok = w.objs[asset.Init(r.Name)]; !ok {
		return out, fmt.Errorf("pipeline: rendition %s has no init segment", r.Name)
	}
	for i, s := range r.Segments {
		seg := asset.Seg{Index: s.Index, Number: s.Number, Time: s.Start, Duration: s.Duration, Size: s.Size,
			Position: -1, Variants: map[string]asset.Object{}}
		if r.Kind == "video" && i < len(positions) {
			seg.Position = positions[i]
		}
		if o, ok := w.objs[asset.Segment(r.Name, "", s.Number)]; ok { // a track without variants (audio)
			seg.Variants[asset.VariantA] = o
		}
		for _, v := range asset.Variants {
			if o, ok := w.objs[asset.Segment(r.Name, v, s.Number)]; ok {
				seg.Variants[v] = o
			}
		}
		if _, ok := seg.Variants[asset.VariantA]; !ok {
			return out, fmt.Errorf("pipeline: %s segment %d was not stored", r.Name, s.Number)
		}
		out.Segments = append(out.Segments, seg)
	}
	return out, nil
}
