package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
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

// ErrClearWatermarkKey is matched by the error for a watermark master key
// file that is not wrapped by the KEK when a clear key was not allowed.
var ErrClearWatermarkKey = errors.New("the watermark master key is in clear: wrap it with `kek watermark-key OUT KEK`, or allow a clear key explicitly")

// MinWatermarkKeyLen is the shortest watermark master key accepted.
const MinWatermarkKeyLen = 16

// ReadWatermarkKey is the one reader of watermark master key files. A file
// made by CreateWatermarkKey opens through kek only. A key in clear (the
// file's trimmed bytes) is refused with ErrClearWatermarkKey unless
// allowClear; then clear is true and the caller warns. A key shorter than
// MinWatermarkKeyLen bytes is refused either way.
func ReadWatermarkKey(path string, kek *KEK, allowClear bool) (key []byte, clear bool, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, false, errorf("watermark key: %w", err)
	}
	if IsWrappedSecret(data) {
		if kek == nil {
			return nil, false, errorf("watermark key %s is wrapped by a KEK: give the KEK", path)
		}
		key, err = kek.UnwrapSecret(data, WatermarkKeyPurpose)
		clear = false
	} else if !allowClear {
		return nil, true, errorf("watermark key %s: %w", path, ErrClearWatermarkKey)
	} else {
		key, clear = bytes.TrimSpace(data), true
	}
	if err != nil {
		return nil, clear, err
	}
	if len(key) < MinWatermarkKeyLen {
		return nil, clear, errorf("watermark key %s: shorter than %d bytes", path, MinWatermarkKeyLen)
	}
	return key, clear, nil
}
