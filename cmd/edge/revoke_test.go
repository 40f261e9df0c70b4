package main

import (
	"bytes"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/queue"
)

// revoke runs edge revoke against the fixture edge's deny-list.
func (v *fixtureEdge) revoke(args ...string) string {
	v.t.Helper()
	var out, errb bytes.Buffer
	if err := run(v.t.Context(), append([]string{"revoke", "--nats-url", v.natsURL}, args...), &out, &errb); err != nil {
		v.t.Fatalf("edge revoke %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// Direct-mode tokens are revoked by the wmid they were minted for, by
// subject (any string: "@" and ":" included) and by token id; reinstating
// lets the token in again; other sessions are untouched throughout.
func TestRevokeDirectTokens(t *testing.T) {
	v := newFixtureEdge(t, true, nil)
	srv := serve(t, v.e.Handler())
	seg := v.segment()
	id := []byte("0123456789abcdef")
	byWMID := v.token(edge.Session{WMID: 7, Subject: "carol"}, true)
	bySub := v.token(edge.Session{WMID: 8, Subject: "dave@example.com:living-room"}, true)
	byID := v.token(edge.Session{WMID: 9, Subject: "erin", TokenID: id}, true)
	other := v.token(edge.Session{WMID: 10, Subject: "dave@example.com:kitchen"}, true)
	url := func(tok string) string { return srv.URL + "/t/" + tok + seg }
	for _, tok := range []string{byWMID, bySub, byID, other} {
		if r, b := get(t, http.DefaultClient, url(tok)); r.StatusCode != 200 {
			t.Fatalf("before revocation: %d %s", r.StatusCode, b)
		}
	}

	v.revoke("--wmid", "7", "--reason", "leak traced")
	waitStatus(t, url(byWMID), 403, time.Second)
	out := v.revoke("--sub", "dave@example.com:living-room")
	if strings.Contains(out, "dave") {
		t.Errorf("edge revoke printed the subject: %q", out)
	}
	waitStatus(t, url(bySub), 403, time.Second)
	v.revoke("--token-id", hex.EncodeToString(id))
	waitStatus(t, url(byID), 403, time.Second)
	if r, b := get(t, http.DefaultClient, url(other)); r.StatusCode != 200 {
		t.Fatalf("an unrevoked session of a similar subject: %d %s", r.StatusCode, b)
	}

	v.revoke("--token-id", hex.EncodeToString(id), "--undo")
	waitStatus(t, url(byID), 200, time.Second)

	// The deny-list names nothing personal: every key is kind.<hash>.
	js, _ := jetstream.New(v.nc)
	kv, err := js.KeyValue(t.Context(), queue.RevokedBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if strings.Contains(k, "dave") || strings.Contains(k, "7") && !strings.HasPrefix(k, "wmid.") {
			t.Errorf("deny-list key %q", k)
		}
	}
	if want := []string{edge.WMIDRevocationKey(7), edge.SubjectRevocationKey("dave@example.com:living-room")}; len(keys) != 2 || !containsAll(keys, want) {
		t.Errorf("deny-list keys %v, want %v", keys, want)
	}
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

// edge revoke refuses an ambiguous or malformed request before it
// connects anywhere.
func TestRevokeUsage(t *testing.T) {
	for _, args := range [][]string{
		{}, {"--wmid", "1", "--sub", "x"}, {"--wmid", "x"}, {"--token-id", "not hex"},
	} {
		err := run(t.Context(), append([]string{"revoke", "--nats-url", "nats://127.0.0.1:1"}, args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("edge revoke %v: %v, want a usage error", args, err)
		}
	}
}

// A deny-list the edge cannot keep current turns /readyz red at once
// and, after RevocationMaxStale, refuses media with 503 (fail closed);
// once the list is back the edge is ready and serves again.
func TestRevocationWatchBroken(t *testing.T) {
	v := newFixtureEdge(t, true, func(c *edge.Config) { c.RevocationMaxStale = time.Second })
	srv, admin := serve(t, v.e.Handler()), serve(t, v.e.AdminHandler())
	media := srv.URL + "/t/" + v.token(edge.Session{WMID: 3}, false) + v.segment()
	waitStatus(t, admin.URL+"/readyz", 200, time.Second)
	if r, b := get(t, http.DefaultClient, media); r.StatusCode != 200 {
		t.Fatalf("media: %d %s", r.StatusCode, b)
	}

	js, _ := jetstream.New(v.nc)
	if err := js.DeleteKeyValue(t.Context(), queue.RevokedBucket); err != nil {
		t.Fatal(err)
	}
	broke := time.Now()
	waitStatus(t, admin.URL+"/readyz", 503, time.Second)
	r := waitStatus(t, media, 503, 3*time.Second)
	if time.Since(broke) < 900*time.Millisecond {
		t.Errorf("media refused %s after the break, before RevocationMaxStale", time.Since(broke))
	}
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if _, b := get(t, http.DefaultClient, media); !strings.Contains(string(b), "revocation list") {
		t.Errorf("503 body %q does not say why", b)
	}
	if !strings.Contains(v.logs.String(), "revocation watch broken") {
		t.Errorf("the broken watch is not logged:\n%s", v.logs)
	}

	// An operator restores the bucket.
	if _, err := queue.Open(t.Context(), v.nc, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, admin.URL+"/readyz", 200, 3*time.Second)
	waitStatus(t, media, 200, time.Second)
	if !strings.Contains(v.logs.String(), "revocation watch restored") {
		t.Errorf("the restored watch is not logged")
	}
}

// edge serve refuses a --revocation-max-stale shorter than three checks
// of the deny-list (it would flap between serving and refusing).
func TestServeMaxStaleTooShort(t *testing.T) {
	err := run(t.Context(), []string{"serve", "--revocation-max-stale", "1s"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "revocation-max-stale") {
		t.Fatalf("serve --revocation-max-stale 1s: %v", err)
	}
}

// Entries written by earlier releases ("wmid-<n>", "sub-<subject>") keep
// refusing, and edge revoke --undo removes them as well.
func TestRevokeLegacyEntries(t *testing.T) {
	v := newFixtureEdge(t, true, nil)
	srv := serve(t, v.e.Handler())
	rv, err := queue.OpenRevocations(t.Context(), v.nc, queue.RevocationsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rv.Revoke(t.Context(), "wmid-11", "old release"); err != nil {
		t.Fatal(err)
	}
	if err := rv.Revoke(t.Context(), "sub-frank", "old release"); err != nil {
		t.Fatal(err)
	}
	byWMID := srv.URL + "/t/" + v.token(edge.Session{WMID: 11}, false) + v.segment()
	bySub := srv.URL + "/t/" + v.token(edge.Session{WMID: 12, Subject: "frank"}, true) + v.segment()
	waitStatus(t, byWMID, 403, time.Second)
	waitStatus(t, bySub, 403, time.Second)
	v.revoke("--wmid", "11", "--undo")
	v.revoke("--sub", "frank", "--undo")
	waitStatus(t, byWMID, 200, time.Second)
	waitStatus(t, bySub, 200, time.Second)
	// Reinstating what was never revoked, or a subject no KV key can hold,
	// is not an error.
	v.revoke("--sub", "nobody@example.com", "--undo")
}
