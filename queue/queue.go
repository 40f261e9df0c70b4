// Package queue is abseal's NATS JetStream boundary: the jobs stream (work
// queue) and its durable pull consumer, the upload-event intake from MinIO
// bucket notifications, the asset-ready events, the dead letters, and the
// job-state key-value bucket. It moves opaque job payloads and knows
// nothing about video.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stream, consumer and bucket names.
const (
	JobsStream     = "ABSEAL_JOBS"
	UploadsStream  = "ABSEAL_UPLOADS"
	ReadyStream    = "ABSEAL_ASSETS"
	DLQStream      = "ABSEAL_DLQ"
	StateBucket    = "abseal_jobs"
	WorkerConsumer = "workers"
	IntakeConsumer = "intake"
)

// Subjects. Jobs go to JobsSubject+"."+priority; MinIO publishes upload
// events to UploadsSubject.
const (
	JobsSubject    = "abseal.jobs"
	UploadsSubject = "abseal.uploads"
	ReadySubject   = "abseal.assets.ready"
	DLQSubject     = "abseal.dlq"
)

// ErrNoState is matched by GetState's error for an unknown job.
var ErrNoState = errors.New("no such job")

// Config configures the streams and the worker consumer. Zero values take
// the defaults.
type Config struct {
	// Replicas of every stream and bucket (1; 3 on a NATS cluster).
	Replicas int
	// AckWait is how long a delivered job may go without an ack or an
	// InProgress heartbeat before it is redelivered (default 60s).
	AckWait time.Duration
	// MaxDeliver bounds the deliveries of one job that are run (default
	// 5); the last failure goes to the dead letters. The server itself
	// never gives up on a job (the consumer's max_deliver is unlimited and
	// this limit is kept in its metadata, MaxDeliverMetadata): a job whose
	// workers all died delivers once more, to whichever worker comes
	// next, which dead-letters it without running it (Queue.Exhausted).
	// So no job is ever left in the stream unanswered, whether or not a
	// worker was running when the limit was reached.
	MaxDeliver int
	// Backoff is the delay before redelivering a job after its n-th
	// delivery failed transiently (the last entry repeats). Default 5s, 30s, 2m, 5m.
	Backoff []time.Duration
	// MaxAckPending bounds the jobs in flight over all workers (default
	// 1000); each worker pulls only as many as its concurrency.
	MaxAckPending int
	// DuplicateWindow is how long a job id is remembered (default 24h).
	DuplicateWindow time.Duration
	// StateTTL is how long job states are kept (default 7 days).
	StateTTL time.Duration
	// SessionRetention is how long the session registry keeps the
	// records of issued sessions (0: forever), set when the registry is
	// first created. They are forensic records: keep them as long as a
	// leak of an asset may surface.
	SessionRetention time.Duration
	// KeepConsumer is set by workers: the worker consumer is created if it
	// is missing but never changed; its settings (AckWait, MaxDeliver,
	// MaxAckPending) are adopted and differences from this Config are
	// reported in Queue.ConsumerMismatch. `worker setup` (KeepConsumer
	// false) owns the consumer's configuration.
	KeepConsumer bool
}

func (c *Config) defaults() {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.AckWait <= 0 {
		c.AckWait = 60 * time.Second
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 5
	}
	if len(c.Backoff) == 0 {
		c.Backoff = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 1000
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 24 * time.Hour
	}
	if c.StateTTL <= 0 {
		c.StateTTL = 7 * 24 * time.Hour
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Replicas < 0 || c.Replicas > 5:
		return fmt.Errorf("queue: replicas %d is not 1-5", c.Replicas)
	case c.AckWait < 0 || (c.AckWait > 0 && c.AckWait < time.Second):
		return fmt.Errorf("queue: ack wait %s is under 1s", c.AckWait)
	case c.MaxDeliver < 0:
		return fmt.Errorf("queue: max deliver %d is negative", c.MaxDeliver)
	case c.SessionRetention < 0:
		return fmt.Errorf("queue: session retention %s is negative", c.SessionRetention)
	}
	return nil
}

// Queue is a connection to abseal's streams.
type Queue struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	cfg   Config
	jobs  jetstream.Stream
	state jetstream.KeyValue
	// ConsumerMismatch lists how the worker consumer's settings differ
	// from those asked for (Config.KeepConsumer), as "ack_wait: asked 5s,
	// the consumer has 1m0s"; the consumer's are in effect.
	ConsumerMismatch []string
	// LegacyConsumer is set when the worker consumer was made by a release
	// that let the server stop delivering at max_deliver: jobs exhausted
	// by crashes then reach the dead letters only through the server's
	// advisory (WatchExhausted). `worker setup` converts it.
	LegacyConsumer bool
}

