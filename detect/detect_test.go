package detect_test

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/internal/fixture"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/watermark"
)

func TestMain(m *testing.M) { os.Exit(testmedia.Main(m)) }

// An asset sealed before the contracts moved is detected as before: the
// reference decoded from its sealed renditions and the session's stream
// give the old detector's verdict, wmid, segments and per-segment calls.
func TestSealedV1Fixture(t *testing.T) {
	fx := fixture.LoadSealedV1(t)
	m, err := sealed.ReadManifest(t.Context(), fx.Store, fx.AssetID)
	if err != nil {
		t.Fatal(err)
	}
	code, err := sealed.SessionCode(fx.Master, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	bits, err := code.Pattern(fx.WMID)
	if err != nil {
		t.Fatal(err)
	}
	sess := filepath.Join(t.TempDir(), "session.mp4")
	f, err := os.Create(sess)
	if err != nil {
		t.Fatal(err)
	}
	if err := sealed.WriteSession(t.Context(), fx.Store, fx.KEK, m, "", bits, f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	ref, err := detect.SealedReference(t.Context(), fx.Store, fx.KEK, m, "")
	if err != nil {
		t.Fatal(err)
	}
	pics, _, err := detect.DecodeSuspect(t.Context(), sess)
	if err != nil {
		t.Fatal(err)
	}
	got, err := watermark.Detect(ref, pics, code.(*watermark.Code))
	if err != nil {
		t.Fatal(err)
	}
	var want watermark.Result
	if err := json.Unmarshal(fx.Detect, &want); err != nil {
		t.Fatal(err)
	}
	if got.Verdict != "identified" || got.WMID == nil || *got.WMID != fx.WMID {
		t.Fatalf("verdict %s wmid %v, want identified %d", got.Verdict, got.WMID, fx.WMID)
	}
	if got.SegmentsUsed != want.SegmentsUsed || len(got.Segments) != len(want.Segments) {
		t.Fatalf("%d segments used (%d scored), the old code %d (%d)", got.SegmentsUsed, len(got.Segments), want.SegmentsUsed, len(want.Segments))
	}
	for i, s := range got.Segments {
		w := want.Segments[i]
		same := (s.Bit == nil) == (w.Bit == nil) && (s.Bit == nil || *s.Bit == *w.Bit)
		// The scores' size follows the detector (registration, photometric
		// fit); their sign and the calls are the asset's.
		if s.Position != w.Position || !same || math.Signbit(s.Score) != math.Signbit(w.Score) {
			t.Fatalf("segment %d: %+v, the old code %+v", s.Segment, s, w)
		}
	}
}
