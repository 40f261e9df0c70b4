package asset_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
)

func TestJobRoundTripAndIDs(t *testing.T) {
	src := asset.Source{Bucket: "ingest", Key: "uploads/My Film (final).MOV", ETag: "abc"}
	j, err := asset.NewJob(src, "", "", "ops", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(j.AssetID, "my-film-final-mov-") || j.Profile != "default" {
		t.Fatalf("asset id %q profile %q", j.AssetID, j.Profile)
	}
	j2, _ := asset.NewJob(src, "", "", "someone else", time.Now().Add(time.Hour))
	if j.JobID != j2.JobID {
		t.Fatal("the same request made two job ids")
	}
	other := src
	other.ETag = "def"
	if j3, _ := asset.NewJob(other, "", "", "ops", time.Now()); j3.JobID == j.JobID || j3.AssetID != j.AssetID {
		t.Fatal("a new version of the object must be a new job of the same asset")
	}
	back, err := asset.DecodeJob(j.Encode())
	if err != nil || back.JobID != j.JobID || back.Source != src {
		t.Fatalf("round trip: %+v %v", back, err)
	}
}

func TestDecodeJobRejects(t *testing.T) {
	good := `{"v":1,"job_id":"job-1","asset_id":"a1","source":{"bucket":"b","key":"k"},"profile":"default","created_at":"2026-01-01T00:00:00Z"}`
	if _, err := asset.DecodeJob([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"not json":      {`{"v":1,`, "bad job"},
		"unknown field": {strings.Replace(good, `"profile"`, `"priority":1,"profile"`, 1), "unknown field"},
		"version":       {strings.Replace(good, `"v":1`, `"v":2`, 1), "schema version 2"},
		"trailing":      {good + `{}`, "trailing data"},
		"no bucket":     {strings.Replace(good, `"bucket":"b"`, `"bucket":""`, 1), "source.bucket"},
		"asset id path": {strings.Replace(good, `"a1"`, `"../x"`, 1), "asset_id"},
		"zone offset":   {strings.Replace(good, `Z"`, `+24:00"`, 1), "created_at"},
		"no created_at": {strings.Replace(good, `"2026-01-01T00:00:00Z"`, `"0001-01-01T00:00:00Z"`, 1), "created_at"},
	} {
		_, err := asset.DecodeJob([]byte(tc.in))
		if !errors.Is(err, asset.ErrBadJob) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrBadJob mentioning %q", name, err, tc.want)
		}
	}
}
