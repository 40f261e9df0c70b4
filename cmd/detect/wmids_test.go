package main

import (
	"slices"
	"testing"
)

// TestParseWMIDs: --wmids takes wmids and inclusive ranges; text, a
// backwards range or more than maxWMIDs sessions (a hostile 0-2^64 that
// would exhaust memory) are refused before anything is allocated.
func TestParseWMIDs(t *testing.T) {
	got, err := parseWMIDs("3-5, 9")
	if err != nil || !slices.Equal(got, []uint64{3, 4, 5, 9}) {
		t.Fatalf("3-5,9: %v, %v", got, err)
	}
	for _, bad := range []string{"", "x", "5-1", "1-", "-3", "0-18446744073709551615", "1-10000000,20000000"} {
		if ids, err := parseWMIDs(bad); err == nil {
			t.Errorf("%q accepted (%d wmids)", bad, len(ids))
		}
	}
	if ids, err := parseWMIDs("18446744073709551615"); err != nil || len(ids) != 1 {
		t.Errorf("the largest wmid: %v, %v", ids, err)
	}
}
