package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/hostile"
	"github.com/abseal/abseal/internal/testmedia"
)

// hostileMaxRSS is the most memory the worker may reach on any hostile
// upload.
const hostileMaxRSS = 1 << 30

// TestFleetHostileUploads uploads every hostile case to one worker at
// its default limits: each is either processed (the cases that are
// valid media) or dead-lettered on its first attempt with its reason, the
// worker's peak RSS stays under 1 GiB, no planted file beside an upload
// is read (had it been, the job would have succeeded), and a good upload
// afterwards succeeds on the same worker.
func TestFleetHostileUploads(t *testing.T) {
	f := fleet.New(t)
	w := f.StartWorker("w1")
	httpAddr(t, w) // up and serving
	dir := t.TempDir()
	var report []string
	for _, c := range hostile.Cases() {
		cdir := filepath.Join(dir, c.Name)
		if err := os.Mkdir(cdir, 0o700); err != nil {
			t.Fatal(err)
		}
		path, err := c.Make(cdir)
		if err != nil {
			t.Fatal(err)
		}
		resetPeakRSS(t, w.PID())
		start := time.Now()
		job, _ := f.Upload("uploads/hostile/"+c.Name+"/"+c.File, path)
		st := f.WaitState(job, 2*time.Minute, fleet.Final)
		secs := time.Since(start).Seconds()
		rss := peakRSS(t, w.PID())
		verdict := string(st.Status)
		report = append(report, fmt.Sprintf("%-22s %-7s %5.1f s %6.0f MiB  %s", c.Name, verdict, secs, float64(rss)/(1<<20), st.Reason))
		switch {
		case c.Want == nil && st.Status != asset.StatusDone:
			t.Errorf("%s: state %+v, want done", c.Name, st)
		case c.Want != nil && (st.Status != asset.StatusFailed || !strings.Contains(st.Reason, c.Reason)):
			t.Errorf("%s: state %+v, want failed with %q", c.Name, st, c.Reason)
		case c.Want != nil && st.Attempt != 1:
			t.Errorf("%s: failed on attempt %d, want 1 (a hostile upload is not retried)", c.Name, st.Attempt)
		}
		if rss > hostileMaxRSS {
			t.Errorf("%s: worker peak RSS %d MiB, want at most %d MiB", c.Name, rss>>20, hostileMaxRSS>>20)
		}
	}
	t.Logf("hostile uploads (case, verdict, seconds from upload to final state, worker peak RSS, reason):\n%s", strings.Join(report, "\n"))
	good, assetID := f.Upload("uploads/good.mp4", testmedia.Clip(t, "main.mp4"))
	if st := f.WaitState(good, 3*time.Minute, fleet.Final); st.Status != asset.StatusDone {
		t.Fatalf("good upload after the hostile ones: %+v", st)
	}
	f.CheckAsset(assetID)
	if n := len(w.Lines("job started")); n < 2 {
		t.Fatalf("worker started %d jobs", n)
	}
}

// resetPeakRSS resets the process's peak resident set (VmHWM) to its
// current one.
func resetPeakRSS(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("reset peak RSS: %v", err)
	}
}

// peakRSS is the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	fh, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("peak RSS: %v", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("peak RSS: %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("peak RSS: no VmHWM in /proc status")
	return 0
}
