package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/watermark"
)

// ErrDigest is matched by errors for a stored object whose bytes differ
// from the SHA-256 the asset manifest records.
var ErrDigest = errors.New("object does not match the manifest's digest")

// ReadManifest reads and decodes an asset's manifest from the output store.
func ReadManifest(ctx context.Context, st storage.Store, assetID string) (*AssetManifest, error) {
	data, err := storage.ReadAll(ctx, st, ManifestKey(assetID))
	if err != nil {
		return nil, fmt.Errorf("pipeline: asset %s: %w", assetID, err)
	}
	return DecodeManifest(data)
}

// FindRendition returns the named rendition of the manifest, or the first
// (largest) video rendition when name is empty.
func (m *AssetManifest) FindRendition(name string) (*Rendition, error) {
	for i := range m.Video {
		if name == "" || m.Video[i].Name == name {
			return &m.Video[i], nil
		}
	}
	if m.Audio != nil && m.Audio.Name == name {
		return m.Audio, nil
	}
	return nil, fmt.Errorf("pipeline: asset %s has no rendition %q", m.AssetID, name)
}

// RenditionDEK unwraps a rendition's data key.
func RenditionDEK(kek *envelope.KEK, assetID string, r *Rendition) (*envelope.DEK, error) {
	return kek.UnwrapDEK(r.DEK.Wrapped, envelope.RenditionAD(assetID, r.Name))
}

// OpenObject reads a sealed object, checks it against the manifest's
// digest and returns its plaintext. Objects are segment-sized.
func OpenObject(ctx context.Context, st storage.Store, dek *envelope.DEK, assetID, rung, variant string, o Object) ([]byte, error) {
	return openObject(ctx, st, dek, assetID, rung, variant, o, true)
}

// OpenObjectFast is OpenObject without the digest check: the AEAD tag and
// the object's place still authenticate every byte (for the edge's hot
// path).
func OpenObjectFast(ctx context.Context, st storage.Store, dek *envelope.DEK, assetID, rung, variant string, o Object) ([]byte, error) {
	return openObject(ctx, st, dek, assetID, rung, variant, o, false)
}

func openObject(ctx context.Context, st storage.Store, dek *envelope.DEK, assetID, rung, variant string, o Object, digest bool) ([]byte, error) {
	ct, err := readSized(ctx, st, o.Key, o.Size)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	if digest {
		sum := sha256.Sum256(ct)
		if hex.EncodeToString(sum[:]) != o.SHA256 {
			return nil, fmt.Errorf("pipeline: %s: %w", o.Key, ErrDigest)
		}
	}
	place := envelope.Place{Asset: assetID, Rung: rung, Variant: variant, Object: path.Base(o.Key)}
	r, err := dek.Open(bytes.NewReader(ct), place.AD())
	if err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", o.Key, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(ct)) // the plaintext is a little smaller
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("pipeline: %s: %w", o.Key, err)
	}
	return buf.Bytes(), nil
}

// readSized reads an object whose size is known, in one allocation.
func readSized(ctx context.Context, st storage.Store, key string, size int64) ([]byte, error) {
	rc, err := st.Open(ctx, key, nil)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size <= 0 || size > 1<<30 {
		return io.ReadAll(rc)
	}
	buf := make([]byte, size+1)
	n, err := io.ReadFull(rc, buf)
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return buf[:n], nil // shorter than the manifest says: the AEAD will tell
	case err != nil:
		return nil, err
	}
	rest, err := io.ReadAll(rc) // longer than the manifest says
	return append(buf, rest...), err
}

// segmentObject returns a segment's object of variant v (A where the
// segment has no such variant), and the variant name for its place.
func segmentObject(r *Rendition, s Seg, v string) (Object, string) {
	if r.Kind == "audio" {
		return s.Variants["a"], ""
	}
	if o, ok := s.Variants[v]; ok {
		return o, v
	}
	return s.Variants["a"], "a"
}

// WriteSession writes, as one fragmented MP4, what a session with this
// pattern receives from a rendition of a sealed asset: the init segment,
// then per segment the variant pattern[position mod len] selects (A where
// the position is -1 or pattern is nil), decrypted.
func WriteSession(ctx context.Context, st storage.Store, kek *envelope.KEK, m *AssetManifest, rendition string, pattern []uint8, w io.Writer) error {
	r, err := m.FindRendition(rendition)
	if err != nil {
		return err
	}
	dek, err := RenditionDEK(kek, m.AssetID, r)
	if err != nil {
		return err
	}
	init, err := OpenObject(ctx, st, dek, m.AssetID, r.Name, "", r.Init)
	if err != nil {
		return err
	}
	if _, err := w.Write(init); err != nil {
		return err
	}
	for _, s := range r.Segments {
		v := "a"
		if s.Position >= 0 && len(pattern) > 0 && pattern[s.Position%len(pattern)] == 1 {
			v = "b"
		}
		o, pv := segmentObject(r, s, v)
		data, err := OpenObject(ctx, st, dek, m.AssetID, r.Name, pv, o)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// SealedReference decodes variants A and B of a rendition of a sealed
// asset (opened through the KEK, checked against the manifest) into a
// detector reference with the manifest's positions and segment duration.
func SealedReference(ctx context.Context, st storage.Store, kek *envelope.KEK, m *AssetManifest, rendition string) (*watermark.Reference, error) {
	r, err := m.FindRendition(rendition)
	if err != nil {
		return nil, err
	}
	ref := &watermark.Reference{W: AnalysisW, H: AnalysisH, SegmentDuration: time.Duration(m.SegDur * float64(time.Second))}
	for _, s := range r.Segments {
		ref.Positions = append(ref.Positions, s.Position)
	}
	dir, err := os.MkdirTemp("", "abseal-ref-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for _, v := range []string{"a", "b"} {
		f, err := os.OpenFile(path.Join(dir, v+".mp4"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, err
		}
		var pattern []uint8
		if v == "b" {
			pattern = []uint8{1}
		}
		err = WriteSession(ctx, st, kek, m, r.Name, pattern, f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		pics, _, err := DecodeSuspect(ctx, f.Name())
		if err != nil {
			return nil, fmt.Errorf("pipeline: reference %s/%s: %w", r.Name, v, err)
		}
		if v == "a" {
			ref.A = pics
		} else {
			ref.B = pics
		}
	}
	if len(ref.A) != len(ref.B) || len(ref.A) == 0 {
		return nil, fmt.Errorf("pipeline: variants of %s have %d and %d frames", r.Name, len(ref.A), len(ref.B))
	}
	return ref, nil
}
