package s3_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"testing"

	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/s3"
)

// Put and get throughput against a MinIO server on loopback, for objects of
// a typical segment size and of a multipart size.
func BenchmarkMinIO(b *testing.B) {
	m := testenv.MinIO(b)
	st := testenv.Bucket(b, m, "bench", s3.DefaultPartSize)
	for _, size := range []int{1 << 20, 40 << 20} {
		data := make([]byte, size)
		rand.Read(data)
		key := fmt.Sprintf("bench/%d", size)
		b.Run(fmt.Sprintf("Put/%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := st.Put(b.Context(), key, bytes.NewReader(data), storage.PutOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("Get/%dMiB", size>>20), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rc, err := st.Open(b.Context(), key, nil)
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, rc); err != nil || n != int64(size) {
					b.Fatal(n, err)
				}
				rc.Close()
			}
		})
	}
}
