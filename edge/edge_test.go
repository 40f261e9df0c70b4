package edge_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/internal/fixture"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
)

type fixtureEdge struct {
	t   testing.TB
	fx  *fixture.SealedV1
	m   *asset.Manifest
	key *delivery.Key
	srv *httptest.Server
	e   *edge.Server
}

func newFixtureEdge(t *testing.T) *fixtureEdge { return newFixtureEdgeWith(t, nil) }

// newFixtureEdgeWith is newFixtureEdge with cfg, if not nil, adjusting
// the edge's configuration.
func newFixtureEdgeWith(t testing.TB, cfg func(*edge.Config)) *fixtureEdge {
	fx := fixture.LoadSealedV1(t)
	m, err := sealed.ReadManifest(t.Context(), fx.Store, fx.AssetID)
	if err != nil {
		t.Fatal(err)
	}
	key, err := delivery.NewHMACKey([]byte("k1"), []byte("edge package test token key, 32b"))
	if err != nil {
		t.Fatal(err)
	}
	c := edge.Config{Store: fx.Store, KEK: fx.KEK, Tokens: delivery.NewKeys(key), WatermarkMaster: fx.Master}
	if cfg != nil {
		cfg(&c)
	}
	s, err := edge.New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return &fixtureEdge{t: t, fx: fx, m: m, key: key, srv: srv, e: s}
}

func (v *fixtureEdge) token(wmid uint64) string {
	tok, err := edge.MintToken(edge.Session{Asset: v.m.AssetID, WMID: wmid, TTL: time.Hour}, edge.TokenOptions{Manifest: v.m}, v.key, time.Now())
	if err != nil {
		v.t.Fatal(err)
	}
	return tok
}

func (v *fixtureEdge) get(path string) (*http.Response, []byte) {
	v.t.Helper()
	resp, err := http.Get(v.srv.URL + path)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return resp, b
}

// stream fetches a rendition as a player does: the media playlist, its
// init segment and every segment, resolved relative to the playlist.
func (v *fixtureEdge) stream(tok, rendition string) []byte {
	v.t.Helper()
	base := "/t/" + tok + "/assets/" + v.m.AssetID + "/" + asset.HLSMedia(rendition).Path()
	resp, pl := v.get(base)
	if resp.StatusCode != 200 {
		v.t.Fatalf("playlist: %d %s", resp.StatusCode, pl)
	}
	u, _ := url.Parse(base)
	var out []byte
	sc := bufio.NewScanner(bytes.NewReader(pl))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		ref := ""
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
			ref = strings.Trim(strings.TrimPrefix(line, "#EXT-X-MAP:URI="), `"`)
		case line != "" && !strings.HasPrefix(line, "#"):
			ref = line
		default:
			continue
		}
		r, _ := u.Parse(ref)
		resp, b := v.get(r.RequestURI())
		if resp.StatusCode != 200 {
			v.t.Fatalf("%s: %d %s", ref, resp.StatusCode, b)
		}
		out = append(out, b...)
	}
	return out
}

// The edge serves an asset sealed before the contracts moved: a session's
// stream through HTTP is byte for byte what the old code assembled.
func TestSealedV1Fixture(t *testing.T) {
	v := newFixtureEdge(t)
	got := v.stream(v.token(v.fx.WMID), v.m.Video[0].Name)
	sum := sha256.Sum256(got)
	if hex.EncodeToString(sum[:]) != v.fx.SessionSHA256 || len(got) != v.fx.SessionBytes {
		t.Fatalf("served stream: %d bytes %x; the old code assembled %d bytes %s", len(got), sum, v.fx.SessionBytes, v.fx.SessionSHA256)
	}
	if r, b := v.get("/t/" + v.token(v.fx.WMID) + "/assets/" + v.m.AssetID + "/" + asset.Init(asset.AudioRung).Path()); r.StatusCode != 200 || len(b) == 0 {
		t.Fatalf("audio init: %d", r.StatusCode)
	}
}

