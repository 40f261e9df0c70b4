package queue_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/queue"
)

// runRevocations opens the deny-list and runs its watch until the test
// ends.
func runRevocations(t *testing.T, q *queue.Queue) *queue.Revocations {
	t.Helper()
	rv, err := queue.OpenRevocations(t.Context(), q.Conn(), queue.RevocationsConfig{CheckInterval: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Log: testLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rv.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return rv
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	for start := time.Now(); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > d {
			t.Fatalf("no %s after %s", what, d)
		}
	}
}

// The watch confirms the list while it works, reports a lost bucket as an
// error (keeping the last list), and reloads the list whole once the
// bucket is back.
func TestRevocationsWatchRestarts(t *testing.T) {
	q := open(t, queue.Config{})
	rv := runRevocations(t, q)
	waitFor(t, "first load", time.Second, func() bool { c, err := rv.Confirmed(); return !c.IsZero() && err == nil })
	if err := rv.Revoke(t.Context(), "wmid.1", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revocation", time.Second, func() bool { return rv.Revoked("wmid.1") })
	before, _ := rv.Confirmed()
	waitFor(t, "a fresh confirmation", time.Second, func() bool { c, _ := rv.Confirmed(); return c.After(before) })

	js, _ := jetstream.New(q.Conn())
	if err := js.DeleteKeyValue(t.Context(), queue.RevokedBucket); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "error for the lost bucket", time.Second, func() bool { _, err := rv.Confirmed(); return err != nil })
	lost, _ := rv.Confirmed()
	if !rv.Revoked("wmid.1") {
		t.Error("the last list was dropped while the watch is broken")
	}
	time.Sleep(200 * time.Millisecond)
	if c, _ := rv.Confirmed(); !c.Equal(lost) {
		t.Errorf("confirmed at %s while the bucket is gone", c)
	}

	// Setup (queue.Open) makes the bucket again.
	if _, err := queue.Open(t.Context(), q.Conn(), queue.Config{}); err != nil {
		t.Fatal(err)
	}
	other, err := queue.OpenRevocations(t.Context(), q.Conn(), queue.RevocationsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Revoke(t.Context(), "sub.2", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", 2*time.Second, func() bool { c, err := rv.Confirmed(); return err == nil && c.After(lost) })
	if rv.Revoked("wmid.1") || !rv.Revoked("sub.2") {
		t.Errorf("after the reload: wmid.1 %v (want false), sub.2 %v (want true)", rv.Revoked("wmid.1"), rv.Revoked("sub.2"))
	}
}

// A NATS server that goes away breaks the watch (reported at once); once
// it is back the watch recovers with the entries it kept.
func TestRevocationsSurviveServerRestart(t *testing.T) {
	dir := t.TempDir()
	n, err := devenv.StartNATS(devenv.NATSConfig{StoreDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	port := n.Server.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(n.URL, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	q, err := queue.Open(t.Context(), nc, queue.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rv := runRevocations(t, q)
	if err := rv.Revoke(t.Context(), "wmid.1", "test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "revocation", time.Second, func() bool { return rv.Revoked("wmid.1") })

	n.Close()
	waitFor(t, "error for the lost server", 2*time.Second, func() bool { _, err := rv.Confirmed(); return err != nil })
	down, _ := rv.Confirmed()
	n2, err := devenv.StartNATS(devenv.NATSConfig{StoreDir: dir, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	waitFor(t, "recovery", 10*time.Second, func() bool { c, err := rv.Confirmed(); return err == nil && c.After(down) })
	if !rv.Revoked("wmid.1") {
		t.Error("the entry is gone after the restart")
	}
}
