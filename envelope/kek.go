package envelope

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	vault "github.com/hashicorp/vault/api"
	"github.com/tink-crypto/tink-go-awskms/v3/integration/awskms"
	"github.com/tink-crypto/tink-go-gcpkms/v2/integration/gcpkms"
	"github.com/tink-crypto/tink-go-hcvault/v2/integration/hcvault"
	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
	"google.golang.org/api/option"
)

// KEK is a key-encryption key. It wraps fresh DEKs and unwraps stored ones.
// It is safe for concurrent use.
type KEK struct {
	uri  string
	aead tink.AEAD
}

// KEKOptions carry the credentials a KMS URI needs. All come from files.
type KEKOptions struct {
	// VaultTokenFile holds the HashiCorp Vault token (hcvault://).
	VaultTokenFile string
	// VaultAllowHTTP talks to Vault over plain http instead of https: for
	// a development server only (the token and every key it wraps cross
	// the network in clear).
	VaultAllowHTTP bool
	// AWSCredentialsFile is an AWS credentials file (aws-kms://); empty means
	// the default AWS credential chain.
	AWSCredentialsFile string
	// GCPCredentialsFile is a service-account key file (gcp-kms://); empty
	// means application default credentials.
	GCPCredentialsFile string
}

// OpenKEK resolves a KEK URI:
//
//	file:///abs/kek.json, file:rel/kek.json or a plain path
//	                               a local Tink AEAD keyset file (mode 0600)
//	hcvault://host[:port]/transit/keys/NAME
//	aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID
//	gcp-kms://projects/P/locations/L/keyRings/R/cryptoKeys/K
func OpenKEK(ctx context.Context, uri string, opts KEKOptions) (*KEK, error) {
	if uri == "" {
		return nil, errorf("KEK URI is empty")
	}
	var (
		a   tink.AEAD
		err error
	)
	switch scheme := strings.ToLower(uriScheme(uri)); scheme {
	case "", "file":
		var path string
		path, err = localPath(uri)
		if err == nil {
			a, err = openLocalKEK(path)
		}
	case "hcvault":
		a, err = openVault(uri, opts)
	case "aws-kms":
		a, err = openAWS(ctx, uri, opts)
	case "gcp-kms":
		a, err = openGCP(ctx, uri, opts)
	default:
		err = fmt.Errorf("unsupported KEK URI scheme %q (want file, hcvault, aws-kms or gcp-kms)", scheme)
	}
	if err != nil {
		return nil, errorf("KEK %s: %w", redactURI(uri), err)
	}
	return &KEK{uri: uri, aead: a}, nil
}

// NewKEK wraps an AEAD primitive as a KEK (for integrators with their own
// key source).
func NewKEK(uri string, a tink.AEAD) *KEK { return &KEK{uri: uri, aead: a} }

// URI returns the URI the KEK was opened from. It names the key, it is not
// the key.
func (k *KEK) URI() string { return k.uri }

func uriScheme(uri string) string {
	i := strings.Index(uri, ":")
	if i <= 0 || strings.ContainsAny(uri[:i], "/.") {
		return "" // a plain path
	}
	return uri[:i]
}

func localPath(uri string) (string, error) {
	if uriScheme(uri) == "" {
		return uri, nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", err
	}
	p := u.Path
	if u.Opaque != "" {
		p = u.Opaque
	}
	if u.Host != "" && u.Host != "localhost" {
		return "", fmt.Errorf("file URI with host %q (use file:///abs/path or file:rel/path)", u.Host)
	}
	if p == "" {
		return "", errors.New("file URI without a path")
	}
	return p, nil
}

// redactURI drops any user info from a URI before it is shown.
func redactURI(uri string) string {
	if u, err := url.Parse(uri); err == nil && u.User != nil {
		u.User = nil
		return u.String()
	}
	return uri
}

func openLocalKEK(path string) (tink.AEAD, error) {
	h, err := readLocalKeyset(path)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("keyset %s is not an AEAD keyset: %w", path, err)
	}
	return a, nil
}

