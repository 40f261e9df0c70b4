package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Msg is a delivered job.
type Msg struct {
	m    jetstream.Msg
	meta *jetstream.MsgMetadata
}

// Data is the job payload.
func (m *Msg) Data() []byte { return m.m.Data() }

// JobID is the id the job was submitted under.
func (m *Msg) JobID() string { return m.m.Headers().Get(jetstream.MsgIDHeader) }

// Attempt is the delivery count, 1 on the first delivery.
func (m *Msg) Attempt() int {
	if m.meta == nil {
		return 1
	}
	return int(m.meta.NumDelivered)
}

// InProgress resets the job's ack timer: send it well inside AckWait.
func (m *Msg) InProgress() error { return m.m.InProgress() }

// Ack marks the job done (waits for the server's confirmation).
func (m *Msg) Ack(ctx context.Context) error { return m.m.DoubleAck(ctx) }

// Nak asks for a redelivery after delay.
func (m *Msg) Nak(delay time.Duration) error { return m.m.NakWithDelay(delay) }

// Term stops redelivery for good; the reason is kept in the server's
// advisory. Write a dead letter first.
func (m *Msg) Term(reason string) error { return m.m.TermWithReason(reason) }

// Handler handles a delivered job. It must Ack, Nak or Term the message.
type Handler func(ctx context.Context, m *Msg)

// Consume pulls jobs from the worker consumer, at most concurrency at a
// time, and runs handle for each in its own goroutine. It returns when ctx
// ends, after every handler has returned; handlers get hctx, which the
// caller cancels to cut in-flight jobs short.
func (q *Queue) Consume(ctx, hctx context.Context, concurrency int, log *slog.Logger, handle Handler) error {
	if concurrency <= 0 {
		concurrency = 1
	}
	cons, err := q.jobs.Consumer(ctx, WorkerConsumer)
	if err != nil {
		return fmt.Errorf("queue: consumer %s: %w", WorkerConsumer, err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				jm, err := next(ctx, cons)
				if err != nil {
					if !quiet(ctx, err) {
						log.Warn("queue: fetch", "err", err)
						sleep(ctx, time.Second)
					}
					continue
				}
				m := &Msg{m: jm}
				m.meta, _ = jm.Metadata()
				handle(hctx, m)
			}
		}()
	}
	<-ctx.Done()
	return nil
}

// next fetches one message, waiting up to two seconds.
func next(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return cons.Next(jetstream.FetchContext(fctx))
}

// quiet reports fetch errors that only mean "nothing to do yet".
func quiet(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "deadline")
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Exhausted is a job that reached MaxDeliver without being acked (for
// example because the worker holding it crashed every time).
type Exhausted struct {
	JobID      string
	Payload    []byte
	Deliveries int
}

// WatchExhausted calls fn for every job the server gives up on (the
// MaxDeliver advisory), then removes the job from the stream. Every worker
// runs it; dead letters are deduplicated by job id.
func (q *Queue) WatchExhausted(ctx context.Context, log *slog.Logger, fn func(context.Context, Exhausted)) (stop func(), err error) {
	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + JobsStream + "." + WorkerConsumer
	sub, err := q.nc.Subscribe(subject, func(msg *nats.Msg) {
		var adv struct {
			StreamSeq  uint64 `json:"stream_seq"`
			Deliveries int    `json:"deliveries"`
		}
		if err := json.Unmarshal(msg.Data, &adv); err != nil {
			log.Warn("queue: bad max-deliveries advisory", "err", err)
			return
		}
		rm, err := q.jobs.GetMsg(ctx, adv.StreamSeq)
		if err != nil {
			return // another worker handled it
		}
		fn(ctx, Exhausted{JobID: rm.Header.Get(jetstream.MsgIDHeader), Payload: rm.Data, Deliveries: adv.Deliveries})
		if err := q.jobs.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) && !strings.Contains(err.Error(), "not found") {
			log.Warn("queue: remove exhausted job", "seq", adv.StreamSeq, "err", err)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("queue: subscribe %s: %w", subject, err)
	}
	return func() { sub.Unsubscribe() }, nil
}
