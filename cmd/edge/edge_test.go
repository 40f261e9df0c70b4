package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/watermark"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

type testEnv struct {
	t       *testing.T
	f       *fleet.Fleet
	s       settings
	assetID string
	srv     *httptest.Server
	e       *edge.Server
}

func (v *testEnv) args() []string {
	return []string{"--nats-url", v.f.NATS.URL, "--s3-endpoint", v.f.MinIO.Endpoint, "--s3-access-key", v.f.MinIO.AccessKey,
		"--kek-uri", v.f.KEKPath, "--watermark-key-file", v.f.WMKey, "--token-key-file", v.s.tokenKey,
		"--pattern-key-file", v.s.patternKey}
}

// ecKeyFile writes a new PEM EC P-256 private key.
func ecKeyFile(t *testing.T, name string) string {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	p := filepath.Join(t.TempDir(), name)
	fleet.WriteFile(t, p, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	return p
}

func (v *testEnv) token(extra ...string) string {
	v.t.Helper()
	var out, errb bytes.Buffer
	if err := run(v.t.Context(), append(append([]string{"token"}, v.args()...), extra...), &out, &errb); err != nil {
		v.t.Fatalf("edge token: %v\n%s", err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

func (v *testEnv) get(path string, hdr ...string) (*http.Response, []byte) {
	v.t.Helper()
	req, _ := http.NewRequest("GET", v.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// session fetches a whole rendition through the edge as a player would:
// the media playlist, its EXT-X-MAP and every segment, resolved relative
// to the playlist. It returns the init segment and the media segments.
func (v *testEnv) session(tok, rendition string) ([]byte, [][]byte) {
	v.t.Helper()
	base := v.srv.URL + "/t/" + tok + "/assets/" + v.assetID + "/hls/" + rendition + ".m3u8"
	resp, pl := v.get(strings.TrimPrefix(base, v.srv.URL))
	if resp.StatusCode != 200 {
		v.t.Fatalf("playlist: %d %s", resp.StatusCode, pl)
	}
	u, _ := url.Parse(base)
	fetch := func(ref string) []byte {
		r, _ := u.Parse(ref)
		resp, b := v.get(r.RequestURI())
		if resp.StatusCode != 200 {
			v.t.Fatalf("%s: %d %s", ref, resp.StatusCode, b)
		}
		return b
	}
	var init []byte
	var segs [][]byte
	sc := bufio.NewScanner(bytes.NewReader(pl))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
			init = fetch(strings.Trim(strings.TrimPrefix(line, "#EXT-X-MAP:URI="), `"`))
		case line != "" && !strings.HasPrefix(line, "#"):
			segs = append(segs, fetch(line))
		}
	}
	if init == nil || len(segs) == 0 {
		v.t.Fatalf("playlist without init or segments:\n%s", pl)
	}
	return init, segs
}

func writeStream(t *testing.T, init []byte, segs [][]byte) string {
	p := filepath.Join(t.TempDir(), "stream.mp4")
	b := append([]byte(nil), init...)
	for _, s := range segs {
		b = append(b, s...)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestForensicLoop: process a clip with the real worker; two sessions
// fetch it through the edge with their own tokens; each leak is traced to
// its session; an unmarked encode and a two-colluder mix never name an
// innocent; after revocation the leaker's token is refused.
func TestForensicLoop(t *testing.T) {
	f := fleet.New(t)
	fleet.WriteFile(t, filepath.Join(f.Profiles, "default.json"), `{"name":"default","segment_duration":"0.5s","rungs":[
		{"name":"360p","size":360,"bitrate":1000000,"crf":23,"preset":"ultrafast","h264_profile":"main"}],"audio":{"bitrate":0}}`)
	f.StartWorker("w1", "--wmid-bits", "16", "--threads", "2")
	src := testmedia.Clip(t, "forensic-56s.mp4")
	job, assetID := f.Upload("uploads/forensic.mp4", src)
	if st := f.WaitState(job, 5*time.Minute, fleet.Final); st.Status != asset.StatusDone {
		t.Fatalf("job: %+v", st)
	}
	v := &testEnv{t: t, f: f, assetID: assetID}
	v.s.tokenKey = filepath.Join(t.TempDir(), "token.key")
	fleet.WriteFile(t, v.s.tokenKey, hex.EncodeToString([]byte("edge test token key, 32 bytes..."))+"\n")
	t.Setenv("ABSEAL_S3_SECRET_KEY", f.MinIO.SecretKey)
	v.s.patternKey = ecKeyFile(t, "edge-pattern.pem")
	issuerKey := ecKeyFile(t, "issuer.pem")
	{
		args := v.args()
		fl := flag.NewFlagSet("test", flag.ContinueOnError)
		v.s.flags(fl)
		if err := fl.Parse(args); err != nil {
			t.Fatal(err)
		}
	}
	e, closeFn, err := newEdgeFromSettings(t.Context(), &v.s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	v.e = e
	v.srv = httptest.NewServer(e.Handler())
	defer v.srv.Close()

	const alice, bob = 0x1234, 0x5678
	tokA := v.token("--asset", assetID, "--wmid", "4660", "--sub", "alice")
	tokB := v.token("--asset", assetID, "--wmid", "22136", "--sub", "bob")
	tokDirect := v.token("--asset", assetID, "--wmid", "4660", "--direct")
	tokECDH := v.token("--asset", assetID, "--wmid", "4660", "--direct", "--encrypt", "--issuer-key-file", issuerKey)

	if r, body := v.get("/healthz"); r.StatusCode != 200 || !strings.Contains(string(body), "ok") {
		t.Fatalf("/healthz: %d", r.StatusCode)
	}
	// edge token --register records the session as the minting API does
	// (a wmid allocated when none is given).
	tokCarol := v.token("--asset", assetID, "--register", "--sub", "carol")
	v.token("--asset", assetID, "--register", "--wmid", "900", "--sub", "dave", "--direct")
	reg, err := queue.OpenRegistry(t.Context(), f.NC)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := reg.Sessions(t.Context(), assetID)
	if err != nil || len(recs) != 2 || recs[0].Subject != "carol" || recs[0].WMID != 1 || recs[0].Mode != "indirect" ||
		recs[0].Operator != "edge token" || len(recs[0].TokenID) != 32 || recs[1].WMID != 900 || recs[1].Mode != "direct" {
		t.Fatalf("registry after edge token --register: %+v, %v", recs, err)
	}
	if r, _ := v.get("/t/" + tokCarol + "/assets/" + assetID + "/360p/seg-00005.m4s"); r.StatusCode != 200 {
		t.Fatalf("a registered session's token: %d", r.StatusCode)
	}

	// Refusals.
	seg := "/assets/" + assetID + "/360p/seg-00005.m4s"
	if r, _ := v.get(seg); r.StatusCode != 401 {
		t.Fatalf("no token: %d", r.StatusCode)
	}
	if r, _ := v.get(seg, "Authorization", "Bearer not-a-token"); r.StatusCode != 401 {
		t.Fatalf("garbage token: %d", r.StatusCode)
	}
	if r, _ := v.get("/t/" + v.token("--asset", "other-asset", "--wmid", "1", "--pattern-length", "108") + seg); r.StatusCode != 403 {
		t.Fatalf("token for another asset: %d", r.StatusCode)
	}
	if r, _ := v.get("/t/" + v.token("--asset", assetID, "--wmid", "1", "--ttl", "-2m") + seg); r.StatusCode != 401 {
		t.Fatalf("expired token: %d", r.StatusCode)
	}
	if r, _ := v.get("/t/" + tokA + "/assets/" + assetID + "/360p/WMPaceInfo/seg-00005.m4s"); r.StatusCode != 404 {
		t.Fatalf("sidecar through the edge: %d", r.StatusCode)
	}
	// The header form, a byte range, and headers that do not tell variants
	// apart: on segments where alice's and bob's patterns differ, the
	// bodies differ and the header sets are equal both ways.
	m := f.CheckAsset(assetID)
	code := f.SessionCode(m)
	patA, _ := code.Pattern(alice)
	patB, _ := code.Pattern(bob)
	headers := func(h http.Header) map[string][]string {
		out := map[string][]string{}
		for k, vs := range h {
			if k != "Date" {
				out[k] = vs
			}
		}
		return out
	}
	compared := 0
	for _, sg := range m.Video[0].Segments {
		if sg.Position < 0 || patA[sg.Position%len(patA)] == patB[sg.Position%len(patB)] {
			continue
		}
		path := "/assets/" + assetID + "/" + asset.Segment(m.Video[0].Name, "", sg.Number).Path()
		ra, a := v.get(path, "WMT", tokA)
		rb, b := v.get(path, "Authorization", "Bearer "+tokB)
		if ra.StatusCode != 200 || rb.StatusCode != 200 || len(a) != len(b) || bytes.Equal(a, b) {
			t.Fatalf("segment %d (patterns differ): %d/%d, %d vs %d bytes, equal %v", sg.Number, ra.StatusCode, rb.StatusCode, len(a), len(b), bytes.Equal(a, b))
		}
		if ha, hb := headers(ra.Header), headers(rb.Header); !maps.EqualFunc(ha, hb, slices.Equal) {
			t.Fatalf("segment %d: headers differ between sessions:\n%v\n%v", sg.Number, ha, hb)
		}
		if compared++; compared == 4 {
			break
		}
	}
	if compared < 4 {
		t.Fatalf("only %d segments where the sessions' patterns differ", compared)
	}
	ra, full := v.get(seg, "WMT", tokA)
	if ra.StatusCode != 200 {
		t.Fatalf("segment: %d", ra.StatusCode)
	}
	if r, part := v.get(seg, "WMT", tokA, "Range", "bytes=100-199"); r.StatusCode != 206 || !bytes.Equal(part, full[100:200]) {
		t.Fatalf("range: %d, %d bytes", r.StatusCode, len(part))
	}

	if r, mpd := v.get("/t/" + tokA + "/assets/" + assetID + "/dash/manifest.mpd"); r.StatusCode != 200 ||
		r.Header.Get("Content-Type") != "application/dash+xml" || !bytes.Contains(mpd, []byte("SegmentTemplate")) {
		t.Fatalf("DASH manifest: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}

	// Two sessions, their whole streams.
	initA, segsA := v.session(tokA, "360p")
	initB, segsB := v.session(tokB, "360p")
	_, segsD := v.session(tokDirect, "360p")
	_, segsE := v.session(tokECDH, "360p")
	differ := 0
	for i := range segsA {
		if !bytes.Equal(segsA[i], segsB[i]) {
			differ++
		}
		if len(segsA[i]) != len(segsB[i]) {
			t.Fatalf("segment %d: variants of different sizes", i+1)
		}
		if !bytes.Equal(segsA[i], segsD[i]) || !bytes.Equal(segsA[i], segsE[i]) {
			t.Fatalf("segment %d: a direct-mode token (clear or ECDH-SS encrypted) of the same wmid got other bytes", i+1)
		}
	}
	if differ < len(segsA)/4 {
		t.Fatalf("only %d of %d segments differ between the sessions", differ, len(segsA))
	}
	// edge assemble writes exactly what the session received.
	assembled := filepath.Join(t.TempDir(), "alice.mp4")
	if err := run(t.Context(), append(append([]string{"assemble"}, v.args()...), "--asset", assetID, "--wmid", "4660", "-o", assembled), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(assembled); !bytes.Equal(got, mustRead(t, writeStream(t, initA, segsA))) {
		t.Fatal("edge assemble differs from what the session fetched")
	}

	// Detection from the sealed asset.
	ref, err := detect.SealedReference(t.Context(), f.Out, f.KEK, m, "")
	if err != nil {
		t.Fatal(err)
	}
	detect := func(name, file string) *watermark.Result {
		pics, _, err := detect.DecodeSuspect(t.Context(), file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := watermark.Detect(ref, pics, code.(*watermark.Code))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s wmid %v (%d segments)", name, r.Verdict, deref(r.WMID), r.SegmentsUsed)
		return r
	}
	for _, s := range []struct {
		name string
		init []byte
		segs [][]byte
		wmid uint64
	}{{"alice", initA, segsA, alice}, {"bob", initB, segsB, bob}} {
		r := detect(s.name+" at CRF 28 640x360", testmedia.Reencode(t, writeStream(t, s.init, s.segs), testmedia.CRF28At360p...))
		if r.Verdict != "identified" || r.WMID == nil || *r.WMID != s.wmid {
			t.Fatalf("%s's leak: %s %v", s.name, r.Verdict, deref(r.WMID))
		}
	}
	if r := detect("unmarked encode", testmedia.Reencode(t, src, testmedia.CRF28At360p...)); r.Verdict != "inconclusive" {
		t.Fatalf("unmarked encode: %s %v", r.Verdict, deref(r.WMID))
	}
	mixed := make([][]byte, len(segsA))
	for i := range mixed {
		if (i/4)%2 == 0 {
			mixed[i] = segsA[i]
		} else {
			mixed[i] = segsB[i]
		}
	}
	if r := detect("two colluders", testmedia.Reencode(t, writeStream(t, initA, mixed), testmedia.CRF28At360p...)); r.WMID != nil && *r.WMID != alice && *r.WMID != bob {
		t.Fatalf("two colluders named an innocent wmid %d", *r.WMID)
	}

	// A segment without its WMPaceInfo cannot be sequenced: 400 (a fresh
	// edge, so nothing is cached).
	if err := f.Out.Delete(t.Context(), m.Key(asset.PaceInfo("360p", 9))); err != nil {
		t.Fatal(err)
	}
	e2, close2, err := newEdgeFromSettings(t.Context(), &v.s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewServer(e2.Handler())
	r400, err := http.Get(srv2.URL + "/t/" + tokA + "/assets/" + assetID + "/360p/seg-00009.m4s")
	if err != nil || r400.StatusCode != 400 {
		t.Fatalf("segment without WMPaceInfo: %v %v", r400.StatusCode, err)
	}
	r400.Body.Close()
	srv2.Close()
	close2()

	// Revocation reaches the edge within a second.
	var out bytes.Buffer
	if err := run(t.Context(), append(append([]string{"revoke"}, v.args()...), "--wmid", "4660", "--reason", "leak traced"), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		ra, _ := v.get("/t/" + tokA + "/assets/" + assetID + "/360p/seg-00005.m4s")
		if ra.StatusCode == 403 {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("the revoked session still gets %d after 1s", ra.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rb, _ := v.get("/t/" + tokB + "/assets/" + assetID + "/360p/seg-00005.m4s"); rb.StatusCode != 200 {
		t.Fatalf("bob after alice's revocation: %d", rb.StatusCode)
	}
	admin := httptest.NewServer(e.AdminHandler())
	defer admin.Close()
	if r, _ := v.get("/metrics"); r.StatusCode != 404 {
		t.Errorf("/metrics on the public handler: %d", r.StatusCode)
	}
	if _, metrics := get(t, http.DefaultClient, admin.URL+"/metrics"); !strings.Contains(string(metrics), `abseal_edge_requests_total{code="403",kind="segment"}`) {
		t.Error("/metrics lacks the refused requests")
	}
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

func mustRead(t *testing.T, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
