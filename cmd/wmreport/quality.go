package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/watermark"
)

// The quality section measures the mark where a viewer sees it: the
// encoded renditions of the default ladder, marked (variant A, as served)
// and unmarked at the same settings, each against the source scaled the
// way the ladder scales it (bicubic), with the ffmpeg CLI's psnr and ssim
// filters. The first segment is left out of every figure: it is unmarked
// (watermark position -1).

// qualitySource is one source of the quality section.
type qualitySource struct {
	label, path string
}

// rungQuality is one rendition's figures.
type rungQuality struct {
	name       string
	psnr, ssim float64
	bytes      int64
	seconds    float64
}

func (q rungQuality) kbps() float64 { return float64(q.bytes) * 8 / q.seconds / 1000 }

// renderQuality renders src along p into dir (marked when emb is set) and
// measures every rung's variant A from its second segment on.
func renderQuality(ctx context.Context, src string, p *profile.Profile, dir string, emb *watermark.Embedder) ([]rungQuality, *pipeline.RenderResult, error) {
	opts := pipeline.RenderOptions{}
	if emb != nil {
		opts.Watermark = &pipeline.WatermarkOptions{Embedder: emb, Unmarked: unmarked}
	}
	res, err := render(ctx, src, p, dir, opts)
	if err != nil {
		return nil, nil, err
	}
	var out []rungQuality
	for _, r := range res.Renditions {
		q, err := measureRung(ctx, src, dir, r, time.Duration(p.SegmentDuration))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, q)
	}
	return out, res, nil
}

var (
	psnrY = regexp.MustCompile(`PSNR y:([0-9.]+|inf)`)
	ssimY = regexp.MustCompile(`SSIM Y:([0-9.]+)`)
)

// measureRung joins rendition r's init and variant A segments of the render
// in dir and compares them, from the second segment on, with src scaled to
// the rendition's size.
func measureRung(ctx context.Context, src, dir string, r cmaf.Rendition, segDur time.Duration) (rungQuality, error) {
	q := rungQuality{name: r.Name}
	if len(r.Segments) < 2 {
		return q, fmt.Errorf("%s: %d segments, want at least 2", r.Name, len(r.Segments))
	}
	joined := filepath.Join(dir, r.Name+"-a.mp4")
	f, err := os.Create(joined)
	if err != nil {
		return q, err
	}
	defer os.Remove(joined)
	refs := []asset.Ref{asset.Init(r.Name)}
	for _, s := range r.Segments {
		refs = append(refs, asset.Segment(r.Name, asset.VariantA, s.Number))
	}
	for i, ref := range refs {
		in, err := os.Open(filepath.Join(dir, filepath.FromSlash(ref.Path())))
		if err != nil {
			f.Close()
			return q, err
		}
		_, err = io.Copy(f, in)
		in.Close()
		if err != nil {
			f.Close()
			return q, err
		}
		if i >= 2 { // segments from the second on
			q.bytes += r.Segments[i-1].Size
			q.seconds += float64(r.Segments[i-1].Duration) / float64(r.Timescale)
		}
	}
	if err := f.Close(); err != nil {
		return q, err
	}
	from := strconv.FormatFloat(segDur.Seconds(), 'f', -1, 64)
	graph := fmt.Sprintf("[0:v]trim=start=%[1]s,setpts=PTS-STARTPTS,format=yuv420p,split[d1][d2];"+
		"[1:v]format=yuv420p,scale=%[2]d:%[3]d:flags=bicubic,setsar=1,trim=start=%[1]s,setpts=PTS-STARTPTS,split[r1][r2];"+
		"[d1][r1]psnr;[d2][r2]ssim", from, r.Width, r.Height)
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-i", joined, "-i", src, "-lavfi", graph, "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return q, fmt.Errorf("%s: ffmpeg psnr/ssim: %v: %s", r.Name, err, out)
	}
	pm, sm := psnrY.FindSubmatch(out), ssimY.FindSubmatch(out)
	if pm == nil || sm == nil {
		return q, fmt.Errorf("%s: ffmpeg printed no PSNR or SSIM:\n%s", r.Name, out)
	}
	if q.psnr, err = strconv.ParseFloat(string(pm[1]), 64); err != nil {
		q.psnr = math.Inf(1)
	}
	q.ssim, _ = strconv.ParseFloat(string(sm[1]), 64)
	return q, nil
}

