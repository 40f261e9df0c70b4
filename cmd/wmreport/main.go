// Command wmreport measures the A/B watermark and prints a Markdown report
// (make wm-report) in three sections.
//
// Robustness at the defaults (defaults.go): the built-in profile (2 s
// segments, the default ladder), 32-bit wmids, a generated 5-minute
// camera-like source; 12 sessions per attack (re-encodes, crops, bars,
// mirroring, phone re-frames, rotation and perspective, picture in
// picture, a camcorder-like chain, frame rates, speed-ups, trims, cuts,
// dropped frames, photometric changes), each session's 720p stream
// attacked with the ffmpeg CLI and detected; then controls (unmarked
// copies and other content) decoded under hundreds of codes each. Hours on
// two cores: --jobs trials run at a time.
//
// Robustness, fast section (non-default settings: 0.5 s segments, 16-bit
// wmids, a generated textured clip): bit error rate, wmid identification,
// segments used and detection speed under attacks applied with the ffmpeg
// CLI to streams assembled for random sessions.
//
// Quality where viewers see it (the default ladder and settings, on a
// generated camera-like clip and the generated textured one): every rung's
// marked encode (variant A as stored) and an unmarked encode at the same
// CRF against the source, PSNR-Y, SSIM-Y and bitrate; then a trade-off
// table of embedding settings (strength, flat share, grid) against quality
// and detection after a CRF 28 re-encode at 640x360.
//
//	wmreport [--section all|defaults|robustness|quality] [--sessions 12] [--workdir DIR]
//	         [--jobs N] [--control-keys 200] [--defaults-clip FILE] [--defaults-attack NAME]...
//	         [--clip FILE] [--attack NAME]... [--quality-clip FILE] [--points S:F:G,...]
//
// --clip measures another clip in the fast robustness section (one that is
// shorter than the pattern gives bit error rates, but no session can be
// identified); --attack, repeatable, runs only the fast section's attacks
// named, --defaults-attack the defaults section's; --quality-clip measures
// another source in the quality section.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"log/slog"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/storage/fs"
	"github.com/abseal/abseal/transcode"
	"github.com/abseal/abseal/watermark"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	transcode.RouteLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)), slog.LevelError)
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "wmreport:", err)
		os.Exit(1)
	}
}

// An attack is what a pirate does to a session's stream, as ffmpeg output
// options.
type attack struct {
	name    string
	args    []string
	missing string // why this ffmpeg cannot run it; empty if it can
}

