// Command enqueue submits abseal jobs and follows them.
//
//	enqueue --bucket B --key K [--asset-id ID] [--profile P] [--wait] [--json]
//	enqueue --bucket B --stdin [--wait] [--json]      keys from standard input, one per line
//	enqueue status JOB [--json]
//
// enqueue checks that the source object exists, submits the job (its id is
// deterministic: submitting the same request twice is one job) and prints
// the job id. --wait follows the job's stage and progress and ends with the
// asset manifest's location, or the dead-letter reason.
//
// Connection settings come from flags or the worker's environment
// variables (ABSEAL_NATS_URL, ABSEAL_S3_ENDPOINT, ABSEAL_S3_ACCESS_KEY,
// ABSEAL_S3_SECRET_KEY or ABSEAL_S3_SECRET_KEY_FILE, ABSEAL_S3_TLS).
//
// Exit codes: 0 done (or submitted, without --wait), 1 error, 2 usage,
// 3 source not found, 4 job failed, 5 --timeout reached.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/cliconf"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "enqueue:", err)
	}
	os.Exit(exitCode(err))
}

var (
	errUsage     = errors.New("usage")
	errNoSource  = errors.New("source not found")
	errJobFailed = errors.New("job failed")
	errTimeout   = errors.New("timed out waiting")
)

func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errNoSource):
		return 3
	case errors.Is(err, errJobFailed):
		return 4
	case errors.Is(err, errTimeout):
		return 5
	}
	return 1
}

type conn struct {
	nats cliconf.NATS
	s3   cliconf.S3
	env  cliconf.Env
}

func (c *conn) flags(fl *flag.FlagSet) {
	c.nats.Flags(fl, &c.env)
	c.s3.Flags(fl, &c.env)
}

// parse parses the flags and reports environment variables that did not
// parse.
func (c *conn) parse(fl *flag.FlagSet, args []string) error {
	if err := fl.Parse(args); err != nil {
		return err
	}
	return c.env.Err()
}