// Open creates or updates abseal's streams, the worker consumer, the
// job-state bucket, the deny-list bucket and the session registry on nc's
// server and returns the queue.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Queue, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := &Queue{nc: nc, js: js, cfg: cfg}
	streams := []jetstream.StreamConfig{
		{Name: JobsStream, Subjects: []string{JobsSubject + ".>"}, Retention: jetstream.WorkQueuePolicy,
			Duplicates: cfg.DuplicateWindow, Description: "abseal jobs (work queue)"},
		{Name: UploadsStream, Subjects: []string{UploadsSubject, UploadsSubject + ".>"}, Retention: jetstream.WorkQueuePolicy,
			Duplicates: 10 * time.Minute, Description: "MinIO bucket notifications"},
		{Name: ReadyStream, Subjects: []string{ReadySubject + ".>"}, Retention: jetstream.LimitsPolicy,
			MaxMsgsPerSubject: 16, Duplicates: time.Hour, Description: "asset-ready events for the delivery tier"},
		{Name: DLQStream, Subjects: []string{DLQSubject + ".>"}, Retention: jetstream.LimitsPolicy,
			Duplicates: time.Hour, MaxAge: 90 * 24 * time.Hour, Description: "dead-lettered jobs with their reason"},
	}
	for _, sc := range streams {
		sc.Storage = jetstream.FileStorage
		sc.Replicas = cfg.Replicas
		s, err := q.stream(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("queue: stream %s: %w", sc.Name, err)
		}
		if sc.Name == JobsStream {
			q.jobs = s
			if cfg.KeepConsumer {
				// A worker runs with the replicas setup gave the streams.
				q.cfg.Replicas = max(s.CachedInfo().Config.Replicas, 1)
				cfg.Replicas = q.cfg.Replicas
			}
		}
	}
	// No server-side BackOff: it would also stretch NakWithDelay's delays.
	// A crashed worker's job comes back after AckWait; failed jobs are
	// Nak'ed with RetryDelay.
	cc := jetstream.ConsumerConfig{
		Durable: WorkerConsumer, Description: "abseal workers",
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: cfg.AckWait, MaxDeliver: -1,
		MaxAckPending: cfg.MaxAckPending, FilterSubject: JobsSubject + ".>", Replicas: cfg.Replicas,
		Metadata: map[string]string{MaxDeliverMetadata: strconv.Itoa(cfg.MaxDeliver)},
	}
	if err := q.consumer(ctx, cc); err != nil {
		return nil, fmt.Errorf("queue: consumer %s: %w", WorkerConsumer, err)
	}
	kvc := jetstream.KeyValueConfig{
		Bucket: StateBucket, Description: "abseal job state and progress", History: 1,
		TTL: cfg.StateTTL, Storage: jetstream.FileStorage, Replicas: cfg.Replicas,
	}
	var kv jetstream.KeyValue
	if cfg.KeepConsumer {
		kv, err = ensureKeyValue(ctx, js, kvc)
	} else {
		kv, err = js.CreateOrUpdateKeyValue(ctx, kvc)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", StateBucket, err)
	}
	q.state = kv
	// The session registry, like the deny-list, is created once and never
	// updated here: its records are forensic evidence, which workers may
	// not change or age out (deploy/nats.conf).
	sc, kc := registryConfigs(cfg.SessionRetention, cfg.Replicas)
	if _, err := ensureStream(ctx, js, sc); err != nil {
		return nil, fmt.Errorf("queue: stream %s: %w", SessionsStream, err)
	}
	if _, err := ensureKeyValue(ctx, js, kc); err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", WMIDBucket, err)
	}
	// The deny-list is created once and never updated here: workers may
	// not change it (deploy/nats.conf), only read that it exists.
	if _, err := ensureKeyValue(ctx, js, revokedConfig(cfg.Replicas)); err != nil {
		return nil, fmt.Errorf("queue: bucket %s: %w", RevokedBucket, err)
	}
	return q, nil
}

// ensureStream opens stream sc.Name, creating it if it is missing (a
// concurrent creator is tolerated); one that exists is never changed.
func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig) (jetstream.Stream, error) {
	s, err := js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if s, err = js.CreateStream(ctx, sc); errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, sc.Name)
		}
	}
	return s, err
}

