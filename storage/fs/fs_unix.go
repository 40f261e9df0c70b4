//go:build unix

package fs

import (
	iofs "io/fs"
	"syscall"
)

var errNotDir = syscall.ENOTDIR

func inode(fi iofs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
