package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/abseal/abseal/internal/cliconf"
	"github.com/abseal/abseal/transcode"
)

// config is the worker's configuration: flags, each with an ABSEAL_*
// environment variable that sets its default (the README has the table).
type config struct {
	NATS           cliconf.NATS
	S3             cliconf.S3
	S3SecretKey    string // from ABSEAL_S3_SECRET_KEY or --s3-secret-key-file only
	IngestBuckets  []string
	OutputBucket   string
	KEK            cliconf.KEK
	WatermarkKey   cliconf.WatermarkKey
	WMIDBits       int
	SessionCode    string
	ProfilesDir    string
	Concurrency    int
	Threads        int
	TempDir        string
	MaxSourceBytes int64
	// MaxMemory is the worker's resident memory a running job may not
	// push past (transcode.Limits.MaxMemory); 0: 4 GiB per concurrent job.
	MaxMemory     int64
	HTTPAddr      string
	AckWait       time.Duration
	MaxDeliver    int
	Replicas      int
	ShutdownGrace time.Duration
	ChunkLength   time.Duration
	Intake        bool
	Name          string
	LogLevel      string

	// --dev: run NATS, MinIO and the keys on this machine.
	Dev     bool
	DataDir string
	Demo    string // --demo FILE: process FILE through the upload path, print a summary, exit

	postParse func()
	env       cliconf.Env
}