func attacks() []attack {
	a := []attack{
		{name: "libx264 CRF 28 at 640x360", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "28", "-vf", "scale=640:360"}},
		{name: "libx264 CRF 35 at 426x240", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "35", "-vf", "scale=426:240"}},
		{name: "10% crop, rescaled", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-vf", "crop=iw*0.9:ih*0.9,scale=640:360"}},
		{name: "fps=25", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-vf", "fps=25"}},
		{name: "first 3.3 s trimmed", args: []string{"-ss", "3.3", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23"}},
		{name: "off-centre crop, rescaled", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-vf", "crop=iw-48:ih-40:0:0,scale=640:360"}},
		{name: "scaled to 95 %, letterboxed", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-vf", "scale=608:342,pad=640:360:16:9"}},
		{name: "mirrored, off-centre crop", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-vf", "hflip,crop=iw*0.85:ih*0.9:iw*0.1:ih*0.04,scale=640:360"}},
		{name: "phone re-frame 9:16", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-vf", "crop=ih*9/16:ih:iw*0.3:0,scale=360:640"}},
		{name: "rotated 3°, perspective", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "26", "-vf",
			"rotate=3*PI/180:ow=iw:oh=ih,perspective=x0=12:y0=8:x1=630:y1=0:x2=0:y2=350:x3=622:y3=360"}},
		{name: "picture in picture 50 %", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-filter_complex",
			"smptehdbars=size=640x360:rate=30,format=yuv420p[bg];[0:v]scale=320:180[s];[bg][s]overlay=280:150:shortest=1"}},
		{name: "camcorder-like (perspective, rotation, blur, noise, gamma, 25 fps, 480p CRF 30)", args: []string{"-c:v", "libx264", "-preset", "veryfast", "-crf", "30", "-vf",
			"perspective=x0=10:y0=6:x1=628:y1=2:x2=4:y2=352:x3=634:y3=358,rotate=1.5*PI/180:ow=iw:oh=ih,gblur=sigma=1.2,noise=alls=6:allf=t,eq=gamma=1.15:contrast=1.1,fps=25,scale=854:480"}},
	}
	x265 := attack{name: "libx265 CRF 30", args: []string{"-c:v", "libx265", "-preset", "veryfast", "-crf", "30", "-x265-params", "log-level=error"}}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); err != nil || !strings.Contains(string(out), "libx265") {
		x265.missing = "this ffmpeg has no libx265 encoder"
	}
	return append(a, x265)
}

// pick returns the attacks named, in the order named; none named is all of
// them. A named attack that this ffmpeg cannot run is an error.
func pick(all []attack, names []string) ([]attack, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []attack
	for _, n := range names {
		i := slices.IndexFunc(all, func(a attack) bool { return a.name == n })
		if i < 0 {
			var have []string
			for _, a := range all {
				have = append(have, strconv.Quote(a.name))
			}
			return nil, fmt.Errorf("no attack %q (have %s)", n, strings.Join(have, ", "))
		}
		if all[i].missing != "" {
			return nil, fmt.Errorf("attack %s: %s", n, all[i].missing)
		}
		out = append(out, all[i])
	}
	return out, nil
}

const (
	segDur   = 500 * time.Millisecond
	unmarked = asset.DefaultUnmarked
	idBits   = 16
	master   = "wm-report master key, 32 bytes.."
)

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("wmreport", flag.ContinueOnError)
	sessions := fl.Int("sessions", 12, "sessions (random wmids) per attack")
	work := fl.String("workdir", "", "working directory (default: a temp dir, removed)")
	clip := fl.String("clip", "", "source clip (default: a generated textured 640x360 30 fps 56 s clip)")
	var names []string
	fl.Func("attack", "run only this attack, by its name in the table (repeatable; default: all)", func(s string) error {
		names = append(names, s)
		return nil
	})
	section := fl.String("section", "all", "which part of the report: defaults, robustness (the fast section), quality or all")
	var defaultsNames []string
	fl.Func("defaults-attack", "run only this attack of the defaults section, by its name in the table (repeatable; default: all)", func(s string) error {
		defaultsNames = append(defaultsNames, s)
		return nil
	})
	defaultsClip := fl.String("defaults-clip", "", "source of the defaults section (default: the generated camera-like 5-minute clip)")
	jobs := fl.Int("jobs", runtime.NumCPU(), "defaults section: trials (attack + detection) run at a time")
	controlKeys := fl.Int("control-keys", 200, "defaults section: codes each control suspect is decoded under (the asset's and other assets')")
	pointList := fl.String("points", "3:0.4:12,3:0:8,2:0.08:8,3:0.08:8,3:0.2:8,4:0.08:8", "settings of the quality section's trade-off table, as strength:flat:grid, comma-separated (empty: none)")
	qualityClip := fl.String("quality-clip", "", "source of the quality section (default: the generated natural and textured 1080p clips)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *sessions < 1 {
		return errors.New("--sessions must be at least 1")
	}
	if !slices.Contains([]string{"all", "defaults", "robustness", "quality"}, *section) {
		return fmt.Errorf("--section %q: want defaults, robustness, quality or all", *section)
	}
	if *jobs < 1 {
		return errors.New("--jobs must be at least 1")
	}
	points, err := parsePoints(*pointList)
	if err != nil {
		return fmt.Errorf("--points: %w", err)
	}
	chosen, err := pick(attacks(), names)
	if err != nil {
		return err
	}
	dir := *work
	if dir == "" {
		d, err := os.MkdirTemp("", "abseal-wmreport-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "wmreport: "+format+"\n", a...) }
	fmt.Fprintf(stdout, "# abseal watermark report\n")
	if *section == "all" || *section == "defaults" {
		if err := defaultsSection(ctx, stdout, logf, dir, *defaultsClip, defaultsNames, *sessions, *jobs, *controlKeys); err != nil {
			return err
		}
	}
	if *section == "defaults" {
		return nil
	}
	if *section != "quality" {
		if err := robustnessSection(ctx, stdout, logf, dir, *clip, chosen, *sessions); err != nil {
			return err
		}
	}
	if *section == "robustness" {
		return nil
	}
	var sources []qualitySource
	if *qualityClip != "" {
		sources = []qualitySource{{filepath.Base(*qualityClip), *qualityClip}}
	} else {
		root, err := devenv.ModuleRoot()
		if err != nil {
			return err
		}
		for _, c := range []qualitySource{
			{"natural (generated camera-like clip: smooth, moving, low grain; 1920x1080, 30 fps, 20 s)", "natural-1080p30.mp4"},
			{"textured (generated Mandelbrot zoom under full-frame noise; 1920x1080, 30 fps, 30 s)", "hd-1080p30.mp4"},
		} {
			logf("generating %s", c.path)
			if out, err := exec.CommandContext(ctx, filepath.Join(root, "testdata", "make-clips.sh"), dir, c.path).CombinedOutput(); err != nil {
				return fmt.Errorf("make clip: %v: %s", err, out)
			}
			sources = append(sources, qualitySource{c.label, filepath.Join(dir, c.path)})
		}
	}
	return qualitySection(ctx, stdout, logf, dir, sources, points, min(*sessions, 6))
}

// robustnessSection is the table of attacks: a marked 0.5 s-segment asset
// of clip (default: the generated report clip), sessions assembled from it,
// attacked and detected.
func robustnessSection(ctx context.Context, stdout io.Writer, logf func(string, ...any), dir, clipPath string, chosen []attack, nsessions int) error {
	clip, sessions := &clipPath, &nsessions

	src, source := *clip, filepath.Base(*clip)
	if src == "" {
		root, err := devenv.ModuleRoot()
		if err != nil {
			return err
		}
		logf("generating the source clip")
		if out, err := exec.CommandContext(ctx, filepath.Join(root, "testdata", "make-clips.sh"), dir, "report-30fps-56s.mp4").CombinedOutput(); err != nil {
			return fmt.Errorf("make clip: %v: %s", err, out)
		}
		src, source = filepath.Join(dir, "report-30fps-56s.mp4"), "generated textured clip, 640x360, 30 fps, 56 s"
	}
	p, err := profile.Parse([]byte(`{"name":"report","segment_duration":"0.5s","rungs":[
		{"name":"360p","size":360,"bitrate":1000000,"crf":23,"preset":"veryfast","h264_profile":"high"}],"audio":{"bitrate":0}}`))
	if err != nil {
		return err
	}
	key, err := watermark.DeriveAssetKey([]byte(master), "report")
	if err != nil {
		return err
	}
	emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(segDur))
	if err != nil {
		return err
	}

	// The marked asset, measuring each frame before and after the mark.
	var q quality
	hook := func(f *transcode.Frame) error {
		if asset.Position(f.Segment, unmarked) < 0 {
			return nil
		}
		orig := append([]byte(nil), f.Luma...)
		emb.Embed(f.Luma, f.Stride, f.Width, f.Height, f.Segment, f.PTS, 1-2*f.Variant)
		q.add(watermark.PSNR(orig, f.Luma, f.Width, f.Height, f.Stride), watermark.SSIM(orig, f.Luma, f.Width, f.Height, f.Stride))
		return nil
	}
	logf("rendering the watermarked asset (variants a and b)")
	assetDir := filepath.Join(dir, "asset")
	marked, err := render(ctx, src, p, assetDir, pipeline.RenderOptions{Variants: 2, Hook: hook})
	if err != nil {
		return err
	}
	logf("rendering an unmarked encode with the same settings")
	plainDir := filepath.Join(dir, "plain")
	plain, err := render(ctx, src, p, plainDir, pipeline.RenderOptions{})
	if err != nil {
		return err
	}
	var sizes [3]int64
	for i, c := range []struct {
		dir string
		res *pipeline.RenderResult
		v   string
	}{{assetDir, marked, asset.VariantA}, {assetDir, marked, asset.VariantB}, {plainDir, plain, asset.VariantA}} {
		if sizes[i], err = variantBytes(c.dir, c.res, c.v); err != nil {
			return err
		}
	}
	sizeA, sizeB, sizePlain := sizes[0], sizes[1], sizes[2]

	logf("decoding the reference")
	ref, err := detect.LocalReference(ctx, assetDir, "360p", segDur, unmarked)
	if err != nil {
		return err
	}
	code, err := watermark.NewCode(key, idBits, 0)
	if err != nil {
		return err
	}
	// The hook marks like pipeline's watermark option does; the positions
	// are the same function of the segment index.
	var positions []int
	for k := range len(marked.Renditions[0].Segments) {
		positions = append(positions, asset.Position(k, unmarked))
	}
	var short string
	if n := len(positions) - unmarked; n < code.PatternLen() {
		if *clip == "" {
			return fmt.Errorf("%d marked segments, the pattern needs %d", n, code.PatternLen())
		}
		short = fmt.Sprintf("The clip has %d marked segments, fewer than the %d-bit pattern: no session can be identified.", n, code.PatternLen())
		logf("%s", short)
	}

	r := rand.New(rand.NewPCG(2026, 11))
	fmt.Fprintf(stdout, "\n## Robustness (fast section: non-default 0.5 s segments, 16-bit wmids, a generated clip)\n\n")
	fmt.Fprintf(stdout, "Source: %s; 0.5 s segments, first %d unmarked; wmid %d bits, pattern %d bits; %d sessions per attack.\n\n",
		source, unmarked, idBits, code.PatternLen(), *sessions)
	if short != "" {
		fmt.Fprintf(stdout, "%s\n\n", short)
	}
	fmt.Fprintf(stdout, "| attack | segments scored | bits called (\u2265 %.0f\u03c3) | bit error rate (called) | erased | sign errors (all scored) | identified | segments used | detection time / duration |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n", watermark.CallThreshold)
	var skipped []attack
	for _, at := range chosen {
		if at.missing != "" {
			logf("%s: skipped: %s", at.name, at.missing)
			skipped = append(skipped, at)
			continue
		}
		var decisions, wrong, erased, identified, used, scored, signWrong int
		var detTime, susTime time.Duration
		for s := range *sessions {
			wmid := uint64(r.Uint32()) & (1<<idBits - 1)
			pat, _ := code.Pattern(wmid)
			sess := filepath.Join(dir, fmt.Sprintf("session-%d.mp4", s))
			if err := detect.AssembleSession(assetDir, "360p", pat, positions, sess); err != nil {
				return err
			}
			leak := filepath.Join(dir, "leak.mp4")
			cmd := exec.CommandContext(ctx, "ffmpeg", append(append([]string{"-hide_banner", "-v", "error", "-y", "-i", sess}, at.args...), leak)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("attack %s: %v: %s", at.name, err, out)
			}
			t0 := time.Now()
			sus, dur, err := detect.DecodeSuspect(ctx, leak)
			if err != nil {
				return err
			}
			res, err := watermark.Detect(ref, sus, code)
			if err != nil {
				return err
			}
			detTime += time.Since(t0)
			susTime += dur
			used += res.SegmentsUsed
			if res.WMID != nil && *res.WMID == wmid {
				identified++
			} else if res.WMID != nil {
				return fmt.Errorf("attack %s: session %d named wmid %d instead of %d", at.name, s, *res.WMID, wmid)
			}
			for _, sc := range res.Segments {
				scored++
				if (sc.Score < 0) != (pat[sc.Position%len(pat)] == 1) {
					signWrong++ // the raw channel: A (bit 0) scores positive
				}
				if sc.Bit == nil {
					erased++
					continue
				}
				decisions++
				if *sc.Bit != int(pat[sc.Position%len(pat)]) {
					wrong++
				}
			}
		}
		ber := float64(wrong) / math.Max(1, float64(decisions))
		fmt.Fprintf(stdout, "| %s | %d | %d | %.2g | %d | %.3f | %d/%d | %d | %.2f |\n", at.name, scored, decisions, ber, erased,
			float64(signWrong)/math.Max(1, float64(scored)), identified, *sessions,
			used / *sessions, detTime.Seconds()/susTime.Seconds())
		logf("%s: BER %.2g over %d decisions, %d/%d identified", at.name, ber, decisions, identified, *sessions)
	}
	for _, at := range skipped {
		fmt.Fprintf(stdout, "\nNot measured: %s (%s).\n", at.name, at.missing)
	}
	fmt.Fprintf(stdout, "\nQuality of the marked frames before encoding (%d frames, both variants): PSNR-Y mean %.1f dB, worst %.1f dB; SSIM mean %.4f, worst %.4f.\n",
		q.n, q.psnrMean(), q.psnrWorst, q.ssim/float64(q.n), q.ssimWorst)
	fmt.Fprintf(stdout, "Size of the encodes at the same settings: unmarked %d bytes, variant a %d (%+.2f %%), variant b %d (%+.2f %%).\n",
		sizePlain, sizeA, 100*(float64(sizeA)/float64(sizePlain)-1), sizeB, 100*(float64(sizeB)/float64(sizePlain)-1))
	return nil
}

type quality struct {
	n                    int
	psnr, ssim           float64
	psnrWorst, ssimWorst float64
	inf                  int
}

func (q *quality) add(p, s float64) {
	if q.n == 0 {
		q.psnrWorst, q.ssimWorst = math.Inf(1), 1
	}
	q.n++
	q.ssim += s
	q.ssimWorst = min(q.ssimWorst, s)
	if math.IsInf(p, 1) {
		q.inf++ // a frame at a ramp's zero: unchanged
		return
	}
	q.psnr += p
	q.psnrWorst = min(q.psnrWorst, p)
}

func (q *quality) psnrMean() float64 { return q.psnr / float64(q.n-q.inf) }

func render(ctx context.Context, src string, p *profile.Profile, dir string, opts pipeline.RenderOptions) (*pipeline.RenderResult, error) {
	st, err := fs.New(dir)
	if err != nil {
		return nil, err
	}
	opts.Threads = 0
	return pipeline.Render(ctx, src, p, opts, pipeline.StoreWriter{Store: st})
}

// variantBytes is the total size of a variant's segments of the 360p rung
// of a render into dir, as the files are stored.
func variantBytes(dir string, res *pipeline.RenderResult, v string) (int64, error) {
	var n int64
	for _, r := range res.Renditions {
		if r.Name != "360p" {
			continue
		}
		for i := range r.Segments {
			fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(asset.Segment(r.Name, v, i+1).Path())))
			if err != nil {
				return 0, err
			}
			n += fi.Size()
		}
		return n, nil
	}
	return 0, fmt.Errorf("the render has no 360p rendition")
}
