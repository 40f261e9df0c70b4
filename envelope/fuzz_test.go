package envelope

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
)

var update = flag.Bool("update", false, "rewrite the committed fuzz corpus and test keyset")

const fuzzKeysetPath = "testdata/fuzz-dek.insecure-test-keyset.json"

// fuzzDEK is a DEK from a committed, test-only cleartext keyset, so the
// committed corpus stays valid ciphertext across runs.
func fuzzDEK(tb testing.TB) *DEK {
	tb.Helper()
	if *update {
		h, err := keyset.NewHandle(dekTemplate(dekSegmentSize))
		if err != nil {
			tb.Fatal(err)
		}
		var buf bytes.Buffer
		if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(fuzzKeysetPath, buf.Bytes(), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	data, err := os.ReadFile(fuzzKeysetPath)
	if err != nil {
		tb.Fatalf("%v (regenerate with go test -run TestFuzzCorpus -update ./envelope)", err)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(data)))
	if err != nil {
		tb.Fatal(err)
	}
	sa, err := streamingaead.New(h)
	if err != nil {
		tb.Fatal(err)
	}
	return &DEK{sa: sa}
}

var fuzzPlace = Place{Asset: "fuzz", Rung: "720p", Variant: "a", Object: "seg-00001.m4s"}

// TestFuzzCorpus checks the committed corpus still opens (valid seeds) and
// rewrites it with -update.
func TestFuzzCorpus(t *testing.T) {
	dek := fuzzDEK(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzOpen")
	if *update {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, n := range []int{0, 1, 100, 70000} {
			var buf bytes.Buffer
			w, err := dek.Seal(&buf, fuzzPlace.AD())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(bytes.Repeat([]byte{byte(i)}, n)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			entry := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", buf.Bytes())
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("sealed-%d", n)), []byte(entry), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		t.Fatalf("no committed fuzz corpus in %s: %v", dir, err)
	}
	// The seeds are valid ciphertext, so the fuzzer starts past the header.
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		ct, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		r, err := dek.Open(strings.NewReader(ct), fuzzPlace.AD())
		if err != nil {
			t.Fatalf("committed seed %s: %v", e.Name(), err)
		}
		if _, err := io.ReadAll(r); err != nil {
			t.Fatalf("committed seed %s does not open: %v", e.Name(), err)
		}
	}
}

func FuzzOpen(f *testing.F) {
	dek := fuzzDEK(f)
	for _, n := range []int{0, 5, 1 << 16} {
		var buf bytes.Buffer
		w, _ := dek.Seal(&buf, fuzzPlace.AD())
		w.Write(make([]byte, n))
		w.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, ct []byte) {
		r, err := dek.Open(bytes.NewReader(ct), fuzzPlace.AD())
		if err != nil {
			t.Fatalf("Open itself failed: %v", err)
		}
		plain, err := io.ReadAll(r)
		if err != nil {
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("error %v does not match ErrAuthentication", err)
			}
			if plain != nil && len(plain) > len(ct) {
				t.Fatalf("released %d plaintext bytes from %d ciphertext bytes", len(plain), len(ct))
			}
			return
		}
		// What opens must be exactly as long as the ciphertext allows.
		if len(plain) >= len(ct) {
			t.Fatalf("opened %d bytes from %d ciphertext bytes", len(plain), len(ct))
		}
	})
}