// ensureKeyValue is ensureStream for a key-value bucket.
func ensureKeyValue(ctx context.Context, js jetstream.JetStream, kc jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, kc.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		if kv, err = js.CreateKeyValue(ctx, kc); errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, kc.Bucket)
		}
	}
	return kv, err
}

// stream creates or updates a stream (setup, the owner of the streams'
// configuration), or for a worker (KeepConsumer) creates it only if it is
// missing: a worker never changes a stream, so one started with other
// flags cannot, say, take a replicated stream down to one replica.
func (q *Queue) stream(ctx context.Context, sc jetstream.StreamConfig) (jetstream.Stream, error) {
	if !q.cfg.KeepConsumer {
		return q.js.CreateOrUpdateStream(ctx, sc)
	}
	return ensureStream(ctx, q.js, sc)
}

// consumer creates or updates the worker consumer (the owner), or with
// KeepConsumer creates it only if missing and adopts what it has.
func (q *Queue) consumer(ctx context.Context, cc jetstream.ConsumerConfig) error {
	if !q.cfg.KeepConsumer {
		_, err := q.jobs.CreateOrUpdateConsumer(ctx, cc)
		return err
	}
	c, err := q.jobs.Consumer(ctx, cc.Durable)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		if c, err = q.jobs.CreateConsumer(ctx, cc); errors.Is(err, jetstream.ErrConsumerExists) {
			c, err = q.jobs.Consumer(ctx, cc.Durable) // another worker made it first
		}
	}
	if err != nil {
		return err
	}
	have := c.CachedInfo().Config
	limit, legacy := deliveryLimit(have)
	q.LegacyConsumer = legacy
	for _, d := range []struct {
		name        string
		asked, have any
	}{
		{"ack_wait", cc.AckWait, have.AckWait},
		{"max_deliver", q.cfg.MaxDeliver, limit},
		{"max_ack_pending", cc.MaxAckPending, have.MaxAckPending},
	} {
		if d.asked != d.have {
			q.ConsumerMismatch = append(q.ConsumerMismatch, fmt.Sprintf("%s: asked %v, the consumer has %v", d.name, d.asked, d.have))
		}
	}
	q.cfg.AckWait, q.cfg.MaxDeliver, q.cfg.MaxAckPending = have.AckWait, limit, have.MaxAckPending
	return nil
}

// MaxDeliverMetadata is the worker consumer's metadata key that holds the
// delivery limit (Config.MaxDeliver).
const MaxDeliverMetadata = "abseal_max_deliver"

// deliveryLimit is a worker consumer's delivery limit: from its metadata,
// or, for a consumer made before it was kept there (legacy), the server's
// max_deliver.
func deliveryLimit(cc jetstream.ConsumerConfig) (limit int, legacy bool) {
	if n, err := strconv.Atoi(cc.Metadata[MaxDeliverMetadata]); err == nil && n > 0 {
		return n, false
	}
	return cc.MaxDeliver, cc.MaxDeliver > 0
}

// Exhausted reports whether m is a job's delivery after its last one
// (Config.MaxDeliver): every worker that held it died or stalled. Dead-
// letter it without running it.
func (q *Queue) Exhausted(m *Msg) bool { return m.Attempt() > q.cfg.MaxDeliver }

// ErrNotSetUp is matched by Attach's error when the streams do not exist.
var ErrNotSetUp = errors.New("abseal's streams do not exist on this NATS server (start a worker first, or `worker --dev`)")

// Attach connects a client (such as the enqueue CLI) to streams a worker
// has set up, without creating or changing anything.
func Attach(ctx context.Context, nc *nats.Conn) (*Queue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	q := &Queue{nc: nc, js: js}
	q.cfg.defaults()
	if q.jobs, err = js.Stream(ctx, JobsStream); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("queue: %w", ErrNotSetUp)
		}
		return nil, fmt.Errorf("queue: %w", err)
	}
	if q.state, err = js.KeyValue(ctx, StateBucket); err != nil {
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("queue: %w", ErrNotSetUp)
		}
		return nil, fmt.Errorf("queue: %w", err)
	}
	return q, nil
}

// RetryDelay is the delay before redelivering a job whose attempt-th
// delivery failed transiently.
func (q *Queue) RetryDelay(attempt int) time.Duration {
	b := q.cfg.Backoff
	return b[min(max(attempt-1, 0), len(b)-1)]
}

