package pipeline_test

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/internal/testenv"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/storage/fs"
)

// fenceRig is a runner over an fs output store (real FFmpeg, real Tink)
// and an ingest store holding the clips the jobs read.
type fenceRig struct {
	t      *testing.T
	ingest storage.Store
	out    storage.Store
	kek    *envelope.KEK
	runner pipeline.Runner
}

func newFenceRig(t *testing.T) *fenceRig {
	t.Helper()
	dir := t.TempDir()
	ingest, err := fs.New(filepath.Join(dir, "ingest"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := fs.New(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	kekPath := filepath.Join(dir, "kek.json")
	if err := envelope.CreateLocalKEK(kekPath); err != nil {
		t.Fatal(err)
	}
	kek, err := envelope.OpenKEK(t.Context(), kekPath, envelope.KEKOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse([]byte(`{"name":"small","segment_duration":"1s","rungs":[
		{"name":"180p","size":180,"bitrate":300000,"crf":26,"preset":"veryfast","h264_profile":"main"}],"audio":{"bitrate":64000,"sample_rate":48000}}`))
	if err != nil {
		t.Fatal(err)
	}
	master := make([]byte, 32)
	rand.Read(master)
	r := &fenceRig{t: t, ingest: ingest, out: out, kek: kek}
	r.runner = pipeline.Runner{
		Sources:  func(string) (storage.Store, error) { return ingest, nil },
		Out:      out,
		KEK:      kek,
		Profiles: func(string) (*profile.Profile, error) { return p, nil },
		TempDir:  dir, Threads: 2, WatermarkKey: master,
		Log: slog.New(slog.DiscardHandler),
	}
	for _, c := range []struct{ key, clip string }{{"one.mp4", testmedia.Clip(t, "sample.mp4")}} {
		r.upload(c.key, c.clip)
	}
	return r
}

func (r *fenceRig) upload(key, file string) {
	r.t.Helper()
	f, err := os.Open(file)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	if _, err := r.ingest.Put(r.t.Context(), key, f, storage.PutOptions{}); err != nil {
		r.t.Fatal(err)
	}
}

func fenceJob(assetID, key string) *asset.Job {
	return &asset.Job{V: asset.JobVersion, JobID: assetID + "-" + strings.TrimSuffix(key, ".mp4"), AssetID: assetID,
		Source: asset.Source{Bucket: "ingest", Key: key}, Profile: "small", CreatedAt: time.Now()}
}

// check verifies the committed asset: a schema-2 manifest naming a run,
// every object it names opens at its place with its digest, and nothing
// else is stored under the asset but the manifest and that run's
// playlists, sidecars and marker.
func (r *fenceRig) check(assetID string) *asset.Manifest {
	r.t.Helper()
	ctx := r.t.Context()
	m, err := sealed.ReadManifest(ctx, r.out, assetID)
	if err != nil {
		r.t.Fatal(err)
	}
	if m.Schema != asset.ManifestVersion || m.Run == "" {
		r.t.Fatalf("manifest schema %d run %q", m.Schema, m.Run)
	}
	for _, rd := range append(append([]asset.Rendition(nil), m.Video...), *m.Audio) {
		dek, err := sealed.RenditionDEK(r.kek, assetID, &rd)
		if err != nil {
			r.t.Fatal(err)
		}
		if _, err := sealed.OpenObject(ctx, r.out, dek, assetID, asset.Init(rd.Name), rd.Init); err != nil {
			r.t.Fatalf("%s init: %v", rd.Name, err)
		}
		for _, s := range rd.Segments {
			for _, v := range asset.Variants {
				o, ref := sealed.SegmentObject(&rd, s, v)
				if !strings.HasPrefix(o.Key, asset.RunPrefix(assetID, m.Run)) {
					r.t.Fatalf("%s is not under the manifest's run %s", o.Key, m.Run)
				}
				if _, err := sealed.OpenObject(ctx, r.out, dek, assetID, ref, o); err != nil {
					r.t.Fatalf("%s: %v", o.Key, err)
				}
			}
		}
	}
	for _, key := range []string{m.HLS, m.DASH, m.Key(asset.PaceInfo(m.Video[0].Name, m.Video[0].Segments[0].Number))} {
		if _, err := r.out.Stat(ctx, key); err != nil {
			r.t.Fatalf("%s: %v", key, err)
		}
	}
	for oi, err := range r.out.List(ctx, asset.Prefix(assetID)) {
		if err != nil {
			r.t.Fatal(err)
		}
		if oi.Key != asset.ManifestKey(assetID) && asset.RunOf(assetID, oi.Key) != m.Run {
			r.t.Errorf("%s is left over (the manifest's run is %s)", oi.Key, m.Run)
		}
	}
	return m
}

// TestRunFencing: a run stalled at each fencing point (rendering not
// begun, its first segment stored, everything stored but the manifest)
// while a second run of the same job completes: the stalled run, woken
// up, cannot overwrite the committed manifest or any object it names; it
// ends as done by the other run and its own objects are deleted.
func TestRunFencing(t *testing.T) {
	for _, point := range []string{pipeline.StallTranscode, pipeline.StallPut, pipeline.StallManifest} {
		t.Run(point, func(t *testing.T) {
			rig := newFenceRig(t)
			reached, release := make(chan struct{}), make(chan struct{})
			stale := rig.runner
			stale.Stall = func(p, _ string) {
				if p == point {
					close(reached)
					<-release
				}
			}
			job := fenceJob("film", "one.mp4")
			type outcome struct {
				res *pipeline.Result
				err error
			}
			done := make(chan outcome, 1)
			go func() {
				res, err := stale.Run(t.Context(), job, nil)
				done <- outcome{res, err}
			}()
			select {
			case <-reached:
			case o := <-done:
				t.Fatalf("the stale run ended before its stall: %+v %v", o.res, o.err)
			}
			fresh, err := rig.runner.Run(t.Context(), job, nil)
			if err != nil || fresh.Skipped {
				t.Fatalf("second run: %+v %v", fresh, err)
			}
			committed := rig.check("film")
			if committed.Run != fresh.Run {
				t.Fatalf("manifest run %s, the second run was %s", committed.Run, fresh.Run)
			}
			close(release)
			o := <-done
			if o.err != nil || !o.res.Skipped || o.res.Run != fresh.Run {
				t.Fatalf("stale run: %+v %v, want done by run %s", o.res, o.err, fresh.Run)
			}
			if m := rig.check("film"); m.Run != fresh.Run || !m.CreatedAt.Equal(committed.CreatedAt) {
				t.Fatalf("the stale run changed the manifest: run %s", m.Run)
			}
		})
	}
}

// TestRunFencingReprocess: the same asset from a new source: the new run
// commits over the old manifest (If-Match) and collects the old run's
// objects; a run of another job that started before and commits after
// is refused and retried (ErrSuperseded), never mixing the two.
func TestRunFencingReprocess(t *testing.T) {
	rig := newFenceRig(t)
	rig.upload("two.mp4", testmedia.Reencode(t, testmedia.Clip(t, "sample.mp4"), "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"))
	first, err := rig.runner.Run(t.Context(), fenceJob("film", "one.mp4"), nil)
	if err != nil {
		t.Fatal(err)
	}
	// An edge serves the asset and caches its manifest.
	play := rig.edge(t, "film")
	if n := play(); n != len(first.Manifest.Video[0].Segments) {
		t.Fatalf("the edge served %d segments of %d", n, len(first.Manifest.Video[0].Segments))
	}
	// Job two stalls before its commit while job one runs again from a
	// third source and commits.
	reached, release := make(chan struct{}), make(chan struct{})
	stale := rig.runner
	stale.Stall = func(p, _ string) {
		if p == pipeline.StallManifest {
			close(reached)
			<-release
		}
	}
	errc := make(chan error, 1)
	go func() {
		_, err := stale.Run(t.Context(), fenceJob("film", "two.mp4"), nil)
		errc <- err
	}()
	<-reached
	rig.upload("one.mp4", testmedia.Reencode(t, testmedia.Clip(t, "sample.mp4"), "-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"))
	third, err := rig.runner.Run(t.Context(), fenceJob("film", "one.mp4"), nil)
	if err != nil || third.Skipped || third.Run == first.Run {
		t.Fatalf("third run: %+v %v", third, err)
	}
	close(release)
	if err := <-errc; !errors.Is(err, pipeline.ErrSuperseded) || pipeline.IsPermanent(err) {
		t.Fatalf("the superseded run: %v, want a transient ErrSuperseded", err)
	}
	m := rig.check("film")
	if m.Run != third.Run || m.Duration > 5 {
		t.Fatalf("manifest run %s duration %.1f, want run %s of the 4 s source", m.Run, m.Duration, third.Run)
	}
	// The first run's objects are gone; the edge, its manifest cached
	// from before the switch, serves the new asset at once.
	if n := play(); n != len(m.Video[0].Segments) {
		t.Fatalf("after the switch the edge served %d segments, the new manifest has %d", n, len(m.Video[0].Segments))
	}
	// Run again, job two now commits over the third run and collects it.
	again, err := rig.runner.Run(t.Context(), fenceJob("film", "two.mp4"), nil)
	if err != nil || again.Skipped {
		t.Fatalf("job two again: %+v %v", again, err)
	}
	if m := rig.check("film"); m.Run != again.Run || m.Duration < 5 || m.Duration > 7 {
		t.Fatalf("manifest run %s duration %.1f", m.Run, m.Duration)
	}
}

// TestRunFencingLegacyAsset: a job over an asset sealed before runs wrote
// apart (schema 1, objects at the asset's plain prefix) commits a schema-2
// manifest and deletes the old objects; leftovers of a run that crashed
// (its marker and a segment) are collected too.
func TestRunFencingLegacyAsset(t *testing.T) {
	rig := newFenceRig(t)
	root, err := devenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(root, "testdata", "sealed-v1", "bucket")
	var legacy int
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		legacy++
		_, err = rig.out.Put(t.Context(), filepath.ToSlash(rel), f, storage.PutOptions{})
		return err
	})
	if err != nil || legacy < 10 {
		t.Fatalf("fixture copy: %d objects, %v", legacy, err)
	}
	crashed := asset.NewRunID(time.Now().Add(-time.Hour))
	for key, body := range map[string]string{
		asset.RunMarkerKey("fixture-v1", crashed):                                      `{"run":"` + crashed + `","base_etag":"gone"}`,
		asset.Segment("90p", "a", 1).RunKey("fixture-v1", crashed):                     "sealed bytes",
		asset.Segment("180p", "b", 7).RunKey("fixture-v1", asset.NewRunID(time.Now())): "a run without its marker",
	} {
		if _, err := rig.out.Put(t.Context(), key, strings.NewReader(body), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := rig.runner.Run(t.Context(), fenceJob("fixture-v1", "one.mp4"), nil)
	if err != nil || res.Skipped {
		t.Fatalf("%+v %v", res, err)
	}
	rig.check("fixture-v1")
}

// edge starts an edge over the rig's store and returns a player: it
// fetches the first rendition's playlist, init and every segment as one
// session and returns the number of segments (any answer but 200 fails).
func (r *fenceRig) edge(t *testing.T, assetID string) func() int {
	key, err := delivery.NewHMACKey([]byte("t1"), []byte("TestRunFencing token key, 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := edge.New(t.Context(), edge.Config{Store: r.out, KEK: r.kek, Tokens: delivery.NewKeys(key),
		WatermarkMaster: r.runner.WatermarkKey, ManifestTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	get := func(u string) []byte { return testenv.Get200(t, u) }
	return func() int {
		m, err := sealed.ReadManifest(t.Context(), r.out, assetID)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := edge.MintToken(edge.Session{Asset: assetID, WMID: 9, TTL: time.Hour}, edge.TokenOptions{Manifest: m}, key, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		base, _ := url.Parse(hs.URL + "/t/" + tok + "/assets/" + assetID + "/" + asset.HLSMedia(m.Video[0].Name).Path())
		n := 0
		for _, line := range strings.Split(string(get(base.String())), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
				u, _ := base.Parse(strings.Trim(strings.TrimPrefix(line, "#EXT-X-MAP:URI="), `"`))
				get(u.String())
			case line != "" && !strings.HasPrefix(line, "#"):
				u, _ := base.Parse(line)
				get(u.String())
				n++
			}
		}
		return n
	}
}
