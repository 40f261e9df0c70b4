package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The session registry: every session a token is minted for, recorded
// durably when it is minted, so that the detector can score the sessions
// that were issued for an asset (package forensic) and name who received
// them. Records live in the SessionsStream, one subject per asset; wmids
// are allocated per asset from a counter in the WMIDBucket with
// compare-and-set, so no two sessions of an asset share one.
const (
	SessionsStream  = "ABSEAL_SESSIONS"
	SessionsSubject = "abseal.sessions"
	WMIDBucket      = "abseal_wmids"
)

// SessionRecord is one issued session. It holds no secret: the token
// itself is not recorded, only its id.
type SessionRecord struct {
	V        int       `json:"v"`
	Asset    string    `json:"asset"`
	WMID     uint64    `json:"wmid"`
	OpID     uint64    `json:"wmopid"`
	Subject  string    `json:"subject,omitempty"`
	TokenID  string    `json:"token_id"` // hex of the token's cti
	IssuedAt time.Time `json:"issued_at"`
	Expires  time.Time `json:"expires_at"`
	Mode     string    `json:"mode"`               // "indirect" or "direct"
	Operator string    `json:"operator,omitempty"` // who minted it (the API key's name)
}

// Registry records issued sessions and lists them per asset.
type Registry struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	wmids  jetstream.KeyValue
}

// registryConfigs are the registry's stream and wmid bucket, created by
// Open (worker setup): records kept for retention (0: forever).
func registryConfigs(retention time.Duration, replicas int) (jetstream.StreamConfig, jetstream.KeyValueConfig) {
	return jetstream.StreamConfig{
			Name: SessionsStream, Subjects: []string{SessionsSubject + ".>"}, Retention: jetstream.LimitsPolicy,
			MaxAge: retention, Duplicates: 10 * time.Minute, Storage: jetstream.FileStorage, Replicas: replicas,
			Description: "abseal session registry: issued sessions per asset",
		}, jetstream.KeyValueConfig{
			Bucket: WMIDBucket, Description: "abseal: the last wmid allocated per asset", History: 1,
			Storage: jetstream.FileStorage, Replicas: replicas,
		}
}

// OpenRegistry opens the registry that Open created. It only looks the
// stream and bucket up, so an edge that mints (or a detector that reads)
// needs no right to change them.
func OpenRegistry(ctx context.Context, nc *nats.Conn) (*Registry, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	st, err := js.Stream(ctx, SessionsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("queue: session registry: stream %s: %w", SessionsStream, ErrNotSetUp)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: session registry: stream %s: %w", SessionsStream, err)
	}
	kv, err := js.KeyValue(ctx, WMIDBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("queue: session registry: bucket %s: %w", WMIDBucket, ErrNotSetUp)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: session registry: bucket %s: %w", WMIDBucket, err)
	}
	return &Registry{js: js, stream: st, wmids: kv}, nil
}

// sessionsSubject is an asset's subject: asset ids may hold dots, which
// subjects use as separators, and never '~'.
func sessionsSubject(asset string) string {
	return SessionsSubject + "." + strings.ReplaceAll(asset, ".", "~")
}

func checkAsset(asset string) error {
	if asset == "" || len(asset) > 128 || strings.ContainsAny(asset, " \t\r\n*>~/") {
		return fmt.Errorf("queue: registry: asset id %q is not valid", asset)
	}
	return nil
}

// Allocate reserves the next wmid of asset: 1, 2, 3, … in the order of
// the calls, never the same twice, whichever edge or process asks.
func (r *Registry) Allocate(ctx context.Context, asset string) (uint64, error) {
	if err := checkAsset(asset); err != nil {
		return 0, err
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		e, err := r.wmids.Get(ctx, asset)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			if _, err := r.wmids.Create(ctx, asset, []byte("1")); err == nil {
				return 1, nil
			} else if !errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("queue: registry: allocate a wmid for %s: %w", asset, err)
			}
			continue // another minter created it first
		}
		if err != nil {
			return 0, fmt.Errorf("queue: registry: allocate a wmid for %s: %w", asset, err)
		}
		last, err := strconv.ParseUint(string(e.Value()), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("queue: registry: %s's wmid counter holds %q", asset, e.Value())
		}
		if _, err := r.wmids.Update(ctx, asset, []byte(strconv.FormatUint(last+1, 10)), e.Revision()); err == nil {
			return last + 1, nil
		} else if !isWrongRevision(err) {
			return 0, fmt.Errorf("queue: registry: allocate a wmid for %s: %w", asset, err)
		}
	}
}

// isWrongRevision reports a compare-and-set that lost to another writer.
func isWrongRevision(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Record stores an issued session. Recording the same asset and wmid
// twice keeps the first record (the publish is deduplicated).
func (r *Registry) Record(ctx context.Context, s SessionRecord) error {
	if err := checkAsset(s.Asset); err != nil {
		return err
	}
	if s.Mode != "indirect" && s.Mode != "direct" {
		return fmt.Errorf("queue: registry: mode %q, want indirect or direct", s.Mode)
	}
	s.V = 1
	data, err := json.Marshal(s)
	if err != nil {
		return err
	}
	_, err = r.js.Publish(ctx, sessionsSubject(s.Asset), data,
		jetstream.WithMsgID(s.Asset+"/"+strconv.FormatUint(s.WMID, 10)), jetstream.WithExpectStream(SessionsStream))
	if err != nil {
		return fmt.Errorf("queue: registry: record session %d of %s: %w", s.WMID, s.Asset, err)
	}
	return nil
}

// Sessions returns the sessions recorded for asset, in the order they
// were recorded.
func (r *Registry) Sessions(ctx context.Context, asset string) ([]SessionRecord, error) {
	if err := checkAsset(asset); err != nil {
		return nil, err
	}
	subj := sessionsSubject(asset)
	info, err := r.stream.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		return nil, fmt.Errorf("queue: registry: %w", err)
	}
	n := info.State.Subjects[subj]
	if n == 0 {
		return nil, nil
	}
	cons, err := r.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subj}})
	if err != nil {
		return nil, fmt.Errorf("queue: registry: %w", err)
	}
	out := make([]SessionRecord, 0, n)
	for uint64(len(out)) < n {
		batch, err := cons.Fetch(int(min(n-uint64(len(out)), 1000)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("queue: registry: %w", err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var s SessionRecord
			if err := json.Unmarshal(m.Data(), &s); err != nil {
				return nil, fmt.Errorf("queue: registry: a record of %s: %w", asset, err)
			}
			out = append(out, s)
			if meta, err := m.Metadata(); err == nil && meta.NumPending == 0 {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("queue: registry: %w", err)
		}
		if got == 0 {
			return nil, fmt.Errorf("queue: registry: %d of %s's %d records read, then nothing", len(out), asset, n)
		}
	}
	return out, nil
}
