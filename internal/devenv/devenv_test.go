package devenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeExec(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// Tool finds a tool from anywhere, or says where it looked and what to
// set: the checkout above the working directory, $PATH, and
// $ABSEAL_TOOLS_DIR alone when it is set.
func TestTool(t *testing.T) {
	const name = "abseal-devenv-test-tool"
	elsewhere := t.TempDir()
	t.Chdir(elsewhere)
	t.Setenv("ABSEAL_TOOLS_DIR", "")
	t.Setenv("PATH", t.TempDir())

	// Outside any checkout, not on PATH: the error lists the places and
	// names the variable.
	_, err := Tool(name)
	if !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), "$PATH") || !strings.Contains(err.Error(), "ABSEAL_TOOLS_DIR=<checkout>/.tools") {
		t.Fatalf("missing tool: %v", err)
	}

	// A checkout above the working directory.
	checkout := t.TempDir()
	if err := os.WriteFile(filepath.Join(checkout, "go.mod"), []byte("module github.com/abseal/abseal\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeExec(t, filepath.Join(checkout, ".tools", "bin", name))
	sub := filepath.Join(checkout, "cmd", "worker")
	os.MkdirAll(sub, 0o755)
	t.Chdir(sub)
	if p, err := Tool(name); err != nil || p != filepath.Join(checkout, ".tools", "bin", name) {
		t.Fatalf("in a checkout: %q %v", p, err)
	}

	// Elsewhere again, with the tool on PATH.
	t.Chdir(elsewhere)
	onPath := t.TempDir()
	writeExec(t, filepath.Join(onPath, name))
	t.Setenv("PATH", onPath)
	if p, err := Tool(name); err != nil || p != filepath.Join(onPath, name) {
		t.Fatalf("on PATH: %q %v", p, err)
	}

	// ABSEAL_TOOLS_DIR is the only place looked when set.
	t.Setenv("ABSEAL_TOOLS_DIR", t.TempDir())
	if _, err := Tool(name); !errors.Is(err, ErrToolMissing) || !strings.Contains(err.Error(), "ABSEAL_TOOLS_DIR") {
		t.Fatalf("ABSEAL_TOOLS_DIR without the tool: %v", err)
	}
	t.Setenv("ABSEAL_TOOLS_DIR", filepath.Join(checkout, ".tools"))
	if p, err := Tool(name); err != nil || p != filepath.Join(checkout, ".tools", "bin", name) {
		t.Fatalf("ABSEAL_TOOLS_DIR: %q %v", p, err)
	}
}
