package envelope

import (
	"bytes"
	"fmt"
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

// BenchmarkTinkSegmentSize seals and opens 16 MiB with DEKs of several
// ciphertext segment sizes, Tink's 1 MB preset among them, to show what the
// choice of dekSegmentSize is worth on this machine.
func BenchmarkTinkSegmentSize(b *testing.B) {
	plain := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, 16<<20/3)
	for _, seg := range []uint32{64 << 10, 256 << 10, 1 << 20} {
		h, err := keyset.NewHandle(dekTemplate(seg))
		if err != nil {
			b.Fatal(err)
		}
		sa, err := streamingaead.New(h)
		if err != nil {
			b.Fatal(err)
		}
		var ct bytes.Buffer
		w, _ := sa.NewEncryptingWriter(&ct, nil)
		w.Write(plain)
		w.Close()
		b.Run(fmt.Sprintf("Seal/%dKiB", seg>>10), func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				w, _ := sa.NewEncryptingWriter(io.Discard, nil)
				w.Write(plain)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("Open/%dKiB", seg>>10), func(b *testing.B) {
			b.SetBytes(int64(len(plain)))
			for b.Loop() {
				r, _ := sa.NewDecryptingReader(bytes.NewReader(ct.Bytes()), nil)
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
