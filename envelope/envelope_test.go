package envelope_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/abseal/abseal/envelope"
)

func newKEK(t testing.TB) (*envelope.KEK, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek.json")
	if err := envelope.CreateLocalKEK(path); err != nil {
		t.Fatal(err)
	}
	kek, err := envelope.OpenKEK(t.Context(), "file://"+path, envelope.KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return kek, path
}

func newDEK(t testing.TB, kek *envelope.KEK) *envelope.DEK {
	t.Helper()
	dek, err := kek.NewDEK(envelope.RenditionAD("asset1", "720p"))
	if err != nil {
		t.Fatal(err)
	}
	return dek
}

var place = envelope.Place{Asset: "asset1", Rung: "720p", Variant: "a", Object: "seg-00001.m4s"}

func seal(t testing.TB, dek *envelope.DEK, plain []byte, ad []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := dek.Seal(&buf, ad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(dek *envelope.DEK, ct []byte, ad []byte) ([]byte, error) {
	r, err := dek.Open(bytes.NewReader(ct), ad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	kek, _ := newKEK(t)
	dek := newDEK(t, kek)
	for _, n := range []int{0, 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 3<<20 + 17} {
		plain := randomBytes(n, uint64(n))
		ct := seal(t, dek, plain, place.AD())
		got, err := open(dek, ct, place.AD())
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: round trip differs", n)
		}
		if n > 0 && bytes.Contains(ct, plain[:min(n, 64)]) && n >= 16 {
			t.Fatalf("%d bytes: ciphertext contains the plaintext", n)
		}
	}
}

func TestUnwrapRoundTrip(t *testing.T) {
	kek, _ := newKEK(t)
	binding := envelope.RenditionAD("asset1", "720p")
	dek, err := kek.NewDEK(binding)
	if err != nil {
		t.Fatal(err)
	}
	ct := seal(t, dek, []byte("hello"), place.AD())
	again, err := kek.UnwrapDEK(dek.Wrapped(), binding)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := open(again, ct, place.AD()); err != nil || string(got) != "hello" {
		t.Fatalf("open with unwrapped DEK: %q, %v", got, err)
	}
	if dek.KEKURI() != kek.URI() || !strings.HasPrefix(kek.URI(), "file://") {
		t.Fatalf("KEK URI %q / %q", dek.KEKURI(), kek.URI())
	}
}

// TestStreamingBoundedMemory streams 256 MiB through Seal and Open without
// ever holding the object, and checks the heap stays small while it does.
func TestStreamingBoundedMemory(t *testing.T) {
	const total = 256 << 20
	kek, _ := newKEK(t)
	dek := newDEK(t, kek)

	src := &countingReader{left: total, seed: 42}
	want := sha256.New()
	pr, pw := io.Pipe()
	go func() {
		w, err := dek.Seal(pw, place.AD())
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := io.Copy(w, io.TeeReader(src, want)); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	r, err := dek.Open(pr, place.AD())
	if err != nil {
		t.Fatal(err)
	}
	sink := &heapSampler{h: sha256.New()}
	runtime.GC()
	sink.baseline = heapBytes()
	n, err := io.Copy(sink, r)
	if err != nil {
		t.Fatal(err)
	}
	if n != total || src.read != total {
		t.Fatalf("streamed %d bytes out, %d in; want %d", n, src.read, total)
	}
	if !bytes.Equal(sink.h.Sum(nil), want.Sum(nil)) {
		t.Fatal("plaintext after the round trip differs")
	}
	growth := int64(sink.peak) - int64(sink.baseline)
	t.Logf("heap: baseline %d MiB, peak %d MiB over %d samples", sink.baseline>>20, sink.peak>>20, sink.samples)
	if growth > 48<<20 {
		t.Fatalf("heap grew by %d MiB while streaming 256 MiB; want bounded (< 48 MiB)", growth>>20)
	}
}

type countingReader struct {
	left, read int
	seed       uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.left)
	for i := range n {
		c.seed = c.seed*6364136223846793005 + 1442695040888963407
		p[i] = byte(c.seed >> 56)
	}
	c.left -= n
	c.read += n
	return n, nil
}

type heapSampler struct {
	h              hash.Hash
	written        int
	baseline, peak uint64
	samples        int
}

func (s *heapSampler) Write(p []byte) (int, error) {
	s.written += len(p)
	if s.written >= 8<<20 {
		s.written = 0
		s.samples++
		s.peak = max(s.peak, heapBytes())
	}
	return s.h.Write(p)
}

func heapBytes() uint64 {
	m := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(m)
	return m[0].Value.Uint64()
}

func TestTampering(t *testing.T) {
	kek, _ := newKEK(t)
	dek := newDEK(t, kek)
	plain := randomBytes(2<<20+999, 7) // 33 ciphertext segments of 64 KiB
	ct := seal(t, dek, plain, place.AD())
	other := seal(t, dek, randomBytes(len(plain), 8), envelope.Place{Asset: "asset1", Rung: "720p", Variant: "a", Object: "seg-00002.m4s"}.AD())

	flip := func(i int) []byte { c := bytes.Clone(ct); c[i] ^= 0x01; return c }
	cases := []struct {
		name string
		ct   []byte
		ad   []byte
	}{
		{"flipped header byte", flip(3), place.AD()},
		{"flipped byte in first segment", flip(1000), place.AD()},
		{"flipped byte in last segment", flip(len(ct) - 40), place.AD()},
		{"flipped last tag byte", flip(len(ct) - 1), place.AD()},
		{"truncated by one byte", ct[:len(ct)-1], place.AD()},
		{"truncated at a segment boundary", ct[:1<<20], place.AD()},
		{"truncated to the header", ct[:40], place.AD()},
		{"empty", nil, place.AD()},
		{"appended bytes", append(bytes.Clone(ct), 0, 1, 2), place.AD()},
		{"appended segment", append(bytes.Clone(ct), ct[len(ct)-100:]...), place.AD()},
		{"swapped object", other, place.AD()},
		{"other variant", ct, envelope.Place{Asset: "asset1", Rung: "720p", Variant: "b", Object: "seg-00001.m4s"}.AD()},
		{"other rung", ct, envelope.Place{Asset: "asset1", Rung: "480p", Variant: "a", Object: "seg-00001.m4s"}.AD()},
		{"other asset", ct, envelope.Place{Asset: "asset2", Rung: "720p", Variant: "a", Object: "seg-00001.m4s"}.AD()},
		{"no associated data", ct, nil},
		{"sealed by another DEK", seal(t, newDEK(t, kek), plain, place.AD()), place.AD()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := open(dek, tc.ct, tc.ad)
			if err == nil {
				t.Fatalf("opened (%d bytes)", len(got))
			}
			if !errors.Is(err, envelope.ErrAuthentication) {
				t.Fatalf("err = %v, want ErrAuthentication", err)
			}
		})
	}
}

// A failing ciphertext source is reported as such, not as tampering: the
// caller retries a network error but not a forgery.
func TestSourceErrorPassesThrough(t *testing.T) {
	kek, _ := newKEK(t)
	dek := newDEK(t, kek)
	ct := seal(t, dek, randomBytes(3<<20, 1), place.AD())
	boom := errors.New("connection reset")
	r, err := dek.Open(io.MultiReader(bytes.NewReader(ct[:2<<20]), errReader{boom}), place.AD())
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(r)
	if !errors.Is(err, boom) || errors.Is(err, envelope.ErrAuthentication) {
		t.Fatalf("err = %v, want the source's error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestUnwrapFailures(t *testing.T) {
	kek, _ := newKEK(t)
	otherKEK, _ := newKEK(t)
	binding := envelope.RenditionAD("asset1", "720p")
	dek, err := kek.NewDEK(binding)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := dek.Wrapped()
	damaged := bytes.Clone(wrapped)
	damaged[len(damaged)-5] ^= 0xff
	for _, tc := range []struct {
		name    string
		kek     *envelope.KEK
		wrapped []byte
		binding []byte
	}{
		{"wrong KEK", otherKEK, wrapped, binding},
		{"other rendition", kek, wrapped, envelope.RenditionAD("asset1", "480p")},
		{"other asset", kek, wrapped, envelope.RenditionAD("asset2", "720p")},
		{"damaged", kek, damaged, binding},
		{"garbage", kek, []byte("not a keyset"), binding},
		{"empty", kek, nil, binding},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.kek.UnwrapDEK(tc.wrapped, tc.binding)
			if !errors.Is(err, envelope.ErrUnwrap) {
				t.Fatalf("err = %v, want ErrUnwrap", err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	kek, path := newKEK(t)
	binding := envelope.RenditionAD("asset1", "720p")
	oldDEK, err := kek.NewDEK(binding)
	if err != nil {
		t.Fatal(err)
	}
	ct := seal(t, oldDEK, []byte("sealed before rotation"), place.AD())
	oldFile, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	if err := envelope.RotateLocalKEK(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("rotated keyset file mode: %v %v", fi.Mode(), err)
	}
	rotated, err := envelope.OpenKEK(t.Context(), path, envelope.KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Old DEKs still unwrap and open their objects.
	again, err := rotated.UnwrapDEK(oldDEK.Wrapped(), binding)
	if err != nil {
		t.Fatalf("DEK wrapped before rotation: %v", err)
	}
	if got, err := open(again, ct, place.AD()); err != nil || string(got) != "sealed before rotation" {
		t.Fatalf("open after rotation: %q %v", got, err)
	}
	// New DEKs are wrapped by the new primary: the old keyset cannot open them.
	newDEK, err := rotated.NewDEK(binding)
	if err != nil {
		t.Fatal(err)
	}
	oldPath := filepath.Join(t.TempDir(), "old.json")
	if err := os.WriteFile(oldPath, oldFile, 0o600); err != nil {
		t.Fatal(err)
	}
	oldKEK, err := envelope.OpenKEK(t.Context(), oldPath, envelope.KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldKEK.UnwrapDEK(newDEK.Wrapped(), binding); !errors.Is(err, envelope.ErrUnwrap) {
		t.Fatalf("old KEK unwrapped a DEK made after rotation: %v", err)
	}
}

func TestLocalKEKFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "kek.json")
	if err := envelope.CreateLocalKEK(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
	}
	if err := envelope.CreateLocalKEK(path); err == nil {
		t.Fatal("CreateLocalKEK overwrote an existing keyset")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := envelope.OpenKEK(t.Context(), path, envelope.KEKOptions{}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group/world-readable keyset: err = %v", err)
	}
	for _, uri := range []string{
		filepath.Join(dir, "missing.json"),
		"file://" + filepath.Join(dir, "missing.json"),
	} {
		if _, err := envelope.OpenKEK(t.Context(), uri, envelope.KEKOptions{}); err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("%s: err = %v", uri, err)
		}
	}
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte(`{"not":"a keyset"}`), 0o600)
	if _, err := envelope.OpenKEK(t.Context(), garbage, envelope.KEKOptions{}); err == nil {
		t.Error("garbage keyset accepted")
	}
}

func TestKEKURIs(t *testing.T) {
	// Each want is text of that case's own error, not of the URI (every
	// error names the URI).
	for _, tc := range []struct{ uri, want string }{
		{"", "KEK URI is empty"},
		{"s3://bucket/key", `unsupported KEK URI scheme "s3"`},
		{"hcvault://vault.example:8200/transit/keys/kek", "hcvault needs a token file"},
		{"aws-kms://not-an-arn", "does not hold a key ARN"},
		{"AWS-KMS:x", "does not hold a key ARN"},
		{"file://remotehost/kek.json", `file URI with host "remotehost"`},
	} {
		_, err := envelope.OpenKEK(t.Context(), tc.uri, envelope.KEKOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want it to mention %q", tc.uri, err, tc.want)
		}
	}
}

func TestPlaceAD(t *testing.T) {
	// Field boundaries are part of the encoding.
	a := envelope.Place{Asset: "ab", Rung: "c"}.AD()
	b := envelope.Place{Asset: "a", Rung: "bc"}.AD()
	if bytes.Equal(a, b) {
		t.Fatal("places with shifted field boundaries share associated data")
	}
	if bytes.Equal(envelope.RenditionAD("a", "b"), envelope.Place{Asset: "a", Rung: "b"}.AD()) {
		t.Fatal("DEK binding and object AD share an encoding")
	}
	if got := place.String(); got != "asset1/720p/a/seg-00001.m4s" {
		t.Fatalf("String() = %q", got)
	}
}

func Example() {
	dir, _ := os.MkdirTemp("", "kek")
	defer os.RemoveAll(dir)
	kekPath := filepath.Join(dir, "kek.json")

	// Once: create the development KEK (cmd/kek create does the same).
	if err := envelope.CreateLocalKEK(kekPath); err != nil {
		panic(err)
	}
	kek, err := envelope.OpenKEK(context.Background(), "file://"+kekPath, envelope.KEKOptions{})
	if err != nil {
		panic(err)
	}

	// Per rendition: a fresh DEK; store dek.Wrapped() next to the rendition.
	dek, err := kek.NewDEK(envelope.RenditionAD("asset-42", "720p"))
	if err != nil {
		panic(err)
	}

	// Per object: seal bound to its place.
	where := envelope.Place{Asset: "asset-42", Rung: "720p", Variant: "a", Object: "seg-00001.m4s"}
	var sealed bytes.Buffer
	w, _ := dek.Seal(&sealed, where.AD())
	io.WriteString(w, "segment bytes")
	w.Close()

	// Later (the edge): unwrap the DEK and open the object at the same place.
	dek2, err := kek.UnwrapDEK(dek.Wrapped(), envelope.RenditionAD("asset-42", "720p"))
	if err != nil {
		panic(err)
	}
	r, _ := dek2.Open(&sealed, where.AD())
	plain, err := io.ReadAll(r)
	fmt.Println(string(plain), err)

	// The same bytes at another place do not open.
	w, _ = dek.Seal(&sealed, where.AD())
	io.WriteString(w, "segment bytes")
	w.Close()
	moved := where
	moved.Variant = "b"
	r, _ = dek2.Open(&sealed, moved.AD())
	_, err = io.ReadAll(r)
	fmt.Println(errors.Is(err, envelope.ErrAuthentication))
	// Output:
	// segment bytes <nil>
	// true
}
