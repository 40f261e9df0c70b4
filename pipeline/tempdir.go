package pipeline

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

const jobDirPrefix = "abseal-job-"

// jobDir is a job's private temp dir. A lock on its .lock file marks it
// live while the job runs; the kernel drops the lock when the process dies,
// however it dies, so SweepTemp can tell a dead worker's leftovers from a
// live job's files.
type jobDir struct {
	path string
	lock *os.File
}

func newJobDir(parent string) (*jobDir, error) {
	dir, err := os.MkdirTemp(parent, jobDirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pipeline: temp dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pipeline: temp dir lock: %w", err)
	}
	return &jobDir{path: dir, lock: f}, nil
}

// remove deletes the dir, then lets go of the lock.
func (d *jobDir) remove() {
	os.RemoveAll(d.path)
	d.lock.Close()
}

// SweepTemp removes job temp dirs under parent that no live process holds:
// those of a worker that was killed mid-job. Workers sharing parent may run
// it at any time. It returns the number of dirs removed.
func SweepTemp(parent string) (int, error) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return 0, fmt.Errorf("pipeline: sweep %s: %w", parent, err)
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), jobDirPrefix) {
			continue
		}
		dir := filepath.Join(parent, e.Name())
		f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR, 0)
		if err != nil {
			// No lock file: a dir caught between its creation and its lock,
			// or damaged. Only an old one is abandoned.
			if info, serr := e.Info(); serr == nil && time.Since(info.ModTime()) > time.Minute {
				if os.RemoveAll(dir) == nil {
					n++
				}
			}
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if os.RemoveAll(dir) == nil {
				n++
			}
		}
		f.Close()
	}
	return n, nil
}