func (c *conn) queue(ctx context.Context) (*queue.Queue, func(), error) {
	nc, err := c.nats.Connect(nats.Name("abseal-enqueue"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, err
	}
	q, err := queue.Attach(ctx, nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return q, nc.Close, nil
}

func (c *conn) store(bucket string) (*s3.Store, error) { return c.s3.Store(bucket) }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "status" {
		return runStatus(ctx, args[1:], stdout, stderr)
	}
	fl := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var c conn
	c.flags(fl)
	bucket := fl.String("bucket", "", "bucket of the source object")
	key := fl.String("key", "", "key of the source object")
	fromStdin := fl.Bool("stdin", false, "read keys from standard input, one per line")
	assetID := fl.String("asset-id", "", "asset id (default: derived from the bucket and key)")
	profile := fl.String("profile", "default", "profile name")
	priority := fl.String("priority", "normal", "job subject suffix (abseal.jobs.<priority>)")
	wait := fl.Bool("wait", false, "follow the job(s) to the end")
	timeout := fl.Duration("timeout", 0, "with --wait: give up after this long (0: never)")
	asJSON := fl.Bool("json", false, "print JSON lines instead of text")
	user := fl.String("requested-by", c.env.String("USER", "operator"), "who asks, recorded in the job")
	if err := c.parse(fl, args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	switch {
	case fl.NArg() > 0:
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fl.Arg(0))
	case *bucket == "":
		return fmt.Errorf("%w: --bucket is required", errUsage)
	case (*key == "") == !*fromStdin:
		return fmt.Errorf("%w: give exactly one of --key and --stdin", errUsage)
	case *fromStdin && *assetID != "":
		return fmt.Errorf("%w: --asset-id names one asset; it cannot be used with --stdin", errUsage)
	}
	keys := []string{*key}
	if *fromStdin {
		keys = nil
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
				keys = append(keys, k)
			}
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		if len(keys) == 0 {
			return fmt.Errorf("%w: no keys on standard input", errUsage)
		}
	}
	st, err := c.store(*bucket)
	if err != nil {
		return err
	}
	q, closeQ, err := c.queue(ctx)
	if err != nil {
		return err
	}
	defer closeQ()

	out := printer{w: stdout, json: *asJSON}
	var jobs []*asset.Job
	var firstErr error
	for _, k := range keys {
		j, err := submit(ctx, st, q, *bucket, k, *assetID, *profile, *priority, *user, out)
		if err != nil {
			fmt.Fprintf(stderr, "enqueue: %s: %v\n", k, err)
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		jobs = append(jobs, j)
	}
	if !*wait {
		return firstErr
	}
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	for _, j := range jobs {
		if err := follow(ctx, q, j.JobID, out, stderr); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}

func submit(ctx context.Context, st *s3.Store, q *queue.Queue, bucket, key, assetID, profile, priority, user string, out printer) (*asset.Job, error) {
	info, err := st.Stat(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: s3://%s/%s", errNoSource, bucket, key)
	}
	if err != nil {
		return nil, err
	}
	j, err := asset.NewJob(asset.Source{Bucket: bucket, Key: key, ETag: info.ETag}, assetID, profile, user, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	dup, err := q.Submit(ctx, priority, j.JobID, j.Encode())
	if err != nil {
		return nil, err
	}
	out.print(map[string]any{"job_id": j.JobID, "asset_id": j.AssetID, "source": j.Source.String(), "duplicate": dup},
		func() string {
			s := fmt.Sprintf("%s\tasset %s\t%s", j.JobID, j.AssetID, j.Source)
			if dup {
				s += "\t(already submitted: the same job)"
			}
			return s
		})
	return j, nil
}

// follow watches a job's state to its end.
func follow(ctx context.Context, q *queue.Queue, jobID string, out printer, stderr io.Writer) error {
	var last asset.State
	shown := ""
	err := q.WatchState(ctx, jobID, func(b []byte) bool {
		if json.Unmarshal(b, &last) != nil {
			return true
		}
		if line := fmt.Sprintf("%s %s %s %.0f%%", jobID, last.Status, last.Stage, last.Percent); line != shown && !out.json {
			fmt.Fprintln(stderr, line)
			shown = line
		}
		return !last.Final()
	})
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: job %s is %s", errTimeout, jobID, orUnknown(last.Status))
	}
	if err != nil {
		return err
	}
	return report(last, out)
}

func orUnknown(s asset.Status) string {
	if s == "" {
		return "not started yet"
	}
	return string(s)
}

// report prints a final state; a failed job is an errJobFailed error.
func report(st asset.State, out printer) error {
	out.print(st, func() string {
		switch st.Status {
		case asset.StatusDone:
			return fmt.Sprintf("%s done: manifest s3://%s", st.JobID, st.Manifest)
		case asset.StatusFailed:
			return fmt.Sprintf("%s failed: %s", st.JobID, st.Reason)
		}
		s := fmt.Sprintf("%s %s %s %.0f%%", st.JobID, st.Status, st.Stage, st.Percent)
		if st.Reason != "" {
			s += " (last error: " + st.Reason + ")"
		}
		return s
	})
	if st.Status == asset.StatusFailed {
		return fmt.Errorf("%w: %s: %s", errJobFailed, st.JobID, st.Reason)
	}
	return nil
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("enqueue status", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var c conn
	c.flags(fl)
	asJSON := fl.Bool("json", false, "print JSON")
	// Job ids and flags in any order.
	var ids []string
	for {
		if err := c.parse(fl, args); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		if fl.NArg() == 0 {
			break
		}
		ids, args = append(ids, fl.Arg(0)), fl.Args()[1:]
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: no job id (enqueue status JOB [JOB...])", errUsage)
	}
	q, closeQ, err := c.queue(ctx)
	if err != nil {
		return err
	}
	defer closeQ()
	out := printer{w: stdout, json: *asJSON}
	var firstErr error
	for _, id := range ids {
		b, err := q.GetState(ctx, id)
		if err != nil {
			fmt.Fprintf(stderr, "enqueue: %v\n", err)
			firstErr = cmp(firstErr, err)
			continue
		}
		var st asset.State
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("job %s: state: %w", id, err)
		}
		firstErr = cmp(firstErr, report(st, out))
	}
	return firstErr
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// printer writes text lines or JSON lines.
type printer struct {
	w    io.Writer
	json bool
}

func (p printer) print(v any, text func() string) {
	if p.json {
		b, _ := json.Marshal(v)
		fmt.Fprintln(p.w, string(b))
		return
	}
	fmt.Fprintln(p.w, text())
}
