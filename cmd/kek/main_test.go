package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateRotateCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	var out bytes.Buffer
	for _, cmd := range []string{"create", "check", "rotate", "check"} {
		if err := run(t.Context(), []string{cmd, path}, &out); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	if err := run(t.Context(), []string{"create", path}, &out); err == nil {
		t.Fatal("create overwrote an existing keyset")
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(out.String(), string(data[:40])) || strings.Contains(out.String(), "keyValue") {
		t.Fatal("output shows key material")
	}
	if err := run(t.Context(), []string{"frobnicate"}, &out); err == nil {
		t.Fatal("unknown command accepted")
	}
}
