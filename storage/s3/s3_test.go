package s3_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
	"github.com/abseal/abseal/storage/storagetest"
)

// TestConformance runs the storage suite against a real MinIO server.
func TestConformance(t *testing.T) {
	m := testenv.MinIO(t)
	var n atomic.Int32
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return testenv.Bucket(t, m, fmt.Sprintf("conformance-%d", n.Add(1)), s3.MinPartSize)
	}, storagetest.Options{PartSize: s3.MinPartSize})
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []s3.Config{
		{Bucket: "b"},
		{Endpoint: "http://x:9000", Bucket: "b"},
		{Endpoint: "x:9000"},
		{Endpoint: "x:9000", Bucket: "b", PartSize: 1024},
	} {
		if _, err := s3.New(c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}

func TestMissingBucket(t *testing.T) {
	m := testenv.MinIO(t)
	s, err := s3.New(s3.Config{Endpoint: m.Endpoint, Bucket: "no-such-bucket", AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(t.Context()); err == nil {
		t.Fatal("check of a missing bucket passed")
	}
	_, err = s.Put(t.Context(), "k", strings.NewReader("x"), storage.PutOptions{})
	if err == nil || !strings.Contains(err.Error(), "no-such-bucket") {
		t.Fatalf("put into a missing bucket: err = %v, want an error naming the bucket", err)
	}
	_, err = s.Stat(t.Context(), "k")
	t.Logf("stat in a missing bucket: %v", err)
	if err == nil {
		t.Fatal("stat in a missing bucket succeeded")
	}
}
