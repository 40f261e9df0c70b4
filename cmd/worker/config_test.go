package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/abseal/abseal/transcode"
)

// A set but unparsable variable stops the worker before it connects to
// anything, with a usage error naming the variable.
func TestConfigRejectsBadEnvironment(t *testing.T) {
	t.Setenv("ABSEAL_KEK_URI", "kek.json")
	t.Setenv("ABSEAL_CONCURRENCY", "four")
	t.Setenv("ABSEAL_SHUTDOWN_GRACE", "30")
	var out, errb bytes.Buffer
	err := runServe(t.Context(), nil, &out, &errb)
	if !errors.Is(err, errUsage) {
		t.Fatalf("err = %v, want a usage error", err)
	}
	for _, want := range []string{`ABSEAL_CONCURRENCY="four"`, `ABSEAL_SHUTDOWN_GRACE="30" is not a duration`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// The memory ceiling defaults to the transcode default per concurrent job.
func TestConfigMaxMemoryDefault(t *testing.T) {
	c := &config{Concurrency: 2, WMIDBits: 32, S3SecretKey: "x", Dev: true}
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if want := 2 * transcode.DefaultLimits().MaxMemory; c.MaxMemory != want {
		t.Errorf("max memory %d, want %d", c.MaxMemory, want)
	}
}