func readLocalKeyset(path string) (*keyset.Handle, error) {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("keyset file %s does not exist (create it with `kek create %s`)", path, path)
		}
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keyset file %s is readable by others (mode %04o); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(data)))
	if err != nil {
		return nil, fmt.Errorf("keyset file %s is not a Tink JSON keyset: %w", path, err)
	}
	return h, nil
}

// CreateLocalKEK writes a new local KEK keyset file (one AES256-GCM key) with
// mode 0600. It refuses to overwrite an existing file.
func CreateLocalKEK(path string) error {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return errorf("create KEK: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return errorf("create KEK: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return errorf("create KEK: %w", err)
	}
	if err := writeKeyset(f, h); err != nil {
		f.Close()
		os.Remove(path)
		return errorf("create KEK %s: %w", path, err)
	}
	return nil
}

// RotateLocalKEK adds a new AES256-GCM key to a local KEK keyset file and
// makes it the primary. DEKs wrapped by the older keys still unwrap; new DEKs
// are wrapped by the new key. The file is replaced atomically.
func RotateLocalKEK(path string) error {
	h, err := readLocalKeyset(path)
	if err != nil {
		return errorf("rotate KEK: %w", err)
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return errorf("rotate KEK: %w", err)
	}
	if err := m.SetPrimary(id); err != nil {
		return errorf("rotate KEK: %w", err)
	}
	nh, err := m.Handle()
	if err != nil {
		return errorf("rotate KEK: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kek-*")
	if err != nil {
		return errorf("rotate KEK: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return errorf("rotate KEK: %w", err)
	}
	if err := writeKeyset(tmp, nh); err != nil {
		return errorf("rotate KEK: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errorf("rotate KEK: %w", err)
	}
	return nil
}

// writeKeyset writes a cleartext keyset, syncs and closes f.
func writeKeyset(f *os.File, h *keyset.Handle) error {
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(f)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func openVault(uri string, opts KEKOptions) (tink.AEAD, error) {
	if opts.VaultTokenFile == "" {
		return nil, errors.New("hcvault needs a token file (VaultTokenFile)")
	}
	tok, err := os.ReadFile(opts.VaultTokenFile)
	if err != nil {
		return nil, fmt.Errorf("vault token: %w", err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil, err
	}
	cfg := vault.DefaultConfig()
	cfg.Address = "https://" + u.Host
	if opts.VaultAllowHTTP {
		cfg.Address = "http://" + u.Host
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		return nil, err
	}
	c.SetToken(strings.TrimSpace(string(tok)))
	kc, err := hcvault.NewClientWithAEADOptions("hcvault://", c.Logical())
	if err != nil {
		return nil, err
	}
	return kc.GetAEAD(uri)
}

func openAWS(ctx context.Context, uri string, opts KEKOptions) (tink.AEAD, error) {
	_, rest, _ := strings.Cut(uri, ":")
	if arn := strings.TrimPrefix(rest, "//"); !strings.HasPrefix(arn, "arn:") || strings.Count(arn, ":") < 5 {
		return nil, errors.New("aws-kms URI does not hold a key ARN (want aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID)")
	}
	var copts []awskms.ClientOption
	if opts.AWSCredentialsFile != "" {
		copts = append(copts, awskms.WithCredentialPath(opts.AWSCredentialsFile))
	}
	kc, err := awskms.NewClientWithOptions(ctx, uri, copts...)
	if err != nil {
		return nil, err
	}
	return kc.GetAEAD(uri)
}

func openGCP(ctx context.Context, uri string, opts KEKOptions) (tink.AEAD, error) {
	var copts []gcpkms.Option
	if opts.GCPCredentialsFile != "" {
		copts = append(copts, gcpkms.WithGoogleAPIClientOptions(option.WithAuthCredentialsFile(option.ServiceAccount, opts.GCPCredentialsFile)))
	}
	kc, err := gcpkms.NewClient(ctx, uri, copts...)
	if err != nil {
		return nil, err
	}
	return kc.GetAEAD(uri)
}
