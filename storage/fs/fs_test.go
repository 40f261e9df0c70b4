package fs_test

import (
	"testing"

	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/fs"
	"github.com/abseal/abseal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := fs.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, storagetest.Options{})
}
