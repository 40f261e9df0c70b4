package sealed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/forensic"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/watermark"
)

// ErrDigest is matched by errors for a stored object whose bytes differ
// from the SHA-256 the asset manifest records.
var ErrDigest = errors.New("object does not match the manifest's digest")

// ErrNoWatermark is matched by errors for an asset that carries no
// watermark where one is needed (a session code, a reference).
var ErrNoWatermark = errors.New("asset carries no watermark")

// Place is where an object of an asset is sealed: its associated data
// binds the asset, rendition, variant and file name, so an object opens
// only at the place it was sealed for.
func Place(assetID string, r asset.Ref) envelope.Place {
	return envelope.Place{Asset: assetID, Rung: r.Rung, Variant: r.Variant, Object: r.File()}
}

// ReadManifest reads and decodes an asset's manifest from the output store.
func ReadManifest(ctx context.Context, st storage.Store, assetID string) (*asset.Manifest, error) {
	data, err := storage.ReadAll(ctx, st, asset.ManifestKey(assetID))
	if err != nil {
		return nil, fmt.Errorf("sealed: asset %s: %w", assetID, err)
	}
	return asset.DecodeManifest(data)
}

// RenditionDEK unwraps a rendition's data key.
func RenditionDEK(kek *envelope.KEK, assetID string, r *asset.Rendition) (*envelope.DEK, error) {
	return kek.UnwrapDEK(r.DEK.Wrapped, envelope.RenditionAD(assetID, r.Name))
}

// PatternCode maps a session's wmid to its pattern: one bit per pattern
// position, the variant the session gets at a segment of that position.
type PatternCode interface {
	PatternLen() int
	Pattern(wmid uint64) ([]uint8, error)
}

// SessionCode is the session code of the asset's sessions for operator
// opID, from the watermark master key and the manifest (which names the
// code): the one place the edge, the token minting, assemble and the
// detector get it, so they agree bit for bit.
func SessionCode(master []byte, m *asset.Manifest, opID uint64) (PatternCode, error) {
	if m.Watermark == nil {
		return nil, fmt.Errorf("sealed: %s: %w", m.AssetID, ErrNoWatermark)
	}
	switch m.Watermark.Code {
	case asset.CodeConvolutional:
		return watermark.SessionCode(master, m.AssetID, m.Watermark.IDBits, opID)
	case asset.CodeTardos:
		key, err := watermark.DeriveAssetKey(master, m.AssetID)
		if err != nil {
			return nil, err
		}
		return forensic.NewCode(key, m.Watermark.PatternLen, opID)
	}
	return nil, fmt.Errorf("sealed: %s: session code %q is not supported", m.AssetID, m.Watermark.Code)
}

// SegmentObject returns the stored object of a segment in variant v and
// the place it is sealed at: variant A where the segment has no such
// variant, and no variant for a track without variants (audio).
func SegmentObject(r *asset.Rendition, s asset.Seg, v string) (asset.Object, asset.Ref) {
	if r.Kind == "audio" {
		return s.Variants[asset.VariantA], asset.Segment(r.Name, "", s.Number)
	}
	if o, ok := s.Variants[v]; ok {
		return o, asset.Segment(r.Name, v, s.Number)
	}
	return s.Variants[asset.VariantA], asset.Segment(r.Name, asset.VariantA, s.Number)
}

// OpenObject reads a sealed object, checks it against the manifest's
// digest and returns its plaintext. Objects are segment-sized: the digest
// needs the whole ciphertext, so it is read into memory.
func OpenObject(ctx context.Context, st storage.Store, dek *envelope.DEK, assetID string, ref asset.Ref, o asset.Object) ([]byte, error) {
	return openObject(ctx, st, dek, assetID, ref, o, true)
}

// OpenObjectFast is OpenObject without the digest check: the AEAD tag and
// the object's place still authenticate every byte (for the edge's hot
// path).
func OpenObjectFast(ctx context.Context, st storage.Store, dek *envelope.DEK, assetID string, ref asset.Ref, o asset.Object) ([]byte, error) {
	return openObject(ctx, st, dek, assetID, ref, o, false)
}

func openObject(ctx context.Context, st storage.Store, dek *envelope.DEK, assetID string, ref asset.Ref, o asset.Object, digest bool) ([]byte, error) {
	ct, err := readSized(ctx, st, o.Key, o.Size)
	if err != nil {
		return nil, fmt.Errorf("sealed: %w", err)
	}
	if digest {
		sum := sha256.Sum256(ct)
		if hex.EncodeToString(sum[:]) != o.SHA256 {
			return nil, fmt.Errorf("sealed: %s: %w", o.Key, ErrDigest)
		}
	}
	r, err := dek.Open(bytes.NewReader(ct), Place(assetID, ref).AD())
	if err != nil {
		return nil, fmt.Errorf("sealed: %s: %w", o.Key, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(ct)) // the plaintext is a little smaller
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("sealed: %s: %w", o.Key, err)
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

// WriteSession writes, as one fragmented MP4, what a session with this
// pattern (bits, one per position) receives from a rendition of a sealed
// asset: the init segment, then per segment the variant delivery.Variant
// picks (A where the position is -1 or the pattern is empty), decrypted.
func WriteSession(ctx context.Context, st storage.Store, kek *envelope.KEK, m *asset.Manifest, rendition string, bits []uint8, w io.Writer) error {
	r, err := m.FindRendition(rendition)
	if err != nil {
		return err
	}
	dek, err := RenditionDEK(kek, m.AssetID, r)
	if err != nil {
		return err
	}
	init, err := OpenObject(ctx, st, dek, m.AssetID, asset.Init(r.Name), r.Init)
	if err != nil {
		return err
	}
	if _, err := w.Write(init); err != nil {
		return err
	}
	packed := delivery.PackBits(bits)
	for _, s := range r.Segments {
		o, ref := SegmentObject(r, s, delivery.Variant(packed, len(bits), s.Position, true))
		data, err := OpenObject(ctx, st, dek, m.AssetID, ref, o)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}
