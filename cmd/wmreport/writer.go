package main

import (
	"bytes"
	"context"

	"github.com/abseal/abseal/storage"
)

// writer stores rendered objects.
type writer struct{ st storage.Store }

func (w writer) WriteObject(ctx context.Context, key string, data []byte) error {
	_, err := w.st.Put(ctx, key, bytes.NewReader(data), storage.PutOptions{})
	return err
}