// qualitySection writes the marked-vs-unmarked table of every source, then
// the strength trade-off on the first source.
func qualitySection(ctx context.Context, stdout io.Writer, logf func(string, ...any), dir string, sources []qualitySource, points []tradeoffPoint, sessions int) error {
	p := profile.Default()
	segDur := time.Duration(p.SegmentDuration)
	key, err := watermark.DeriveAssetKey([]byte(master), "quality")
	if err != nil {
		return err
	}
	def := watermark.DefaultParams(segDur)
	fmt.Fprintf(stdout, "\n## Quality where viewers see it\n\n")
	fmt.Fprintf(stdout, "Default ladder and settings (2 s segments, CRF %d, libx264 %s); variant A as stored (padded to B's size) against the source scaled to the rung (bicubic), from the second segment on (the first is unmarked). Goals on natural footage: |ΔPSNR-Y| <= 0.5 dB, size within ±3 %%.\n", p.Rungs[0].CRF, p.Rungs[0].Preset)
	unmarkedBy := map[string][]rungQuality{}
	for i, s := range sources {
		logf("quality: %s: unmarked render", s.label)
		plain, _, err := renderQuality(ctx, s.path, p, filepath.Join(dir, fmt.Sprintf("q%d-plain", i)), nil)
		if err != nil {
			return fmt.Errorf("quality %s: %w", s.label, err)
		}
		unmarkedBy[s.label] = plain
		logf("quality: %s: marked render (strength %g)", s.label, def.Strength)
		emb, err := watermark.NewEmbedder(key, def)
		if err != nil {
			return err
		}
		mdir := filepath.Join(dir, fmt.Sprintf("q%d-marked", i))
		marked, _, err := renderQuality(ctx, s.path, p, mdir, emb)
		if err != nil {
			return fmt.Errorf("quality %s: %w", s.label, err)
		}
		os.RemoveAll(mdir)
		fmt.Fprintf(stdout, "\nSource: %s.\n\n", s.label)
		fmt.Fprintf(stdout, "| rung | PSNR-Y unmarked | PSNR-Y marked | ΔPSNR-Y | SSIM-Y unmarked | SSIM-Y marked | kb/s unmarked | kb/s marked | Δsize |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for j, m := range marked {
			u := plain[j]
			fmt.Fprintf(stdout, "| %s | %.2f dB | %.2f dB | %+.2f dB | %.4f | %.4f | %.0f | %.0f | %+.1f %% |\n", m.name, u.psnr, m.psnr, m.psnr-u.psnr,
				u.ssim, m.ssim, u.kbps(), m.kbps(), 100*(float64(m.bytes)/float64(u.bytes)-1))
		}
	}
	if len(points) == 0 || len(sources) == 0 {
		return nil
	}
	s := sources[0]
	plain := unmarkedBy[s.label]
	fmt.Fprintf(stdout, "\nTrade-off on %s: quality of the top and bottom rungs against the unmarked encodes above, and detection of sessions assembled from the top rung, re-encoded with libx264 CRF 28 at 640x360 (%d sessions; the per-segment |z| of the detector, a segment is called from %.0fσ). Strength: peak change in luma levels in textured areas; flat: the share of it flat areas get; grid: pattern cells across the shorter side.\n\n", s.label, sessions, watermark.CallThreshold)
	fmt.Fprintf(stdout, "| strength, flat, grid | ΔPSNR-Y %s | Δsize %s | ΔPSNR-Y %s | Δsize %s | median \\|z\\| | 10th percentile \\|z\\| | sign errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
		plain[0].name, plain[0].name, plain[len(plain)-1].name, plain[len(plain)-1].name)
	for i, pt := range points {
		params := def
		params.Strength, params.Flat, params.Grid = pt.strength, pt.flat, pt.grid
		emb, err := watermark.NewEmbedder(key, params)
		if err != nil {
			return err
		}
		logf("quality: trade-off: %s", pt)
		mdir := filepath.Join(dir, fmt.Sprintf("t-%d", i))
		marked, res, err := renderQuality(ctx, s.path, p, mdir, emb)
		if err != nil {
			return err
		}
		med, p10, wrong, total, err := detectAttacked(ctx, mdir, res, key, segDur, sessions, filepath.Join(dir, "t-sessions"))
		if err != nil {
			return err
		}
		os.RemoveAll(mdir)
		top, bot := marked[0], marked[len(marked)-1]
		mark := ""
		if pt.strength == def.Strength && pt.flat == def.Flat && pt.grid == def.Grid {
			mark = " (default)"
		}
		fmt.Fprintf(stdout, "| %s%s | %+.2f dB | %+.1f %% | %+.2f dB | %+.1f %% | %.1f | %.1f | %d of %d |\n", pt, mark,
			top.psnr-plain[0].psnr, 100*(float64(top.bytes)/float64(plain[0].bytes)-1),
			bot.psnr-plain[len(plain)-1].psnr, 100*(float64(bot.bytes)/float64(plain[len(plain)-1].bytes)-1),
			med, p10, wrong, total)
	}
	return nil
}

