// Package storagetest is the conformance suite every storage.Store backend
// passes. Backend packages call Run from their tests.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/abseal/abseal/storage"
)

// Options describe the backend under test.
type Options struct {
	// PartSize is the backend's multipart part size (0 if it has none); the
	// suite writes objects larger than it.
	PartSize int64
}

// Run runs the suite. newStore returns an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store, opts Options) {
	big := int64(3 << 20)
	if opts.PartSize > 0 {
		big = 2*opts.PartSize + 12345
	}
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, size := range []int64{0, 1, 4096, 1<<20 + 1, big} {
			key := fmt.Sprintf("rt/obj-%d", size)
			data := randomBytes(size, uint64(size))
			info := put(t, s, key, bytes.NewReader(data))
			if info.Size != size || info.Key != key {
				t.Fatalf("put %s: info %+v, want size %d", key, info, size)
			}
			got := readAll(t, s, key, nil)
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: read %d bytes that differ from the %d written", key, len(got), size)
			}
		}
	})
	t.Run("RangeReader", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const block = 64 << 10
		data := randomBytes(5*block+777, 11)
		info := put(t, s, "rr/src", bytes.NewReader(data))
		rr := storage.NewRangeReader(t.Context(), s, info, block, 2)
		if rr.Size() != int64(len(data)) || rr.Name() != "rr/src" {
			t.Fatalf("size %d name %q", rr.Size(), rr.Name())
		}
		// Reads across block edges, at the end, and past it.
		for _, c := range []struct{ off, n int }{{0, 10}, {block - 5, 10}, {3*block + 1, 2 * block}, {len(data) - 3, 3}, {len(data) - 3, 10}, {len(data), 1}} {
			p := make([]byte, c.n)
			n, err := rr.ReadAt(p, int64(c.off))
			want := data[min(c.off, len(data)):min(c.off+c.n, len(data))]
			if !bytes.Equal(p[:n], want) {
				t.Fatalf("ReadAt(%d, %d): %d bytes that differ from the object's", c.off, c.n, n)
			}
			if short := len(want) < c.n; short != (err == io.EOF) || !short && err != nil {
				t.Fatalf("ReadAt(%d, %d) = %d, %v", c.off, c.n, n, err)
			}
		}
		// A sequential read of a window fetches that window's blocks once:
		// not the whole object.
		rr = storage.NewRangeReader(t.Context(), s, info, block, 2)
		got, err := io.ReadAll(io.NewSectionReader(rr, 2*block, 2*block))
		if err != nil || !bytes.Equal(got, data[2*block:4*block]) {
			t.Fatalf("window read: %d bytes, %v", len(got), err)
		}
		if fetched, reqs, _ := rr.Fetched(); reqs != 2 || fetched != 2*block {
			t.Fatalf("a two-block window made %d requests for %d bytes, want 2 for %d", reqs, fetched, 2*block)
		}
		// Reads that jump back and forth past a small cache stop at the
		// budget (three times the object) with a clear error.
		hop := storage.NewRangeReader(t.Context(), s, info, block, 1)
		var hopErr error
		for i := 0; i < 100 && hopErr == nil; i++ {
			_, hopErr = hop.ReadAt(make([]byte, 1), int64(i%2)*4*block)
		}
		if fetched, _, _ := hop.Fetched(); !errors.Is(hopErr, storage.ErrReadBudget) || fetched > 3*info.Size+4*block {
			t.Fatalf("hopping reads: %v after %d bytes fetched of %d", hopErr, fetched, info.Size)
		}
		// The object shrinks under the reader: a clear error, not short data.
		put(t, s, "rr/src", bytes.NewReader(data[:block]))
		if _, err := rr.ReadAt(make([]byte, 10), 4*block+5); err == nil {
			t.Fatal("a read past the object's new end succeeded")
		}
		// A missing object is ErrNotFound.
		if err := s.Delete(t.Context(), "rr/src"); err != nil {
			t.Fatal(err)
		}
		rr = storage.NewRangeReader(t.Context(), s, info, block, 2)
		if _, err := rr.ReadAt(make([]byte, 10), 0); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("read of a deleted object: %v, want ErrNotFound", err)
		}
	})
	t.Run("UnknownLengthStream", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		// A reader that yields small odd-sized chunks and never says its size.
		data := randomBytes(big, 7)
		put(t, s, "stream/obj", &chunkReader{r: bytes.NewReader(data), n: 7777})
		if got := readAll(t, s, "stream/obj", nil); !bytes.Equal(got, data) {
			t.Fatal("streamed object differs")
		}
	})
	t.Run("Overwrite", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		i1 := put(t, s, "ow/k", strings.NewReader("first version"))
		i2 := put(t, s, "ow/k", strings.NewReader("second"))
		if got := string(readAll(t, s, "ow/k", nil)); got != "second" {
			t.Fatalf("after overwrite read %q", got)
		}
		if i1.ETag == i2.ETag {
			t.Fatalf("etag did not change on overwrite: %q", i1.ETag)
		}
		st, err := s.Stat(t.Context(), "ow/k")
		if err != nil || st.Size != 6 || st.ETag != i2.ETag {
			t.Fatalf("stat = %+v, %v; want size 6 etag %q", st, err, i2.ETag)
		}
	})
	t.Run("ContentType", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		if _, err := s.Put(t.Context(), "ct/x.json", strings.NewReader("{}"), storage.PutOptions{ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(t.Context(), "ct/x.json"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Range", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		data := randomBytes(10000, 3)
		put(t, s, "r/obj", bytes.NewReader(data))
		for _, tc := range []struct {
			rng  storage.Range
			want []byte
		}{
			{storage.Range{Offset: 0, Length: 1}, data[:1]},
			{storage.Range{Offset: 100, Length: 900}, data[100:1000]},
			{storage.Range{Offset: 9000, Length: -1}, data[9000:]},
			{storage.Range{Offset: 0, Length: -1}, data},
			{storage.Range{Offset: 9990, Length: 100}, data[9990:]}, // clipped at the end
			{storage.Range{Offset: 9999, Length: 1}, data[9999:]},
		} {
			if got := readAll(t, s, "r/obj", &tc.rng); !bytes.Equal(got, tc.want) {
				t.Errorf("range %v: got %d bytes, want %d", tc.rng, len(got), len(tc.want))
			}
		}
		for _, rng := range []storage.Range{{Offset: 10000, Length: 1}, {Offset: 20000, Length: -1}, {Offset: -1, Length: 5}, {Offset: 5, Length: 0}} {
			rc, err := s.Open(t.Context(), "r/obj", &rng)
			if err == nil {
				rc.Close()
			}
			if !errors.Is(err, storage.ErrInvalidRange) {
				t.Errorf("range %+v: err = %v, want ErrInvalidRange", rng, err)
			}
		}
	})
	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		put(t, s, "m/present", strings.NewReader("x"))
		if _, err := s.Open(t.Context(), "m/absent", nil); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("open missing: err = %v, want ErrNotFound", err)
		} else if !strings.Contains(err.Error(), "m/absent") {
			t.Errorf("open missing: error %q does not name the key", err)
		}
		if _, err := s.Open(t.Context(), "m/absent", &storage.Range{Offset: 0, Length: 1}); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("open missing with range: err = %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(t.Context(), "m/absent"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("stat missing: err = %v, want ErrNotFound", err)
		}
		// A "directory" is not an object.
		if _, err := s.Stat(t.Context(), "m"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("stat prefix: err = %v, want ErrNotFound", err)
		}
		// An object used as a directory is not found either.
		if _, err := s.Stat(t.Context(), "m/present/child"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("stat below an object: err = %v, want ErrNotFound", err)
		}
		if err := s.Delete(t.Context(), "m/absent"); err != nil {
			t.Errorf("delete missing: %v", err)
		}
	})
	t.Run("InvalidKeys", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		for _, key := range []string{"", "/abs", "a/../b", "a//b", "trail/", "./x", "a\\b", "nul\x00"} {
			if _, err := s.Put(t.Context(), key, strings.NewReader("x"), storage.PutOptions{}); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("put %q: err = %v, want ErrInvalidKey", key, err)
			}
			if _, err := s.Stat(t.Context(), key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("stat %q: err = %v, want ErrInvalidKey", key, err)
			}
		}
	})
	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		put(t, s, "d/a/b/c", strings.NewReader("x"))
		put(t, s, "d/a/other", strings.NewReader("y"))
		if err := s.Delete(t.Context(), "d/a/b/c"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(t.Context(), "d/a/b/c"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("stat after delete: %v", err)
		}
		if keys := listKeys(t, s, "d/"); !slices.Equal(keys, []string{"d/a/other"}) {
			t.Fatalf("list after delete = %v", keys)
		}
	})
	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var want []string
		var mu sync.Mutex
		// More keys than one S3 listing page (1000).
		parallel(t, 1100, 8, func(i int) error {
			key := fmt.Sprintf("l/seg-%05d.m4s", i)
			if _, err := s.Put(t.Context(), key, strings.NewReader(key), storage.PutOptions{}); err != nil {
				return err
			}
			mu.Lock()
			want = append(want, key)
			mu.Unlock()
			return nil
		})
		// Keys whose byte order differs from a directory walk's order.
		for _, k := range []string{"l-x", "l/a/b", "l/a-b", "l/a.b", "lz"} {
			put(t, s, k, strings.NewReader(k))
		}
		want = append(want, "l/a/b", "l/a-b", "l/a.b")
		slices.Sort(want)
		got := listKeys(t, s, "l/")
		if !slices.Equal(got, want) {
			t.Fatalf("list l/: %d keys, want %d (first differing: %v)", len(got), len(want), firstDiff(got, want))
		}
		if got := listKeys(t, s, "l/seg-001"); len(got) != 100 {
			t.Fatalf("list l/seg-001: %d keys, want 100", len(got))
		}
		if got := listKeys(t, s, "nothing/"); len(got) != 0 {
			t.Fatalf("list of empty prefix: %v", got)
		}
		all := listKeys(t, s, "")
		if len(all) != len(want)+2 {
			t.Fatalf("list all: %d keys, want %d", len(all), len(want)+2)
		}
		for info, err := range s.List(t.Context(), "l/seg-") {
			if err != nil {
				t.Fatal(err)
			}
			if info.Size != int64(len(info.Key)) {
				t.Fatalf("list info %+v: wrong size", info)
			}
			break // early break must not hang or leak
		}
	})
	t.Run("ConcurrentWriters", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		const n = 24
		parallel(t, n, n, func(i int) error {
			data := randomBytes(int64(100_000+i*1000), uint64(i))
			_, err := s.Put(t.Context(), fmt.Sprintf("cw/%02d", i), bytes.NewReader(data), storage.PutOptions{})
			return err
		})
		for i := range n {
			want := randomBytes(int64(100_000+i*1000), uint64(i))
			if got := readAll(t, s, fmt.Sprintf("cw/%02d", i), nil); sha256.Sum256(got) != sha256.Sum256(want) {
				t.Fatalf("object %d differs", i)
			}
		}
	})
	t.Run("Conditional", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx := t.Context()
		put := func(data string, o storage.PutOptions) (storage.ObjectInfo, error) {
			return s.Put(ctx, "c/manifest.json", strings.NewReader(data), o)
		}
		first, err := put("v1", storage.PutOptions{IfAbsent: true})
		if err != nil {
			t.Fatalf("if absent, on no object: %v", err)
		}
		if _, err := put("stale", storage.PutOptions{IfAbsent: true}); !errors.Is(err, storage.ErrPrecondition) {
			t.Fatalf("if absent, on an object: %v, want ErrPrecondition", err)
		}
		second, err := put("v2", storage.PutOptions{IfMatch: first.ETag})
		if err != nil {
			t.Fatalf("if match, the current ETag: %v", err)
		}
		if _, err := put("stale", storage.PutOptions{IfMatch: first.ETag}); !errors.Is(err, storage.ErrPrecondition) {
			t.Fatalf("if match, a superseded ETag: %v, want ErrPrecondition", err)
		}
		if _, err := s.Put(ctx, "c/missing", strings.NewReader("x"), storage.PutOptions{IfMatch: second.ETag}); !errors.Is(err, storage.ErrPrecondition) {
			t.Fatalf("if match on no object: %v, want ErrPrecondition", err)
		}
		if got := string(readAll(t, s, "c/manifest.json", nil)); got != "v2" {
			t.Fatalf("after refused puts the object holds %q, want v2", got)
		}
		// Writers racing to commit the same key: exactly one wins.
		const n = 8
		var mu sync.Mutex
		won := 0
		parallel(t, n, n, func(i int) error {
			_, err := s.Put(ctx, "c/race", strings.NewReader(fmt.Sprint("writer ", i)), storage.PutOptions{IfAbsent: true})
			if err == nil {
				mu.Lock()
				won++
				mu.Unlock()
				return nil
			}
			if errors.Is(err, storage.ErrPrecondition) {
				return nil
			}
			return err
		})
		if won != 1 {
			t.Fatalf("%d of %d racing writers committed, want exactly 1", won, n)
		}
	})
	t.Run("FailingReaderLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		old := []byte("the stored version that must survive")
		put(t, s, "f/existing", bytes.NewReader(old))
		boom := errors.New("source read failed")
		for _, after := range []int64{0, 1000, big - 1000} {
			for _, key := range []string{fmt.Sprintf("f/new-%d", after), "f/existing"} {
				r := io.MultiReader(bytes.NewReader(randomBytes(after, 9)), errReader{boom})
				_, err := s.Put(t.Context(), key, r, storage.PutOptions{})
				if !errors.Is(err, boom) {
					t.Fatalf("put %s failing after %d bytes: err = %v, want the reader's error", key, after, err)
				}
			}
			if _, err := s.Stat(t.Context(), fmt.Sprintf("f/new-%d", after)); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("after a failed put of %d bytes, stat = %v, want ErrNotFound", after, err)
			}
			if got := readAll(t, s, "f/existing", nil); !bytes.Equal(got, old) {
				t.Fatalf("a failed put after %d bytes changed the existing object", after)
			}
		}
		if keys := listKeys(t, s, ""); !slices.Equal(keys, []string{"f/existing"}) {
			t.Fatalf("objects after failed puts: %v", keys)
		}
	})
	t.Run("CancelledPutLeavesNothing", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ctx, cancel := context.WithCancel(t.Context())
		r := &cancelAfter{r: bytes.NewReader(randomBytes(big, 5)), n: big / 2, cancel: cancel}
		if _, err := s.Put(ctx, "c/obj", r, storage.PutOptions{}); err == nil {
			t.Fatal("put with a context cancelled midway succeeded")
		}
		if _, err := s.Stat(t.Context(), "c/obj"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("after a cancelled put, stat = %v, want ErrNotFound", err)
		}
	})
}

func put(t *testing.T, s storage.Store, key string, r io.Reader) storage.ObjectInfo {
	t.Helper()
	info, err := s.Put(t.Context(), key, r, storage.PutOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return info
}

func readAll(t *testing.T, s storage.Store, key string, rng *storage.Range) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), key, rng)
	if err != nil {
		t.Fatalf("open %s %v: %v", key, rng, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return b
}

func listKeys(t *testing.T, s storage.Store, prefix string) []string {
	t.Helper()
	var keys []string
	for info, err := range s.List(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func parallel(t *testing.T, n, workers int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("%d: %q vs %q", i, a[i], b[i])
		}
	}
	return "length"
}

// randomBytes returns size deterministic pseudo-random bytes.
func randomBytes(size int64, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int64
	read   int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	if c.read >= c.n {
		c.cancel()
	}
	return n, err
}
