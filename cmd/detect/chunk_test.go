package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/internal/testmedia"
)

// TestChunkedDetect: a job split into five chunks (--chunk-length 12s on
// a 56 s source in 0.5 s segments) is sealed chunk by chunk; a session
// fetched through the edge, re-encoded at CRF 28, is identified: the
// watermark positions and variants line up across the chunk boundaries.
func TestChunkedDetect(t *testing.T) {
	f, assetID, m := sealWithWorker(t, 360, "forensic-56s.mp4", 6*time.Minute, "--wmid-bits", "16", "--chunk-length", "12s")
	var plan struct {
		Chunks []json.RawMessage `json:"chunks"`
	}
	rc, err := f.Out.Open(t.Context(), asset.RunPlanKey(assetID, m.Run), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(rc).Decode(&plan)
	rc.Close()
	if err != nil || len(plan.Chunks) != 5 {
		t.Fatalf("plan: %d chunks (%v), want 5", len(plan.Chunks), err)
	}
	const wmid = 0x6B1D
	leak := testmedia.Reencode(t, edgeSession(t, f, m, wmid), testmedia.CRF28At360p...)
	r := detectFromBucket(t, f, assetID, leak)
	if r.Verdict != "identified" || r.WMID == nil || *r.WMID != wmid {
		t.Fatalf("verdict %s wmid %v, want %d", r.Verdict, r.WMID, wmid)
	}
}
