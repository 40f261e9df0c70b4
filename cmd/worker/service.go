package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/storage/s3"
)

// service is a running worker: it pulls jobs, runs them, and reports.
type service struct {
	cfg    *config
	log    *slog.Logger
	nc     *nats.Conn
	q      *queue.Queue
	out    *s3.Store
	runner *pipeline.Runner
	m      *metrics
}

type metrics struct {
	reg      *prometheus.Registry
	jobs     *prometheus.CounterVec
	stages   *prometheus.HistogramVec
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	inFlight prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "abseal_jobs_total", Help: "Jobs handled, by outcome (done, skipped, retry, failed, interrupted).",
		}, []string{"outcome"}),
		stages: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "abseal_stage_duration_seconds", Help: "Time spent per job stage.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 12),
		}, []string{"stage"}),
		bytesIn:  prometheus.NewCounter(prometheus.CounterOpts{Name: "abseal_source_bytes_total", Help: "Source bytes fetched."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Name: "abseal_output_bytes_total", Help: "Bytes stored (sealed objects and playlists)."}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "abseal_jobs_in_flight", Help: "Jobs running now."}),
	}
	m.reg.MustRegister(m.jobs, m.stages, m.bytesIn, m.bytesOut, m.inFlight,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, o := range []string{"done", "skipped", "retry", "failed", "interrupted"} {
		m.jobs.WithLabelValues(o)
	}
	return m
}

// serveHTTP starts /healthz, /readyz and /metrics; it returns the bound
// address and a function that stops the server and returns once it has.
func (s *service) serveHTTP(addr string) (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if !s.nc.IsConnected() {
			http.Error(w, "nats: not connected", http.StatusServiceUnavailable)
			return
		}
		if err := s.out.Check(ctx); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("http: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			s.log.Warn("http shutdown", "err", err)
			srv.Close()
		}
		<-served
	}, nil
}

// run serves jobs (and upload events) until ctx ends, then gives running
// jobs ShutdownGrace to finish before cutting them short and handing them
// back to the queue.
func (s *service) run(ctx context.Context) error {
	hctx, hcancel := context.WithCancel(context.Background())
	defer hcancel()
	go func() {
		<-ctx.Done()
		t := time.AfterFunc(s.cfg.ShutdownGrace, hcancel)
		<-hctx.Done()
		t.Stop()
	}()
	if n, err := pipeline.SweepTemp(s.cfg.TempDir); err != nil {
		s.log.Warn("temp sweep", "err", err)
	} else if n > 0 {
		s.log.Info("removed temp dirs of dead jobs", "dirs", n, "dir", s.cfg.TempDir)
	}
	// Consumers of earlier releases stop delivering at max_deliver; their
	// exhausted jobs come through the server's advisory.
	stopExhausted, err := s.q.WatchExhausted(ctx, s.log, s.exhausted)
	if err != nil {
		return err
	}
	defer stopExhausted()
	var wg sync.WaitGroup
	if s.cfg.Intake {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.q.RunIntake(ctx, s.cfg.IngestBuckets, s.jobForUpload, s.log); err != nil {
				s.log.Error("upload intake stopped", "err", err)
			}
		}()
	}
	s.log.Info("worker serving", "concurrency", s.cfg.Concurrency, "threads_per_job", s.cfg.Threads,
		"ingest", s.cfg.IngestBuckets, "output", s.cfg.OutputBucket, "watermark", s.runner.WatermarkKey != nil)
	err = s.q.Consume(ctx, hctx, s.cfg.Concurrency, s.log, s.handle)
	wg.Wait()
	s.log.Info("worker stopped")
	return err
}

// jobForUpload makes the job of an upload event: default asset id and
// profile, deterministic job id.
func (s *service) jobForUpload(u queue.Upload) (string, []byte, error) {
	j, err := asset.NewJob(asset.Source{Bucket: u.Bucket, Key: u.Key, VersionID: u.VersionID, ETag: u.ETag},
		"", "", "upload-event", time.Now())
	if err != nil {
		return "", nil, err
	}
	return j.JobID, j.Encode(), nil
}

