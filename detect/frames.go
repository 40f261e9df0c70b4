package detect

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

// pictureFile keeps decoded pictures of one size in an unlinked temporary
// file mapped into memory, so that a long suspect or reference is paged in
// and out by the kernel instead of held on the heap: at the analysis sizes
// a frame is 21.6 kB of suspect and 28.8 kB of reference (both variants),
// about 11 GB for two hours at 30 fps. The file has no name from the start
// and its space is freed when the mapping is released, also if the process
// dies.
type pictureFile struct {
	f      *os.File
	size   int      // bytes per picture
	per    int      // pictures per mapped chunk
	chunk  int      // bytes per mapped chunk (whole pages)
	chunks [][]byte // the mapped chunks
	n      int      // pictures stored
}

// chunkBytes is about how much of the file one mapping covers.
const chunkBytes = 32 << 20

func newPictureFile(size int) (*pictureFile, error) {
	if size <= 0 {
		return nil, fmt.Errorf("detect: picture size %d", size)
	}
	f, err := os.CreateTemp("", "abseal-frames-*")
	if err != nil {
		return nil, fmt.Errorf("detect: frame store: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("detect: frame store: %w", err)
	}
	per := max(1, chunkBytes/size)
	page := os.Getpagesize()
	chunk := (per*size + page - 1) / page * page
	return &pictureFile{f: f, size: size, per: per, chunk: chunk}, nil
}

// add copies a picture into the file and returns where it is kept.
func (pf *pictureFile) add(y []byte) ([]byte, error) {
	if len(y) != pf.size {
		return nil, fmt.Errorf("detect: frame store: a picture of %d bytes, want %d", len(y), pf.size)
	}
	k, i := pf.n/pf.per, pf.n%pf.per
	if k == len(pf.chunks) {
		end := int64(k+1) * int64(pf.chunk)
		// Space is reserved, not only the size set: a full disk is an
		// error here, never a fault when the mapping is written.
		if err := syscall.Fallocate(int(pf.f.Fd()), 0, end-int64(pf.chunk), int64(pf.chunk)); err != nil {
			return nil, fmt.Errorf("detect: frame store in %s: reserve %d MiB: %w", os.TempDir(), pf.chunk>>20, err)
		}
		m, err := syscall.Mmap(int(pf.f.Fd()), end-int64(pf.chunk), pf.chunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("detect: frame store: map %d bytes: %w", pf.chunk, err)
		}
		pf.chunks = append(pf.chunks, m)
	}
	dst := pf.chunks[k][i*pf.size : (i+1)*pf.size : (i+1)*pf.size]
	copy(dst, y)
	pf.n++
	return dst, nil
}

// release unmaps the file and closes it: every picture it holds is gone.
func (pf *pictureFile) release() {
	for _, m := range pf.chunks {
		syscall.Munmap(m)
	}
	pf.chunks = nil
	pf.f.Close()
}

// releaseWith releases the files when owner (the Suspect or Reference
// whose pictures they hold) is no longer reachable.
func releaseWith[T any](owner *T, files ...*pictureFile) {
	for _, pf := range files {
		if pf != nil {
			runtime.AddCleanup(owner, (*pictureFile).release, pf)
		}
	}
}
