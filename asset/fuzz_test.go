package asset_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/abseal/abseal/asset"
)

// The committed seed corpora are in testdata/fuzz/<FuzzName>/ and run with
// every go test.

// FuzzDecodeJob: a job message either fails as a bad job, or decodes into a
// job that validates, whose ids are safe object-key elements, and whose
// encoding decodes again into the same encoding.
func FuzzDecodeJob(f *testing.F) {
	f.Add([]byte(`{"v":1,"job_id":"job-1","asset_id":"a1","source":{"bucket":"b","key":"k"},"profile":"default","created_at":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := asset.DecodeJob(data)
		if err != nil {
			if !errors.Is(err, asset.ErrBadJob) || j != nil {
				t.Fatalf("DecodeJob: %v (job %+v), want only an ErrBadJob", err, j)
			}
			return
		}
		if err := j.Validate(); err != nil {
			t.Fatalf("decoded job does not validate: %v", err)
		}
		for _, id := range []string{j.JobID, j.AssetID, j.Profile} {
			if strings.ContainsAny(id, "/\\") || id == "." || id == ".." {
				t.Fatalf("id %q accepted: it is not a single object-key element", id)
			}
		}
		enc := j.Encode()
		j2, err := asset.DecodeJob(enc)
		if err != nil {
			t.Fatalf("re-encoded job %s: %v", enc, err)
		}
		if enc2 := j2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n%s", enc, enc2)
		}
		if j2.JobID != j.JobID || j2.AssetID != j.AssetID || j2.Source != j.Source || !j2.CreatedAt.Equal(j.CreatedAt) {
			t.Fatalf("round trip: %+v, want %+v", j2, j)
		}
	})
}

// FuzzDecodeManifest: any bytes either fail or decode into a manifest of
// the supported schema whose encoding decodes again into the same
// encoding, and whose lookups do not panic and find what they return.
func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"schema":2,"run":"r1","asset_id":"a","video":[{"name":"720p","segments":[{"number":1,"variants":{"a":{"key":"k"}}}]}]}`))
	f.Add([]byte(`{"schema":1,"asset_id":"a","video":[{"name":"720p","segments":[{"number":1,"variants":{"a":{"key":"k"}}}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := asset.DecodeManifest(data)
		if err != nil {
			if m != nil {
				t.Fatalf("DecodeManifest: %v with a manifest", err)
			}
			return
		}
		if m.Schema != asset.ManifestVersion && m.Schema != 1 || (m.Schema == asset.ManifestVersion) != (m.Run != "") {
			t.Fatalf("schema %d with run %q accepted", m.Schema, m.Run)
		}
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("a decoded manifest does not encode: %v", err)
		}
		m2, err := asset.DecodeManifest(enc)
		if err != nil {
			t.Fatalf("re-encoded manifest %s: %v", enc, err)
		}
		if enc2, err := json.Marshal(m2); err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
		if r, err := m.FindRendition(""); (err == nil) != (len(m.Video) > 0) || err == nil && r != &m.Video[0] {
			t.Fatalf("FindRendition(\"\") = %v, %v with %d video renditions", r, err, len(m.Video))
		}
		for _, r := range append(m.Video, derefRendition(m.Audio)...) {
			if got, err := m.FindRendition(r.Name); r.Name != "" && (err != nil || got.Name != r.Name) {
				t.Fatalf("FindRendition(%q) = %v, %v", r.Name, got, err)
			}
			for _, s := range r.Segments {
				if got, ok := r.Segment(s.Number); !ok || got.Number != s.Number {
					t.Fatalf("rendition %q: Segment(%d) = %+v, %v", r.Name, s.Number, got, ok)
				}
			}
		}
	})
}

func derefRendition(r *asset.Rendition) []asset.Rendition {
	if r == nil {
		return nil
	}
	return []asset.Rendition{*r}
}
