package watermark

import "testing"

func TestSaturatingBytes(t *testing.T) {
	for x := range 256 {
		for d := range 128 {
			xs := uint64(x) * ones
			add := addSat(xs, uint64(d)*ones)
			sub := subSat(xs, uint64(d)*ones)
			wantAdd, wantSub := min(255, x+d), max(0, x-d)
			for j := range 8 {
				if int(byte(add>>(8*j))) != wantAdd || int(byte(sub>>(8*j))) != wantSub {
					t.Fatalf("x=%d d=%d byte %d: add %d sub %d, want %d %d", x, d, j, byte(add>>(8*j)), byte(sub>>(8*j)), wantAdd, wantSub)
				}
			}
		}
	}
	// Mixed lanes: one byte saturates, its neighbours must not be disturbed.
	x := uint64(0x00_ff_01_fe_80_7f_02_fd)
	d := uint64(0x05_05_05_05_05_05_05_05)
	if got, want := addSat(x, d), uint64(0x05_ff_06_ff_85_84_07_ff); got != want {
		t.Fatalf("addSat %016x, want %016x", got, want)
	}
	if got, want := subSat(x, d), uint64(0x00_fa_00_f9_7b_7a_00_f8); got != want {
		t.Fatalf("subSat %016x, want %016x", got, want)
	}
}
