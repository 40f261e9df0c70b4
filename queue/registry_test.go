package queue_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/abseal/abseal/queue"
)

// TestRegistry: wmids allocated by many minters at once are unique and
// dense per asset (and independent between assets); records are kept
// once per session and listed per asset in order; a bad asset id or mode
// is refused.
func TestRegistry(t *testing.T) {
	q := open(t, queue.Config{SessionRetention: 365 * 24 * time.Hour})
	reg, err := queue.OpenRegistry(t.Context(), q.Conn())
	if err != nil {
		t.Fatal(err)
	}
	const minters, each = 8, 25
	var mu sync.Mutex
	var got []uint64
	var wg sync.WaitGroup
	for range minters {
		wg.Go(func() {
			for range each {
				w, err := reg.Allocate(t.Context(), "film.2026")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, w)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	for i, w := range got {
		if w != uint64(i+1) {
			t.Fatalf("wmids %v…: not 1..%d, each once", got[:min(len(got), i+3)], minters*each)
		}
	}
	if w, err := reg.Allocate(t.Context(), "other"); err != nil || w != 1 {
		t.Fatalf("another asset's first wmid: %d, %v", w, err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, w := range []uint64{3, 1, 2, 3} {
		s := queue.SessionRecord{Asset: "film.2026", WMID: w, Subject: "user-" + string(rune('a'+w)), TokenID: "00ff", IssuedAt: now, Expires: now.Add(time.Hour), Mode: "indirect", Operator: "backend"}
		if w == 3 {
			s.Mode = "direct"
		}
		if err := reg.Record(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Record(t.Context(), queue.SessionRecord{Asset: "other", WMID: 1, Mode: "indirect"}); err != nil {
		t.Fatal(err)
	}
	list, err := reg.Sessions(t.Context(), "film.2026")
	if err != nil {
		t.Fatal(err)
	}
	var wmids []uint64
	for _, s := range list {
		wmids = append(wmids, s.WMID)
	}
	if !slices.Equal(wmids, []uint64{3, 1, 2}) || list[0].Subject != "user-d" || list[0].Mode != "direct" || !list[1].IssuedAt.Equal(now) || list[1].Operator != "backend" {
		t.Fatalf("sessions: %+v", list)
	}
	if list, err := reg.Sessions(t.Context(), "never-minted"); err != nil || len(list) != 0 {
		t.Fatalf("an asset without sessions: %v, %v", list, err)
	}
	for _, bad := range []string{"", "a b", "a.>", "a/b"} {
		if _, err := reg.Allocate(t.Context(), bad); err == nil {
			t.Errorf("asset id %q accepted", bad)
		}
	}
	if err := reg.Record(t.Context(), queue.SessionRecord{Asset: "film.2026", WMID: 9, Mode: "both"}); err == nil {
		t.Error("mode \"both\" accepted")
	}
}
