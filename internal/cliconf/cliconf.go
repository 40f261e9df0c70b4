// Package cliconf holds the settings abseal's commands share: where NATS and
// S3 are, their credentials, and the KEK with the credentials of its KMS.
// Every flag takes its default from an ABSEAL_* environment variable (the
// README's configuration table); a variable that is set but does not parse
// is an error that names it, never silently replaced by the default.
// Secrets come from files or the environment, never from flags.
package cliconf

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/storage/s3"
)

// Env reads flag defaults from the environment and remembers the variables
// that did not parse; Err reports them after the flags are parsed.
type Env struct {
	errs []error
}

// String returns $name, or def when it is unset.
func (e *Env) String(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// Int returns $name as an integer, or def when it is unset or empty.
func (e *Env) Int(name string, def int) int {
	return parse(e, name, def, strconv.Atoi, "an integer")
}

// Int64 returns $name as a 64-bit integer, or def when it is unset or empty.
func (e *Env) Int64(name string, def int64) int64 {
	return parse(e, name, def, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }, "an integer")
}

// Bool returns $name as a boolean (1, t, true, 0, f, false, …), or def.
func (e *Env) Bool(name string, def bool) bool {
	return parse(e, name, def, strconv.ParseBool, "true or false")
}

// Duration returns $name as a Go duration (30s, 2m), or def.
func (e *Env) Duration(name string, def time.Duration) time.Duration {
	return parse(e, name, def, time.ParseDuration, "a duration like 30s or 2m")
}

func parse[T any](e *Env, name string, def T, conv func(string) (T, error), want string) T {
	s := strings.TrimSpace(os.Getenv(name))
	if s == "" {
		return def
	}
	v, err := conv(s)
	if err != nil {
		e.errs = append(e.errs, fmt.Errorf("environment variable %s=%q is not %s", name, s, want))
		return def
	}
	return v
}

// Err names every environment variable that did not parse.
func (e *Env) Err() error { return errors.Join(e.errs...) }

// NATS is the connection to NATS: the server URL(s) and, where the server
// requires them, a user name and the file holding its password.
type NATS struct {
	URL          string
	User         string
	PasswordFile string
}