// flags registers the service flags on fl.
func (c *config) flags(fl *flag.FlagSet) {
	e := &c.env
	env, envInt, envBool, envDur := e.String, e.Int, e.Bool, e.Duration
	c.NATS.Flags(fl, e)
	c.S3.Flags(fl, e)
	ingest := fl.String("ingest-buckets", env("ABSEAL_INGEST_BUCKETS", "ingest"), "buckets whose uploads become jobs, comma-separated")
	fl.StringVar(&c.OutputBucket, "output-bucket", env("ABSEAL_OUTPUT_BUCKET", "assets"), "bucket the sealed assets go to (never triggers jobs)")
	c.KEK.Flags(fl, e)
	c.WatermarkKey.Flags(fl, e, "watermark-key-file", "ABSEAL_WATERMARK_KEY_FILE", "watermark master key file, wrapped by the KEK (empty: no A/B watermark, variant a only)")
	fl.IntVar(&c.WMIDBits, "wmid-bits", envInt("ABSEAL_WMID_BITS", 32), "session id (wmid) size in bits, 8-64: sets the pattern length")
	fl.StringVar(&c.SessionCode, "session-code", env("ABSEAL_SESSION_CODE", "conv"), "session code of new assets: conv (a leak decodes to the wmid, no collusion resistance) or tardos (one codeword bit per segment; leaks are scored against the issued sessions, colluders are traced)")
	fl.StringVar(&c.ProfilesDir, "profiles-dir", env("ABSEAL_PROFILES_DIR", ""), "directory of NAME.json profiles (\"default\" is built in)")
	fl.IntVar(&c.Concurrency, "concurrency", envInt("ABSEAL_CONCURRENCY", 1), "jobs run at once by this worker")
	fl.IntVar(&c.Threads, "threads", envInt("ABSEAL_THREADS", 0), "CPU threads per job (0: CPUs / concurrency)")
	fl.StringVar(&c.TempDir, "tmp-dir", env("ABSEAL_TMP_DIR", os.TempDir()), "where jobs keep their private temp files")
	fl.Int64Var(&c.MaxSourceBytes, "max-source-bytes", e.Int64("ABSEAL_MAX_SOURCE_BYTES", 20<<30), "largest source accepted")
	fl.Int64Var(&c.MaxMemory, "max-memory", e.Int64("ABSEAL_MAX_MEMORY", 0), "resident memory (bytes) past which the running job fails as over limit; keep it below the container's limit (0: 4 GiB per concurrent job)")
	fl.StringVar(&c.HTTPAddr, "http-addr", env("ABSEAL_HTTP_ADDR", ":8080"), "address of /healthz, /readyz and /metrics (empty: off)")
	fl.DurationVar(&c.AckWait, "ack-wait", envDur("ABSEAL_ACK_WAIT", 60*time.Second), "redeliver a job after this long without a heartbeat")
	fl.IntVar(&c.MaxDeliver, "max-deliver", envInt("ABSEAL_MAX_DELIVER", 5), "deliveries of a job before it is dead-lettered")
	fl.IntVar(&c.Replicas, "replicas", envInt("ABSEAL_NATS_REPLICAS", 1), "replicas of abseal's streams and buckets (3 on a JetStream cluster); set by worker setup, used by a worker only for what is missing")
	fl.DurationVar(&c.ChunkLength, "chunk-length", envDur("ABSEAL_CHUNK_LENGTH", 3*time.Minute), "split a job whose source is longer than 1.5 × this into chunk tasks of about this length (whole segments) that any worker runs (0: never split)")
	fl.DurationVar(&c.ShutdownGrace, "shutdown-grace", envDur("ABSEAL_SHUTDOWN_GRACE", 30*time.Second), "on SIGTERM, let running jobs finish this long, then hand them back")
	fl.BoolVar(&c.Intake, "intake", envBool("ABSEAL_INTAKE", true), "turn upload events into jobs")
	host, _ := os.Hostname()
	fl.StringVar(&c.Name, "name", env("ABSEAL_WORKER_NAME", fmt.Sprintf("%s-%d", host, os.Getpid())), "worker name in job states and logs")
	fl.StringVar(&c.LogLevel, "log-level", env("ABSEAL_LOG_LEVEL", "info"), "debug, info, warn or error")
	fl.BoolVar(&c.Dev, "dev", false, "run everything on this machine: embedded NATS, a local MinIO, local keys under --data-dir")
	fl.StringVar(&c.DataDir, "data-dir", env("ABSEAL_DATA_DIR", ".abseal-dev"), "--dev: where NATS, MinIO and the keys keep their data")
	fl.StringVar(&c.Demo, "demo", "", "--dev: upload FILE to the ingest bucket, wait for its asset, print a summary and exit")
	c.postParse = func() { c.IngestBuckets = splitList(*ingest) }
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// finish resolves derived settings and validates, naming the bad setting.
func (c *config) finish() error {
	if c.postParse != nil {
		c.postParse()
	}
	if err := c.env.Err(); err != nil {
		return err
	}
	if c.S3.SecretFile != "" || c.S3SecretKey == "" {
		secret, err := c.S3.Secret()
		if err != nil {
			return err
		}
		c.S3SecretKey = secret
	}
	if c.Threads == 0 {
		c.Threads = max(1, runtime.NumCPU()/max(1, c.Concurrency))
	}
	if c.MaxMemory == 0 {
		c.MaxMemory = transcode.DefaultLimits().MaxMemory * int64(max(1, c.Concurrency))
	}
	if c.SessionCode == "" {
		c.SessionCode = "conv"
	}
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency)
	case c.WMIDBits < 8 || c.WMIDBits > 64:
		return fmt.Errorf("wmid-bits %d: must be 8-64", c.WMIDBits)
	case c.SessionCode != "conv" && c.SessionCode != "tardos":
		return fmt.Errorf("session-code %q: want conv or tardos", c.SessionCode)
	case c.Demo != "" && !c.Dev:
		return fmt.Errorf("--demo needs --dev")
	case c.Dev:
		return nil // the rest is set up by --dev
	case c.KEK.URI == "":
		return fmt.Errorf("kek-uri is empty: set --kek-uri or ABSEAL_KEK_URI (create a local one with `go run ./cmd/kek create FILE`)")
	case len(c.IngestBuckets) == 0:
		return fmt.Errorf("ingest-buckets is empty")
	case c.OutputBucket == "":
		return fmt.Errorf("output-bucket is empty")
	}
	for _, b := range c.IngestBuckets {
		if b == c.OutputBucket {
			return fmt.Errorf("ingest-buckets: %q is also the output bucket (its own objects would trigger jobs)", b)
		}
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("replicas %d: want 1 to 5", c.Replicas)
	}
	if c.AckWait < 3*time.Second {
		return fmt.Errorf("ack-wait %s: must be at least 3s", c.AckWait)
	}
	return nil
}
