package devenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIO is a MinIO server process on loopback.
type MinIO struct {
	// Endpoint is host:port of the S3 API.
	Endpoint  string
	AccessKey string
	SecretKey string
	DataDir   string

	cmd  *exec.Cmd
	done chan struct{}
	out  *tailBuffer
	once sync.Once
}

// MinIOConfig configures StartMinIO.
type MinIOConfig struct {
	// DataDir holds the objects. Required.
	DataDir string
	// Port of the S3 API; 0 picks a free loopback port.
	Port int
	// AccessKey and SecretKey of the root user; random when empty.
	AccessKey, SecretKey string
	// Env adds environment variables (e.g. MINIO_NOTIFY_NATS_*).
	Env []string
	// Binary overrides the minio binary (default: Tool("minio")).
	Binary string
}

// StartMinIO starts a MinIO server and waits until it is ready. The process
// is killed if this process dies (Linux parent-death signal) and by Close.
func StartMinIO(ctx context.Context, cfg MinIOConfig) (*MinIO, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("devenv: minio: data dir is empty")
	}
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = Tool("minio"); err != nil {
			return nil, err
		}
	}
	if cfg.AccessKey == "" {
		cfg.AccessKey = "abseal-" + randomHex(6)
	}
	if cfg.SecretKey == "" {
		cfg.SecretKey = randomHex(20)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, console := cfg.Port, 0
		var err error
		if port == 0 {
			if port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		if console, err = FreePort(); err != nil {
			return nil, err
		}
		m, err := startMinIO(ctx, bin, cfg, port, console)
		if err == nil {
			return m, nil
		}
		lastErr = err
		if cfg.Port != 0 || !strings.Contains(err.Error(), "in use") {
			break
		}
	}
	return nil, lastErr
}

func startMinIO(ctx context.Context, bin string, cfg MinIOConfig, port, console int) (*MinIO, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("devenv: minio: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin, "server", "--quiet",
		"--address", addr,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(console)),
		cfg.DataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+cfg.AccessKey,
		"MINIO_ROOT_PASSWORD="+cfg.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Env = append(cmd.Env, cfg.Env...)
	out := &tailBuffer{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devenv: minio: start %s: %w", bin, err)
	}
	m := &MinIO{
		Endpoint:  addr,
		AccessKey: cfg.AccessKey,
		SecretKey: cfg.SecretKey,
		DataDir:   cfg.DataDir,
		cmd:       cmd,
		done:      make(chan struct{}),
		out:       out,
	}
	go func() { cmd.Wait(); close(m.done) }()

	ready := "http://" + addr + "/minio/health/ready"
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-m.done:
			return nil, fmt.Errorf("devenv: minio exited during start-up: %s", out.String())
		case <-ctx.Done():
			m.Close()
			return nil, fmt.Errorf("devenv: minio: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get(ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && m.serving(ctx) {
				return m, nil
			}
		}
		if time.Now().After(deadline) {
			m.Close()
			return nil, fmt.Errorf("devenv: minio not ready at %s after 60s: %s", addr, out.String())
		}
	}
}

// serving reports whether authenticated S3 calls work: the health endpoint
// can answer before the object layer, IAM and bucket metadata are up, and
// until they are every S3 call fails with "Server not initialized yet".
func (m *MinIO) serving(ctx context.Context) bool {
	c, err := minio.New(m.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		MaxRetries: 1,
	})
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.ListBuckets(ctx); err != nil {
		return false
	}
	// A bucket look-up that must answer "no such bucket", not "not ready".
	_, err = c.BucketExists(ctx, "abseal-readiness-"+randomHex(4))
	return err == nil
}

// Close stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (m *MinIO) Close() {
	m.once.Do(func() {
		pgid := -m.cmd.Process.Pid
		syscall.Kill(pgid, syscall.SIGTERM)
		select {
		case <-m.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(pgid, syscall.SIGKILL)
			<-m.done
		}
	})
}

// Output returns the last lines the server printed.
func (m *MinIO) Output() string { return m.out.String() }

// FreePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("devenv: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}

// NotifyEnv returns the MinIO server environment that sends bucket
// notifications to NATS JetStream: target id (ARN arn:minio:sqs::<id>:nats),
// server URL (nats://host:port), subject, and an optional queue dir where
// MinIO keeps events while NATS is unreachable.
func NotifyEnv(id, natsURL, subject, queueDir string) []string {
	addr := strings.TrimPrefix(natsURL, "nats://")
	env := []string{
		"MINIO_NOTIFY_NATS_ENABLE_" + id + "=on",
		"MINIO_NOTIFY_NATS_ADDRESS_" + id + "=" + addr,
		"MINIO_NOTIFY_NATS_SUBJECT_" + id + "=" + subject,
		"MINIO_NOTIFY_NATS_JETSTREAM_" + id + "=on",
	}
	if queueDir != "" {
		env = append(env, "MINIO_NOTIFY_NATS_QUEUE_DIR_"+id+"="+queueDir)
	}
	return env
}
