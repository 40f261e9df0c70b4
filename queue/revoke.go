package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RevokedBucket is the KV bucket of revoked sessions: keys name what is
// revoked (the edge's deny-list keys), values the reason.
const RevokedBucket = "abseal_revoked"

// errNotLoaded is the state of a deny-list before its first load.
var errNotLoaded = errors.New("queue: revocations: not loaded yet")

// RevocationsConfig tunes the deny-list watch. The zero value is usable.
type RevocationsConfig struct {
	// CheckInterval is how often the watch confirms with the server that
	// it has seen every entry of the bucket (default 2s).
	CheckInterval time.Duration
	// LoadTimeout bounds loading the list when a watch starts (default 10s).
	LoadTimeout time.Duration
	// MaxBackoff bounds the wait between attempts to restart a broken
	// watch; the waits double from CheckInterval/4 (default 10s).
	MaxBackoff time.Duration
	Log        *slog.Logger // default: discard
}

func (c *RevocationsConfig) defaults() {
	if c.CheckInterval <= 0 {
		c.CheckInterval = 2 * time.Second
	}
	if c.LoadTimeout <= 0 {
		c.LoadTimeout = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Revocations is the deny-list the edges check on every request. Run keeps
// an in-memory copy current through a KV watch (updates reach every edge
// within a second) and Confirmed says how current it is.
type Revocations struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	cfg RevocationsConfig

	mu        sync.RWMutex
	revoked   map[string]bool
	confirmed time.Time // the list was complete at this time
	err       error     // why the watch is not working; nil while it is
}

// revokedConfig is the deny-list bucket, created by Open (worker setup).
func revokedConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket: RevokedBucket, Description: "revoked abseal sessions", History: 1,
		Storage: jetstream.FileStorage, Replicas: replicas,
	}
}

// OpenRevocations opens the deny-list that Open created. It only reads the
// bucket's configuration, so a client allowed to read the deny-list (an
// edge) can open it without rights on any other stream.
func OpenRevocations(ctx context.Context, nc *nats.Conn, cfg RevocationsConfig) (*Revocations, error) {
	cfg.defaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	kv, err := js.KeyValue(ctx, RevokedBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("queue: bucket %s: %w", RevokedBucket, ErrNotSetUp)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", RevokedBucket, err)
	}
	return &Revocations{js: js, kv: kv, cfg: cfg, revoked: map[string]bool{}, err: errNotLoaded}, nil
}

// Revoke adds a key to the deny-list.
func (r *Revocations) Revoke(ctx context.Context, key, reason string) error {
	if _, err := r.kv.Put(ctx, key, []byte(reason)); err != nil {
		return fmt.Errorf("queue: revoke %s: %w", key, err)
	}
	return nil
}

// Reinstate removes keys from the deny-list; a key that is not on it, or
// cannot be a KV key at all, is fine.
func (r *Revocations) Reinstate(ctx context.Context, keys ...string) error {
	for _, key := range keys {
		if err := r.reinstate(ctx, key); err != nil {
			return err
		}
	}
	return nil
}

func (r *Revocations) reinstate(ctx context.Context, key string) error {
	if _, err := r.kv.Get(ctx, key); errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey) {
		return nil
	}
	if err := r.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("queue: reinstate %s: %w", key, err)
	}
	return nil
}

// Revoked reports whether any of keys is on the deny-list as last seen by
// Run. While the watch is broken it answers from the last list it saw;
// Confirmed tells how old that is.
func (r *Revocations) Revoked(keys ...string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, k := range keys {
		if r.revoked[k] {
			return true
		}
	}
	return false
}

// Confirmed returns the last time the list was known to hold every entry
// of the bucket (zero before the first load) and, while the watch is not
// working, why.
func (r *Revocations) Confirmed() (time.Time, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.confirmed, r.err
}

