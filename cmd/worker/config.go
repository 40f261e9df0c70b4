package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// config is the worker's configuration: flags, each with an ABSEAL_*
// environment variable that sets its default (the README has the table).
type config struct {
	NATSURL        string
	S3Endpoint     string
	S3AccessKey    string
	S3SecretKey    string // from ABSEAL_S3_SECRET_KEY or --s3-secret-key-file only
	S3SecretFile   string
	S3TLS          bool
	IngestBuckets  []string
	OutputBucket   string
	KEKURI         string
	KEKOpts        kekFiles
	WatermarkKey   string // file
	WMIDBits       int
	ProfilesDir    string
	Concurrency    int
	Threads        int
	TempDir        string
	MaxSourceBytes int64
	HTTPAddr       string
	AckWait        time.Duration
	MaxDeliver     int
	ShutdownGrace  time.Duration
	Intake         bool
	Name           string
	LogLevel       string

	// --dev: run NATS, MinIO and the keys on this machine.
	Dev     bool
	DataDir string
	Demo    string // --demo FILE: process FILE through the upload path, print a summary, exit

	postParse func()
}

type kekFiles struct{ Vault, AWS, GCP string }

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envBool(name string, def bool) bool {
	if v, err := strconv.ParseBool(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envDur(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// flags registers the service flags on fl.
func (c *config) flags(fl *flag.FlagSet) {
	fl.StringVar(&c.NATSURL, "nats-url", env("ABSEAL_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL(s), comma-separated")
	fl.StringVar(&c.S3Endpoint, "s3-endpoint", env("ABSEAL_S3_ENDPOINT", "127.0.0.1:9000"), "S3/MinIO endpoint host:port")
	fl.StringVar(&c.S3AccessKey, "s3-access-key", env("ABSEAL_S3_ACCESS_KEY", ""), "S3 access key")
	fl.StringVar(&c.S3SecretFile, "s3-secret-key-file", env("ABSEAL_S3_SECRET_KEY_FILE", ""), "file holding the S3 secret key (or set ABSEAL_S3_SECRET_KEY)")
	fl.BoolVar(&c.S3TLS, "s3-tls", envBool("ABSEAL_S3_TLS", false), "use HTTPS for S3")
	ingest := fl.String("ingest-buckets", env("ABSEAL_INGEST_BUCKETS", "ingest"), "buckets whose uploads become jobs, comma-separated")
	fl.StringVar(&c.OutputBucket, "output-bucket", env("ABSEAL_OUTPUT_BUCKET", "assets"), "bucket the sealed assets go to (never triggers jobs)")
	fl.StringVar(&c.KEKURI, "kek-uri", env("ABSEAL_KEK_URI", ""), "KEK: a Tink keyset file path, hcvault://, aws-kms:// or gcp-kms:// URI")
	fl.StringVar(&c.KEKOpts.Vault, "vault-token-file", env("ABSEAL_VAULT_TOKEN_FILE", ""), "Vault token file (hcvault:// KEK)")
	fl.StringVar(&c.KEKOpts.AWS, "aws-credentials-file", env("ABSEAL_AWS_CREDENTIALS_FILE", ""), "AWS credentials file (aws-kms:// KEK)")
	fl.StringVar(&c.KEKOpts.GCP, "gcp-credentials-file", env("ABSEAL_GCP_CREDENTIALS_FILE", ""), "GCP service-account file (gcp-kms:// KEK)")
	fl.StringVar(&c.WatermarkKey, "watermark-key-file", env("ABSEAL_WATERMARK_KEY_FILE", ""), "watermark master key file (empty: no A/B watermark, variant a only)")
	fl.IntVar(&c.WMIDBits, "wmid-bits", envInt("ABSEAL_WMID_BITS", 32), "session id (wmid) size in bits, 8-64: sets the pattern length")
	fl.StringVar(&c.ProfilesDir, "profiles-dir", env("ABSEAL_PROFILES_DIR", ""), "directory of NAME.json profiles (\"default\" is built in)")
	fl.IntVar(&c.Concurrency, "concurrency", envInt("ABSEAL_CONCURRENCY", 1), "jobs run at once by this worker")
	fl.IntVar(&c.Threads, "threads", envInt("ABSEAL_THREADS", 0), "CPU threads per job (0: CPUs / concurrency)")
	fl.StringVar(&c.TempDir, "tmp-dir", env("ABSEAL_TMP_DIR", os.TempDir()), "where jobs keep their private temp files")
	fl.Int64Var(&c.MaxSourceBytes, "max-source-bytes", int64(envInt("ABSEAL_MAX_SOURCE_BYTES", 20<<30)), "largest source accepted")
	fl.StringVar(&c.HTTPAddr, "http-addr", env("ABSEAL_HTTP_ADDR", ":8080"), "address of /healthz, /readyz and /metrics (empty: off)")
	fl.DurationVar(&c.AckWait, "ack-wait", envDur("ABSEAL_ACK_WAIT", 60*time.Second), "redeliver a job after this long without a heartbeat")
	fl.IntVar(&c.MaxDeliver, "max-deliver", envInt("ABSEAL_MAX_DELIVER", 5), "deliveries of a job before it is dead-lettered")
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
	if c.S3SecretFile != "" {
		b, err := os.ReadFile(c.S3SecretFile)
		if err != nil {
			return fmt.Errorf("s3-secret-key-file: %w", err)
		}
		c.S3SecretKey = strings.TrimSpace(string(b))
	} else if c.S3SecretKey == "" {
		c.S3SecretKey = os.Getenv("ABSEAL_S3_SECRET_KEY")
	}
	if c.Threads == 0 {
		c.Threads = max(1, runtime.NumCPU()/max(1, c.Concurrency))
	}
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency)
	case c.WMIDBits < 8 || c.WMIDBits > 64:
		return fmt.Errorf("wmid-bits %d: must be 8-64", c.WMIDBits)
	case c.Demo != "" && !c.Dev:
		return fmt.Errorf("--demo needs --dev")
	case c.Dev:
		return nil // the rest is set up by --dev
	case c.KEKURI == "":
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
	if c.AckWait < 3*time.Second {
		return fmt.Errorf("ack-wait %s: must be at least 3s", c.AckWait)
	}
	return nil
}
