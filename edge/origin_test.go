package edge_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/sealed"
)

const originSecret = "a CDN's origin secret, at least 32 bytes long"

// CDN origin mode: with the secret, both variants of a segment, inits,
// sidecars and the neutral playlists come decrypted at explicit paths
// with cache headers a CDN keeps; the bytes of /origin/…/<v>/seg-N are
// what a session whose pattern names v gets on its token path. Without
// the secret, or with a wrong one, or with a player's token, every
// origin path is 404; with origin mode off too.
func TestOriginMode(t *testing.T) {
	v := newFixtureEdgeWith(t, func(c *edge.Config) { c.OriginSecret = []byte(originSecret) })
	ctx := t.Context()
	r := &v.m.Video[0]
	dek, err := sealed.RenditionDEK(v.fx.KEK, v.m.AssetID, r)
	if err != nil {
		t.Fatal(err)
	}
	base := v.srv.URL + "/origin/assets/" + v.m.AssetID + "/"
	var seg asset.Seg
	for _, s := range r.Segments {
		if s.Position >= 0 {
			seg = s
			break
		}
	}
	for _, variant := range asset.Variants {
		o, ref := sealed.SegmentObject(r, seg, variant)
		want, err := sealed.OpenObject(ctx, v.fx.Store, dek, v.m.AssetID, ref, o)
		if err != nil {
			t.Fatal(err)
		}
		resp, body := getHdr(t, base+ref.Path(), edge.OriginSecretHeader, originSecret)
		if resp.StatusCode != 200 || !bytes.Equal(body, want) || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			resp.Header.Get("Content-Type") != asset.TypeVideo {
			t.Fatalf("variant %s: %d, %d bytes (want %d), %v", variant, resp.StatusCode, len(body), len(want), resp.Header)
		}
		// A session whose pattern names this variant gets the same bytes.
		for wmid := uint64(1); wmid < 64; wmid++ {
			code, _ := sealed.SessionCode(v.fx.Master, v.m, 0)
			pat, _ := code.Pattern(wmid)
			if delivery.Variant(delivery.PackBits(pat), len(pat), seg.Position, true) != variant {
				continue
			}
			_, got := getHdr(t, v.srv.URL+"/t/"+v.token(wmid)+"/assets/"+v.m.AssetID+"/"+asset.Segment(r.Name, "", seg.Number).Path())
			if !bytes.Equal(got, want) {
				t.Fatalf("session %d on its token path: other bytes than /origin/ variant %s", wmid, variant)
			}
			break
		}
		// Byte ranges, as CDNs fetch large objects.
		if resp, body := getHdr(t, base+ref.Path(), edge.OriginSecretHeader, originSecret, "Range", "bytes=0-9"); resp.StatusCode != 206 || !bytes.Equal(body, want[:10]) {
			t.Fatalf("variant %s range: %d", variant, resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		ref   asset.Ref
		ctype string
		cache string
	}{
		{asset.Init(r.Name), asset.TypeVideo, "public, max-age=31536000, immutable"},
		{asset.PaceInfo(r.Name, seg.Number), asset.TypePaceInfo, "public, max-age=31536000, immutable"},
		{asset.Init(v.m.Audio.Name), asset.TypeAudio, "public, max-age=31536000, immutable"},
		{asset.Segment(v.m.Audio.Name, "", 2), asset.TypeAudio, "public, max-age=31536000, immutable"},
		{asset.HLSMaster(), asset.TypeHLS, "public, max-age=60"},
		{asset.HLSMedia(r.Name), asset.TypeHLS, "public, max-age=60"},
		{asset.DASH(), asset.TypeDASH, "public, max-age=60"},
	} {
		resp, body := getHdr(t, base+tc.ref.Path(), edge.OriginSecretHeader, originSecret)
		if resp.StatusCode != 200 || len(body) == 0 || resp.Header.Get("Content-Type") != tc.ctype || resp.Header.Get("Cache-Control") != tc.cache {
			t.Errorf("%s: %d %v", tc.ref.Path(), resp.StatusCode, resp.Header)
		}
		if (tc.ref.Kind == asset.KindHLS || tc.ref.Kind == asset.KindDASH) && (bytes.Contains(body, []byte("/a/")) || bytes.Contains(body, []byte("/b/"))) {
			t.Errorf("%s names a variant", tc.ref.Path())
		}
	}
	segPath := asset.Segment(r.Name, asset.VariantA, seg.Number).Path()
	for _, tc := range []struct {
		name string
		path string
		hdr  []string
	}{
		{"no secret", segPath, nil},
		{"wrong secret", segPath, []string{edge.OriginSecretHeader, strings.ToUpper(originSecret)}},
		{"a player's token", segPath, []string{"Authorization", "Bearer " + v.token(5)}},
		{"the asset manifest", asset.ManifestRef().Path(), []string{edge.OriginSecretHeader, originSecret}},
		{"a neutral video segment", asset.Segment(r.Name, "", seg.Number).Path(), []string{edge.OriginSecretHeader, originSecret}},
		{"a variant of audio", asset.Segment(v.m.Audio.Name, asset.VariantB, 2).Path(), []string{edge.OriginSecretHeader, originSecret}},
	} {
		if resp, _ := getHdr(t, base+tc.path, tc.hdr...); resp.StatusCode != 404 || resp.Header.Get("Cache-Control") != "" {
			t.Errorf("%s: %d %v, want 404 without cache headers", tc.name, resp.StatusCode, resp.Header)
		}
	}
	off := newFixtureEdge(t)
	if resp, _ := getHdr(t, off.srv.URL+"/origin/assets/"+v.m.AssetID+"/"+segPath, edge.OriginSecretHeader, originSecret); resp.StatusCode != 404 {
		t.Errorf("origin mode off: %d", resp.StatusCode)
	}
	fx := v.fx
	if _, err := edge.New(ctx, edge.Config{Store: fx.Store, KEK: fx.KEK, Tokens: delivery.NewKeys(v.key), OriginSecret: []byte("short")}); err == nil ||
		!strings.Contains(err.Error(), "origin secret") {
		t.Errorf("a short origin secret: %v", err)
	}
}
