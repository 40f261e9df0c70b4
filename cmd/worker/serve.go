package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
	"github.com/abseal/abseal/transcode"
)

// runServe is the worker service: `worker [flags]`.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("worker", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cfg config
	cfg.flags(fl)
	if err := fl.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	}
	if err := cfg.finish(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log, err := newLogger(stderr, cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	log = log.With("worker", cfg.Name)
	transcode.RouteLogs(log.With("component", "ffmpeg"), slog.LevelWarn)
	if cfg.Dev {
		return runDev(ctx, &cfg, log, stdout)
	}
	s, closeFn, err := newService(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer closeFn()
	return s.serve(ctx, stdout)
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log-level %q: %v", level, err)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// serve starts the HTTP endpoints and serves jobs until ctx ends.
func (s *service) serve(ctx context.Context, stdout io.Writer) error {
	if s.cfg.HTTPAddr != "" {
		addr, stop, err := s.serveHTTP(s.cfg.HTTPAddr)
		if err != nil {
			return err
		}
		defer stop()
		s.log.Info("http listening", "addr", addr)
	}
	return s.run(ctx)
}

// newService connects to NATS and S3, opens the keys and the queue.
func newService(ctx context.Context, cfg *config, log *slog.Logger) (*service, func(), error) {
	kek, err := cfg.KEK.Open(ctx)
	if err != nil {
		return nil, nil, err
	}
	wmKey, err := cfg.WatermarkKey.Read(kek, log)
	if err != nil {
		return nil, nil, err
	}
	if wmKey == nil {
		log.Warn("no watermark key: assets get variant a only, without the A/B watermark")
	}
	s3cfg := func(bucket string) s3.Config {
		return s3.Config{Endpoint: cfg.S3.Endpoint, Bucket: bucket, AccessKey: cfg.S3.AccessKey,
			SecretKey: cfg.S3SecretKey, Secure: cfg.S3.TLS}
	}
	ocfg := s3cfg(cfg.OutputBucket)
	ocfg.PartSize = s3.MinPartSize // objects are segments: small parts keep concurrent uploads lean
	out, err := s3.New(ocfg)
	if err != nil {
		return nil, nil, err
	}
	sources := map[string]storage.Store{}
	for _, b := range cfg.IngestBuckets {
		st, err := s3.New(s3cfg(b))
		if err != nil {
			return nil, nil, err
		}
		sources[b] = st
	}
	nc, err := cfg.NATS.Connect(nats.Name("abseal-worker "+cfg.Name), nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond), nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }))
	if err != nil {
		return nil, nil, err
	}
	qctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var q *queue.Queue
	for {
		// The consumer's settings belong to `worker setup`: a worker makes
		// the consumer only if it is missing and otherwise runs with what
		// it has, saying where its own flags differ.
		q, err = queue.Open(qctx, nc, queue.Config{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, Replicas: cfg.Replicas, KeepConsumer: true})
		if err == nil || qctx.Err() != nil {
			break
		}
		log.Warn("queue not ready, retrying", "err", err)
		if !sleepCtx(qctx, time.Second) {
			break
		}
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	for _, d := range q.ConsumerMismatch {
		log.Warn("the worker consumer's settings differ from this worker's flags; the consumer's apply (change them with worker setup)", "setting", d)
	}
	if q.LegacyConsumer {
		log.Warn("the worker consumer stops delivering a job at max_deliver, so a job whose workers all crashed is dead-lettered only through the server's advisory; run worker setup to let the workers dead-letter it themselves")
	}
	runner := &pipeline.Runner{
		Sources: func(bucket string) (storage.Store, error) {
			if st, ok := sources[bucket]; ok {
				return st, nil
			}
			return nil, fmt.Errorf("bucket %q is not an ingest bucket of this worker (%s)", bucket, strings.Join(cfg.IngestBuckets, ", "))
		},
		Out: out, KEK: kek, Profiles: profile.Registry{Dir: cfg.ProfilesDir}.Lookup, WatermarkKey: wmKey, WatermarkIDBits: cfg.WMIDBits, SessionCode: sessionCode(cfg.SessionCode), TempDir: cfg.TempDir,
		MaxSourceBytes: cfg.MaxSourceBytes, Threads: cfg.Threads, Limits: transcode.Limits{MaxMemory: cfg.MaxMemory}, Log: log,
	}
	runner.ChunkLength = cfg.ChunkLength
	runner.SubmitChunks = func(ctx context.Context, tasks []*asset.Job) error {
		for _, t := range tasks {
			if _, err := q.Submit(ctx, "", t.JobID, t.Encode()); err != nil {
				return err
			}
		}
		return nil
	}
	if point := os.Getenv("ABSEAL_TEST_STALL_AT"); point != "" {
		// Fault injection for the fencing tests: the first run to reach
		// the point stops the whole process (SIGSTOP) until SIGCONT.
		var once sync.Once
		runner.Stall = func(p, run string) {
			if p == point {
				once.Do(func() {
					log.Warn("stopping at a fault-injection point (ABSEAL_TEST_STALL_AT)", "point", p, "run", run)
					// The signal goes to this thread, which stops on its way
					// back from the call, before the run goes on (a SIGSTOP
					// to the process may be taken by another thread first
					// and let this one reach its next request).
					runtime.LockOSThread()
					_ = syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGSTOP)
					runtime.UnlockOSThread()
				})
			}
		}
	}
	s := &service{cfg: cfg, log: log, nc: nc, q: q, out: out, runner: runner, m: newMetrics()}
	return s, func() { nc.Drain(); nc.Close() }, nil
}

// runSetup creates (or updates) abseal's streams, consumer and job-state
// bucket and exits: deployments run it before MinIO, whose JetStream
// notification target needs the uploads stream.
func runSetup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("worker setup", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var cfg config
	cfg.flags(fl)
	if err := fl.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	nc, err := cfg.NATS.Connect(nats.Name("abseal-setup"), nats.RetryOnFailedConnect(true), nats.MaxReconnects(60))
	if err != nil {
		return err
	}
	defer nc.Close()
	qctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		_, err = queue.Open(qctx, nc, queue.Config{AckWait: cfg.AckWait, MaxDeliver: cfg.MaxDeliver, Replicas: cfg.Replicas})
		if err == nil {
			fmt.Fprintf(stdout, "streams %s, %s, %s, %s and bucket %s ready on %s (%d replicas)\n", queue.JobsStream, queue.UploadsStream,
				queue.ReadyStream, queue.DLQStream, queue.StateBucket, nc.ConnectedUrlRedacted(), cfg.Replicas)
			return nil
		}
		if !sleepCtx(qctx, time.Second) {
			return err
		}
	}
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sessionCode is the manifest's name of a --session-code value.
func sessionCode(flag string) string {
	if flag == "tardos" {
		return asset.CodeTardos
	}
	return asset.CodeConvolutional
}
