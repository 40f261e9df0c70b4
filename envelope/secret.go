package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
)

// secretHeader starts a wrapped-secret file; the rest is the base64 of the
// KEK's ciphertext.
const secretHeader = "abseal-wrapped-secret-v1 "

// WrapSecret encrypts a small secret (such as the watermark master key)
// with the KEK, bound to purpose by associated data. The result is safe to
// store; only the KEK opens it.
func (k *KEK) WrapSecret(secret []byte, purpose string) ([]byte, error) {
	ct, err := k.aead.Encrypt(secret, encodeAD("abseal.secret.v1", purpose))
	if err != nil {
		return nil, errorf("wrap %s with KEK %s: %w", purpose, redactURI(k.uri), err)
	}
	return []byte(secretHeader + base64.StdEncoding.EncodeToString(ct) + "\n"), nil
}

// UnwrapSecret opens what WrapSecret made for the same purpose.
func (k *KEK) UnwrapSecret(wrapped []byte, purpose string) ([]byte, error) {
	s := strings.TrimSpace(string(wrapped))
	if !strings.HasPrefix(s, secretHeader) {
		return nil, errorf("%s: not a wrapped secret (want a file made by `kek watermark-key`)", purpose)
	}
	ct, err := base64.StdEncoding.Strict().DecodeString(strings.TrimPrefix(s, secretHeader))
	if err != nil {
		return nil, errorf("%s: damaged wrapped secret: %w", purpose, ErrUnwrap)
	}
	pt, err := k.aead.Decrypt(ct, encodeAD("abseal.secret.v1", purpose))
	if err != nil {
		return nil, errorf("unwrap %s with KEK %s: %w", purpose, redactURI(k.uri), ErrUnwrap)
	}
	return pt, nil
}

// IsWrappedSecret reports whether data is a WrapSecret file.
func IsWrappedSecret(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte(secretHeader))
}

// WatermarkKeyPurpose binds a wrapped watermark master key.
const WatermarkKeyPurpose = "watermark-master-key"

// CreateWatermarkKey writes a new random 32-byte watermark master key,
// wrapped by the KEK, to path (mode 0600). It refuses to overwrite.
func (k *KEK) CreateWatermarkKey(path string) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return errorf("watermark key: %w", err)
	}
	wrapped, err := k.WrapSecret(secret, WatermarkKeyPurpose)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return errorf("watermark key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return errorf("watermark key: %w", err)
	}
	if _, err := f.Write(wrapped); err != nil {
		f.Close()
		os.Remove(path)
		return errorf("watermark key %s: %w", path, err)
	}
	return f.Close()
}

// ReadWatermarkKey reads a watermark master key file: one wrapped by the
// KEK (CreateWatermarkKey), or, for old set-ups, the key in clear
// (clear=true tells the caller to warn).
func (k *KEK) ReadWatermarkKey(path string) (key []byte, clear bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, errorf("watermark key: %w", err)
	}
	if IsWrappedSecret(data) {
		key, err := k.UnwrapSecret(data, WatermarkKeyPurpose)
		return key, false, err
	}
	key = bytes.TrimSpace(data)
	if len(key) < 16 {
		return nil, true, errorf("watermark key %s: shorter than 16 bytes", path)
	}
	return key, true, nil
}
