package cliconf

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEnvDefaultsAndValues(t *testing.T) {
	t.Setenv("ABSEAL_TEST_INT", "7")
	t.Setenv("ABSEAL_TEST_BOOL", "true")
	t.Setenv("ABSEAL_TEST_DUR", "90s")
	t.Setenv("ABSEAL_TEST_EMPTY", "")
	var e Env
	if got := e.Int("ABSEAL_TEST_INT", 1); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if got := e.Int64("ABSEAL_TEST_UNSET", 5); got != 5 {
		t.Errorf("Int64 default = %d", got)
	}
	if got := e.Bool("ABSEAL_TEST_BOOL", false); !got {
		t.Error("Bool = false")
	}
	if got := e.Duration("ABSEAL_TEST_DUR", time.Second); got != 90*time.Second {
		t.Errorf("Duration = %s", got)
	}
	if got := e.Int("ABSEAL_TEST_EMPTY", 3); got != 3 {
		t.Errorf("empty variable: Int = %d, want the default", got)
	}
	if got := e.String("ABSEAL_TEST_EMPTY", "x"); got != "" {
		t.Errorf("String of a variable set to empty = %q, want empty", got)
	}
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
}

// A variable that is set but does not parse is an error naming it (and
// the value), not a silent default.
func TestEnvErrorsNameTheVariable(t *testing.T) {
	t.Setenv("ABSEAL_CONCURRENCY", "four")
	t.Setenv("ABSEAL_S3_TLS", "maybe")
	t.Setenv("ABSEAL_ACK_WAIT", "60")
	var e Env
	e.Int("ABSEAL_CONCURRENCY", 1)
	var s S3
	s.Flags(flag.NewFlagSet("t", flag.ContinueOnError), &e)
	e.Duration("ABSEAL_ACK_WAIT", time.Minute)
	err := e.Err()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`ABSEAL_CONCURRENCY="four" is not an integer`, `ABSEAL_S3_TLS="maybe" is not true or false`, `ABSEAL_ACK_WAIT="60" is not a duration`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestS3SecretFromFileOrEnv(t *testing.T) {
	t.Setenv("ABSEAL_S3_SECRET_KEY", "from-env")
	s := S3{}
	if got, err := s.Secret(); err != nil || got != "from-env" {
		t.Fatalf("Secret() = %q, %v", got, err)
	}
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.SecretFile = f
	if got, err := s.Secret(); err != nil || got != "from-file" {
		t.Fatalf("Secret() with a file = %q, %v", got, err)
	}
	s.SecretFile = filepath.Join(t.TempDir(), "missing")
	if _, err := s.Secret(); err == nil || !strings.Contains(err.Error(), "s3-secret-key-file") {
		t.Fatalf("missing secret file: err = %v", err)
	}
}

// The KMS credentials reach envelope.OpenKEK from flags and from the
// environment, for every command that registers them.
func TestKEKCredentials(t *testing.T) {
	t.Setenv("ABSEAL_GCP_CREDENTIALS_FILE", "/etc/abseal/gcp.json")
	var (
		e Env
		k KEK
	)
	fl := flag.NewFlagSet("t", flag.ContinueOnError)
	k.Flags(fl, &e)
	if err := fl.Parse([]string{"--kek-uri", "hcvault://vault:8200/transit/keys/abseal", "--vault-token-file", "/run/secrets/vault"}); err != nil {
		t.Fatal(err)
	}
	if k.URI != "hcvault://vault:8200/transit/keys/abseal" || k.Opts.VaultTokenFile != "/run/secrets/vault" || k.Opts.GCPCredentialsFile != "/etc/abseal/gcp.json" {
		t.Fatalf("KEK settings = %+v", k)
	}
	// The token file is read when the KEK opens: a missing one says so.
	_, err := k.Open(t.Context())
	if err == nil || !strings.Contains(err.Error(), "vault token") {
		t.Fatalf("open with a missing token file: err = %v", err)
	}
	k.Opts.VaultTokenFile = ""
	if _, err := k.Open(t.Context()); err == nil || !strings.Contains(err.Error(), "token file") {
		t.Fatalf("open without a token file: err = %v", err)
	}
}

func TestNATSCredentials(t *testing.T) {
	f := filepath.Join(t.TempDir(), "nats_edge")
	if err := os.WriteFile(f, []byte("pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ABSEAL_NATS_USER", "edge")
	t.Setenv("ABSEAL_NATS_PASSWORD_FILE", f)
	var (
		e Env
		n NATS
	)
	fl := flag.NewFlagSet("t", flag.ContinueOnError)
	n.Flags(fl, &e)
	if err := fl.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if got, err := n.Password(); n.User != "edge" || err != nil || got != "pw-from-file" {
		t.Fatalf("user %q, Password() = %q, %v", n.User, got, err)
	}
	if got := n.InboxPrefix(); got != "_INBOX_edge" {
		t.Errorf("InboxPrefix() = %q", got)
	}
	n.PasswordFile = ""
	t.Setenv("ABSEAL_NATS_PASSWORD", "pw-from-env")
	if got, err := n.Password(); err != nil || got != "pw-from-env" {
		t.Fatalf("Password() from the environment = %q, %v", got, err)
	}
	n.PasswordFile = filepath.Join(t.TempDir(), "missing")
	if _, err := n.Password(); err == nil || !strings.Contains(err.Error(), "nats-password-file") {
		t.Fatalf("missing password file: %v", err)
	}
	if _, err := (&NATS{URL: "nats://127.0.0.1:1", User: "a.b"}).Connect(); err == nil || !strings.Contains(err.Error(), "nats-user") {
		t.Fatalf("a user with a dot: %v", err)
	}
	_, err := (&NATS{URL: "nats://u:hunter2@127.0.0.1:1,nats://127.0.0.1:2"}).Connect()
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1:2") {
		t.Fatalf("connect error shows the URL's password or not the URLs: %v", err)
	}
	if got := (&NATS{}).InboxPrefix(); got != "_INBOX" {
		t.Errorf("InboxPrefix() without a user = %q", got)
	}
}
