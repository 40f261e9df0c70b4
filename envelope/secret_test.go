package envelope_test

import (
	"errors"
	"os"
	"path/filepath"
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
	key, clear, err := kek.ReadWatermarkKey(path)
	if err != nil || clear || len(key) != 32 {
		t.Fatalf("read: %d bytes, clear %v, %v", len(key), clear, err)
	}
	data, _ := os.ReadFile(path)
	if !envelope.IsWrappedSecret(data) {
		t.Fatal("the file is not a wrapped secret")
	}
	if _, _, err := other.ReadWatermarkKey(path); !errors.Is(err, envelope.ErrUnwrap) {
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
	if key, clear, err := kek.ReadWatermarkKey(clearPath); err != nil || !clear || string(key) != "0123456789abcdef0123" {
		t.Fatalf("clear key: %q %v %v", key, clear, err)
	}
}
