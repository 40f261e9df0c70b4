// Package testenv starts the real services of abseal's integration tests, an
// embedded NATS JetStream server and a MinIO server process, on free loopback
// ports with temp dirs, and stops them when the test ends (also when it
// fails). A missing binary fails the test with the command that installs it;
// nothing is skipped.
package testenv

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/storage/s3"
)

// NATS starts an embedded JetStream server for the test.
func NATS(t testing.TB) *devenv.NATS {
	t.Helper()
	n, err := devenv.StartNATS(devenv.NATSConfig{StoreDir: t.TempDir()})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// MinIO starts a MinIO server for the test. env adds server environment
// variables.
func MinIO(t testing.TB, env ...string) *devenv.MinIO {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	m, err := devenv.StartMinIO(ctx, devenv.MinIOConfig{DataDir: t.TempDir(), Env: env})
	if errors.Is(err, devenv.ErrToolMissing) {
		t.Fatalf("testenv: the MinIO server binary is missing: run `make deps` (%v)", err)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		m.Close()
		if t.Failed() {
			t.Logf("testenv: minio output:\n%s", m.Output())
		}
	})
	return m
}

// Bucket returns an s3 store on a new bucket of m.
func Bucket(t testing.TB, m *devenv.MinIO, bucket string, partSize int64) *s3.Store {
	t.Helper()
	st, err := s3.New(s3.Config{
		Endpoint:  m.Endpoint,
		Bucket:    bucket,
		AccessKey: m.AccessKey,
		SecretKey: m.SecretKey,
		PartSize:  partSize,
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := st.CreateBucket(t.Context()); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return st
}

// Get200 fetches url and returns its body; any answer but 200 fails the
// test.
func Get200(t testing.TB, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %v %s", url, resp.StatusCode, err, b)
	}
	return b
}
