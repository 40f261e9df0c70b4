package cmaf

import (
	"testing"
)

// FuzzParsePaceInfo: a WMPaceInfo sidecar either fails or parses into
// version 1 with a position in range; what parses encodes (all keys, and
// abseal's own form) and parses back the same; the egress header form of
// the same bytes parses the same. The committed seed corpus is in
// testdata/fuzz/FuzzParsePaceInfo/.
func FuzzParsePaceInfo(f *testing.F) {
	f.Add([]byte{0xa3, 0x01, 0x01, 0x03, 0x19, 0x03, 0xe8, 0x06, 0x20})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePaceInfo(data)
		hp, herr := ParsePaceInfoEgress(PaceInfoEgress(data))
		if (err == nil) != (herr == nil) || (err == nil && hp != p) {
			t.Fatalf("sidecar: %+v, %v; egress header form: %+v, %v", p, err, hp, herr)
		}
		if err != nil {
			return
		}
		if p.Version != 1 || p.Position < -1 || p.Position > MaxPosition {
			t.Fatalf("accepted %+v", p)
		}
		full, err := paceEnc.Marshal(p)
		if err != nil {
			t.Fatalf("encode %+v: %v", p, err)
		}
		if back, err := ParsePaceInfo(full); err != nil || back != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, back, err)
		}
		own, err := MarshalPaceInfo(p.Position, p.FileSize)
		if err != nil {
			t.Fatalf("MarshalPaceInfo(%d, %d): %v", p.Position, p.FileSize, err)
		}
		if back, err := ParsePaceInfo(own); err != nil || back.Position != p.Position || back.FileSize != p.FileSize {
			t.Fatalf("MarshalPaceInfo(%d, %d) parses as %+v, %v", p.Position, p.FileSize, back, err)
		}
	})
}
