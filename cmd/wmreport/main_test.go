package main

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/internal/testmedia"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

// TestRunOneAttack: the report of one attack on a 6 s clip (11 marked
// segments, too few for the pattern) has that attack's row, with every
// marked segment scored and its bits mostly right, and the quality lines.
func TestRunOneAttack(t *testing.T) {
	const name = "libx264 CRF 28 at 640x360"
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--section", "robustness", "--clip", testmedia.Clip(t, "main.mp4"), "--attack", name, "--sessions", "2",
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
	if len(rows) != 1 || rows[0][0] != name || len(rows[0]) != 9 || strings.Contains(out, "Quality where viewers see it") {
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

// TestQualitySection: the quality section on a 6 s 640x360 camera-like
// clip (one rung): the marked rung against the unmarked one, and one
// trade-off row whose attacked sessions' segments are all read. On this
// smooth clip the mark costs a measurable fraction of a dB: a render
// without it fails. (Detection alone would not prove the mark: two x264
// encoders of the same frames do not give the same bits, and the detector
// tells the two encodes apart even without a mark.)
func TestQualitySection(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"--section", "quality", "--quality-clip", testmedia.Clip(t, "natural-360p.mp4"), "--points", "3:0.08:8",
		"--sessions", "2", "--workdir", t.TempDir()}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	var rows [][]string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "| ") && !strings.HasPrefix(l, "| rung |") && !strings.HasPrefix(l, "| strength") {
			rows = append(rows, strings.Split(strings.Trim(l, "| "), " | "))
		}
	}
	if len(rows) != 2 || rows[0][0] != "360p" || len(rows[0]) != 9 || rows[1][0] != "3, 0.08, 8 (default)" || len(rows[1]) != 8 {
		t.Fatalf("rows %q, want the 360p rung and the default trade-off point:\n%s", rows, out)
	}
	num := func(s string) float64 {
		v, err := strconv.ParseFloat(strings.Fields(s)[0], 64)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return v
	}
	plain, marked, dpsnr, dsize := num(rows[0][1]), num(rows[0][2]), num(rows[0][3]), num(rows[0][8])
	if plain < 30 || math.Abs(marked-plain-dpsnr) > 0.02 || dpsnr > -0.1 || dpsnr < -2 || math.Abs(dsize) > 10 {
		t.Errorf("360p: PSNR-Y %g dB unmarked, %g dB marked, Δ %g dB, Δsize %g %%: want the mark to cost 0.1 to 2 dB", plain, marked, dpsnr, dsize)
	}
	if z, wrong := num(rows[1][5]), rows[1][7]; z < 3 || !strings.HasPrefix(wrong, "0 of ") {
		t.Errorf("trade-off row %q: median |z| %g, sign errors %s; want >= 3 and none", rows[1], z, wrong)
	}
}

// Bad report options are refused with what is wrong, before any work.
func TestBadQualityOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--section", "speed"}, `--section "speed": want defaults, robustness, quality or all`},
		{[]string{"--jobs", "0"}, "--jobs must be at least 1"},
		{[]string{"--section", "defaults", "--defaults-attack", "no such attack"}, `no attack "no such attack" (have "CRF 28 at 640x360"`},
		{[]string{"--section", "defaults", "--control-keys", "0"}, "--control-keys must be at least 1"},
		{[]string{"--points", "3:0.1"}, `"3:0.1": want strength:flat:grid`},
		{[]string{"--points", "3:2:8"}, "flat share 2 outside [0, 1]"},
		{[]string{"--points", "0:0.1:8"}, "strength 0 outside (0, 16]"},
		{[]string{"--points", "3:0.1:1"}, "grid 1 outside 2..256"},
		{[]string{"--points", "a:b:c"}, `"a:b:c": strconv.ParseFloat`},
	} {
		err := run(t.Context(), append(tc.args, "--workdir", t.TempDir()), &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %s", tc.args, err, tc.want)
		}
	}
}

// TestDefaultsCommands: every attack and control of the defaults section
// is a command this ffmpeg runs, on 3 s (8 s for the trim) of a 1280x720
// 30 fps clip, and gives a suspect the detector decodes (a typo in a
// filter graph would otherwise surface hours into make wm-report).
func TestDefaultsCommands(t *testing.T) {
	src := testmedia.Clip(t, "sample.mp4")
	dir := t.TempDir()
	type cmd struct {
		name     string
		in, args []string
	}
	var cmds []cmd
	for _, a := range defaultsAttacks() {
		if a.missing == "" {
			cmds = append(cmds, cmd{a.name, nil, a.args})
		}
	}
	for _, c := range defaultsControls() {
		cmds = append(cmds, cmd{"control: " + c.name, c.in, c.out})
	}
	if len(cmds) < 20 {
		t.Fatalf("%d commands, want the attacks and the controls", len(cmds))
	}
	for i, c := range cmds {
		out := filepath.Join(dir, fmt.Sprintf("%d.mp4", i))
		length := "3" // enough frames to decode; the trim needs more
		if slices.Contains(c.args, "-ss") {
			length = "8"
		}
		args := append(append(append([]string{"-hide_banner", "-v", "error", "-y", "-t", length}, c.in...), "-i", src, "-an"), c.args...)
		if o, err := exec.CommandContext(t.Context(), "ffmpeg", append(args, out)...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v: %s", c.name, err, o)
			continue
		}
		sus, dur, err := detect.DecodeSuspect(t.Context(), out)
		if err != nil || len(sus.Frames) < 10 || dur <= 0 {
			t.Errorf("%s: the suspect does not decode: %v", c.name, err)
		}
		os.Remove(out)
	}
}

// TestJournal: a resumed report reads back what the earlier run wrote and
// ignores a line cut short by a kill.
func TestJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trials.jsonl")
	j, done, err := openJournal[trialResult](path)
	if err != nil || len(done) != 0 {
		t.Fatalf("new journal: %v, %d lines", err, len(done))
	}
	for s := range 3 {
		if err := j.add(trialResult{Attack: "a", Session: s, WMID: uint64(100 + s), Identified: s != 1}); err != nil {
			t.Fatal(err)
		}
	}
	j.f.WriteString(`{"attack":"a","session":3,"wm`)
	j.f.Close()
	j, done, err = openJournal[trialResult](path)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 3 || done[2].WMID != 102 || !done[0].Identified || done[1].Identified {
		t.Fatalf("read back %+v", done)
	}
	// The next line after the torn one is read back too.
	if err := j.add(trialResult{Attack: "a", Session: 3, WMID: 103}); err != nil {
		t.Fatal(err)
	}
	j.f.Close()
	j, done, err = openJournal[trialResult](path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close()
	if len(done) != 4 || done[3].WMID != 103 {
		t.Fatalf("after a torn line, read back %+v", done)
	}
}