// tradeoffPoint is one setting of the trade-off table.
type tradeoffPoint struct {
	strength, flat float64
	grid           int
}

func (p tradeoffPoint) String() string { return fmt.Sprintf("%g, %g, %d", p.strength, p.flat, p.grid) }

// parsePoints reads strength:flat:grid triples, comma-separated.
func parsePoints(s string) ([]tradeoffPoint, error) {
	var out []tradeoffPoint
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		parts := strings.Split(f, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%q: want strength:flat:grid", f)
		}
		st, err1 := strconv.ParseFloat(parts[0], 64)
		fl, err2 := strconv.ParseFloat(parts[1], 64)
		g, err3 := strconv.Atoi(parts[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%q: %v", f, err)
		}
		if _, err := watermark.NewEmbedder(make([]byte, 32), watermark.Params{Grid: g, Strength: st, Flat: fl, SegmentDuration: time.Second}); err != nil {
			return nil, fmt.Errorf("%q: %v", f, err)
		}
		out = append(out, tradeoffPoint{st, fl, g})
	}
	return out, nil
}

// detectAttacked assembles sessions from the top rung of the render in dir,
// re-encodes each with libx264 CRF 28 at 640x360 and scores every segment:
// the median and 10th percentile of |z|, and how many segments' signs are
// wrong.
func detectAttacked(ctx context.Context, dir string, res *pipeline.RenderResult, key []byte, segDur time.Duration, sessions int, work string) (med, p10 float64, wrong, total int, err error) {
	if err := os.MkdirAll(work, 0o755); err != nil {
		return 0, 0, 0, 0, err
	}
	defer os.RemoveAll(work)
	rung := res.Renditions[0].Name
	ref, err := detect.LocalReference(ctx, dir, rung, segDur, unmarked)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	code, err := watermark.NewCode(key, watermark.DefaultIDBits, 0)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	r := rand.New(rand.NewPCG(17, 2026))
	var zs []float64
	for s := range sessions {
		wmid := uint64(r.Uint32())
		pat, err := code.Pattern(wmid)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		sess := filepath.Join(work, fmt.Sprintf("session-%d.mp4", s))
		if err := detect.AssembleSession(dir, rung, pat, ref.Positions, sess); err != nil {
			return 0, 0, 0, 0, err
		}
		leak := filepath.Join(work, "leak.mp4")
		cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-v", "error", "-y", "-i", sess,
			"-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-vf", "scale=640:360", "-an", leak)
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, 0, 0, fmt.Errorf("attack: %v: %s", err, out)
		}
		sus, _, err := detect.DecodeSuspect(ctx, leak)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		det, err := watermark.Detect(ref, sus, code)
		if err != nil {
			return 0, 0, 0, 0, err
		}
		for _, sc := range det.Segments {
			zs = append(zs, math.Abs(sc.Score))
			total++
			if (sc.Score < 0) != (pat[sc.Position%len(pat)] == 1) {
				wrong++
			}
		}
	}
	if len(zs) == 0 {
		return 0, 0, 0, 0, fmt.Errorf("no segment scored")
	}
	slices.Sort(zs)
	return zs[len(zs)/2], zs[len(zs)/10], wrong, total, nil
}
