package cmaf

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// WMPaceInfoDir is the directory, beside a rendition's segments, that holds
// one WMPaceInfo sidecar per segment under the segment's file name
// (ETSI TS 104 002: /pathname/WMPaceInfo/filename, application/cbor).
const WMPaceInfoDir = "WMPaceInfo"

// WMPaceInfoContentType is the media type of a WMPaceInfo sidecar.
const WMPaceInfoContentType = "application/cbor"

// PaceInfo is the WMPaceInfo of one segment: which watermark bit position
// it carries (-1: not watermarked, every session gets variant A) and its
// size, the same for every variant. Keys are the spec's integer keys.
type PaceInfo struct {
	Version  int   `cbor:"1,keyasint"`
	FileSize int64 `cbor:"3,keyasint,omitempty"`
	Position int   `cbor:"6,keyasint"`
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
