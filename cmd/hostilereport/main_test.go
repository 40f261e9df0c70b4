package main

import (
	"bytes"
	"strings"
	"testing"
)

// Two cases through a worker built from this module: each gets a row with
// its verdict, and both meet their goals.
func TestReport(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"--case", "empty", "--case", "concat-self"}, &out, &errb); err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errb.String())
	}
	for _, want := range []string{
		"| empty | rejected: ErrEmpty | rejected (bad input) | transcode: empty file (0 bytes) |",
		`| concat-self | rejected: ErrNotVideo | rejected (bad input) | transcode: not a video: container "concat" not allowed |`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if n := strings.Count(out.String(), "| met |"); n != 2 {
		t.Errorf("%d cases met their goal, want 2:\n%s", n, out.String())
	}
}
