package cmaf_test

import (
	"encoding/hex"
	"testing"

	"github.com/abseal/abseal/cmaf"
)

func TestPaceInfo(t *testing.T) {
	for _, tc := range []struct {
		pos  int
		size int64
		hex  string
	}{
		{-1, 1000, "a30101031903e80620"}, // {1: 1, 3: 1000, 6: -1}
		{0, 24, "a30101031818060 0"},
		{300, 70000, "a3010103 1a00011170 06 19012c"},
	} {
		b, err := cmaf.MarshalPaceInfo(tc.pos, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		for _, c := range tc.hex {
			if c != ' ' {
				want += string(c)
			}
		}
		if hex.EncodeToString(b) != want {
			t.Errorf("position %d size %d: %x, want %s", tc.pos, tc.size, b, want)
		}
		p, err := cmaf.ParsePaceInfo(b)
		if err != nil || p.Position != tc.pos || p.FileSize != tc.size || p.Version != 1 {
			t.Errorf("parse: %+v %v", p, err)
		}
	}
	b, _ := cmaf.MarshalPaceInfo(41, 5000)
	if p, err := cmaf.ParsePaceInfoEgress(cmaf.PaceInfoEgress(b)); err != nil || p.Position != 41 || p.FileSize != 5000 {
		t.Errorf("egress header form: %+v %v", p, err)
	}
	if _, err := cmaf.ParsePaceInfoEgress("%%%"); err == nil {
		t.Error("a bad egress header parsed")
	}
	// All eight keys read: {1:1, 2:3, 3:10, 4:20, 5:"x", 6:7, 7:true, 8:false}.
	full, _ := hex.DecodeString("a801010203030a0414056178060707f508f4")
	if p, err := cmaf.ParsePaceInfo(full); err != nil || p.Segments != 3 || p.StartRange != 20 || p.SegmentRegex != "x" || !p.FirstPart || p.Position != 7 {
		t.Errorf("all keys: %+v %v", p, err)
	}
	if _, err := cmaf.MarshalPaceInfo(cmaf.MaxPosition+1, 1); err == nil {
		t.Error("position over 15 bits accepted")
	}
	for _, bad := range []string{"", "ff", "a10102", "a2010106190100" /* position 256, version 1: ok */} {
		b, _ := hex.DecodeString(bad)
		_, err := cmaf.ParsePaceInfo(b)
		if (err == nil) != (bad == "a2010106190100") {
			t.Errorf("ParsePaceInfo(%s): %v", bad, err)
		}
	}
}
