package sealed_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/forensic"
	"github.com/abseal/abseal/internal/fixture"
	"github.com/abseal/abseal/sealed"
)

// An asset sealed before the contracts moved still opens with the current
// code: every object at its place (and nowhere else), and the session's
// stream is byte for byte what the old code wrote.
func TestSealedV1Fixture(t *testing.T) {
	fx := fixture.LoadSealedV1(t)
	m, err := sealed.ReadManifest(t.Context(), fx.Store, fx.AssetID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Watermark == nil || m.Watermark.IDBits != 8 || len(m.Video) != 1 || m.Audio == nil {
		t.Fatalf("manifest: watermark %+v, %d video renditions, audio %v", m.Watermark, len(m.Video), m.Audio != nil)
	}
	objects := 0
	for _, r := range append(append([]asset.Rendition{}, m.Video...), *m.Audio) {
		dek, err := sealed.RenditionDEK(fx.KEK, m.AssetID, &r)
		if err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		check := func(ref asset.Ref, o asset.Object) {
			t.Helper()
			if o.Key != ref.Key(m.AssetID) {
				t.Fatalf("manifest key %s, the layout says %s", o.Key, ref.Key(m.AssetID))
			}
			if got, err := asset.ParseKey(m.AssetID, o.Key); err != nil || got != ref {
				t.Fatalf("ParseKey(%s) = %+v, %v; want %+v", o.Key, got, err, ref)
			}
			if _, err := sealed.OpenObject(t.Context(), fx.Store, dek, m.AssetID, ref, o); err != nil {
				t.Fatalf("%s: %v", o.Key, err)
			}
			objects++
		}
		check(asset.Init(r.Name), r.Init)
		for _, s := range r.Segments {
			for _, v := range asset.Variants {
				if o, ok := s.Variants[v]; ok {
					_, ref := sealed.SegmentObject(&r, s, v)
					check(ref, o)
				}
			}
		}
	}
	if objects < 3*95 {
		t.Fatalf("only %d objects opened", objects)
	}
	// The same object does not open at another place.
	r := &m.Video[0]
	dek, _ := sealed.RenditionDEK(fx.KEK, m.AssetID, r)
	s := r.Segments[5]
	for _, wrong := range []asset.Ref{
		asset.Segment(r.Name, asset.VariantB, s.Number), // a's bytes as b
		asset.Segment(r.Name, asset.VariantA, s.Number+1),
		asset.Segment("audio", "", s.Number),
	} {
		if _, err := sealed.OpenObject(t.Context(), fx.Store, dek, m.AssetID, wrong, s.Variants["a"]); !errors.Is(err, envelope.ErrAuthentication) {
			t.Fatalf("a at %s: %v, want ErrAuthentication", wrong, err)
		}
	}

	code, err := sealed.SessionCode(fx.Master, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	bits, err := code.Pattern(fx.WMID)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := sealed.WriteSession(t.Context(), fx.Store, fx.KEK, m, "", bits, &buf); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(sum[:]) != fx.SessionSHA256 || buf.Len() != fx.SessionBytes {
		t.Fatalf("session stream: %d bytes %x, the old code wrote %d bytes %s", buf.Len(), sum, fx.SessionBytes, fx.SessionSHA256)
	}
}

// A tampered object fails its digest check; a manifest without a
// watermark has no session code.
func TestOpenObjectDigest(t *testing.T) {
	fx := fixture.LoadSealedV1(t)
	m, err := sealed.ReadManifest(t.Context(), fx.Store, fx.AssetID)
	if err != nil {
		t.Fatal(err)
	}
	r := &m.Video[0]
	dek, _ := sealed.RenditionDEK(fx.KEK, m.AssetID, r)
	o := r.Segments[3].Variants["b"]
	o.SHA256 = r.Segments[3].Variants["a"].SHA256
	if _, err := sealed.OpenObject(t.Context(), fx.Store, dek, m.AssetID, asset.Segment(r.Name, "b", r.Segments[3].Number), o); !errors.Is(err, sealed.ErrDigest) {
		t.Fatalf("wrong digest: %v", err)
	}
	// The manifest names the session code: the collusion-resistant one
	// has a bit per marked position; an unknown one is refused.
	conv, err := sealed.SessionCode(fx.Master, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	wm := *m.Watermark
	m.Watermark.Code, m.Watermark.PatternLen = asset.CodeTardos, 300
	tardos, err := sealed.SessionCode(fx.Master, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tardos.(*forensic.Code); !ok || tardos.PatternLen() != 300 || conv.PatternLen() == 300 {
		t.Fatalf("tardos code %T of %d bits, conv %d", tardos, tardos.PatternLen(), conv.PatternLen())
	}
	if p, _ := tardos.Pattern(7); len(p) != 300 {
		t.Fatalf("tardos pattern of %d bits", len(p))
	}
	m.Watermark.Code = "reed-solomon"
	if _, err := sealed.SessionCode(fx.Master, m, 0); err == nil || !strings.Contains(err.Error(), "reed-solomon") {
		t.Fatalf("unknown code: %v", err)
	}
	*m.Watermark = wm
	m.Watermark = nil
	if _, err := sealed.SessionCode(fx.Master, m, 0); !errors.Is(err, sealed.ErrNoWatermark) {
		t.Fatalf("no watermark: %v", err)
	}
}
