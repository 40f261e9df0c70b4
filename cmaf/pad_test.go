package cmaf_test

import (
	"bytes"
	"testing"

	"github.com/abseal/abseal/cmaf"
)

func box(typ string, payload int) []byte {
	b := []byte{0, 0, 0, byte(8 + payload)}
	b = append(b, typ...)
	return append(b, bytes.Repeat([]byte{7}, payload)...)
}

func TestPadEqual(t *testing.T) {
	for _, tc := range []struct{ a, b int }{{100, 100}, {100, 40}, {40, 100}, {100, 97}, {100, 93}, {100, 92}, {93, 100}} {
		a, b := box("mdat", tc.a-8), box("mdat", tc.b-8)
		pa, pb, err := cmaf.PadEqual(a, b)
		if err != nil {
			t.Fatal(err)
		}
		if len(pa) != len(pb) || len(pa) < max(tc.a, tc.b) || len(pa) > max(tc.a, tc.b)+8 {
			t.Errorf("%d/%d bytes padded to %d/%d", tc.a, tc.b, len(pa), len(pb))
		}
		if !bytes.HasPrefix(pa, a) || !bytes.HasPrefix(pb, b) {
			t.Errorf("%d/%d: padding changed the segment itself", tc.a, tc.b)
		}
		for _, s := range [][]byte{pa, pb} {
			if err := cmaf.CheckBoxes(s); err != nil {
				t.Errorf("%d/%d: %v", tc.a, tc.b, err)
			}
		}
	}
	if err := cmaf.CheckBoxes(append(box("mdat", 4), 0, 1)); err == nil {
		t.Error("stray bytes passed the box check")
	}
}
