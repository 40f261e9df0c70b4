package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
)

func open(t *testing.T, cfg queue.Config) *queue.Queue {
	t.Helper()
	n := testenv.NATS(t)
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	q, err := queue.Open(t.Context(), nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func testLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func TestSubmitDeduplicates(t *testing.T) {
	q := open(t, queue.Config{})
	dup, err := q.Submit(t.Context(), "", "job-1", []byte(`{"n":1}`))
	if err != nil || dup {
		t.Fatalf("first submit: dup=%v err=%v", dup, err)
	}
	dup, err = q.Submit(t.Context(), "", "job-1", []byte(`{"n":1}`))
	if err != nil || !dup {
		t.Fatalf("second submit: dup=%v err=%v, want a duplicate", dup, err)
	}
	// Opening again (another worker starting) keeps the streams and jobs.
	if _, err := queue.Open(t.Context(), q.Conn(), queue.Config{}); err != nil {
		t.Fatal(err)
	}
	got := consume(t, q, 1, 3*time.Second, func(ctx context.Context, m *queue.Msg) { m.Ack(ctx) })
	if len(got) != 1 || got[0] != "job-1" {
		t.Fatalf("consumed %v, want [job-1]", got)
	}
}

// consume runs the consumer for d and returns the job ids handled.
func consume(t *testing.T, q *queue.Queue, concurrency int, d time.Duration, h queue.Handler) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var mu sync.Mutex
	var ids []string
	err := q.Consume(ctx, t.Context(), concurrency, testLog(), func(ctx context.Context, m *queue.Msg) {
		mu.Lock()
		ids = append(ids, m.JobID())
		mu.Unlock()
		h(ctx, m)
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestNakRedeliversAndCountsAttempts(t *testing.T) {
	q := open(t, queue.Config{AckWait: time.Second, MaxDeliver: 4})
	if _, err := q.Submit(t.Context(), "", "job-nak", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var attempts []int
	var mu sync.Mutex
	consume(t, q, 2, 4*time.Second, func(ctx context.Context, m *queue.Msg) {
		mu.Lock()
		attempts = append(attempts, m.Attempt())
		n := len(attempts)
		mu.Unlock()
		if n < 3 {
			m.Nak(100 * time.Millisecond)
			return
		}
		m.Ack(ctx)
	})
	if len(attempts) != 3 || attempts[0] != 1 || attempts[2] != 3 {
		t.Fatalf("attempts %v, want [1 2 3]", attempts)
	}
}

func TestInProgressHoldsTheJob(t *testing.T) {
	q := open(t, queue.Config{AckWait: time.Second, MaxDeliver: 3})
	if _, err := q.Submit(t.Context(), "", "job-long", []byte("x")); err != nil {
		t.Fatal(err)
	}
	got := consume(t, q, 2, 5*time.Second, func(ctx context.Context, m *queue.Msg) {
		// A job three times longer than AckWait, with heartbeats.
		for range 10 {
			time.Sleep(300 * time.Millisecond)
			m.InProgress()
		}
		m.Ack(ctx)
	})
	if len(got) != 1 {
		t.Fatalf("handled %d times, want once (heartbeats must hold the job)", len(got))
	}
}

// A job whose workers all die is dead-lettered by the next worker that
// comes, even when none was running when its last delivery ran out: the
// server keeps delivering (no advisory is needed, none is watched here),
// and the delivery after the last is Exhausted.
func TestExhaustedWithNoWorkerRunning(t *testing.T) {
	q := open(t, queue.Config{AckWait: time.Second, MaxDeliver: 2})
	if _, err := q.Submit(t.Context(), "", "job-crashy", []byte(`{"j":1}`)); err != nil {
		t.Fatal(err)
	}
	// Two deliveries, each to a worker that dies holding the job (no ack);
	// then no worker at all for a while.
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var attempts []int
	err := q.Consume(ctx, t.Context(), 1, testLog(), func(_ context.Context, m *queue.Msg) {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, m.Attempt())
		if q.Exhausted(m) {
			t.Errorf("attempt %d of 2 reported exhausted", m.Attempt())
		}
		if len(attempts) == 2 {
			cancel()
		}
	})
	if err != nil || len(attempts) != 2 {
		t.Fatalf("attempts %v, %v", attempts, err)
	}
	time.Sleep(2 * time.Second)
	// The next worker gets it once more and dead-letters it.
	got := consume(t, q, 1, 4*time.Second, func(ctx context.Context, m *queue.Msg) {
		if !q.Exhausted(m) || m.Attempt() != 3 {
			t.Errorf("delivery %d: exhausted %v, want the third and exhausted", m.Attempt(), q.Exhausted(m))
			return
		}
		if err := q.PublishDeadLetter(ctx, queue.DeadLetter{JobID: m.JobID(), Reason: "gave up", Deliveries: 2, Job: m.Data()}); err != nil {
			t.Error(err)
		}
		if err := m.Term("gave up"); err != nil {
			t.Error(err)
		}
	})
	if len(got) != 1 {
		t.Fatalf("delivered %d more times, want once", len(got))
	}
	dl, err := q.DeadLetters(t.Context())
	if err != nil || len(dl) != 1 || dl[0].JobID != "job-crashy" || string(dl[0].Job) != `{"j":1}` {
		t.Fatalf("dead letters %+v, %v", dl, err)
	}
	// Nothing is left in the jobs stream.
	if again := consume(t, q, 1, 2*time.Second, func(context.Context, *queue.Msg) {}); len(again) != 0 {
		t.Fatalf("the job came back: %v", again)
	}
	if n, err := q.Pending(t.Context()); err != nil || n != 0 {
		t.Fatalf("%d jobs left in the stream (%v)", n, err)
	}
}

// A worker consumer made by an earlier release (the server stops at
// max_deliver, no limit in its metadata) keeps working: workers adopt its
// limit, say it is legacy, and its exhausted jobs come through the
// advisory; setup converts it.
func TestLegacyConsumer(t *testing.T) {
	q := open(t, queue.Config{AckWait: time.Second, MaxDeliver: 2})
	nc := q.Conn()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteConsumer(t.Context(), queue.JobsStream, queue.WorkerConsumer); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateConsumer(t.Context(), queue.JobsStream, jetstream.ConsumerConfig{Durable: queue.WorkerConsumer,
		AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second, MaxDeliver: 2, FilterSubject: queue.JobsSubject + ".>"}); err != nil {
		t.Fatal(err)
	}
	w, err := queue.Open(t.Context(), nc, queue.Config{AckWait: time.Second, MaxDeliver: 2, KeepConsumer: true})
	if err != nil {
		t.Fatal(err)
	}
	if !w.LegacyConsumer || w.Config().MaxDeliver != 2 || len(w.ConsumerMismatch) != 0 {
		t.Fatalf("legacy consumer: legacy=%v %+v %v", w.LegacyConsumer, w.Config(), w.ConsumerMismatch)
	}
	if _, err := w.Submit(t.Context(), "", "job-crashy", []byte(`{"j":1}`)); err != nil {
		t.Fatal(err)
	}
	stop, err := w.WatchExhausted(t.Context(), testLog(), func(ctx context.Context, e queue.Exhausted) {
		w.PublishDeadLetter(ctx, queue.DeadLetter{JobID: e.JobID, Reason: "gave up", Deliveries: e.Deliveries, Job: e.Payload})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if got := consume(t, w, 1, 5*time.Second, func(context.Context, *queue.Msg) {}); len(got) != 2 {
		t.Fatalf("delivered %d times, want the server's max_deliver 2", len(got))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		dl, err := w.DeadLetters(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(dl) == 1 && dl[0].JobID == "job-crashy" && dl[0].Deliveries == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dead letters %v, want one for job-crashy", dl)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Setup converts the consumer.
	if _, err := queue.Open(t.Context(), nc, queue.Config{AckWait: time.Second, MaxDeliver: 2}); err != nil {
		t.Fatal(err)
	}
	w2, err := queue.Open(t.Context(), nc, queue.Config{AckWait: time.Second, MaxDeliver: 2, KeepConsumer: true})
	if err != nil {
		t.Fatal(err)
	}
	info, err := js.Consumer(t.Context(), queue.JobsStream, queue.WorkerConsumer)
	if err != nil {
		t.Fatal(err)
	}
	if w2.LegacyConsumer || info.CachedInfo().Config.MaxDeliver != -1 || info.CachedInfo().Config.Metadata[queue.MaxDeliverMetadata] != "2" {
		t.Fatalf("after setup: legacy=%v %+v", w2.LegacyConsumer, info.CachedInfo().Config)
	}
}

func TestTermAndDeadLetterOnce(t *testing.T) {
	q := open(t, queue.Config{})
	for range 2 {
		if err := q.PublishDeadLetter(t.Context(), queue.DeadLetter{JobID: "job-bad", Reason: "not a video"}); err != nil {
			t.Fatal(err)
		}
	}
	dl, err := q.DeadLetters(t.Context())
	if err != nil || len(dl) != 1 || dl[0].Reason != "not a video" {
		t.Fatalf("dead letters %+v, %v; want one", dl, err)
	}
}

func TestStateWatch(t *testing.T) {
	q := open(t, queue.Config{})
	if _, err := q.GetState(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), "no such job") {
		t.Fatalf("missing state: %v", err)
	}
	go func() {
		for i := range 5 {
			time.Sleep(50 * time.Millisecond)
			q.PutState(context.Background(), "job-w", []byte{byte('0' + i)})
		}
	}()
	var seen []string
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := q.WatchState(ctx, "job-w", func(s []byte) bool {
		seen = append(seen, string(s))
		return string(s) != "4"
	})
	if err != nil || len(seen) == 0 || seen[len(seen)-1] != "4" {
		t.Fatalf("watched %v, %v", seen, err)
	}
	b, err := q.GetState(t.Context(), "job-w")
	if err != nil || string(b) != "4" {
		t.Fatalf("state %q %v", b, err)
	}
}

func TestParseEvent(t *testing.T) {
	ev := `{"EventName":"s3:ObjectCreated:Put","Key":"ingest/my+clip%281%29.mp4","Records":[
	 {"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"ingest"},"object":{"key":"dir%2Fmy+clip%281%29.mp4","size":42,"eTag":"\"abc\"","versionId":"v1"}}},
	 {"eventName":"s3:ObjectRemoved:Delete","s3":{"bucket":{"name":"ingest"},"object":{"key":"gone.mp4"}}}]}`
	ups, err := queue.ParseEvent([]byte(ev))
	if err != nil {
		t.Fatal(err)
	}
	want := queue.Upload{Event: "s3:ObjectCreated:Put", Bucket: "ingest", Key: "dir/my clip(1).mp4", Size: 42, ETag: "abc", VersionID: "v1"}
	if len(ups) != 1 || ups[0] != want {
		t.Fatalf("uploads %+v, want [%+v]", ups, want)
	}
	for _, bad := range []string{`{`, `{"foo":1}`, `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`} {
		if _, err := queue.ParseEvent([]byte(bad)); err == nil {
			t.Errorf("ParseEvent(%s) accepted", bad)
		}
	}
}

// TestUploadEventsFromMinIO drives real MinIO bucket notifications through
// its NATS (JetStream) target into jobs.
func TestUploadEventsFromMinIO(t *testing.T) {
	n := testenv.NATS(t)
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	q, err := queue.Open(t.Context(), nc, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := testenv.MinIO(t, devenv.NotifyEnv("ABSEAL", n.URL, queue.UploadsSubject, "")...)
	ingest := testenv.Bucket(t, m, "ingest", 0)
	out := testenv.Bucket(t, m, "assets", 0)
	for _, st := range []*s3.Store{ingest, out} { // even a misconfigured output bucket must not make jobs
		if err := st.NotifyUploads(t.Context(), "ABSEAL"); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type made struct{ bucket, key string }
	jobs := make(chan made, 10)
	go q.RunIntake(ctx, []string{"ingest"}, func(u queue.Upload) (string, []byte, error) {
		jobs <- made{u.Bucket, u.Key}
		data, _ := json.Marshal(u)
		return "job-" + u.ETag, data, nil
	}, testLog())

	put := func(st *s3.Store, key string) {
		t.Helper()
		if _, err := st.Put(t.Context(), key, strings.NewReader("not really a video "+key), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(out, "assets/x/manifest.json")
	put(ingest, "uploads/a clip+1.mp4")
	select {
	case j := <-jobs:
		if j != (made{"ingest", "uploads/a clip+1.mp4"}) {
			t.Fatalf("job for %+v", j)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no job 20s after the upload")
	}
	select {
	case j := <-jobs:
		t.Fatalf("unexpected job for %+v", j)
	case <-time.After(time.Second):
	}
	got := consume(t, q, 1, 3*time.Second, func(ctx context.Context, m *queue.Msg) { m.Ack(ctx) })
	if len(got) != 1 {
		t.Fatalf("jobs queued %v, want one", got)
	}
}

// TestRevocationsAreSetUpByOpen: the deny-list exists once Open ran (and
// survives a second Open), and OpenRevocations only opens it.
func TestRevocationsAreSetUpByOpen(t *testing.T) {
	n := testenv.NATS(t)
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := queue.OpenRevocations(t.Context(), nc, queue.RevocationsConfig{}); !errors.Is(err, queue.ErrNotSetUp) {
		t.Fatalf("deny-list before setup: %v, want ErrNotSetUp", err)
	}
	if _, err := queue.Open(t.Context(), nc, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	rev, err := queue.OpenRevocations(t.Context(), nc, queue.RevocationsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rev.Revoke(t.Context(), "wmid-7", "leak"); err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(t.Context(), nc, queue.Config{})
	if err != nil {
		t.Fatalf("second open: %v", err)
	}
	rv := runRevocations(t, q)
	waitFor(t, "the deny-list loaded", 10*time.Second, func() bool { c, err := rv.Confirmed(); return !c.IsZero() && err == nil })
	if !rv.Revoked("wmid-7") {
		t.Fatal("deny-list after a second open: wmid-7 is not revoked")
	}
}

// The worker consumer's configuration has one owner (worker setup: Open
// without KeepConsumer); a worker (KeepConsumer) creates it only when it is
// missing, never changes it, adopts its settings and reports where its
// own differ.
func TestConsumerOwnedBySetup(t *testing.T) {
	q := open(t, queue.Config{AckWait: 40 * time.Second, MaxDeliver: 4})
	nc := q.Conn()
	w, err := queue.Open(t.Context(), nc, queue.Config{AckWait: 5 * time.Second, MaxDeliver: 9, KeepConsumer: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := w.Config(); c.AckWait != 40*time.Second || c.MaxDeliver != 4 {
		t.Errorf("the worker runs with ack wait %s, max deliver %d; want the consumer's 40s and 4", c.AckWait, c.MaxDeliver)
	}
	got := strings.Join(w.ConsumerMismatch, "; ")
	if !strings.Contains(got, "ack_wait: asked 5s, the consumer has 40s") || !strings.Contains(got, "max_deliver: asked 9, the consumer has 4") || len(w.ConsumerMismatch) != 2 {
		t.Errorf("mismatch %q", got)
	}
	// The consumer is unchanged: a second owner-less open sees the same.
	again, err := queue.Open(t.Context(), nc, queue.Config{KeepConsumer: true})
	if err != nil {
		t.Fatal(err)
	}
	if c := again.Config(); c.AckWait != 40*time.Second || c.MaxDeliver != 4 {
		t.Errorf("the consumer changed: %s, %d", c.AckWait, c.MaxDeliver)
	}
	// Setup (the owner) changes it.
	if _, err := queue.Open(t.Context(), nc, queue.Config{AckWait: 20 * time.Second, MaxDeliver: 6}); err != nil {
		t.Fatal(err)
	}
	w2, err := queue.Open(t.Context(), nc, queue.Config{AckWait: 20 * time.Second, MaxDeliver: 6, KeepConsumer: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(w2.ConsumerMismatch) != 0 || w2.Config().AckWait != 20*time.Second {
		t.Errorf("after setup: %v, %s", w2.ConsumerMismatch, w2.Config().AckWait)
	}
}

// A worker on a server where setup never ran creates the consumer.
func TestWorkerCreatesMissingConsumer(t *testing.T) {
	q := open(t, queue.Config{AckWait: 7 * time.Second, MaxDeliver: 3, KeepConsumer: true})
	if len(q.ConsumerMismatch) != 0 || q.Config().AckWait != 7*time.Second || q.Config().MaxDeliver != 3 {
		t.Fatalf("first worker: %v %+v", q.ConsumerMismatch, q.Config())
	}
}
