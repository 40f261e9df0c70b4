package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/fleet"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
)

// TestClusterLeaderLoss: abseal on a 3-node JetStream cluster (embedded
// servers on loopback), every stream and bucket at 3 replicas. Two
// workers take four jobs; while they run, the node leading the jobs
// stream is shut down, and restarted with its store a few seconds later.
// Every job completes exactly once (one "job done" each, one manifest per
// asset, no dead letters), and the edge's deny-list, watched through the
// same cluster, still takes a revocation after the restart.
func TestClusterLeaderLoss(t *testing.T) {
	f := fleet.NewWith(t, fleet.Options{Nodes: 3})
	ctx := t.Context()
	js, err := jetstream.New(f.NC)
	if err != nil {
		t.Fatal(err)
	}
	replicas := func(when string) {
		for _, name := range []string{queue.JobsStream, queue.UploadsStream, queue.DLQStream, "KV_" + queue.StateBucket, "KV_" + queue.RevokedBucket, "KV_" + queue.WMIDBucket} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if r := s.CachedInfo().Config.Replicas; r != 3 {
				t.Fatalf("%s: %s has %d replicas, want 3", when, name, r)
			}
		}
	}
	replicas("after setup")
	// The workers are started without --replicas: they never change what
	// setup made.
	workers := []*fleet.Worker{f.StartWorker("c1"), f.StartWorker("c2")}
	clips := []string{"main.mp4", "forensic-56s.mp4", "main.mp4", "forensic-56s.mp4"}
	var jobs, assets []string
	for i, c := range clips {
		job, assetID := f.Upload(fmt.Sprintf("uploads/cluster-%d.mp4", i), testmedia.Clip(t, c))
		jobs, assets = append(jobs, job), append(assets, assetID)
	}
	replicas("with the workers running")
	// Once a job runs, the jobs stream's leader goes down.
	f.WaitState(jobs[1], 2*time.Minute, func(s asset.State) bool { return s.Stage == "transcode" && s.Percent >= 10 })
	s, err := js.Stream(ctx, queue.JobsStream)
	if err != nil {
		t.Fatal(err)
	}
	leader := s.CachedInfo().Cluster.Leader
	node := f.Node(leader)
	if node < 0 {
		t.Fatalf("leader %q is not a node", leader)
	}
	down := time.Now()
	f.StopNode(node)
	// How long the jobs stream has no leader.
	for {
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := js.Stream(ictx, queue.JobsStream)
		cancel()
		if err == nil && s.CachedInfo().Cluster.Leader != "" && s.CachedInfo().Cluster.Leader != leader {
			t.Logf("node %s (leading %s) down: a new leader (%s) after %s", leader, queue.JobsStream, s.CachedInfo().Cluster.Leader, time.Since(down).Round(10*time.Millisecond))
			break
		}
		if time.Since(down) > 30*time.Second {
			t.Fatalf("no new leader of %s 30s after %s went down: %v", queue.JobsStream, leader, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	f.StartNode(node)
	t.Logf("node %s restarted after %s", leader, time.Since(down).Round(10*time.Millisecond))

	for i, job := range jobs {
		if st := f.WaitState(job, 5*time.Minute, fleet.Final); st.Status != asset.StatusDone {
			t.Fatalf("job %d: %+v", i, st)
		}
		f.CheckAsset(assets[i])
	}
	done := 0
	for _, w := range workers {
		done += len(w.Lines("job done"))
	}
	if done != len(jobs) {
		t.Errorf("%d jobs done in all for %d jobs, want each exactly once", done, len(jobs))
	}
	if n := f.Manifests(); n != len(jobs) {
		t.Errorf("%d manifests for %d assets", n, len(jobs))
	}
	if dl, err := f.Q.DeadLetters(ctx); err != nil || len(dl) != 0 {
		t.Errorf("dead letters %+v, %v", dl, err)
	}

	// The edge on the cluster: a revocation after the node loss stops the
	// session within seconds.
	master, _, err := envelope.ReadWatermarkKey(f.WMKey, f.KEK, false)
	if err != nil {
		t.Fatal(err)
	}
	rv, err := queue.OpenRevocations(ctx, f.NC, queue.RevocationsConfig{CheckInterval: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := delivery.NewHMACKey([]byte("k"), []byte("TestClusterLeaderLoss token key, 32 b"))
	srv, err := edge.New(ctx, edge.Config{Store: f.Out, KEK: f.KEK, Tokens: delivery.NewKeys(key), WatermarkMaster: master, Revocations: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	m, err := sealed.ReadManifest(ctx, f.Out, assets[0])
	if err != nil {
		t.Fatal(err)
	}
	tok, err := edge.MintToken(edge.Session{Asset: m.AssetID, WMID: 77, TTL: time.Hour}, edge.TokenOptions{Manifest: m}, key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seg := hs.URL + "/t/" + tok + "/assets/" + m.AssetID + "/" + asset.Segment(m.Video[0].Name, "", 2).Path()
	status := func() int {
		resp, err := http.Get(seg)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := status(); st != 200 {
		t.Fatalf("before the revocation: %d", st)
	}
	if err := rv.Revoke(ctx, edge.WMIDRevocationKey(77), "leaked"); err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); status() != http.StatusForbidden; time.Sleep(50 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Fatal("the revoked session is still served 5s after the revocation")
		}
	}
}