// Pending is how many jobs the jobs stream holds: queued, running or
// waiting for a retry (a work queue keeps a job until it is acked or
// terminated).
func (q *Queue) Pending(ctx context.Context) (uint64, error) {
	info, err := q.jobs.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue: stream %s: %w", JobsStream, err)
	}
	return info.State.Msgs, nil
}

// Config returns the effective configuration.
func (q *Queue) Config() Config { return q.cfg }

// Conn returns the NATS connection.
func (q *Queue) Conn() *nats.Conn { return q.nc }

// Submit publishes a job under its id. The id is the message id: a job
// with the same id within the duplicate window is not queued again, and
// duplicate reports so.
func (q *Queue) Submit(ctx context.Context, priority, jobID string, payload []byte) (duplicate bool, err error) {
	if priority == "" {
		priority = "normal"
	}
	ack, err := q.js.Publish(ctx, JobsSubject+"."+priority, payload, jetstream.WithMsgID(jobID), jetstream.WithExpectStream(JobsStream))
	if err != nil {
		return false, fmt.Errorf("queue: submit %s: %w", jobID, err)
	}
	return ack.Duplicate, nil
}

// PutState stores a job's state (JSON).
func (q *Queue) PutState(ctx context.Context, jobID string, state []byte) error {
	if _, err := q.state.Put(ctx, jobID, state); err != nil {
		return fmt.Errorf("queue: state %s: %w", jobID, err)
	}
	return nil
}

// GetState returns a job's state, or an error matching ErrNoState.
func (q *Queue) GetState(ctx context.Context, jobID string) ([]byte, error) {
	e, err := q.state.Get(ctx, jobID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("queue: %w: %s", ErrNoState, jobID)
	}
	if err != nil {
		return nil, fmt.Errorf("queue: state %s: %w", jobID, err)
	}
	return e.Value(), nil
}

// WatchState calls fn with the job's current state and every update until
// fn returns false or ctx ends.
func (q *Queue) WatchState(ctx context.Context, jobID string, fn func(state []byte) bool) error {
	w, err := q.state.Watch(ctx, jobID)
	if err != nil {
		return fmt.Errorf("queue: watch %s: %w", jobID, err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("queue: watch %s: closed", jobID)
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue // nil marks the end of the initial values
			}
			if !fn(e.Value()) {
				return nil
			}
		}
	}
}

// PublishReady announces a finished asset to the delivery tier.
func (q *Queue) PublishReady(ctx context.Context, assetID, jobID string, event []byte) error {
	_, err := q.js.Publish(ctx, ReadySubject+"."+assetID, event, jetstream.WithMsgID("ready-"+jobID))
	if err != nil {
		return fmt.Errorf("queue: asset-ready %s: %w", assetID, err)
	}
	return nil
}

// DeadLetter is the record of a job that will not be retried.
type DeadLetter struct {
	JobID      string          `json:"job_id"`
	Reason     string          `json:"reason"`
	Deliveries int             `json:"deliveries"`
	Worker     string          `json:"worker,omitempty"`
	At         time.Time       `json:"at"`
	Job        json.RawMessage `json:"job,omitempty"` // the job as submitted, when it was JSON
}

// PublishDeadLetter stores a dead-letter record (once per job id).
func (q *Queue) PublishDeadLetter(ctx context.Context, d DeadLetter) error {
	if d.At.IsZero() {
		d.At = time.Now().UTC()
	}
	data, err := json.Marshal(d)
	if err != nil {
		return err
	}
	id := d.JobID
	if id == "" {
		id = "unknown"
	}
	if _, err := q.js.Publish(ctx, DLQSubject+"."+subjectToken(id), data, jetstream.WithMsgID("dlq-"+id)); err != nil {
		return fmt.Errorf("queue: dead letter %s: %w", id, err)
	}
	return nil
}

// DeadLetters returns the stored dead-letter records, oldest first.
func (q *Queue) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	s, err := q.js.Stream(ctx, DLQStream)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("queue: dead letter %d: %w", seq, err)
		}
		var d DeadLetter
		if err := json.Unmarshal(m.Data, &d); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

// subjectToken makes s safe as one subject token.
func subjectToken(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '.' || c == '*' || c == '>' || c <= ' ' || c > '~' {
			b[i] = '_'
		}
	}
	return string(b)
}
