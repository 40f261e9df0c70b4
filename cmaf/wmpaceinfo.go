package cmaf

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// PaceInfo is the WMPaceInfo of one segment (stored beside it, see
// asset.PaceInfo: ETSI TS 104 002's /pathname/WMPaceInfo/filename,
// application/cbor): which watermark bit position
// it carries (-1: not watermarked, every session gets variant A) and its
// size, the same for every variant. Keys are the spec's integer keys
// (1 version, 2 segments, 3 fileSize, 4 startRange, 5 segmentRegex,
// 6 position, 7 firstpart, 8 lastpart); abseal writes 1, 3 and 6 and
// reads them all.
type PaceInfo struct {
	Version      int    `cbor:"1,keyasint"`
	Segments     uint64 `cbor:"2,keyasint,omitempty"`
	FileSize     int64  `cbor:"3,keyasint,omitempty"`
	StartRange   uint64 `cbor:"4,keyasint,omitempty"`
	SegmentRegex string `cbor:"5,keyasint,omitempty"`
	Position     int    `cbor:"6,keyasint"`
	FirstPart    bool   `cbor:"7,keyasint,omitempty"`
	LastPart     bool   `cbor:"8,keyasint,omitempty"`
}

// PaceInfoEgressHeader is the HTTP header that carries a WMPaceInfo in
// its base64url form, from an origin to an edge.
const PaceInfoEgressHeader = "WMPaceInfoEgress"

// PaceInfoEgress returns the WMPaceInfoEgress header value of a sidecar
// (base64url of its CBOR, no padding).
func PaceInfoEgress(sidecar []byte) string { return base64.RawURLEncoding.EncodeToString(sidecar) }

// ParsePaceInfoEgress decodes a WMPaceInfoEgress header value.
func ParsePaceInfoEgress(v string) (PaceInfo, error) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return PaceInfo{}, fmt.Errorf("cmaf: %s: not base64url", PaceInfoEgressHeader)
	}
	return ParsePaceInfo(b)
}

// MaxPosition is the largest position WMPaceInfo can carry (15 bits).
const MaxPosition = 1<<15 - 1

var paceEnc = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

var paceDec = func() cbor.DecMode {
	dm, err := cbor.DecOptions{DupMapKey: cbor.DupMapKeyEnforcedAPF, MaxNestedLevels: 4, MaxMapPairs: 16}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

// MarshalPaceInfo encodes a segment's WMPaceInfo sidecar (deterministic
// CBOR).
func MarshalPaceInfo(position int, size int64) ([]byte, error) {
	if position < -1 || position > MaxPosition {
		return nil, fmt.Errorf("cmaf: WMPaceInfo position %d outside -1..%d", position, MaxPosition)
	}
	return paceEnc.Marshal(PaceInfo{Version: 1, FileSize: size, Position: position})
}

// ParsePaceInfo decodes a WMPaceInfo sidecar.
func ParsePaceInfo(data []byte) (PaceInfo, error) {
	var p PaceInfo
	if err := paceDec.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("cmaf: WMPaceInfo: %w", err)
	}
	if p.Version != 1 {
		return p, fmt.Errorf("cmaf: WMPaceInfo: version %d is not supported", p.Version)
	}
	if p.Position < -1 || p.Position > MaxPosition {
		return p, fmt.Errorf("cmaf: WMPaceInfo: position %d outside -1..%d", p.Position, MaxPosition)
	}
	return p, nil
}
