// Command worker is abseal's worker.
//
//	worker [serve] [flags]          serve jobs from NATS JetStream (flags and ABSEAL_* environment: see README)
//	worker --dev [--demo FILE]      the same on this machine: embedded NATS, a local MinIO, local keys
//	worker setup [flags]            create or update the streams, the consumer and the job-state bucket, then exit
//	worker process --in FILE --out DIR [--profile FILE] [--variants 1|2] [--play a|b|none]
//
// serve pulls jobs, turns each source into a sealed, A/B-watermarked CMAF
// asset in the output bucket, writes its manifest last, announces it on
// abseal.assets.ready.<asset> and acks; upload events from the ingest
// buckets become jobs. /healthz, /readyz and /metrics are served on
// --http-addr; SIGTERM stops taking work and lets running jobs finish for
// --shutdown-grace before handing them back.
//
// process transcodes and packages one file into a directory, laid out as an
// asset is in the bucket (without queue, bucket or encryption): for
// operators debugging an asset, and for tests.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/abseal/abseal/transcode"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	transcode.RouteLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)), slog.LevelError)
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for usage errors, 3 for bad input, 1 otherwise.
func exitCode(err error) int {
	var ie *transcode.InputError
	switch {
	case errors.Is(err, errUsage):
		return 2
	case errors.As(err, &ie):
		return 3
	}
	return 1
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return runServe(ctx, args, stdout, stderr)
	}
	switch args[0] {
	case "process":
		return runProcess(ctx, args[1:], stdout, stderr)
	case "serve":
		return runServe(ctx, args[1:], stdout, stderr)
	case "setup":
		return runSetup(ctx, args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, "usage: worker [serve] [flags] | worker --dev [--demo FILE] | worker setup [flags] | worker process --in FILE --out DIR [flags]")
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
}
