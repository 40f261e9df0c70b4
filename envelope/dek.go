package envelope

import (
	"bytes"
	"errors"
	"io"

	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// DEK is a rendition's data-encryption key: a Tink streaming-AEAD keyset
// (AES256-GCM-HKDF, 1 MB segments). Only its wrapped form leaves the process.
// It is safe for concurrent use.
type DEK struct {
	sa      tink.StreamingAEAD
	wrapped []byte
	kekURI  string
}

// NewDEK makes a fresh DEK and wraps it with the KEK, bound to binding (use
// RenditionAD).
func (k *KEK) NewDEK(binding []byte) (*DEK, error) {
	h, err := keyset.NewHandle(streamingaead.AES256GCMHKDF1MBKeyTemplate())
	if err != nil {
		return nil, errorf("new DEK: %w", err)
	}
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), k.aead, binding); err != nil {
		return nil, errorf("wrap DEK with KEK %s: %w", redactURI(k.uri), err)
	}
	sa, err := streamingaead.New(h)
	if err != nil {
		return nil, errorf("new DEK: %w", err)
	}
	return &DEK{sa: sa, wrapped: buf.Bytes(), kekURI: k.uri}, nil
}

// UnwrapDEK opens a wrapped DEK. binding must be the one it was made with.
func (k *KEK) UnwrapDEK(wrapped, binding []byte) (*DEK, error) {
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(wrapped)), k.aead, binding)
	if err != nil {
		return nil, errorf("unwrap DEK with KEK %s: %w", redactURI(k.uri), ErrUnwrap)
	}
	sa, err := streamingaead.New(h)
	if err != nil {
		return nil, errorf("unwrap DEK: not a streaming-AEAD keyset: %w", ErrUnwrap)
	}
	return &DEK{sa: sa, wrapped: bytes.Clone(wrapped), kekURI: k.uri}, nil
}

// Wrapped returns the DEK encrypted by its KEK (safe to store).
func (d *DEK) Wrapped() []byte { return bytes.Clone(d.wrapped) }

// KEKURI names the KEK that wrapped the DEK.
func (d *DEK) KEKURI() string { return d.kekURI }

// Seal returns a writer that encrypts what is written to it into w, bound to
// the associated data ad (use Place.AD). Close must be called to write the
// final segment; an object without it does not open.
func (d *DEK) Seal(w io.Writer, ad []byte) (io.WriteCloser, error) {
	ew, err := d.sa.NewEncryptingWriter(w, ad)
	if err != nil {
		return nil, errorf("seal: %w", err)
	}
	return ew, nil
}

// Open returns a reader of the plaintext of the sealed stream r, bound to ad.
// Bytes are only returned once their 1 MB segment has authenticated; a
// stream that does not authenticate yields an error matching
// ErrAuthentication. Errors of r itself (a network failure, say) are passed
// through unchanged, so callers can tell them apart.
func (d *DEK) Open(r io.Reader, ad []byte) (io.Reader, error) {
	src := &sourceReader{r: r}
	dr, err := d.sa.NewDecryptingReader(src, ad)
	if err != nil {
		return nil, errorf("open: %w", err)
	}
	return &openReader{r: dr, src: src}, nil
}

// sourceReader remembers the error of the ciphertext source.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		s.err = err
	}
	return n, err
}

type openReader struct {
	r   io.Reader
	src *sourceReader
	err error
}

func (o *openReader) Read(p []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.r.Read(p)
	switch {
	case err == nil, err == io.EOF:
		return n, err
	case o.src.err != nil:
		o.err = errorf("open: read ciphertext: %w", o.src.err)
	default:
		o.err = errorf("open: %w", ErrAuthentication)
	}
	return n, o.err
}
