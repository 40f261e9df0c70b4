// Package s3 is a storage.Store on any S3-compatible object store (MinIO, AWS
// S3, …) through minio-go.
//
// Memory per Put is bounded by Config.PartSize: objects that fit in one part
// go up in a single PUT, larger ones as a multipart upload that is aborted if
// the reader, the context or the server fails, so no partial object is left.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/abseal/abseal/storage"
)

// DefaultPartSize is the multipart part size when Config.PartSize is zero.
const DefaultPartSize = 16 << 20

// MinPartSize is the smallest part size S3 accepts.
const MinPartSize = 5 << 20

// Config selects the endpoint, bucket and credentials.
type Config struct {
	// Endpoint is host:port, without scheme.
	Endpoint string
	// Secure selects HTTPS.
	Secure bool
	// Region is optional for MinIO.
	Region    string
	Bucket    string
	AccessKey string
	SecretKey string
	// PartSize bounds the memory of one Put (default DefaultPartSize, at least
	// MinPartSize).
	PartSize int64
	// Transport overrides the HTTP transport (optional).
	Transport http.RoundTripper
}

// Validate names the first missing or bad field.
func (c Config) Validate() error {
	switch {
	case c.Endpoint == "":
		return errors.New("s3: config: endpoint is empty")
	case strings.Contains(c.Endpoint, "://"):
		return fmt.Errorf("s3: config: endpoint %q must be host:port without scheme (use Secure for https)", c.Endpoint)
	case c.Bucket == "":
		return errors.New("s3: config: bucket is empty")
	case c.PartSize != 0 && c.PartSize < MinPartSize:
		return fmt.Errorf("s3: config: part size %d is below the S3 minimum %d", c.PartSize, MinPartSize)
	}
	return nil
}

// Store is a storage.Store on one bucket.
type Store struct {
	client   *minio.Client
	bucket   string
	partSize int64
	bufs     sync.Pool // *[]byte of partSize: the first part of each Put
}

var _ storage.Store = (*Store)(nil)

// New returns a Store. It does not contact the server; see Check.
func New(cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:    cfg.Secure,
		Region:    cfg.Region,
		Transport: cfg.Transport,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: client for %s: %w", cfg.Endpoint, err)
	}
	ps := cfg.PartSize
	if ps == 0 {
		ps = DefaultPartSize
	}
	st := &Store{client: client, bucket: cfg.Bucket, partSize: ps}
	st.bufs.New = func() any { b := make([]byte, ps); return &b }
	return st, nil
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// Check verifies that the server answers and the bucket exists.
func (s *Store) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("s3: check bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("s3: bucket %s does not exist", s.bucket)
	}
	return nil
}

// NotifyUploads sets the bucket's notification rule so that every
// object-created event goes to the server's NATS notification target
// targetID (configured on the server with MINIO_NOTIFY_NATS_*_<targetID>).
// It replaces the bucket's notification configuration.
func (s *Store) NotifyUploads(ctx context.Context, targetID string) error {
	arn := notification.NewArn("minio", "sqs", "", targetID, "nats")
	qc := notification.NewConfig(arn)
	qc.AddEvents(notification.ObjectCreatedAll)
	var cfg notification.Configuration
	cfg.AddQueue(qc)
	// A server that has just started may still be connecting its targets:
	// until then it does not know the ARN.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.client.SetBucketNotification(ctx, s.bucket, cfg)
		if err == nil {
			return nil
		}
		if minio.ToErrorResponse(err).Code != "InvalidArgument" && !strings.Contains(err.Error(), "ARN") || time.Now().After(deadline) {
			return fmt.Errorf("s3: notification rule on %s: %w", s.bucket, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("s3: notification rule on %s: %w", s.bucket, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// CreateBucket creates the bucket if it does not exist yet.
func (s *Store) CreateBucket(ctx context.Context) error {
	err := s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{})
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case minio.BucketAlreadyOwnedByYou, minio.BucketAlreadyExists:
		return nil
	}
	return fmt.Errorf("s3: create bucket %s: %w", s.bucket, err)
}

// Put implements storage.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts storage.PutOptions) (storage.ObjectInfo, error) {
	if err := storage.ValidateKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("s3: %w", err)
	}
	po := minio.PutObjectOptions{
		ContentType: opts.ContentType,
		PartSize:    uint64(s.partSize),
		NumThreads:  1,
		// The payload is not hashed into the request signature: minio-go's
		// per-part CRC32C checksum still guards the bytes in transit, and
		// abseal's objects carry their own AEAD tags. Hashing would halve
		// the upload rate on plain-HTTP endpoints.
		DisableContentSha256: true,
	}
	// Read up to one part: an object that fits is sent in a single PUT with
	// its length known; a larger one streams as a multipart upload.
	bufp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bufp)
	head := *bufp
	n, err := io.ReadFull(storage.ContextReader(ctx, r), head)
	var body io.Reader
	size := int64(-1)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		body, size = bytes.NewReader(head[:n]), int64(n)
	case err != nil:
		return storage.ObjectInfo{}, fmt.Errorf("s3: put %s: %w", key, err)
	default:
		body = io.MultiReader(bytes.NewReader(head), storage.ContextReader(ctx, r))
	}
	if opts.Conditional() {
		if size < 0 {
			return storage.ObjectInfo{}, fmt.Errorf("s3: put %s: a conditional object must fit in one part (%d bytes)", key, s.partSize)
		}
		if opts.IfAbsent {
			po.SetMatchETagExcept("*")
		}
		if opts.IfMatch != "" {
			po.SetMatchETag(opts.IfMatch)
		}
	}
	if _, err := s.client.PutObject(ctx, s.bucket, key, body, size, po); err != nil {
		// If-Match on a missing object is NoSuchKey here: it has no such
		// ETag either.
		if code := minio.ToErrorResponse(err).Code; opts.Conditional() && code == "PreconditionFailed" || opts.IfMatch != "" && code == "NoSuchKey" {
			return storage.ObjectInfo{}, fmt.Errorf("s3: put %s: %w", key, storage.ErrPrecondition)
		}
		return storage.ObjectInfo{}, fmt.Errorf("s3: put %s: %w", key, s.mapErr(err))
	}
	return s.Stat(ctx, key)
}

