// Package fs is a storage.Store on a local directory, for development, tests
// and single-machine deployments. Writes are atomic: bytes go to a temp file
// in the same file system, which is synced and renamed into place only once
// the whole stream has been read.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/abseal/abseal/storage"
)

// tmpDir is the directory under the root that holds in-flight writes. It is
// not a valid first key element and never listed.
const tmpDir = ".abseal-tmp"

// Store keeps objects as files under a root directory.
type Store struct {
	root string
}

var _ storage.Store = (*Store)(nil)

// New returns a Store rooted at dir, creating it (mode 0700) if needed.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fs: root %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("fs: create root: %w", err)
	}
	return &Store{root: abs}, nil
}

// Root returns the directory the store writes to.
func (s *Store) Root() string { return s.root }

func (s *Store) path(key string) (string, error) {
	if err := storage.ValidateKey(key); err != nil {
		return "", fmt.Errorf("fs: %w", err)
	}
	if key == tmpDir || strings.HasPrefix(key, tmpDir+"/") {
		return "", fmt.Errorf("fs: %w %q: reserved prefix %s", storage.ErrInvalidKey, key, tmpDir)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.ObjectInfo, error) {
	dst, err := s.path(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.root, tmpDir), "put-*")
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := io.Copy(tmp, storage.ContextReader(ctx, r)); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: sync: %w", key, err)
	}
	if err := tmp.Close(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: close: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, err)
	}
	if opts.Conditional() {
		// The check and the rename under one lock of the store's
		// directory, against other processes too.
		unlock, err := s.lock()
		if err != nil {
			return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, err)
		}
		defer unlock()
		fi, err := os.Stat(dst)
		switch {
		case err != nil && !errors.Is(err, iofs.ErrNotExist):
			return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, err)
		case opts.IfAbsent && err == nil,
			opts.IfMatch != "" && (err != nil || etag(fi) != opts.IfMatch):
			return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, storage.ErrPrecondition)
		}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: %w", key, err)
	}
	committed = true
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: put %s: sync dir: %w", key, err)
	}
	return s.Stat(ctx, key)
}

// lock takes the store's lock file (flock), for conditional puts.
func (s *Store) lock() (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(s.root, tmpDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, key string, rng *storage.Range) (io.ReadCloser, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fs: open %s: %w", key, err)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("fs: open %s: %w", key, notFound(err))
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("fs: open %s: %w", key, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("fs: open %s: %w", key, storage.ErrNotFound)
	}
	if rng == nil {
		return f, nil
	}
	if err := rng.Validate(); err != nil {
		f.Close()
		return nil, fmt.Errorf("fs: open %s: %w", key, err)
	}
	if rng.Offset >= fi.Size() {
		f.Close()
		return nil, fmt.Errorf("fs: open %s: %w: offset %d, size %d", key, storage.ErrInvalidRange, rng.Offset, fi.Size())
	}
	n := fi.Size() - rng.Offset
	if rng.Length >= 0 && rng.Length < n {
		n = rng.Length
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, rng.Offset, n), f}, nil
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	p, err := s.path(key)
	if err != nil {
		return storage.ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: stat %s: %w", key, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("fs: stat %s: %w", key, notFound(err))
	}
	if fi.IsDir() {
		return storage.ObjectInfo{}, fmt.Errorf("fs: stat %s: %w", key, storage.ErrNotFound)
	}
	return info(key, fi), nil
}

// List implements storage.Store. Keys are collected and sorted so the order
// is the byte order object stores use (a directory walk is not).
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[storage.ObjectInfo, error] {
	return func(yield func(storage.ObjectInfo, error) bool) {
		dir := ""
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			dir = prefix[:i]
		}
		start := s.root
		if dir != "" {
			if err := storage.ValidateKey(dir); err != nil {
				yield(storage.ObjectInfo{}, fmt.Errorf("fs: list %q: %w", prefix, err))
				return
			}
			start = filepath.Join(s.root, filepath.FromSlash(dir))
		}
		var objs []storage.ObjectInfo
		err := filepath.WalkDir(start, func(p string, d iofs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, iofs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, err := filepath.Rel(s.root, p)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(rel)
			if d.IsDir() {
				if key == tmpDir {
					return filepath.SkipDir
				}
				// Skip directories that cannot hold a matching key.
				if key != "." && !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasPrefix(key, prefix) {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				if errors.Is(err, iofs.ErrNotExist) {
					return nil // deleted while listing
				}
				return err
			}
			objs = append(objs, info(key, fi))
			return nil
		})
		if err != nil {
			yield(storage.ObjectInfo{}, fmt.Errorf("fs: list %q: %w", prefix, err))
			return
		}
		slices.SortFunc(objs, func(a, b storage.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
		for _, o := range objs {
			if !yield(o, nil) {
				return
			}
		}
	}
}

// Delete implements storage.Store. Empty parent directories are removed.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fs: delete %s: %w", key, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("fs: delete %s: %w", key, err)
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		if os.Remove(filepath.Join(s.root, filepath.FromSlash(dir))) != nil {
			break // not empty (or already gone)
		}
	}
	return nil
}

func info(key string, fi iofs.FileInfo) storage.ObjectInfo {
	return storage.ObjectInfo{
		Key:     key,
		Size:    fi.Size(),
		ModTime: fi.ModTime(),
		ETag:    etag(fi),
	}
}

// etag identifies a version of a file by size, modification time and inode
// (a rename-into-place always brings a new inode).
func etag(fi iofs.FileInfo) string {
	return fmt.Sprintf("%x-%x-%x", fi.Size(), fi.ModTime().UnixNano(), inode(fi))
}

func notFound(err error) error {
	if errors.Is(err, iofs.ErrNotExist) {
		return storage.ErrNotFound
	}
	var pe *iofs.PathError
	if errors.As(err, &pe) && errors.Is(pe.Err, errNotDir) {
		return storage.ErrNotFound // a path element is a file
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
