package storage

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// RangeReader reads one object in ranges as they are asked for, through a
// small cache of aligned blocks (io.ReaderAt): a demuxer that reads a
// file's index and then one stretch of it fetches those bytes, not the
// whole object. A chunk of a two-hour source reads a few hundred
// megabytes instead of the whole file, so the store's traffic stays that
// of one copy of the source however many chunks it is split into.
//
// Each block is one ranged GET, retried a few times on failure. A block
// that comes back shorter or longer than the object's size says it is an
// error: the object changed under the reader. The caller checks the
// object's ETag again when done (Stat) to catch a change of the same size.
type RangeReader struct {
	ctx   context.Context
	s     Store
	info  ObjectInfo
	block int64
	max   int

	mu    sync.Mutex
	cache map[int64]*list.Element // of *cached
	lru   list.List               // most recently used first

	fetched  atomic.Int64
	requests atomic.Int64
	wait     atomic.Int64 // nanoseconds spent in GETs
}

type cached struct {
	block int64
	data  []byte
}

// Default RangeReader sizes: 4 MiB blocks (a GET's latency is small beside
// its transfer), 32 MiB of them cached.
const (
	DefaultRangeBlock = 4 << 20
	DefaultRangeCache = 32 << 20
)

// NewRangeReader reads the object info describes (from Stat) from s with
// blocks of block bytes, at most blocks of them cached (0: the defaults,
// DefaultRangeCache bytes of blocks). ctx bounds every GET.
func NewRangeReader(ctx context.Context, s Store, info ObjectInfo, block, blocks int) *RangeReader {
	if block <= 0 {
		block = DefaultRangeBlock
	}
	if blocks <= 0 {
		blocks = max(2, DefaultRangeCache/block)
	}
	return &RangeReader{ctx: ctx, s: s, info: info, block: int64(block), max: blocks, cache: map[int64]*list.Element{}}
}

// Size is the object's size.
func (r *RangeReader) Size() int64 { return r.info.Size }

// Name is the object's key.
func (r *RangeReader) Name() string { return r.info.Key }

// Fetched reports the bytes fetched so far, the GETs made and the time
// spent in them.
func (r *RangeReader) Fetched() (bytes int64, requests int, wait time.Duration) {
	return r.fetched.Load(), int(r.requests.Load()), time.Duration(r.wait.Load())
}

// ReadAt reads len(p) bytes at off (io.ReaderAt).
func (r *RangeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", ErrInvalidRange, off)
	}
	n := 0
	for n < len(p) {
		at := off + int64(n)
		if at >= r.info.Size {
			return n, io.EOF
		}
		b := at / r.block
		data, err := r.get(b)
		if err != nil {
			return n, err
		}
		n += copy(p[n:], data[at-b*r.block:])
	}
	return n, nil
}

// get returns block b, from the cache or the store.
func (r *RangeReader) get(b int64) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.cache[b]; ok {
		r.lru.MoveToFront(e)
		return e.Value.(*cached).data, nil
	}
	data, err := r.fetch(b)
	if err != nil {
		return nil, err
	}
	r.cache[b] = r.lru.PushFront(&cached{b, data})
	if r.lru.Len() > r.max {
		old := r.lru.Remove(r.lru.Back()).(*cached)
		delete(r.cache, old.block)
	}
	return data, nil
}

// rangeAttempts is how many times one block is tried.
const rangeAttempts = 4

// ErrReadBudget is matched by ReadAt's error once a reader has fetched
// more than its budget: a file whose reads jump about (a hostile index
// pointing back and forth) cannot make one reader fetch the object many
// times over.
var ErrReadBudget = errors.New("read budget exhausted")

// budget is how much a reader may fetch: the object three times over
// plus a few blocks.
func (r *RangeReader) budget() int64 { return 3*r.info.Size + 4*r.block }

func (r *RangeReader) fetch(b int64) ([]byte, error) {
	rng := Range{Offset: b * r.block, Length: min(r.block, r.info.Size-b*r.block)}
	if r.fetched.Load()+rng.Length > r.budget() {
		return nil, fmt.Errorf("storage: read %s: %w: %d bytes fetched of a %d-byte object", r.info.Key, ErrReadBudget, r.fetched.Load(), r.info.Size)
	}
	var err error
	for attempt := range rangeAttempts {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * 200 * time.Millisecond)
			select {
			case <-r.ctx.Done():
				t.Stop()
				return nil, r.ctx.Err()
			case <-t.C:
			}
		}
		var data []byte
		data, err = r.fetchOnce(rng)
		if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidRange) || errors.Is(err, errChanged) || r.ctx.Err() != nil {
			if err != nil {
				return nil, fmt.Errorf("storage: read %s %s: %w", r.info.Key, rng, err)
			}
			return data, nil
		}
	}
	return nil, fmt.Errorf("storage: read %s %s (%d attempts): %w", r.info.Key, rng, rangeAttempts, err)
}

// errChanged: a block's length is not what the object's size says.
var errChanged = errors.New("the object changed while it was read")

func (r *RangeReader) fetchOnce(rng Range) ([]byte, error) {
	t0 := time.Now()
	defer func() { r.wait.Add(int64(time.Since(t0))) }()
	r.requests.Add(1)
	rc, err := r.s.Open(r.ctx, r.info.Key, &rng)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data := make([]byte, rng.Length)
	n, err := io.ReadFull(rc, data)
	r.fetched.Add(int64(n))
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return nil, errChanged
	}
	if err != nil {
		return nil, err
	}
	var one [1]byte
	if m, _ := rc.Read(one[:]); m > 0 {
		return nil, errChanged
	}
	return data, nil
}
