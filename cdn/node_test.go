package cdn_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestNodeSuite runs the edge function's own tests (abseal-edge.test.mjs,
// Node's test runner) against the vectors TestVectors checks in Go. Node
// and cdn/node_modules come from make deps; missing, the test fails and
// says so.
func TestNodeSuite(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: run make deps (%v)", err)
	}
	if _, err := os.Stat("node_modules/cbor2/package.json"); err != nil {
		t.Fatalf("cdn/node_modules is missing: run make deps (npm ci in cdn/): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec")
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("node --test: %v", err)
	}
}
