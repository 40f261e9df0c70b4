package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestSim: a small run gives a row per cell, a single leaker is accused
// within a few minutes of segments, two interleaving colluders within
// 500, and no innocent is accused.
func TestSim(t *testing.T) {
	var out, log bytes.Buffer
	err := run(context.Background(), []string{"--trials", "300", "--search-trials", "100", "--colluders", "1,2", "--strategies", "interleave,average", "--innocents", "20"}, &out, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Log("\n" + out.String())
	rows := 0
	for _, line := range strings.Split(out.String(), "\n") {
		f := strings.Split(line, "|")
		if len(f) < 7 || (strings.TrimSpace(f[1]) != "1" && strings.TrimSpace(f[1]) != "2") {
			continue
		}
		rows++
		n, err := strconv.Atoi(strings.TrimSpace(f[3]))
		if err != nil {
			t.Fatalf("row %q: segments %q", line, f[3])
		}
		if limit := map[string]int{"1": 120, "2": 500}[strings.TrimSpace(f[1])]; n > limit {
			t.Errorf("row %q: %d segments, want at most %d", line, n, limit)
		}
		if inn := strings.TrimSpace(f[6]); !strings.HasPrefix(inn, "0 /") {
			t.Errorf("row %q: innocents accused", line)
		}
	}
	if rows != 3 {
		t.Errorf("%d rows, want 3 (one leaker; two colluders × two strategies)", rows)
	}
	if err := run(context.Background(), []string{"--strategies", "bribe"}, &out, &log); err == nil {
		t.Error("an unknown strategy was accepted")
	}
}