// Run keeps the list current until ctx ends; one Run at a time. A watch that breaks (the
// server is unreachable, the bucket is gone, the update stream ends or
// falls behind) is logged and started again with backoff; the list is
// then reloaded whole, so entries deleted meanwhile are dropped too.
func (r *Revocations) Run(ctx context.Context) {
	minWait := r.cfg.CheckInterval / 4
	wait := minWait
	for {
		start := time.Now()
		err := r.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		if time.Since(start) > r.cfg.MaxBackoff {
			wait = minWait // it worked for a while: retry soon
		}
		r.cfg.Log.Warn("queue: revocation watch broken, restarting", "bucket", RevokedBucket, "err", err.Error(), "retry_in", wait.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, r.cfg.MaxBackoff)
	}
}

// confirm records that the list was complete at t.
func (r *Revocations) confirm(t time.Time) {
	r.mu.Lock()
	restored := r.err != nil && r.err != errNotLoaded
	r.confirmed, r.err = t, nil
	r.mu.Unlock()
	if restored {
		r.cfg.Log.Info("queue: revocation watch restored", "bucket", RevokedBucket)
	}
}

// watch runs one KV watch until it breaks (an error) or ctx ends (nil).
// It knows it is current when the bucket's last revision, asked of the
// server every CheckInterval, is one it has seen.
func (r *Revocations) watch(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(ctx, r.cfg.LoadTimeout)
	defer cancel()
	kv, err := r.js.KeyValue(lctx, RevokedBucket)
	if err != nil {
		return fmt.Errorf("queue: watch %s: %w", RevokedBucket, err)
	}
	// Entries after this revision reach the watch; the ones before are
	// its initial values.
	seen, err := lastRevision(lctx, kv)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("queue: watch %s: %w", RevokedBucket, err)
	}
	defer w.Stop()
	// broken reports err before the deferred Stop, which can take a
	// while against a server that is gone.
	broken := func(err error) error {
		r.mu.Lock()
		r.err = err
		r.mu.Unlock()
		return err
	}
	loading := map[string]bool{} // nil once the initial values are in
	loadBy := time.Now().Add(r.cfg.LoadTimeout)
	tick := time.NewTicker(r.cfg.CheckInterval)
	defer tick.Stop()
	behind := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return broken(fmt.Errorf("queue: watch %s: the update stream ended", RevokedBucket))
			}
			if e == nil {
				r.mu.Lock()
				r.revoked = loading
				r.mu.Unlock()
				loading = nil
				r.confirm(time.Now())
				continue
			}
			seen = max(seen, e.Revision())
			m := loading
			if m == nil {
				r.mu.Lock()
				m = r.revoked
			}
			if e.Operation() == jetstream.KeyValuePut {
				m[e.Key()] = true
			} else {
				delete(m, e.Key())
			}
			if loading == nil {
				r.mu.Unlock()
			}
		case <-tick.C:
			if loading != nil {
				if time.Now().After(loadBy) {
					return broken(fmt.Errorf("queue: watch %s: no initial state after %s", RevokedBucket, r.cfg.LoadTimeout))
				}
				continue
			}
			asked := time.Now()
			cctx, cancel := context.WithTimeout(ctx, r.cfg.CheckInterval)
			last, err := lastRevision(cctx, kv)
			cancel()
			if err != nil {
				return broken(err)
			}
			if last > seen {
				// Updates in flight; three checks in a row means stuck.
				if behind++; behind >= 3 {
					return broken(fmt.Errorf("queue: watch %s: behind the bucket (revision %d of %d)", RevokedBucket, seen, last))
				}
				continue
			}
			behind = 0
			r.confirm(asked)
		}
	}
}

// lastRevision asks the server for the bucket's last revision.
func lastRevision(ctx context.Context, kv jetstream.KeyValue) (uint64, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue: status of %s: %w", RevokedBucket, err)
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return 0, fmt.Errorf("queue: status of %s: unexpected type %T", RevokedBucket, st)
	}
	return bs.StreamInfo().State.LastSeq, nil
}
