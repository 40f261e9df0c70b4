package cmaf

import (
	"encoding/binary"
	"fmt"
)

// freeHeader is the size of an ISO BMFF box header.
const freeHeader = 8

// PadEqual appends 'free' boxes, which every player skips, so that the two
// variants of a segment have exactly the same byte size (ETSI TS 104 002
// byte-range delivery needs it, and equal sizes do not tell a viewer which
// variant was served). It returns the padded segments.
func PadEqual(a, b []byte) ([]byte, []byte, error) {
	switch d := len(a) - len(b); {
	case d == 0:
		return a, b, nil
	case d < 0:
		b2, a2, err := PadEqual(b, a)
		return a2, b2, err
	case d >= freeHeader:
		return a, appendFree(b, d), nil
	default:
		// Too small a gap for a box of its own: pad both.
		return appendFree(a, freeHeader), appendFree(b, d+freeHeader), nil
	}
}

func appendFree(seg []byte, size int) []byte {
	out := make([]byte, len(seg), len(seg)+size)
	copy(out, seg)
	out = binary.BigEndian.AppendUint32(out, uint32(size))
	out = append(out, "free"...)
	return append(out, make([]byte, size-freeHeader)...)
}

// CheckBoxes verifies that a segment is a sequence of well-formed top-level
// boxes ending exactly at its end.
func CheckBoxes(seg []byte) error {
	for off := 0; off < len(seg); {
		if len(seg)-off < freeHeader {
			return fmt.Errorf("cmaf: %d stray bytes at offset %d", len(seg)-off, off)
		}
		size := int(binary.BigEndian.Uint32(seg[off:]))
		if size < freeHeader || off+size > len(seg) {
			return fmt.Errorf("cmaf: box %q at offset %d has size %d", seg[off+4:off+8], off, size)
		}
		off += size
	}
	return nil
}
