package envelope

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
)

// A DEK made with Tink's 1 MB preset (or any other segment size) unwraps and
// opens: the segment size travels inside the wrapped keyset.
func TestDEKOfOtherSegmentSizeOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	if err := CreateLocalKEK(path); err != nil {
		t.Fatal(err)
	}
	kek, err := OpenKEK(t.Context(), path, KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	binding := RenditionAD("a", "720p")
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		t.Fatal(err)
	}
	var wrapped bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&wrapped), kek.aead, binding); err != nil {
		t.Fatal(err)
	}
	sa, err := streamingaead.New(h)
	if err != nil {
		t.Fatal(err)
	}
	plain := bytes.Repeat([]byte("abseal"), 400_000) // > 2 MB: several 1 MB segments
	var ct bytes.Buffer
	w, _ := sa.NewEncryptingWriter(&ct, Place{Asset: "a"}.AD())
	w.Write(plain)
	w.Close()

	dek, err := kek.UnwrapDEK(wrapped.Bytes(), binding)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dek.Open(&ct, Place{Asset: "a"}.AD())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open 1 MB-segment object: %d bytes, %v", len(got), err)
	}
}

// New DEKs use dekSegmentSize.
func TestNewDEKSegmentSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.json")
	CreateLocalKEK(path)
	kek, err := OpenKEK(t.Context(), path, KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dek, err := kek.NewDEK(nil)
	if err != nil {
		t.Fatal(err)
	}
	// 3 full plaintext segments + 1 byte → 4 tags and one header.
	var ct bytes.Buffer
	w, _ := dek.Seal(&ct, nil)
	const header, tag = 40, 16
	plainSeg := dekSegmentSize - tag
	w.Write(make([]byte, 3*plainSeg-header+1))
	w.Close()
	if want := 3*plainSeg - header + 1 + header + 4*tag; ct.Len() != want {
		t.Fatalf("ciphertext of %d bytes, want %d for %d-byte segments", ct.Len(), want, dekSegmentSize)
	}
}
