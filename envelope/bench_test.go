package envelope_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"io"
	"testing"
)

// The envelope benchmarks and their baseline, Go's raw AES-256-GCM, work on
// the same buffers: a 16 MiB object and a 512 KiB one (a typical 2 s video
// segment). The raw baseline seals in 1 MiB chunks, one nonce each (its
// fastest chunking; new DEKs use 64 KiB ciphertext segments).
var benchSizes = []int{512 << 10, 16 << 20}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

func BenchmarkSeal(b *testing.B) {
	kek, _ := newKEK(b)
	dek := newDEK(b, kek)
	for _, size := range benchSizes {
		plain := randomBytes(size, 1)
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
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
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	kek, _ := newKEK(b)
	dek := newDEK(b, kek)
	for _, size := range benchSizes {
		ct := seal(b, dek, randomBytes(size, 1), place.AD())
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				r, err := dek.Open(bytes.NewReader(ct), place.AD())
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, r); err != nil || n != int64(size) {
					b.Fatal(n, err)
				}
			}
		})
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
	nonce := make([]byte, g.NonceSize())
	dst := make([]byte, 0, rawSegment+g.Overhead())
	for _, size := range benchSizes {
		plain := randomBytes(size, 1)
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for off := 0; off < len(plain); off += rawSegment {
					nonce[0]++
					dst = g.Seal(dst[:0], nonce, plain[off:min(off+rawSegment, len(plain))], place.AD())
				}
			}
		})
	}
}

func BenchmarkRawAESGCMOpen(b *testing.B) {
	g := rawGCM(b)
	nonce := make([]byte, g.NonceSize())
	dst := make([]byte, 0, rawSegment)
	for _, size := range benchSizes {
		plain := randomBytes(size, 1)
		var segs [][]byte
		for off := 0; off < len(plain); off += rawSegment {
			segs = append(segs, g.Seal(nil, nonce, plain[off:min(off+rawSegment, len(plain))], place.AD()))
		}
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, s := range segs {
					var err error
					if dst, err = g.Open(dst[:0], nonce, s, place.AD()); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
