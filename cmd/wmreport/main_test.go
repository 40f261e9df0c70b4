package main

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/abseal/abseal/internal/testmedia"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

// TestRunOneAttack: the report of one attack on a 6 s clip (11 marked
// segments, too few for the pattern) has that attack's row, with every
// marked segment scored and its bits mostly right, and the quality lines.
func TestRunOneAttack(t *testing.T) {
	const name = "libx264 CRF 28 at 640x360"
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--clip", testmedia.Clip(t, "main.mp4"), "--attack", name, "--sessions", "2",
		"--workdir", t.TempDir()}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	var rows [][]string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| attack |") {
			rows = append(rows, strings.Split(strings.Trim(l, "| "), " | "))
		}
	}
	if len(rows) != 1 || rows[0][0] != name || len(rows[0]) != 9 {
		t.Fatalf("table rows %q, want one for %q:\n%s", rows, name, out)
	}
	row := rows[0]
	scored, err1 := strconv.Atoi(row[1])
	called, err2 := strconv.Atoi(row[2])
	ber, err3 := strconv.ParseFloat(row[3], 64)
	signErrors, err4 := strconv.ParseFloat(row[5], 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatalf("row %q: %v", row, err)
	}
	// 2 sessions of 11 marked segments each; a light re-encode keeps the
	// mark: most bits are called, and nearly all of them right.
	if scored != 22 || called < 16 || ber > 0.1 || signErrors > 0.1 || row[6] != "0/2" {
		t.Errorf("row %q: want 22 segments scored, >= 16 bits called, bit error rate and sign errors <= 0.1, "+
			"0/2 identified (the clip is shorter than the pattern)", row)
	}
	for _, want := range []string{"Source: main.mp4;", "2 sessions per attack", "fewer than the 108-bit pattern", "Quality of the marked frames", "Size of the encodes"} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestRunUnknownAttack(t *testing.T) {
	err := run(t.Context(), []string{"--attack", "no such attack"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), `no attack "no such attack" (have "libx264 CRF 28 at 640x360"`) {
		t.Fatalf("err = %v", err)
	}
}