// runChunk runs a chunk task unless the job it belongs to has failed, and
// moves that job's progress on.
func (s *service) runChunk(ctx context.Context, runner *pipeline.Runner, job *asset.Job, log *slog.Logger, progress func(pipeline.Progress)) (*pipeline.Result, error) {
	c := job.Chunk
	if data, err := s.q.GetState(ctx, c.ParentID); err == nil {
		var parent asset.State
		if json.Unmarshal(data, &parent) == nil && parent.Status == asset.StatusFailed {
			log.Info("the chunk's job has failed; the chunk is not run", "parent", c.ParentID)
			return &pipeline.Result{Skipped: true, Run: c.Run}, nil
		}
	}
	res, err := runner.RunChunk(ctx, job, progress)
	if err == nil && res.Manifest == nil && res.Chunks > 0 {
		s.putState(&asset.State{JobID: c.ParentID, AssetID: job.AssetID, Source: job.Source.String(), Status: asset.StatusRunning,
			Stage: fmt.Sprintf("chunks: %d of %d done", res.ChunksDone, res.Chunks), Percent: 5 + 90*float64(res.ChunksDone)/float64(res.Chunks), Attempt: 1})
	}
	return res, err
}

// bg is a short context for queue bookkeeping that must happen even when
// the job's context was cancelled.
func bg() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

func (s *service) putState(st *asset.State) {
	st.UpdatedAt = time.Now().UTC()
	st.Worker = s.cfg.Name
	data, _ := json.Marshal(st)
	ctx, cancel := bg()
	defer cancel()
	if err := s.q.PutState(ctx, st.JobID, data); err != nil {
		s.log.Warn("job state not stored", "job_id", st.JobID, "err", err)
	}
}

