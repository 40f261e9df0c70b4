// Package envelope seals abseal's objects at rest with Tink envelope
// encryption.
//
// A key-encryption key (KEK) comes from a URI: a local Tink keyset file for
// development (see CreateLocalKEK) or a cloud KMS key (hcvault://, aws-kms://,
// gcp-kms://). Every rendition gets a fresh data-encryption key (DEK), a Tink
// streaming-AEAD keyset (AES256-GCM-HKDF, 64 KiB segments) that is stored
// only wrapped by the KEK, bound to its rendition by associated data.
//
// Objects are sealed and opened as streams (Seal returns an io.WriteCloser,
// Open an io.Reader), so memory stays bounded by the segment size whatever
// the object's size. The associated data of every object is its
// Place (asset, rung, variant, object name): a swapped, moved or replayed
// object fails to open, as does a flipped, truncated or extended one.
//
// Nothing in this package logs or prints key material.
package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrAuthentication is matched by errors for ciphertext that does not
// authenticate: tampered, truncated, extended, moved to another place, or
// sealed with another key.
var ErrAuthentication = errors.New("ciphertext does not authenticate (tampered, truncated, moved, or sealed with another key)")

// ErrUnwrap is matched by errors for a wrapped DEK that the KEK cannot open:
// the wrong KEK, a DEK of another rendition, or a damaged wrapped key.
var ErrUnwrap = errors.New("cannot unwrap the data key (wrong KEK, another rendition's key, or damaged)")

// Place names where an object belongs. Its encoding is the object's
// associated data, so an object only opens at the place it was sealed for.
type Place struct {
	Asset   string // asset id
	Rung    string // rendition name, e.g. "720p" or "audio"
	Variant string // "a", "b", or "" for objects without variants
	Object  string // object name within the rendition, e.g. "seg-00001.m4s", "init.mp4"
}

// String is a readable form for errors and logs (it holds no secrets).
func (p Place) String() string {
	v := p.Variant
	if v == "" {
		v = "-"
	}
	return p.Asset + "/" + p.Rung + "/" + v + "/" + p.Object
}

// AD returns the associated data of an object at this place: a domain tag
// and each field length-prefixed, so no two places share an encoding.
func (p Place) AD() []byte {
	return encodeAD("abseal.object.v1", p.Asset, p.Rung, p.Variant, p.Object)
}

// RenditionAD is the associated data binding a wrapped DEK to its rendition.
func RenditionAD(asset, rung string) []byte {
	return encodeAD("abseal.dek.v1", asset, rung)
}

func encodeAD(tag string, fields ...string) []byte {
	n := len(tag) + binary.MaxVarintLen64
	for _, f := range fields {
		n += len(f) + binary.MaxVarintLen64
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(tag)))
	b = append(b, tag...)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func errorf(format string, args ...any) error {
	return fmt.Errorf("envelope: "+format, args...)
}
