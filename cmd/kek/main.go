// Command kek manages the local key-encryption keyset used in development
// (production uses a KMS URI instead):
//
//	kek create [PATH]   write a new keyset (one AES256-GCM key, mode 0600)
//	kek rotate [PATH]   add a new key and make it primary; old DEKs still open
//	kek check  [KEK]    open the KEK (keyset path or KMS URI) and wrap/unwrap a test DEK
//	kek watermark-key OUT [KEK]
//	                    write a new watermark master key, wrapped by the KEK
//	                    (a keyset path or KMS URI), to OUT (mode 0600)
//	kek nats-users DIR  write the NATS users' passwords (DIR/nats_<user>), the
//	                    MinIO notifier's nkey seed and DIR/nats-users.conf
//	                    (their bcrypt hashes and public nkey, included by
//	                    deploy/nats.conf); existing secrets are kept
//
// A KMS KEK takes its credentials from flags given before the command
// (--vault-token-file, --aws-credentials-file, --gcp-credentials-file) or
// the matching ABSEAL_* variables, as the worker does.
//
// PATH defaults to .data/kek.json. Key material is never printed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/cliconf"
)

// DefaultPath is where the development KEK lives.
const DefaultPath = ".data/kek.json"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kek:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("kek", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: kek [KMS credential flags] create|rotate|check [PATH] (default %s) | kek [KMS credential flags] watermark-key OUT [KEK] | kek nats-users DIR\n", DefaultPath)
		fs.PrintDefaults()
	}
	var (
		env cliconf.Env
		kc  cliconf.KEK
	)
	kc.CredentialFlags(fs, &env)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := env.Err(); err != nil {
		return err
	}
	if fs.Arg(0) == "nats-users" {
		if fs.NArg() != 2 {
			return errors.New("usage: kek nats-users DIR")
		}
		if err := createNATSUsers(fs.Arg(1)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "NATS users %s and the notifier's nkey in %s; server include %s (mode 0600)\n",
			strings.Join(NATSPasswordUsers, ", "), fs.Arg(1), filepath.Join(fs.Arg(1), NATSUsersConf))
		return nil
	}
	if fs.Arg(0) == "watermark-key" {
		if fs.NArg() < 2 || fs.NArg() > 3 {
			return errors.New("usage: kek watermark-key OUT [KEK]")
		}
		kekURI := DefaultPath
		if fs.NArg() == 3 {
			kekURI = fs.Arg(2)
		}
		kc.URI = kekURI
		kek, err := kc.Open(ctx)
		if err != nil {
			return err
		}
		if err := kek.CreateWatermarkKey(fs.Arg(1)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created watermark master key %s, wrapped by KEK %s (mode 0600)\n", fs.Arg(1), kekURI)
		return nil
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		fs.Usage()
		return errors.New("expected a command and at most one path")
	}
	path := DefaultPath
	if fs.NArg() == 2 {
		path = fs.Arg(1)
	}
	switch fs.Arg(0) {
	case "create":
		if err := envelope.CreateLocalKEK(path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created KEK keyset %s (mode 0600); use --kek file://%s\n", path, path)
	case "rotate":
		if err := envelope.RotateLocalKEK(path); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "rotated KEK keyset %s: new primary key added, older keys kept for unwrapping\n", path)
	case "check":
		kc.URI = path
		kek, err := kc.Open(ctx)
		if err != nil {
			return err
		}
		bind := envelope.RenditionAD("kek-check", "check")
		dek, err := kek.NewDEK(bind)
		if err != nil {
			return err
		}
		if _, err := kek.UnwrapDEK(dek.Wrapped(), bind); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "KEK keyset %s wraps and unwraps data keys\n", path)
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", fs.Arg(0))
	}
	return nil
}