// Two sessions get different variants where their patterns differ, and
// nothing in the response headers tells the variants apart: the same
// header names and values both ways, over several segments.
func TestVariantHeadersMatch(t *testing.T) {
	v := newFixtureEdge(t)
	const wmA, wmB = 0x12, 0xED
	code, err := sealed.SessionCode(v.fx.Master, v.m, 0)
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := code.Pattern(wmA)
	pb, _ := code.Pattern(wmB)
	r := v.m.Video[0]
	tokA, tokB := v.token(wmA), v.token(wmB)
	compared := 0
	for _, s := range r.Segments {
		if s.Position < 0 || pa[s.Position%len(pa)] == pb[s.Position%len(pb)] {
			continue
		}
		path := "/assets/" + v.m.AssetID + "/" + asset.Segment(r.Name, "", s.Number).Path()
		ra, a := v.get("/t/" + tokA + path)
		rb, b := v.get("/t/" + tokB + path)
		if ra.StatusCode != 200 || rb.StatusCode != 200 {
			t.Fatalf("segment %d: %d / %d", s.Number, ra.StatusCode, rb.StatusCode)
		}
		if bytes.Equal(a, b) || len(a) != len(b) {
			t.Fatalf("segment %d: the patterns differ there, yet the bodies are equal=%v (%d vs %d bytes)", s.Number, bytes.Equal(a, b), len(a), len(b))
		}
		names := func(h http.Header) []string {
			var ks []string
			for k := range h {
				if k != "Date" {
					ks = append(ks, k)
				}
			}
			slices.Sort(ks)
			return ks
		}
		if na, nb := names(ra.Header), names(rb.Header); !slices.Equal(na, nb) {
			t.Fatalf("segment %d: header names differ: %v vs %v", s.Number, na, nb)
		}
		for _, k := range names(ra.Header) {
			if !slices.Equal(ra.Header.Values(k), rb.Header.Values(k)) {
				t.Fatalf("segment %d: header %s differs: %q vs %q", s.Number, k, ra.Header.Values(k), rb.Header.Values(k))
			}
		}
		if compared++; compared == 6 {
			break
		}
	}
	if compared < 6 {
		t.Fatalf("only %d segments where the sessions' patterns differ", compared)
	}
}

// Paths outside the neutral layout are 404 for a valid session: variant
// directories, sidecars, the manifest, traversal.
func TestNeutralPathsOnly(t *testing.T) {
	v := newFixtureEdge(t)
	tok := v.token(1)
	r := v.m.Video[0].Name
	for _, p := range []string{
		asset.Segment(r, "a", 3).Path(), asset.Segment(r, "b", 3).Path(), asset.PaceInfo(r, 3).Path(),
		asset.ManifestRef().Path(), r + "/seg-3.m4s", "nope/init.mp4", asset.Segment(r, "", 9999).Path(),
	} {
		if resp, _ := v.get("/t/" + tok + "/assets/" + v.m.AssetID + "/" + p); resp.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", p, resp.StatusCode)
		}
	}
}

// TestTardosAsset: for an asset whose manifest names the collusion-
// resistant session code, the edge serves each session the variant of its
// codeword's bit at every marked segment (no repetition), in indirect and
// direct mode alike: the served stream is the one sealed.WriteSession
// assembles from the code's pattern.
func TestTardosAsset(t *testing.T) {
	// The fixture's manifest, rewritten to name the code (the objects do
	// not depend on it).
	fx := fixture.LoadSealedV1(t)
	m, err := sealed.ReadManifest(t.Context(), fx.Store, fx.AssetID)
	if err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, s := range m.Video[0].Segments {
		if s.Position >= 0 {
			marked++
		}
	}
	m.Watermark.Code, m.Watermark.PatternLen = asset.CodeTardos, marked
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.Store.Put(t.Context(), asset.ManifestKey(m.AssetID), bytes.NewReader(data), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	v := newFixtureEdgeWith(t, func(c *edge.Config) { c.Store, c.KEK, c.WatermarkMaster = fx.Store, fx.KEK, fx.Master })
	v.fx, v.m = fx, m
	code, err := sealed.SessionCode(fx.Master, v.m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if code.PatternLen() != marked {
		t.Fatalf("pattern of %d bits for %d marked segments", code.PatternLen(), marked)
	}
	for _, direct := range []bool{false, true} {
		const wmid = 0xC0DE
		tok, err := edge.MintToken(edge.Session{Asset: v.m.AssetID, WMID: wmid, TTL: time.Hour},
			edge.TokenOptions{Manifest: v.m, Direct: direct, WatermarkMaster: fx.Master}, v.key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		got := v.stream(tok, v.m.Video[0].Name)
		pat, _ := code.Pattern(wmid)
		var want bytes.Buffer
		if err := sealed.WriteSession(t.Context(), fx.Store, fx.KEK, v.m, v.m.Video[0].Name, pat, &want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("direct %v: the served stream (%d bytes) is not the codeword's (%d bytes)", direct, len(got), want.Len())
		}
		other, _ := code.Pattern(wmid + 1)
		var alt bytes.Buffer
		if err := sealed.WriteSession(t.Context(), fx.Store, fx.KEK, v.m, v.m.Video[0].Name, other, &alt); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(got, alt.Bytes()) {
			t.Fatal("two sessions' streams are equal")
		}
	}
}
