// Package storage defines the small object-store boundary abseal writes sealed
// media to and reads it back from: put from a stream of unknown length, open
// with an optional byte range, stat, list by prefix and delete.
//
// Backends live in their own packages (storage/s3 on minio-go, storage/fs on a
// local directory) and all pass the same conformance suite
// (storage/storagetest). Whatever the backend, a missing object is reported
// with an error that matches ErrNotFound (which is fs.ErrNotExist) under
// errors.Is, and a Put either stores the whole object or nothing.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"strings"
	"time"
)

// ErrNotFound is matched (errors.Is) by every backend's error for a missing
// object. It is fs.ErrNotExist, so os.IsNotExist-style checks work as well.
var ErrNotFound = fs.ErrNotExist

// ErrPrecondition is matched by Put's error when PutOptions.IfAbsent or
// IfMatch does not hold: the object exists, or has another ETag.
var ErrPrecondition = errors.New("precondition failed: the object exists or changed")

// ErrInvalidKey is matched by errors for keys that are not clean relative
// slash-separated paths.
var ErrInvalidKey = errors.New("invalid object key")

// ErrInvalidRange is matched by errors for a range outside the object.
var ErrInvalidRange = errors.New("invalid byte range")

// Store is an object store. Implementations are safe for concurrent use.
type Store interface {
	// Put stores the bytes of r under key, replacing any existing object only
	// once r has been read to EOF without error. If r fails, ctx ends or the
	// backend fails, no partial object is left and an existing object under key
	// is unchanged. The length of r need not be known in advance.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (ObjectInfo, error)
	// Open returns a reader of the object's bytes, or of the range rng when it
	// is not nil. The caller closes the reader.
	Open(ctx context.Context, key string, rng *Range) (io.ReadCloser, error)
	// Stat returns the object's metadata.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List yields the objects whose key starts with prefix, in lexical key
	// order. Iteration stops at the first error, which is yielded.
	List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error]
	// Delete removes the object. Deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
}

// PutOptions are optional settings of a Put.
type PutOptions struct {
	// ContentType is stored with the object where the backend supports it.
	ContentType string
	// IfAbsent writes the object only if no object has the key; IfMatch
	// only if the object's ETag is this one. Otherwise Put fails with
	// ErrPrecondition and nothing changes: a commit point (an asset
	// manifest) that a stale writer cannot overwrite. A conditional object
	// must fit in one part (backends that stream large objects in parts).
	IfAbsent bool
	IfMatch  string
}

// Conditional reports whether the put has a precondition.
func (o PutOptions) Conditional() bool { return o.IfAbsent || o.IfMatch != "" }

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ModTime time.Time
	// ETag is an opaque version tag: it changes when the object's bytes change.
	ETag        string
	ContentType string
}

// Range selects Length bytes starting at Offset. A negative Length means "to
// the end of the object".
type Range struct {
	Offset int64
	Length int64
}

// String formats the range as an HTTP Range header value.
func (r Range) String() string {
	if r.Length < 0 {
		return fmt.Sprintf("bytes=%d-", r.Offset)
	}
	return fmt.Sprintf("bytes=%d-%d", r.Offset, r.Offset+r.Length-1)
}

// Validate checks the range on its own (an object's size is checked by the
// backend).
func (r Range) Validate() error {
	if r.Offset < 0 {
		return fmt.Errorf("%w: negative offset %d", ErrInvalidRange, r.Offset)
	}
	if r.Length == 0 {
		return fmt.Errorf("%w: zero length", ErrInvalidRange)
	}
	return nil
}

// ValidateKey reports whether key is a clean relative slash-separated path:
// not empty, no leading or trailing slash, no empty, "." or ".." elements, no
// backslashes or control characters, at most 1024 bytes.
func ValidateKey(key string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, why) }
	switch {
	case key == "":
		return bad("empty")
	case len(key) > 1024:
		return bad("longer than 1024 bytes")
	case strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/"):
		return bad("leading or trailing slash")
	case strings.ContainsRune(key, '\\'):
		return bad("backslash")
	}
	for _, c := range key {
		if c < 0x20 || c == 0x7f {
			return bad("control character")
		}
	}
	for elem := range strings.SplitSeq(key, "/") {
		switch elem {
		case "":
			return bad("empty path element")
		case ".", "..":
			return bad("dot path element")
		}
	}
	return nil
}

// ReadAll reads a whole object. Meant for small objects (manifests, keysets).
func ReadAll(ctx context.Context, s Store, key string) ([]byte, error) {
	rc, err := s.Open(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// ContextReader returns a reader of r that fails with ctx's error once ctx
// ends, so a long copy stops between two reads.
func ContextReader(ctx context.Context, r io.Reader) io.Reader {
	return ctxReader{ctx, r}
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
