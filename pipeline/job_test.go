package pipeline_test

import (
	"errors"
	"testing"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/pipeline"
)

func TestErrorClasses(t *testing.T) {
	if pipeline.IsPermanent(errors.New("connection refused")) {
		t.Fatal("a network error is transient")
	}
	if !pipeline.IsPermanent(pipeline.Permanent(errors.New("x"))) {
		t.Fatal("Permanent is permanent")
	}
	if _, err := asset.DecodeJob([]byte(`{"v":2}`)); !pipeline.IsPermanent(err) {
		t.Fatalf("a bad job is permanent: %v", err)
	}
}
