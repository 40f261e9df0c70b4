// Command hostilereport runs every hostile upload of internal/hostile
// through `worker process` (one subprocess per case, the default profile)
// and prints a Markdown table: the verdict, the reason, the peak resident
// memory and the seconds each took, against the goal of at most 1 GiB and
// 30 s per upload.
//
//	hostilereport [--worker PATH] [--threads N] [--timeout 2m] [--case NAME]...
//
// Without --worker the worker is built from this module first. --case,
// repeatable, runs only the cases named.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/internal/hostile"
	"github.com/abseal/abseal/transcode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "hostilereport:", err)
		os.Exit(1)
	}
}

// Goals for one hostile upload.
const (
	maxRSS     = 1 << 30
	maxSeconds = 30
)

type caseNames []string

func (c *caseNames) String() string     { return strings.Join(*c, ",") }
func (c *caseNames) Set(v string) error { *c = append(*c, v); return nil }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("hostilereport", flag.ContinueOnError)
	fl.SetOutput(stderr)
	worker := fl.String("worker", "", "worker binary (default: built from this module)")
	threads := fl.Int("threads", 2, "the worker's CPU budget (--threads)")
	timeout := fl.Duration("timeout", 2*time.Minute, "time allowed per case")
	var only caseNames
	fl.Var(&only, "case", "run only this case (repeatable)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cases := hostile.Cases()
	if len(only) > 0 {
		cases = slices.DeleteFunc(cases, func(c hostile.Case) bool { return !slices.Contains(only, c.Name) })
		if len(cases) != len(only) {
			return fmt.Errorf("unknown case in %s", only.String())
		}
	}
	work, err := os.MkdirTemp("", "hostilereport-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if *worker == "" {
		if *worker, err = buildWorker(ctx, work); err != nil {
			return err
		}
	}

	fmt.Fprintln(stdout, "| case | expected | verdict | reason | peak RSS | seconds | goal |")
	fmt.Fprintln(stdout, "|---|---|---|---|---:|---:|---|")
	failed := 0
	for _, c := range cases {
		m, err := measure(ctx, *worker, c, filepath.Join(work, c.Name), *threads, *timeout)
		if err != nil {
			return fmt.Errorf("%s: %w", c.Name, err)
		}
		ok := m.matches(c) && m.rss <= maxRSS && m.took.Seconds() <= maxSeconds
		if !ok {
			failed++
		}
		fmt.Fprintf(stdout, "| %s | %s | %s | %s | %d MiB | %.1f | %s |\n", c.Name, expected(c), m.verdict(),
			strings.ReplaceAll(m.reason, "|", `\|`), m.rss>>20, m.took.Seconds(), map[bool]string{true: "met", false: "**missed**"}[ok])
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cases missed their verdict or goal", failed, len(cases))
	}
	return nil
}

func buildWorker(ctx context.Context, dir string) (string, error) {
	root, err := devenv.ModuleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "worker")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/worker")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build worker: %w\n%s", err, out)
	}
	return bin, nil
}

// measurement is what one `worker process` run did.
type measurement struct {
	exit   int
	reason string // the worker's error, empty on success
	rss    int64  // peak resident memory, bytes
	took   time.Duration
}

// measure makes the case's upload in dir and runs the worker on it.
func measure(ctx context.Context, worker string, c hostile.Case, dir string, threads int, timeout time.Duration) (*measurement, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	in, err := c.Make(dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, worker, "process", "--in", in, "--out", filepath.Join(dir, "out"), "--threads", strconv.Itoa(threads))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err = cmd.Run()
	m := &measurement{took: time.Since(start)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.rss = ru.Maxrss << 10 // KiB on Linux
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		m.exit = ee.ExitCode()
		m.reason = lastError(stderr.String())
		if ctx.Err() != nil {
			m.reason = fmt.Sprintf("killed after %s", timeout)
		}
	default:
		return nil, err
	}
	return m, nil
}

// lastError is the worker's final "worker: …" line.
func lastError(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if s, ok := strings.CutPrefix(strings.TrimSpace(lines[i]), "worker: "); ok {
			return s
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// matches reports whether the run reached the case's verdict: success, or
// a bad-input exit (3) with the case's reason.
func (m *measurement) matches(c hostile.Case) bool {
	if c.Want == nil {
		return m.exit == 0
	}
	return m.exit == 3 && strings.Contains(m.reason, c.Reason)
}

func (m *measurement) verdict() string {
	switch m.exit {
	case 0:
		return "accepted"
	case 3:
		return "rejected (bad input)"
	}
	return fmt.Sprintf("failed (exit %d)", m.exit)
}

func expected(c hostile.Case) string {
	if c.Want == nil {
		return "accepted"
	}
	return "rejected: " + kindName(c.Want)
}

func kindName(kind error) string {
	switch kind {
	case transcode.ErrEmpty:
		return "ErrEmpty"
	case transcode.ErrNotVideo:
		return "ErrNotVideo"
	case transcode.ErrCorrupt:
		return "ErrCorrupt"
	case transcode.ErrOverLimit:
		return "ErrOverLimit"
	}
	return kind.Error()
}
