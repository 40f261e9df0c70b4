package transcode

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// budgetEvery is how many demuxed packets pass between two looks at the
// process's CPU time and memory.
const budgetEvery = 32

// budget watches what a transcode costs the machine while it runs: the CPU
// time it has used against the media it has decoded, and the memory of the
// process.
//
// Both are process-wide figures (getrusage RUSAGE_SELF, /proc/self/statm):
// FFmpeg's and x264's worker threads are not the caller's, so per-thread
// accounting would miss most of the work. A worker running two jobs at once
// counts the other job's CPU time and memory too, which only makes the
// limits stricter; they are set well above what any real video needs.
type budget struct {
	cpu0   time.Duration
	perSec float64
	slack  time.Duration
	maxRSS int64
}

func newBudget(l Limits) *budget {
	return &budget{cpu0: processCPU(), perSec: l.MaxCPUPerSecond, slack: l.CPUSlack, maxRSS: l.MaxMemory}
}

// check returns an over-limit error once the CPU time used since the
// start exceeds perSec per second of media plus the slack, or the
// process's resident memory exceeds the ceiling.
func (b *budget) check(media time.Duration) error {
	used := processCPU() - b.cpu0
	if allowed := time.Duration(b.perSec*float64(media)) + b.slack; used > allowed {
		return inputErr(ErrOverLimit, nil, "CPU time %s for %s of media over limit %s (%g s per second of media + %s)",
			used.Round(time.Millisecond), clock(media), allowed.Round(time.Millisecond), b.perSec, b.slack)
	}
	if rss := processRSS(); rss > b.maxRSS {
		return inputErr(ErrOverLimit, nil, "memory %d MiB at %s over limit %d MiB", rss>>20, clock(media), b.maxRSS>>20)
	}
	return nil
}

// processCPU is the user and system CPU time of the process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processRSS is the process's resident memory in bytes (0 when unknown).
func processRSS() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(data))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// declaredOverrun says whether decoded media has run past the container's
// declared duration by more than any estimate's error: twice the declared
// duration plus 30 s. (Durations are estimates: MPEG-TS's comes from the
// first and last timestamps, some containers' from the bitrate.)
func declaredOverrun(decoded, declared time.Duration) bool {
	return declared > 0 && decoded > 2*declared+30*time.Second
}
