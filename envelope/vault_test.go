package envelope_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/abseal/abseal/envelope"
)

// fakeTransit answers Vault's transit encrypt and decrypt calls for one
// key with AES-GCM (associated data bound), checking the token. It tests
// how abseal talks to Vault (address scheme, token, paths), not Vault.
func fakeTransit(t *testing.T, token string) (*httptest.Server, *atomic.Int64) {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("X-Vault-Token") != token {
			http.Error(w, `{"errors":["permission denied"]}`, http.StatusForbidden)
			return
		}
		var req map[string]string
		json.NewDecoder(r.Body).Decode(&req)
		ad, _ := base64.StdEncoding.DecodeString(req["associated_data"])
		var data map[string]string
		switch r.URL.Path {
		case "/v1/transit/encrypt/kek":
			pt, _ := base64.StdEncoding.DecodeString(req["plaintext"])
			nonce := make([]byte, gcm.NonceSize())
			rand.Read(nonce)
			data = map[string]string{"ciphertext": "vault:v1:" + base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, pt, ad))}
		case "/v1/transit/decrypt/kek":
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(req["ciphertext"], "vault:v1:"))
			if len(raw) < gcm.NonceSize() {
				http.Error(w, `{"errors":["bad ciphertext"]}`, http.StatusBadRequest)
				return
			}
			pt, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], ad)
			if err != nil {
				http.Error(w, `{"errors":["cipher: message authentication failed"]}`, http.StatusBadRequest)
				return
			}
			data = map[string]string{"plaintext": base64.StdEncoding.EncodeToString(pt)}
		default:
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// hcvault:// over plain http only with VaultAllowHTTP (a development
// server); by default https, so a plain-http server is never sent the
// token in clear by accident.
func TestVaultAllowHTTP(t *testing.T) {
	const token = "s.dev-token"
	srv, calls := fakeTransit(t, token)
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	uri := "hcvault://" + strings.TrimPrefix(srv.URL, "http://") + "/transit/keys/kek"

	kek, err := envelope.OpenKEK(t.Context(), uri, envelope.KEKOptions{VaultTokenFile: tokFile, VaultAllowHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := kek.WrapSecret([]byte("a watermark master key, 32 bytes"), "watermark")
	if err != nil {
		t.Fatal(err)
	}
	got, err := kek.UnwrapSecret(wrapped, "watermark")
	if err != nil || string(got) != "a watermark master key, 32 bytes" {
		t.Fatalf("round trip through Vault over http: %q %v", got, err)
	}
	if _, err := kek.UnwrapSecret(wrapped, "another purpose"); err == nil {
		t.Error("a secret wrapped for one purpose opened for another")
	}
	if calls.Load() < 2 {
		t.Fatalf("%d calls reached the fake transit", calls.Load())
	}

	before := calls.Load()
	kek, err = envelope.OpenKEK(t.Context(), uri, envelope.KEKOptions{VaultTokenFile: tokFile})
	if err == nil {
		_, err = kek.WrapSecret([]byte("x"), "watermark")
	}
	if err == nil || !strings.Contains(err.Error(), "HTTP response to HTTPS client") {
		t.Errorf("https to a plain-http server: err = %v", err)
	}
	if calls.Load() != before {
		t.Error("the plain-http server was reached without VaultAllowHTTP")
	}
}
