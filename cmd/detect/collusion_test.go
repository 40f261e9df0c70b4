package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
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
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/edge"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/queue"
)

// TestFourColluders: four subscribers pool their streams. A tardos-v1
// asset (8 minutes at 180p in 0.5 s segments: 959 marked positions) is
// served by the edge; the operator's backend mints 20 sessions through
// the minting API (recorded in the session registry); four of them fetch
// the whole rendition through the edge over HTTP, and a script builds
// one stream taking each segment from one of the four at random, which
// is re-encoded (libx264 CRF 28). detect, reading the registry, accuses
// at least one of the four and no one else.
func TestFourColluders(t *testing.T) {
	f, assetID, m := sealWithWorker(t, 180, "natural-shots-480s-180p.mp4", 10*time.Minute, "--session-code", "tardos")
	// The watermark key is new in every run, so the codewords are too: the
	// length is chosen for a catch rate that does not flake. Simulated
	// (forensic.SimTrial, 4 colluders mixing at random, 20 sessions, |z| 11,
	// 1 % wrong signs): 719 positions catch 97.75 %, 959 catch 5000 of 5000.
	if m.Watermark.Code != asset.CodeTardos || m.Watermark.PatternLen < 950 {
		t.Fatalf("manifest watermark %+v", m.Watermark)
	}
	ctx := t.Context()
	master, _, err := envelope.ReadWatermarkKey(f.WMKey, f.KEK, false)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := queue.OpenRegistry(ctx, f.NC)
	if err != nil {
		t.Fatal(err)
	}
	key, err := delivery.NewHMACKey([]byte("t1"), []byte("TestFourColluders token key, 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	const apiKey = "the operator backend's API key"
	srv, err := edge.New(ctx, edge.Config{Store: f.Out, KEK: f.KEK, Tokens: delivery.NewKeys(key), WatermarkMaster: master,
		Minting: &edge.Minting{Key: key, Registry: reg, APIKeys: map[string][32]byte{"backend": sha256.Sum256([]byte(apiKey))}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	pub := httptest.NewServer(srv.Handler())
	t.Cleanup(pub.Close)
	admin := httptest.NewServer(srv.AdminHandler())
	t.Cleanup(admin.Close)

	// The backend mints 20 sessions.
	type session struct {
		token string
		wmid  uint64
	}
	var sessions []session
	for i := range 20 {
		body := fmt.Sprintf(`{"asset": %q, "subject": "subscriber-%d", "ttl": "1h"}`, assetID, i)
		req, _ := http.NewRequestWithContext(ctx, "POST", admin.URL+"/v1/sessions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+apiKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var mr edge.MintResponse
		err = json.NewDecoder(resp.Body).Decode(&mr)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil {
			t.Fatalf("mint: %d %v", resp.StatusCode, err)
		}
		sessions = append(sessions, session{mr.Token, mr.WMID})
	}

	// Four of them fetch the rendition through the edge as a player does.
	get := func(u string) []byte {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %v", u, resp.StatusCode, err)
		}
		return b
	}
	fetch := func(s session) (init []byte, segs [][]byte) {
		base, _ := url.Parse(pub.URL + "/t/" + s.token + "/assets/" + assetID + "/" + asset.HLSMedia(m.Video[0].Name).Path())
		sc := bufio.NewScanner(bytes.NewReader(get(base.String())))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, "#EXT-X-MAP:URI="):
				u, _ := base.Parse(strings.Trim(strings.TrimPrefix(line, "#EXT-X-MAP:URI="), `"`))
				init = get(u.String())
			case line != "" && !strings.HasPrefix(line, "#"):
				u, _ := base.Parse(line)
				segs = append(segs, get(u.String()))
			}
		}
		return init, segs
	}
	colluders := []int{3, 8, 12, 17}
	var inits [][]byte
	var streams [][][]byte
	for _, i := range colluders {
		init, segs := fetch(sessions[i])
		if len(segs) != len(m.Video[0].Segments) {
			t.Fatalf("session %d: %d segments, the asset has %d", i, len(segs), len(m.Video[0].Segments))
		}
		inits, streams = append(inits, init), append(streams, segs)
	}
	// The mix: each segment from one of the four at random.
	var mixed bytes.Buffer
	mixed.Write(inits[0])
	rng := rand.New(rand.NewPCG(4, 4))
	for k := range streams[0] {
		mixed.Write(streams[rng.IntN(len(streams))][k])
	}
	mp := filepath.Join(t.TempDir(), "mixed.mp4")
	if err := os.WriteFile(mp, mixed.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	leak := testmedia.Reencode(t, mp, "-c:v", "libx264", "-preset", "veryfast", "-crf", "28")

	t.Setenv("ABSEAL_S3_SECRET_KEY", f.MinIO.SecretKey)
	var out bytes.Buffer
	if err := run(ctx, []string{"--bucket", "assets", "--asset-id", assetID, "--s3-endpoint", f.MinIO.Endpoint,
		"--s3-access-key", f.MinIO.AccessKey, "--kek-uri", f.KEKPath, "--watermark-key", f.WMKey,
		"--suspect", leak, "--nats-url", f.NATS.URL, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var acc detect.Accusation
	if err := json.Unmarshal(out.Bytes(), &acc); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	var guilty []uint64
	for _, i := range colluders {
		guilty = append(guilty, sessions[i].wmid)
	}
	var accused []uint64
	for _, a := range acc.Accused {
		accused = append(accused, a.WMID)
		if !slices.Contains(guilty, a.WMID) {
			t.Errorf("innocent session %d accused (%+v)", a.WMID, a)
		}
	}
	t.Logf("colluders %v; %s %v from %d positions among %d sessions", guilty, acc.Verdict, accused, acc.Positions, acc.Sessions)
	if acc.Verdict != "accused" || len(accused) == 0 {
		t.Fatalf("verdict %s, want at least one of the colluders accused:\n%s", acc.Verdict, out.String())
	}
}
