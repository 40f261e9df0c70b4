package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Upload is an object-created event from an ingest bucket.
type Upload struct {
	Event     string // e.g. s3:ObjectCreated:Put
	Bucket    string
	Key       string // decoded
	Size      int64
	ETag      string
	VersionID string
}

// ParseEvent decodes a MinIO (S3-style) bucket notification and returns its
// object-created records. Keys arrive query-escaped and are decoded. Other
// events (deletes, reads) yield no uploads.
func ParseEvent(data []byte) ([]Upload, error) {
	var ev struct {
		Records []struct {
			EventName string `json:"eventName"`
			S3        struct {
				Bucket struct {
					Name string `json:"name"`
				} `json:"bucket"`
				Object struct {
					Key       string `json:"key"`
					Size      int64  `json:"size"`
					ETag      string `json:"eTag"`
					VersionID string `json:"versionId"`
				} `json:"object"`
			} `json:"s3"`
		} `json:"Records"`
	}
	if err := json.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("queue: upload event: %w", err)
	}
	if ev.Records == nil {
		return nil, errors.New("queue: upload event: no Records")
	}
	var out []Upload
	for _, r := range ev.Records {
		if !strings.HasPrefix(r.EventName, "s3:ObjectCreated:") {
			continue
		}
		key, err := url.QueryUnescape(r.S3.Object.Key)
		if err != nil {
			return nil, fmt.Errorf("queue: upload event: key %q: %w", r.S3.Object.Key, err)
		}
		if r.S3.Bucket.Name == "" || key == "" {
			return nil, errors.New("queue: upload event: record without bucket or key")
		}
		out = append(out, Upload{
			Event: r.EventName, Bucket: r.S3.Bucket.Name, Key: key, Size: r.S3.Object.Size,
			ETag: strings.Trim(r.S3.Object.ETag, `"`), VersionID: r.S3.Object.VersionID,
		})
	}
	return out, nil
}

var errRetry = errors.New("retry")

// JobFor turns an upload into a job: its id (deterministic, so a repeated
// event is one job) and payload. An error drops the upload.
type JobFor func(Upload) (jobID string, payload []byte, err error)

// RunIntake turns upload events from the given ingest buckets into jobs
// until ctx ends. Events of other buckets (the output bucket among them)
// never make jobs. Every worker may run it: the intake consumer hands each
// event to one of them, and job ids deduplicate the rest.
func (q *Queue) RunIntake(ctx context.Context, buckets []string, jobFor JobFor, log *slog.Logger) error {
	s, err := q.js.Stream(ctx, UploadsStream)
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable: IntakeConsumer, Description: "abseal upload intake", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: 30 * time.Second, MaxDeliver: 10, Replicas: q.cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("queue: consumer %s: %w", IntakeConsumer, err)
	}
	for ctx.Err() == nil {
		m, err := next(ctx, cons)
		if err != nil {
			if !quiet(ctx, err) {
				log.Warn("queue: intake fetch", "err", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if err := q.intake(ctx, m.Data(), buckets, jobFor, log); errors.Is(err, errRetry) {
			log.Warn("queue: upload event will be retried", "err", err)
			if err := m.NakWithDelay(2 * time.Second); err != nil {
				log.Warn("queue: nak upload event (it comes back after the ack wait)", "err", err)
			}
			continue
		} else if err != nil {
			log.Warn("queue: upload event dropped", "err", err)
			if err := m.TermWithReason(err.Error()); err != nil {
				log.Error("queue: term upload event (it will be delivered again)", "err", err)
			}
			continue
		}
		if err := m.Ack(); err != nil {
			log.Warn("queue: ack upload event", "err", err)
		}
	}
	return nil
}

func (q *Queue) intake(ctx context.Context, data []byte, buckets []string, jobFor JobFor, log *slog.Logger) error {
	ups, err := ParseEvent(data)
	if err != nil {
		return err
	}
	for _, u := range ups {
		if !slices.Contains(buckets, u.Bucket) {
			log.Debug("queue: upload outside the ingest buckets ignored", "bucket", u.Bucket, "key", u.Key)
			continue
		}
		id, payload, err := jobFor(u)
		if err != nil {
			return fmt.Errorf("upload s3://%s/%s: %w", u.Bucket, u.Key, err)
		}
		dup, err := q.Submit(ctx, "normal", id, payload)
		if err != nil {
			return fmt.Errorf("%w: %v", errRetry, err)
		}
		log.Info("queue: upload became a job", "bucket", u.Bucket, "key", u.Key, "job_id", id, "duplicate", dup)
	}
	return nil
}