// Open implements storage.Store.
func (s *Store) Open(ctx context.Context, key string, rng *storage.Range) (io.ReadCloser, error) {
	if err := storage.ValidateKey(key); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	var opts minio.GetObjectOptions
	if rng != nil {
		if err := rng.Validate(); err != nil {
			return nil, fmt.Errorf("s3: open %s: %w", key, err)
		}
		opts.Set("Range", rng.String())
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, opts)
	if err != nil {
		return nil, fmt.Errorf("s3: open %s: %w", key, s.mapErr(err))
	}
	// GetObject is lazy: Stat sends the request so a missing key or a bad
	// range is reported here and not on the first Read.
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, fmt.Errorf("s3: open %s: %w", key, s.mapErr(err))
	}
	return obj, nil
}

// Stat implements storage.Store.
func (s *Store) Stat(ctx context.Context, key string) (storage.ObjectInfo, error) {
	if err := storage.ValidateKey(key); err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("s3: %w", err)
	}
	oi, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return storage.ObjectInfo{}, fmt.Errorf("s3: stat %s: %w", key, s.mapErr(err))
	}
	return info(oi), nil
}

// List implements storage.Store.
func (s *Store) List(ctx context.Context, prefix string) iter.Seq2[storage.ObjectInfo, error] {
	return func(yield func(storage.ObjectInfo, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // stops minio-go's listing goroutine on early break
		for oi := range s.client.ListObjectsIter(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if oi.Err != nil {
				yield(storage.ObjectInfo{}, fmt.Errorf("s3: list %q: %w", prefix, s.mapErr(oi.Err)))
				return
			}
			if !yield(info(oi), nil) {
				return
			}
		}
	}
}

// Delete implements storage.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return fmt.Errorf("s3: %w", err)
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(s.mapErr(err), storage.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("s3: delete %s: %w", key, s.mapErr(err))
	}
	return nil
}

func info(oi minio.ObjectInfo) storage.ObjectInfo {
	return storage.ObjectInfo{
		Key:         oi.Key,
		Size:        oi.Size,
		ModTime:     oi.LastModified,
		ETag:        oi.ETag,
		ContentType: oi.ContentType,
	}
}

// mapErr turns S3 error codes into the storage sentinels.
func (s *Store) mapErr(err error) error {
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case minio.NoSuchKey:
		return fmt.Errorf("%w (%s)", storage.ErrNotFound, resp.Code)
	case minio.NoSuchBucket:
		return fmt.Errorf("bucket %s does not exist: %w", s.bucket, err)
	case minio.InvalidRange:
		return fmt.Errorf("%w: %v", storage.ErrInvalidRange, err)
	}
	if resp.StatusCode == http.StatusNotFound && resp.Code == "" {
		return fmt.Errorf("%w (404)", storage.ErrNotFound)
	}
	return err
}
