package edge_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/abseal/abseal/edge"
)

// fakeRevocations is a deny-list whose state the test sets.
type fakeRevocations struct {
	mu        sync.Mutex
	confirmed time.Time
	err       error
	revoked   map[string]bool
	ran       chan struct{} // closed when Run returns
}

func (f *fakeRevocations) set(confirmed time.Time, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirmed, f.err = confirmed, err
}

func (f *fakeRevocations) Revoked(keys ...string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if f.revoked[k] {
			return true
		}
	}
	return false
}

func (f *fakeRevocations) Run(ctx context.Context) {
	<-ctx.Done()
	close(f.ran)
}

func (f *fakeRevocations) Confirmed() (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.confirmed, f.err
}

// Media and readiness follow the deny-list's state: a broken watch makes
// the edge unready at once and refuses media (503) once the list is older
// than RevocationMaxStale; Close ends Run before it returns.
func TestRevocationStates(t *testing.T) {
	rv := &fakeRevocations{revoked: map[string]bool{edge.WMIDRevocationKey(9): true}, ran: make(chan struct{})}
	rv.set(time.Now(), nil)
	v := newFixtureEdgeWith(t, func(c *edge.Config) { c.Revocations, c.RevocationMaxStale = rv, time.Minute })
	admin := httptest.NewServer(v.e.AdminHandler())
	defer admin.Close()
	seg, _ := v.segmentPath()
	media := v.srv.URL + "/t/" + v.token(1) + seg
	broken := errors.New("watch broken")
	for _, tc := range []struct {
		name          string
		confirmed     time.Time
		err           error
		media, readyz int
	}{
		{"current", time.Now(), nil, 200, 200},
		{"broken, recent", time.Now().Add(-10 * time.Second), broken, 200, 503},
		{"broken, stale", time.Now().Add(-2 * time.Minute), broken, 503, 503},
		{"stale without an error", time.Now().Add(-2 * time.Minute), nil, 503, 503},
		{"never loaded", time.Time{}, broken, 503, 503},
	} {
		rv.set(tc.confirmed, tc.err)
		if r, _ := getHdr(t, media); r.StatusCode != tc.media {
			t.Errorf("%s: media %d, want %d", tc.name, r.StatusCode, tc.media)
		}
		if r, _ := getHdr(t, admin.URL+"/readyz"); r.StatusCode != tc.readyz {
			t.Errorf("%s: /readyz %d, want %d", tc.name, r.StatusCode, tc.readyz)
		}
	}
	rv.set(time.Now(), nil)
	if r, _ := getHdr(t, v.srv.URL+"/t/"+v.token(9)+seg); r.StatusCode != 403 {
		t.Errorf("revoked wmid: %d, want 403", r.StatusCode)
	}
	v.e.Close()
	select {
	case <-rv.ran:
	default:
		t.Fatal("Close returned before the deny-list's Run")
	}
}