// Flags registers --nats-url, --nats-user and --nats-password-file. The
// password itself comes from the file or ABSEAL_NATS_PASSWORD.
func (n *NATS) Flags(fl *flag.FlagSet, e *Env) {
	fl.StringVar(&n.URL, "nats-url", e.String("ABSEAL_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL(s), comma-separated")
	fl.StringVar(&n.User, "nats-user", e.String("ABSEAL_NATS_USER", ""), "NATS user (none: connect without credentials)")
	fl.StringVar(&n.PasswordFile, "nats-password-file", e.String("ABSEAL_NATS_PASSWORD_FILE", ""), "file holding the NATS user's password (or set ABSEAL_NATS_PASSWORD)")
}

// Password returns the NATS password: the file's first line when a file is
// set, else $ABSEAL_NATS_PASSWORD.
func (n *NATS) Password() (string, error) {
	if n.PasswordFile == "" {
		return os.Getenv("ABSEAL_NATS_PASSWORD"), nil
	}
	b, err := os.ReadFile(n.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("nats-password-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// InboxPrefix is the prefix of the connection's reply subjects:
// "_INBOX_<user>" for a user, so a server can let each user subscribe to
// its own replies only; the NATS default "_INBOX" without one.
func (n *NATS) InboxPrefix() string {
	if n.User == "" {
		return nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
	return "_INBOX_" + n.User
}

// connectTimeout bounds the NATS handshake.
const connectTimeout = 15 * time.Second

// Connect connects to NATS as the configured user (if any), with replies
// under InboxPrefix and the given options.
func (n *NATS) Connect(opts ...nats.Option) (*nats.Conn, error) {
	if n.User != "" {
		if strings.ContainsAny(n.User, " \t.*>") {
			return nil, fmt.Errorf("nats-user %q: not a plain name (no spaces, '.', '*' or '>')", n.User)
		}
		pw, err := n.Password()
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(n.User, pw), nats.CustomInboxPrefix(n.InboxPrefix()))
	}
	// The server checks a password against its bcrypt hash during the
	// handshake, which can outlast nats.go's 2 s default on a busy
	// server; a caller's own Timeout still wins.
	opts = append([]nats.Option{nats.Timeout(connectTimeout)}, opts...)
	nc, err := nats.Connect(n.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("nats %s: %w", redactURLs(n.URL), err)
	}
	return nc, nil
}

// redactURLs hides the passwords of comma-separated URLs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		} else if err != nil {
			parts[i] = "(unparsable URL)"
		}
	}
	return strings.Join(parts, ",")
}

// S3 is the connection to S3 or MinIO.
type S3 struct {
	Endpoint   string
	AccessKey  string
	SecretFile string
	TLS        bool
}

// Flags registers --s3-endpoint, --s3-access-key, --s3-secret-key-file and
// --s3-tls. The secret itself comes from the file or ABSEAL_S3_SECRET_KEY.
func (s *S3) Flags(fl *flag.FlagSet, e *Env) {
	fl.StringVar(&s.Endpoint, "s3-endpoint", e.String("ABSEAL_S3_ENDPOINT", "127.0.0.1:9000"), "S3/MinIO endpoint host:port")
	fl.StringVar(&s.AccessKey, "s3-access-key", e.String("ABSEAL_S3_ACCESS_KEY", ""), "S3 access key")
	fl.StringVar(&s.SecretFile, "s3-secret-key-file", e.String("ABSEAL_S3_SECRET_KEY_FILE", ""), "file holding the S3 secret key (or set ABSEAL_S3_SECRET_KEY)")
	fl.BoolVar(&s.TLS, "s3-tls", e.Bool("ABSEAL_S3_TLS", false), "use HTTPS for S3")
}

// Secret returns the S3 secret key: the file's first line when a file is
// set, else $ABSEAL_S3_SECRET_KEY.
func (s *S3) Secret() (string, error) {
	if s.SecretFile == "" {
		return os.Getenv("ABSEAL_S3_SECRET_KEY"), nil
	}
	b, err := os.ReadFile(s.SecretFile)
	if err != nil {
		return "", fmt.Errorf("s3-secret-key-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Store opens bucket with these settings.
func (s *S3) Store(bucket string) (*s3.Store, error) {
	secret, err := s.Secret()
	if err != nil {
		return nil, err
	}
	return s3.New(s3.Config{Endpoint: s.Endpoint, Bucket: bucket, AccessKey: s.AccessKey, SecretKey: secret, Secure: s.TLS})
}

// KEK is the key-encryption key's URI and the credentials of its KMS.
type KEK struct {
	URI  string
	Opts envelope.KEKOptions
}

// Flags registers --kek-uri and the KMS credential files
// (--vault-token-file, --aws-credentials-file, --gcp-credentials-file).
func (k *KEK) Flags(fl *flag.FlagSet, e *Env) {
	fl.StringVar(&k.URI, "kek-uri", e.String("ABSEAL_KEK_URI", ""), "KEK: a Tink keyset file path, hcvault://, aws-kms:// or gcp-kms:// URI")
	k.CredentialFlags(fl, e)
}

// CredentialFlags registers only the KMS credential files, for commands
// that take the KEK URI as an argument.
func (k *KEK) CredentialFlags(fl *flag.FlagSet, e *Env) {
	fl.StringVar(&k.Opts.VaultTokenFile, "vault-token-file", e.String("ABSEAL_VAULT_TOKEN_FILE", ""), "Vault token file (hcvault:// KEK)")
	fl.BoolVar(&k.Opts.VaultAllowHTTP, "vault-allow-http", e.Bool("ABSEAL_VAULT_ALLOW_HTTP", false), "talk to Vault over plain http (a development server only: the token and wrapped keys cross the network in clear)")
	fl.StringVar(&k.Opts.AWSCredentialsFile, "aws-credentials-file", e.String("ABSEAL_AWS_CREDENTIALS_FILE", ""), "AWS credentials file (aws-kms:// KEK; default: the AWS credential chain)")
	fl.StringVar(&k.Opts.GCPCredentialsFile, "gcp-credentials-file", e.String("ABSEAL_GCP_CREDENTIALS_FILE", ""), "GCP service-account file (gcp-kms:// KEK; default: application default credentials)")
}

// Open resolves the KEK.
func (k *KEK) Open(ctx context.Context) (*envelope.KEK, error) {
	if k.Opts.VaultAllowHTTP && strings.HasPrefix(strings.ToLower(k.URI), "hcvault:") {
		slog.Default().Warn("INSECURE: talking to Vault over plain http (--vault-allow-http): the Vault token and every wrapped data key cross the network in clear; use it with a development server only")
	}
	return envelope.OpenKEK(ctx, k.URI, k.Opts)
}

// WatermarkKey is the watermark master key file setting: wrapped by the
// KEK, or in clear only with the explicit --allow-clear-watermark-key.
type WatermarkKey struct {
	Path       string
	AllowClear bool
}

// Flags registers the key file flag under name ("watermark-key-file" in
// the services, with ABSEAL_WATERMARK_KEY_FILE; "watermark-key" in the
// file tools, flag only: env "") and --allow-clear-watermark-key
// (ABSEAL_ALLOW_CLEAR_WATERMARK_KEY).
func (w *WatermarkKey) Flags(fl *flag.FlagSet, e *Env, name, env, usage string) {
	def := ""
	if env != "" {
		def = e.String(env, "")
	}
	fl.StringVar(&w.Path, name, def, usage)
	fl.BoolVar(&w.AllowClear, "allow-clear-watermark-key", e.Bool("ABSEAL_ALLOW_CLEAR_WATERMARK_KEY", false),
		"accept a watermark master key file in clear (not wrapped by the KEK), with a warning")
}

// Read reads the key through kek (nil: only a clear key can be read, and
// only when allowed); a clear key is logged as a warning. No path: nil.
func (w *WatermarkKey) Read(kek *envelope.KEK, log *slog.Logger) ([]byte, error) {
	if w.Path == "" {
		return nil, nil
	}
	key, clear, err := envelope.ReadWatermarkKey(w.Path, kek, w.AllowClear)
	if err != nil {
		return nil, err
	}
	if clear && log != nil {
		log.Warn("the watermark master key file is not wrapped by the KEK; make a wrapped one with `kek watermark-key`", "path", w.Path)
	}
	return key, nil
}
