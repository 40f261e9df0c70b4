package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/storage"
)

// startEdgeFunction runs the reference CDN edge function
// (cdn/abseal-edge.mjs) in Node with config (createEdge's) and returns
// its base URL.
func startEdgeFunction(t testing.TB, config map[string]any) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: run make deps (%v)", err)
	}
	root, _ := filepath.Abs("../../cdn")
	if _, err := os.Stat(filepath.Join(root, "node_modules/cbor2/package.json")); err != nil {
		t.Fatalf("cdn/node_modules is missing: run make deps: %v", err)
	}
	cf := filepath.Join(t.TempDir(), "config.json")
	data, _ := json.Marshal(config)
	if err := os.WriteFile(cf, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(root, "serve.mjs"), "--config", cf, "--listen", "127.0.0.1:0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "abseal-edge listening on "); ok {
				url <- u
			}
		}
	}()
	select {
	case u := <-url:
		return u
	case <-time.After(30 * time.Second):
		t.Fatalf("the edge function did not start: %s", stderr.String())
	}
	return ""
}

// TestCDNEdgeFunction: the CDN shape end to end. The reference edge
// function (JavaScript, in Node) sits in front of nginx, which caches the
// Go edge in origin mode. For several sessions (HMAC and ES256 tokens;
// direct mode in clear and A256GCM-encrypted; indirect mode with two
// operator ids) and every segment of every video rendition of a
// tardos-v1 asset, the function serves the same bytes as the Go edge on
// the session's token path, with the position read from the sidecar or
// from the WMPaceInfoEgress header; inits, playlists and audio too. It
// refuses what the Go edge refuses, with the same status and message.
// The cache in between fetched each object from the origin once.
func TestCDNEdgeFunction(t *testing.T) {
	dir := t.TempDir()
	secret := make([]byte, 32)
	rand.Read(secret)
	hmacHex := hex.EncodeToString(secret)
	os.WriteFile(filepath.Join(dir, "hmac"), []byte(hmacHex), 0o600)
	hk, err := delivery.LoadKey(filepath.Join(dir, "hmac"))
	if err != nil {
		t.Fatal(err)
	}
	es, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(es)
	os.WriteFile(filepath.Join(dir, "es.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
	ek, err := delivery.LoadKey(filepath.Join(dir, "es.pem"))
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&es.PublicKey)
	esPub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}))
	aesKey := make([]byte, 32)
	rand.Read(aesKey)

	v := newFixtureEdge(t, false, func(c *edge.Config) {
		c.OriginSecret = []byte(cdnSecret)
		c.Tokens = delivery.NewKeys(hk, ek.Public())
		c.PatternKeys = delivery.PatternKeys{AES: aesKey}
	})
	// The fixture's manifest, rewritten to the tardos-v1 code (the objects
	// do not depend on it), before the edge reads it.
	m := v.m
	m.Watermark.Code, m.Watermark.PatternLen = asset.CodeTardos, 0
	for _, s := range m.Video[0].Segments {
		if s.Position >= 0 {
			m.Watermark.PatternLen++
		}
	}
	data, _ := json.Marshal(m)
	if _, err := v.fx.Store.Put(t.Context(), asset.ManifestKey(m.AssetID), bytes.NewReader(data), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}

	oc := &originCounter{next: v.e.Handler(), paths: map[string]int{}}
	origin := httptest.NewServer(oc)
	defer origin.Close()
	cdn := startCDN(t, origin.URL)
	config := map[string]any{
		"origin": cdn, "tokenKeys": []string{hmacHex, esPub}, "patternKey": hex.EncodeToString(aesKey),
		"watermarkMaster": hex.EncodeToString(v.fx.Master),
	}
	fn := startEdgeFunction(t, config)
	config["paceInfo"] = "egress"
	fnEgress := startEdgeFunction(t, config)

	mint := func(wmid, op uint64, direct bool, seal func([]byte) ([]byte, error), k *delivery.Key) string {
		tok, err := edge.MintToken(edge.Session{Asset: m.AssetID, WMID: wmid, OpID: op, TTL: time.Hour},
			edge.TokenOptions{Manifest: m, Direct: direct, WatermarkMaster: v.fx.Master, SealPattern: seal}, k, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	sessions := []struct{ name, tok string }{
		{"hmac indirect", mint(11, 0, false, nil, hk)},
		{"hmac indirect opid 9", mint(12, 9, false, nil, hk)},
		{"es256 direct", mint(13, 0, true, nil, ek)},
		{"hmac direct A256GCM", mint(14, 0, true, func(p []byte) ([]byte, error) { return delivery.EncryptPattern(aesKey, p) }, hk)},
		{"es256 indirect wmid 2^63+1", mint(1<<63+1, 0, false, nil, ek)},
	}
	client := &http.Client{Timeout: 30 * time.Second}
	base := "/assets/" + m.AssetID + "/"
	first := map[string][]byte{}
	differ := 0
	segments := 0
	for _, s := range sessions {
		for _, r := range m.Video {
			for _, seg := range r.Segments {
				p := "/t/" + s.tok + base + asset.Segment(r.Name, "", seg.Number).Path()
				gr, want := get(t, client, origin.URL+p)
				jr, got := get(t, client, fn+p)
				if gr.StatusCode != 200 || jr.StatusCode != 200 || !bytes.Equal(got, want) {
					t.Fatalf("%s %s segment %d: Go edge %d (%d bytes), edge function %d (%d bytes) %q", s.name, r.Name, seg.Number,
						gr.StatusCode, len(want), jr.StatusCode, len(got), got[:min(len(got), 80)])
				}
				if jr.Header.Get("Cache-Control") != "private, no-store" || jr.Header.Get(edge.SessionCodeHeader) != "" || jr.Header.Get("WMPaceInfoEgress") != "" {
					t.Fatalf("%s: the function's answer: %v", s.name, jr.Header)
				}
				key := r.Name + "/" + asset.SegmentFile(seg.Number)
				if f, ok := first[key]; !ok {
					first[key] = got
				} else if !bytes.Equal(f, got) {
					differ++
				}
				segments++
			}
		}
	}
	if differ == 0 {
		t.Fatal("every session got the same variants: nothing was sequenced")
	}
	// The egress header gives the same positions.
	s := sessions[1]
	for _, seg := range m.Video[0].Segments {
		p := "/t/" + s.tok + base + asset.Segment(m.Video[0].Name, "", seg.Number).Path()
		_, want := get(t, client, origin.URL+p)
		if jr, got := get(t, client, fnEgress+p); jr.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Fatalf("egress mode, segment %d: %d, other bytes than the Go edge's", seg.Number, jr.StatusCode)
		}
	}
	// Neutral objects, by token path and by header.
	for _, ref := range []asset.Ref{asset.HLSMaster(), asset.HLSMedia(m.Video[0].Name), asset.DASH(), asset.Init(m.Video[0].Name),
		asset.Init(m.Audio.Name), asset.Segment(m.Audio.Name, "", 3)} {
		_, want := get(t, client, origin.URL+"/t/"+s.tok+base+ref.Path())
		if jr, got := get(t, client, fn+base+ref.Path(), "Authorization", "Bearer "+s.tok); jr.StatusCode != 200 || !bytes.Equal(got, want) ||
			jr.Header.Get("Content-Type") != ref.ContentType() && ref.Kind != asset.KindInit && ref.Kind != asset.KindSegment {
			t.Errorf("%s: %d %v", ref.Path(), jr.StatusCode, jr.Header)
		}
	}
	// Each object reached the origin once through the cache (its sidecar,
	// the variants the sessions got, the neutral objects).
	oc.mu.Lock()
	originPaths := 0
	for p, n := range oc.paths {
		if strings.HasPrefix(p, "/origin/") {
			originPaths++
		}
		if strings.HasPrefix(p, "/origin/") && n != 1 {
			t.Errorf("%s reached the origin %d times", p, n)
		}
	}
	oc.mu.Unlock()
	// Refusals: the same status and message as the Go edge.
	tampered, _ := base64.RawURLEncoding.DecodeString(sessions[0].tok)
	tampered[len(tampered)-40] ^= 1
	expired, _ := edge.MintToken(edge.Session{Asset: m.AssetID, WMID: 5, TTL: time.Minute}, edge.TokenOptions{Manifest: m}, hk, time.Now().Add(-time.Hour))
	other, _ := edge.MintToken(edge.Session{Asset: "another-asset", WMID: 5, TTL: time.Hour}, edge.TokenOptions{Manifest: m}, hk, time.Now())
	wrongLen, _ := edge.MintToken(edge.Session{Asset: m.AssetID, WMID: 5, TTL: time.Hour}, edge.TokenOptions{PatternLen: m.Watermark.PatternLen + 3}, hk, time.Now())
	unpublished, _ := edge.MintToken(edge.Session{Asset: "unpublished", WMID: 5, TTL: time.Hour}, edge.TokenOptions{PatternLen: m.Watermark.PatternLen}, hk, time.Now())
	seg := asset.Segment(m.Video[0].Name, "", 5).Path()
	for _, tc := range []struct {
		name, path string
		status     int
	}{
		{"no token", base + seg, 401},
		{"tampered", "/t/" + base64.RawURLEncoding.EncodeToString(tampered) + base + seg, 401},
		{"expired", "/t/" + expired + base + seg, 401},
		{"another asset's", "/t/" + other + base + seg, 403},
		{"wmpatlen mismatch", "/t/" + wrongLen + base + seg, 400},
		{"an unpublished asset", "/t/" + unpublished + "/assets/unpublished/" + seg, 404},
		{"a variant path", "/t/" + s.tok + base + asset.Segment(m.Video[0].Name, asset.VariantB, 5).Path(), 404},
		{"a sidecar", "/t/" + s.tok + base + asset.PaceInfo(m.Video[0].Name, 5).Path(), 404},
		{"the manifest", "/t/" + s.tok + base + "manifest.json", 404},
		{"an origin path", "/origin" + base + asset.Segment(m.Video[0].Name, asset.VariantB, 5).Path(), 404},
	} {
		gr, gb := get(t, client, origin.URL+tc.path)
		jr, jb := get(t, client, fn+tc.path)
		if gr.StatusCode != tc.status || jr.StatusCode != tc.status || string(gb) != string(jb) {
			t.Errorf("%s: Go edge %d %q, edge function %d %q; want %d", tc.name, gr.StatusCode, gb, jr.StatusCode, jb, tc.status)
		}
	}
	t.Logf("%d session segments through the edge function, equal to the Go edge's (%d differ from the first session's); %d objects fetched from the origin through the cache, once each",
		segments, differ, originPaths)
}
