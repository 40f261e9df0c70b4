package edge_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
)

// TestMintAPI: the operator's backend mints sessions over HTTP on the
// admin listener: an API key is required, bad requests are refused with
// the reason, each session gets the asset's next wmid and is recorded in
// the registry (a real JetStream) under the key's name before the token
// is returned, the token plays the session's codeword, and a key that
// asks too often is slowed down.
func TestMintAPI(t *testing.T) {
	n := testenv.NATS(t)
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if _, err := queue.Open(t.Context(), nc, queue.Config{}); err != nil {
		t.Fatal(err)
	}
	reg, err := queue.OpenRegistry(t.Context(), nc)
	if err != nil {
		t.Fatal(err)
	}
	const apiKey = "backend API key: a long random string"
	v := newFixtureEdge(t)
	// 12 requests with the key pass (the bad ones count too), then it
	// has to wait 100 s for the next.
	mk, err := edge.New(t.Context(), edge.Config{Store: v.fx.Store, KEK: v.fx.KEK, Tokens: delivery.NewKeys(v.key), WatermarkMaster: v.fx.Master,
		Minting: &edge.Minting{Key: v.key, Registry: reg, APIKeys: map[string][32]byte{"backend": sha256.Sum256([]byte(apiKey))},
			Rate: 0.01, Burst: 12, WatermarkMaster: v.fx.Master}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mk.Close)
	admin := httptest.NewServer(mk.AdminHandler())
	t.Cleanup(admin.Close)
	post := func(key, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, admin.URL+"/v1/sessions", strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	good := `{"asset":"` + v.m.AssetID + `","subject":"user-42","ttl":"2h"}`
	for _, tc := range []struct {
		key, body string
		code      int
		reason    string
	}{
		{"", good, 401, "API key"},
		{"a wrong key", good, 401, "API key"},
		{apiKey, `{"asset":`, 400, "invalid JSON"},
		{apiKey, `{"asset":"` + v.m.AssetID + `","wmid":7}`, 400, "unknown field"},
		{apiKey, `{"asset":"../etc"}`, 400, "asset"},
		{apiKey, `{"asset":"` + v.m.AssetID + `","ttl":"9000h"}`, 400, "ttl"},
		{apiKey, `{"asset":"` + v.m.AssetID + `","mode":"both"}`, 400, "mode"},
		{apiKey, `{"asset":"` + v.m.AssetID + `","subject":"a\u0000b"}`, 400, "subject"},
		{apiKey, `{"asset":"` + v.m.AssetID + `","subject":"` + strings.Repeat("x", 300) + `"}`, 400, "subject"},
		{apiKey, `{"asset":"no-such-asset"}`, 404, "not published"},
		{apiKey, `{"asset":"` + v.m.AssetID + `"} {"asset":"x"}`, 400, "more than one"},
	} {
		code, out := post(tc.key, tc.body)
		if msg, _ := out["error"].(string); code != tc.code || !strings.Contains(msg, tc.reason) {
			t.Errorf("%.60s: %d %q, want %d with %q", tc.body, code, msg, tc.code, tc.reason)
		}
	}
	// Oversized bodies are cut off.
	if code, _ := post(apiKey, `{"subject":"`+strings.Repeat("x", 8000)+`"}`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an 8 KB body: %d", code)
	}

	// Two sessions: the asset's next wmids, recorded, tokens that play.
	var minted []edge.MintResponse
	for _, body := range []string{good, `{"asset":"` + v.m.AssetID + `","subject":"user-43","mode":"direct"}`} {
		req, _ := http.NewRequest(http.MethodPost, admin.URL+"/v1/sessions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var mr edge.MintResponse
		err = json.NewDecoder(resp.Body).Decode(&mr)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusCreated || mr.Token == "" {
			t.Fatalf("mint: %d %+v %v", resp.StatusCode, mr, err)
		}
		minted = append(minted, mr)
	}
	if minted[0].WMID != 1 || minted[1].WMID != 2 || time.Until(minted[0].ExpiresAt) < 119*time.Minute {
		t.Fatalf("minted %+v", minted)
	}
	recs, err := reg.Sessions(t.Context(), v.m.AssetID)
	if err != nil || len(recs) != 2 {
		t.Fatalf("registry: %+v, %v", recs, err)
	}
	if r := recs[0]; r.WMID != 1 || r.Subject != "user-42" || r.Operator != "backend" || r.Mode != "indirect" || r.TokenID != minted[0].TokenID {
		t.Fatalf("record %+v", r)
	}
	if recs[1].Mode != "direct" {
		t.Fatalf("record %+v", recs[1])
	}
	code, err := sealed.SessionCode(v.fx.Master, v.m, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, mr := range minted {
		got := v.stream(mr.Token, v.m.Video[0].Name)
		pat, _ := code.Pattern(mr.WMID)
		var want bytes.Buffer
		if err := sealed.WriteSession(t.Context(), v.fx.Store, v.fx.KEK, v.m, v.m.Video[0].Name, pat, &want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("wmid %d: the stream played is not the session's", mr.WMID)
		}
	}
	// The key has used its burst of 12: the next request waits.
	if code, out := post(apiKey, good); code != http.StatusTooManyRequests {
		t.Errorf("past the rate: %d %v", code, out)
	}
	if resp, err := http.Get(admin.URL + "/v1/sessions"); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/sessions: %v %v", resp.StatusCode, err)
	}
}