// handle runs one delivered job and acks, naks or terminates it.
func (s *service) handle(ctx context.Context, m *queue.Msg) {
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	if s.q.Exhausted(m) {
		// Every worker that held it died or stalled: dead-letter it
		// without running it again.
		reason := fmt.Sprintf("no worker finished it in %d deliveries (worker crashes or timeouts)", s.q.Config().MaxDeliver)
		st := &asset.State{JobID: m.JobID()}
		if j, err := asset.DecodeJob(m.Data()); err == nil {
			st.AssetID, st.Source = j.AssetID, j.Source.String()
		}
		s.log.Error("job exhausted its deliveries", "job_id", m.JobID(), "deliveries", m.Attempt()-1)
		s.fail(m, st, errors.New(reason), m.Data())
		return
	}
	job, err := asset.DecodeJob(m.Data())
	if err != nil {
		s.log.Warn("job rejected", "job_id", m.JobID(), "err", err)
		s.fail(m, &asset.State{JobID: m.JobID()}, err, m.Data())
		return
	}
	log := s.log.With("job_id", job.JobID, "asset_id", job.AssetID, "attempt", m.Attempt())
	st := &asset.State{JobID: job.JobID, AssetID: job.AssetID, Source: job.Source.String(),
		Status: asset.StatusRunning, Stage: "fetch", Attempt: m.Attempt()}
	s.putState(st)
	log.Info("job started", "source", job.Source.String(), "profile", job.Profile)

	jctx, cancel := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		s.heartbeat(jctx, m, log)
	}()
	defer func() {
		cancel()
		<-hbDone
	}()
	var last time.Time
	var mu sync.Mutex
	progress := func(p pipeline.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Stage == st.Stage && time.Since(last) < time.Second && p.Percent < 100 {
			return
		}
		last = time.Now()
		st.Stage, st.Percent = p.Stage, p.Percent
		s.putState(st)
	}
	runner := *s.runner
	runner.Log = log
	var res *pipeline.Result
	if job.Chunk != nil {
		res, err = s.runChunk(jctx, &runner, job, log, progress)
	} else {
		res, err = runner.Run(jctx, job, progress)
	}
	mu.Lock()
	defer mu.Unlock()
	if err != nil && job.Chunk != nil && (pipeline.IsPermanent(err) || m.Attempt() >= s.q.Config().MaxDeliver) && ctx.Err() == nil {
		// The job the chunk belongs to fails with it.
		s.putState(&asset.State{JobID: job.Chunk.ParentID, AssetID: job.AssetID, Source: job.Source.String(), Status: asset.StatusFailed,
			Reason: fmt.Sprintf("chunk %d of %d: %v", job.Chunk.Index+1, job.Chunk.Count, err)})
	}
	if err != nil {
		switch {
		case ctx.Err() != nil:
			// Shutdown: hand the job back at once for another worker.
			log.Warn("job interrupted by shutdown, handed back", "err", err)
			st.Status, st.Reason = asset.StatusQueued, "interrupted by a worker shutdown"
			s.putState(st)
			if err := m.Nak(0); err != nil {
				log.Warn("nak of the interrupted job failed (it comes back after the ack wait)", "err", err)
			}
			s.m.jobs.WithLabelValues("interrupted").Inc()
		case pipeline.IsPermanent(err), m.Attempt() >= s.q.Config().MaxDeliver:
			log.Error("job failed", "err", err, "permanent", pipeline.IsPermanent(err))
			s.fail(m, st, err, m.Data())
		default:
			delay := s.q.RetryDelay(m.Attempt())
			log.Warn("job failed, will retry", "err", err, "in", delay)
			st.Status, st.Reason = asset.StatusRetrying, err.Error()
			s.putState(st)
			if err := m.Nak(delay); err != nil {
				log.Warn("nak failed (the job comes back after the ack wait)", "err", err)
			}
			s.m.jobs.WithLabelValues("retry").Inc()
		}
		return
	}
	for name, d := range res.Stages {
		s.m.stages.WithLabelValues(name).Observe(d.Seconds())
	}
	s.m.bytesIn.Add(float64(res.BytesIn))
	s.m.bytesOut.Add(float64(res.BytesOut))
	if res.Manifest == nil {
		// Split into chunks (the job's state follows them), or a chunk
		// stored that was not the last.
		if job.Chunk != nil {
			st.Status, st.Stage, st.Percent, st.Reason = asset.StatusDone, "done", 100, ""
			s.putState(st)
		} // a split job's state was set before its chunks were submitted; they move it on
		log.Info("job done", "skipped", res.Skipped, "run", res.Run, "chunks", res.Chunks, "chunks_done", res.ChunksDone,
			"bytes_in", res.BytesIn, "stages", stageSeconds(res.Stages))
		s.m.jobs.WithLabelValues("done").Inc()
		if err := m.Ack(context.Background()); err != nil {
			log.Warn("ack failed (a redelivery finds the work done)", "err", err)
		}
		return
	}
	if job.Chunk != nil {
		// The last chunk committed the run: the chunk is done, and so is
		// the job.
		st.Status, st.Stage, st.Percent, st.Reason = asset.StatusDone, "done", 100, ""
		s.putState(st)
		job = &asset.Job{V: job.V, JobID: job.Chunk.ParentID, AssetID: job.AssetID, Source: job.Source, Profile: job.Profile,
			RequestedBy: job.RequestedBy, CreatedAt: job.CreatedAt}
		st = &asset.State{JobID: job.JobID, AssetID: job.AssetID, Source: job.Source.String(), Attempt: 1}
	}
	ev, _ := json.Marshal(asset.ReadyEvent{V: asset.ReadyEventVersion, AssetID: job.AssetID, JobID: job.JobID, Bucket: s.cfg.OutputBucket,
		Manifest: res.ManifestKey, HLS: res.Manifest.HLS, DASH: res.Manifest.DASH, Source: job.Source.String(),
		Duration: res.Manifest.Duration})
	pctx, pcancel := bg()
	defer pcancel()
	if err := s.q.PublishReady(pctx, job.AssetID, job.JobID, ev); err != nil {
		// The asset is complete; the retry finds it and only announces it.
		log.Warn("asset-ready event not published, will retry", "err", err)
		if err := m.Nak(s.q.RetryDelay(m.Attempt())); err != nil {
			log.Warn("nak failed (the job comes back after the ack wait)", "err", err)
		}
		s.m.jobs.WithLabelValues("retry").Inc()
		return
	}
	outcome := "done"
	if res.Skipped {
		outcome = "skipped"
	}
	s.m.jobs.WithLabelValues(outcome).Inc()
	st.Status, st.Stage, st.Percent, st.Reason = asset.StatusDone, "done", 100, ""
	st.Manifest = s.cfg.OutputBucket + "/" + res.ManifestKey
	st.Stages, st.Objects, st.BytesOut = stageSeconds(res.Stages), res.Objects, res.BytesOut
	log.Info("job done", "skipped", res.Skipped, "run", res.Run, "objects", res.Objects, "bytes_in", res.BytesIn, "bytes_out", res.BytesOut,
		"manifest", st.Manifest, "stages", st.Stages)
	s.putState(st)
	if err := m.Ack(pctx); err != nil {
		log.Warn("ack failed (a redelivery will find the asset complete)", "err", err)
	}
}

