package envelope_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/abseal/abseal/envelope"
)

func TestWrappedWatermarkKey(t *testing.T) {
	kek, _ := newKEK(t)
	other, _ := newKEK(t)
	path := filepath.Join(t.TempDir(), "wm.key")
	if err := kek.CreateWatermarkKey(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if err := kek.CreateWatermarkKey(path); err == nil {
		t.Fatal("overwrote an existing key")
	}
	key, clear, err := envelope.ReadWatermarkKey(path, kek, false)
	if err != nil || clear || len(key) != 32 {
		t.Fatalf("read: %d bytes, clear %v, %v", len(key), clear, err)
	}
	data, _ := os.ReadFile(path)
	if !envelope.IsWrappedSecret(data) {
		t.Fatal("the file is not a wrapped secret")
	}
	if _, _, err := envelope.ReadWatermarkKey(path, other, false); !errors.Is(err, envelope.ErrUnwrap) {
		t.Fatalf("another KEK: %v", err)
	}
	if _, err := kek.UnwrapSecret(data, "some other purpose"); !errors.Is(err, envelope.ErrUnwrap) {
		t.Fatalf("another purpose: %v", err)
	}
	data[len(data)/2] ^= 1
	if _, err := kek.UnwrapSecret(data, envelope.WatermarkKeyPurpose); err == nil {
		t.Fatal("a damaged wrapped key opened")
	}
	clearPath := filepath.Join(t.TempDir(), "clear.key")
	os.WriteFile(clearPath, []byte("0123456789abcdef0123\n"), 0o600)
	if key, clear, err := envelope.ReadWatermarkKey(clearPath, kek, true); err != nil || !clear || string(key) != "0123456789abcdef0123" {
		t.Fatalf("clear key: %q %v %v", key, clear, err)
	}
	// A clear key needs an explicit allowance, with or without a KEK.
	for _, k := range []*envelope.KEK{kek, nil} {
		if _, _, err := envelope.ReadWatermarkKey(clearPath, k, false); !errors.Is(err, envelope.ErrClearWatermarkKey) {
			t.Fatalf("clear key not allowed (KEK %v): %v", k != nil, err)
		}
	}
	if _, _, err := envelope.ReadWatermarkKey(path, nil, true); err == nil || !strings.Contains(err.Error(), "give the KEK") {
		t.Fatalf("a wrapped key without a KEK: %v", err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(short, []byte("0123456789abcde\n"), 0o600)
	if _, _, err := envelope.ReadWatermarkKey(short, nil, true); err == nil || !strings.Contains(err.Error(), "shorter than 16 bytes") {
		t.Fatalf("a 15-byte key: %v", err)
	}
}
