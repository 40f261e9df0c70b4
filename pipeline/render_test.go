package pipeline_test

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/internal/testmedia"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/watermark"
)

type memStore struct {
	mu    sync.Mutex
	objs  map[string][]byte
	order []string
}

func (m *memStore) WriteObject(_ context.Context, ref asset.Ref, data []byte) error {
	key := ref.Path()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objs == nil {
		m.objs = map[string][]byte{}
	}
	m.objs[key] = data
	m.order = append(m.order, key)
	return nil
}

// Render with a watermark: positions follow the unmarked lead, both
// variants of every segment are stored with the size the manifests
// announce, and the manifests are the last objects written.
func TestRenderWatermark(t *testing.T) {
	p, err := profile.Parse([]byte(`{"name":"t","segment_duration":"1s","rungs":[
		{"name":"180p","size":180,"bitrate":300000,"crf":28,"preset":"ultrafast","h264_profile":"main"}],
		"audio":{"bitrate":64000,"sample_rate":48000}}`))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := watermark.DeriveAssetKey([]byte("render test master key, 32 bytes"), "r")
	emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var out memStore
	res, err := pipeline.Render(t.Context(), testmedia.Clip(t, "main.mp4"), p,
		pipeline.RenderOptions{Threads: 2, Watermark: &pipeline.WatermarkOptions{Embedder: emb, Unmarked: 2}}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Positions; len(got) != 6 || got[0] != -1 || got[1] != -1 || got[2] != 0 || got[5] != 3 {
		t.Fatalf("positions %v, want [-1 -1 0 1 2 3]", got)
	}
	r := res.Renditions[0]
	for _, s := range r.Segments {
		a := out.objs["180p/a/"+asset.SegmentFile(s.Number)]
		b := out.objs["180p/b/"+asset.SegmentFile(s.Number)]
		if len(a) == 0 || len(a) != len(b) || int64(len(a)) != s.Size {
			t.Errorf("segment %d: a %d bytes, b %d bytes, manifest says %d", s.Number, len(a), len(b), s.Size)
		}
		if err := cmaf.CheckBoxes(b); err != nil {
			t.Errorf("segment %d: %v", s.Number, err)
		}
	}
	n := len(out.order)
	last := strings.Join(out.order[n-3:], " ")
	if !strings.Contains(last, "hls/master.m3u8") || !strings.Contains(last, "dash/manifest.mpd") {
		t.Errorf("last objects written: %s", last)
	}
	if res.Objects != n {
		t.Errorf("result counts %d objects, %d written", res.Objects, n)
	}
}

// A source the ladder cannot fit (1 pixel wide) fails permanently.
func TestRenderLadderErrorPermanent(t *testing.T) {
	src := filepath.Join(t.TempDir(), "thin.mkv")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "color=size=1x64:rate=10:duration=1",
		"-c:v", "ffv1", "-pix_fmt", "gray", src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	_, err := pipeline.Render(t.Context(), src, profile.Default(), pipeline.RenderOptions{Threads: 2}, &memStore{})
	if !errors.Is(err, profile.ErrBadSource) || !pipeline.IsPermanent(err) {
		t.Fatalf("err = %v (permanent %v), want a permanent ErrBadSource", err, pipeline.IsPermanent(err))
	}
}