func stageSeconds(st map[string]time.Duration) map[string]float64 {
	out := map[string]float64{}
	for k, v := range st {
		out[k] = v.Round(time.Millisecond).Seconds()
	}
	return out
}

// fail dead-letters a job with its reason and terminates it.
func (s *service) fail(m *queue.Msg, st *asset.State, err error, payload []byte) {
	reason := err.Error()
	ctx, cancel := bg()
	defer cancel()
	var raw json.RawMessage
	if json.Valid(payload) {
		raw = payload
	}
	if derr := s.q.PublishDeadLetter(ctx, queue.DeadLetter{JobID: st.JobID, Reason: reason, Deliveries: min(m.Attempt(), s.q.Config().MaxDeliver),
		Worker: s.cfg.Name, Job: raw}); derr != nil {
		// Without its dead letter the job must not vanish: retry later.
		s.log.Error("dead letter not stored, job handed back", "job_id", st.JobID, "err", derr)
		if err := m.Nak(s.q.RetryDelay(m.Attempt())); err != nil {
			s.log.Warn("nak failed (the job comes back after the ack wait)", "job_id", st.JobID, "err", err)
		}
		return
	}
	if st.JobID != "" {
		st.Status, st.Reason = asset.StatusFailed, reason
		s.putState(st)
	}
	if err := m.Term(truncate(reason, 256)); err != nil {
		// Its dead letter is stored; a redelivery fails it again.
		s.log.Error("term failed (the job will be delivered again)", "job_id", st.JobID, "err", err)
	}
	s.m.jobs.WithLabelValues("failed").Inc()
}

// exhausted handles a job the server gave up on after MaxDeliver deliveries
// without an answer (its workers died).
func (s *service) exhausted(ctx context.Context, e queue.Exhausted) {
	reason := fmt.Sprintf("no worker finished it in %d deliveries (worker crashes or timeouts)", e.Deliveries)
	var raw json.RawMessage
	if json.Valid(e.Payload) {
		raw = e.Payload
	}
	if err := s.q.PublishDeadLetter(ctx, queue.DeadLetter{JobID: e.JobID, Reason: reason, Deliveries: e.Deliveries,
		Worker: s.cfg.Name, Job: raw}); err != nil {
		s.log.Error("dead letter not stored", "job_id", e.JobID, "err", err)
		return
	}
	st := &asset.State{JobID: e.JobID, Status: asset.StatusFailed, Reason: reason}
	if j, err := asset.DecodeJob(e.Payload); err == nil {
		st.AssetID, st.Source = j.AssetID, j.Source.String()
	}
	s.putState(st)
	s.m.jobs.WithLabelValues("failed").Inc()
}

// heartbeat keeps the job's ack timer from expiring while it runs. A
// heartbeat that fails is a warning (once per run of failures, with how
// long the job has gone without one): past the ack wait the job is given
// to another worker.
func (s *service) heartbeat(ctx context.Context, m *queue.Msg, log *slog.Logger) {
	t := time.NewTicker(max(s.q.Config().AckWait/4, 250*time.Millisecond))
	defer t.Stop()
	last := time.Now()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := m.InProgress()
			switch {
			case err == nil:
				if failing {
					log.Info("heartbeats go through again", "without_for", time.Since(last).Round(time.Millisecond).String())
				}
				last, failing = time.Now(), false
			case !failing && ctx.Err() == nil:
				failing = true
				log.Warn("heartbeat failed; past the ack wait the job goes to another worker", "err", err,
					"without_for", time.Since(last).Round(time.Millisecond).String(), "ack_wait", s.q.Config().AckWait.String())
			}
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
