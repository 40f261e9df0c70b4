package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// RevokedBucket is the KV bucket of revoked sessions: keys "wmid-<n>" or
// "sub-<subject>", values the reason.
const RevokedBucket = "abseal_revoked"

// Revocations is the deny-list the edges check on every request. Updates
// reach every edge through a KV watch, within a second.
type Revocations struct {
	kv jetstream.KeyValue

	mu      sync.RWMutex
	revoked map[string]bool
	ready   chan struct{}
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
func OpenRevocations(ctx context.Context, nc *nats.Conn) (*Revocations, error) {
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
	return &Revocations{kv: kv, revoked: map[string]bool{}, ready: make(chan struct{})}, nil
}

// Revoke adds a key ("wmid-<n>" or "sub-<subject>") to the deny-list.
func (r *Revocations) Revoke(ctx context.Context, key, reason string) error {
	if _, err := r.kv.Put(ctx, key, []byte(reason)); err != nil {
		return fmt.Errorf("queue: revoke %s: %w", key, err)
	}
	return nil
}

// Reinstate removes a key from the deny-list.
func (r *Revocations) Reinstate(ctx context.Context, key string) error {
	if err := r.kv.Delete(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("queue: reinstate %s: %w", key, err)
	}
	return nil
}

// Revoked reports whether any of keys is on the deny-list (as last seen by
// Watch).
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

// Watch keeps the in-memory deny-list current until ctx ends. It returns
// once the current list is loaded; updates keep arriving in the
// background.
func (r *Revocations) Watch(ctx context.Context) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("queue: watch %s: %w", RevokedBucket, err)
	}
	loaded := make(chan struct{})
	go func() {
		defer w.Stop()
		once := sync.Once{}
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					once.Do(func() { close(loaded) })
					continue
				}
				r.mu.Lock()
				if e.Operation() == jetstream.KeyValuePut {
					r.revoked[e.Key()] = true
				} else {
					delete(r.revoked, e.Key())
				}
				r.mu.Unlock()
			}
		}
	}()
	select {
	case <-loaded:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return fmt.Errorf("queue: watch %s: no initial state after 10s", RevokedBucket)
	}
}
