package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/storage"
)

// sealWriter is the ObjectWriter of a job: it seals every track object with
// its rendition's DEK (associated data: the object's place) and uploads it
// under the asset's prefix, a few uploads at a time so the encoders do not
// wait on the network. Playlists (hls/, dash/) and WMPaceInfo sidecars hold
// no media and are stored as they are.
type sealWriter struct {
	ctx    context.Context
	cancel context.CancelFunc
	r      *Runner
	asset  string
	queue  chan upload
	wg     sync.WaitGroup

	mu   sync.Mutex
	deks map[string]*envelope.DEK
	objs map[string]Object // by asset-relative key
	err  error

	objects atomic.Int64
	bytes   atomic.Int64
}

type upload struct {
	key   string // full key
	data  []byte
	ctype string
}

func newSealWriter(ctx context.Context, r *Runner, asset string) *sealWriter {
	ctx, cancel := context.WithCancel(ctx)
	n := r.Uploads
	if n <= 0 {
		n = 4
	}
	w := &sealWriter{ctx: ctx, cancel: cancel, r: r, asset: asset, queue: make(chan upload, n),
		deks: map[string]*envelope.DEK{}, objs: map[string]Object{}}
	for range n {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for u := range w.queue {
				if w.failed() != nil {
					continue
				}
				if err := w.putRetry(u.key, u.data, u.ctype); err != nil {
					w.fail(err)
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

// WriteObject implements ObjectWriter.
func (w *sealWriter) WriteObject(ctx context.Context, key string, data []byte) error {
	if err := w.failed(); err != nil {
		return err
	}
	full := AssetPrefix(w.asset) + key
	if ctype := metadataType(key); ctype != "" {
		return w.enqueue(ctx, upload{key: full, data: data, ctype: ctype})
	}
	rung, variant, object := keyParts(key)
	dek, err := w.dek(rung)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Grow(len(data) + len(data)/1024 + 256)
	place := envelope.Place{Asset: w.asset, Rung: rung, Variant: variant, Object: object}
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
	w.objs[key] = Object{Key: full, Size: int64(buf.Len()), SHA256: hex.EncodeToString(sum[:])}
	w.mu.Unlock()
	return w.enqueue(ctx, upload{key: full, data: buf.Bytes(), ctype: "application/octet-stream"})
}

// metadataType returns the content type of an object that holds no media
// and is stored as it is (playlists, WMPaceInfo sidecars), or "".
func metadataType(key string) string {
	switch {
	case strings.HasPrefix(key, "hls/"):
		return "application/vnd.apple.mpegurl"
	case strings.HasPrefix(key, "dash/"):
		return "application/dash+xml"
	case strings.Contains(key, "/"+cmaf.WMPaceInfoDir+"/"):
		return cmaf.WMPaceInfoContentType
	}
	return ""
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
	d, err := w.r.KEK.NewDEK(envelope.RenditionAD(w.asset, rung))
	if err != nil {
		return nil, fmt.Errorf("pipeline: new data key for %s/%s: %w", w.asset, rung, err)
	}
	w.deks[rung] = d
	return d, nil
}

// putRetry stores an object, retrying transient failures with backoff for
// up to PutRetry, so a short S3 outage does not cost the transcode.
func (w *sealWriter) putRetry(key string, data []byte, ctype string) error {
	limit := w.r.PutRetry
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	deadline := time.Now().Add(limit)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		_, err := w.r.Out.Put(w.ctx, key, bytes.NewReader(data), storage.PutOptions{ContentType: ctype})
		if err == nil {
			w.objects.Add(1)
			w.bytes.Add(int64(len(data)))
			return nil
		}
		if w.ctx.Err() != nil || time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("pipeline: put %s (attempt %d): %w", key, attempt, err)
		}
		if w.r.Log != nil {
			w.r.Log.Warn("put failed, retrying", "key", key, "attempt", attempt, "in", delay, "err", err)
		}
		select {
		case <-time.After(delay):
		case <-w.ctx.Done():
			return fmt.Errorf("pipeline: put %s: %w", key, w.ctx.Err())
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// rendition describes a sealed rendition for the asset manifest.
func (w *sealWriter) rendition(r cmaf.Rendition, positions []int) (Rendition, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	peak, avg := r.Bandwidth()
	out := Rendition{
		Name: r.Name, Kind: r.Kind, Codecs: r.Codecs, Width: r.Width, Height: r.Height,
		FrameRate: r.FrameRate, SampleRate: r.SampleRate, Channels: r.Channels,
		Bitrate: avg, PeakBitrate: peak, Timescale: r.Timescale,
	}
	dek := w.deks[r.Name]
	if dek == nil {
		return out, fmt.Errorf("pipeline: rendition %s has no data key", r.Name)
	}
	out.DEK = DEKInfo{KEKURI: dek.KEKURI(), Wrapped: dek.Wrapped()}
	var ok bool
	if out.Init, ok = w.objs[r.Name+"/"+cmaf.InitName]; !ok {
		return out, fmt.Errorf("pipeline: rendition %s has no init segment", r.Name)
	}
	for i, s := range r.Segments {
		seg := Seg{Index: s.Index, Number: s.Number, Time: s.Start, Duration: s.Duration, Size: s.Size,
			Position: -1, Variants: map[string]Object{}}
		if r.Kind == "video" && i < len(positions) {
			seg.Position = positions[i]
		}
		name := cmaf.SegmentName(s.Number)
		if o, ok := w.objs[r.Name+"/"+name]; ok { // a track without variants (audio)
			seg.Variants["a"] = o
		}
		for _, v := range variantNames {
			if o, ok := w.objs[r.Name+"/"+v+"/"+name]; ok {
				seg.Variants[v] = o
			}
		}
		if _, ok := seg.Variants["a"]; !ok {
			return out, fmt.Errorf("pipeline: %s segment %d was not stored", r.Name, s.Number)
		}
		out.Segments = append(out.Segments, seg)
	}
	return out, nil
}
