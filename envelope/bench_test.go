package envelope_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"io"
	"testing"
)

// The envelope benchmarks and their baseline, Go's raw AES-256-GCM, work on
// the same 16 MiB buffer; the raw one seals it in the same 1 MiB segments.
const benchSize = 16 << 20

func BenchmarkSeal(b *testing.B) {
	kek, _ := newKEK(b)
	dek := newDEK(b, kek)
	plain := randomBytes(benchSize, 1)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		w, err := dek.Seal(io.Discard, place.AD())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(plain); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	kek, _ := newKEK(b)
	dek := newDEK(b, kek)
	ct := seal(b, dek, randomBytes(benchSize, 1), place.AD())
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		r, err := dek.Open(bytes.NewReader(ct), place.AD())
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != benchSize {
			b.Fatal(n, err)
		}
	}
}

func rawGCM(b *testing.B) cipher.AEAD {
	key := make([]byte, 32)
	rand.Read(key)
	blk, err := aes.NewCipher(key)
	if err != nil {
		b.Fatal(err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		b.Fatal(err)
	}
	return g
}

const rawSegment = 1 << 20

func BenchmarkRawAESGCMSeal(b *testing.B) {
	g := rawGCM(b)
	plain := randomBytes(benchSize, 1)
	nonce := make([]byte, g.NonceSize())
	dst := make([]byte, 0, rawSegment+g.Overhead())
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		for off := 0; off < len(plain); off += rawSegment {
			nonce[0]++
			dst = g.Seal(dst[:0], nonce, plain[off:off+rawSegment], place.AD())
		}
	}
}

func BenchmarkRawAESGCMOpen(b *testing.B) {
	g := rawGCM(b)
	plain := randomBytes(benchSize, 1)
	nonce := make([]byte, g.NonceSize())
	var segs [][]byte
	for off := 0; off < len(plain); off += rawSegment {
		segs = append(segs, g.Seal(nil, nonce, plain[off:off+rawSegment], place.AD()))
	}
	dst := make([]byte, 0, rawSegment)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		for _, s := range segs {
			var err error
			if dst, err = g.Open(dst[:0], nonce, s, place.AD()); err != nil {
				b.Fatal(err)
			}
		}
	}
}
