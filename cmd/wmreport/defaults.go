package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/internal/devenv"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/watermark"
)

// The defaults section is the robustness table at what a user gets out of
// the box: the built-in profile (2 s segments, the default ladder), 32-bit
// wmids with their 32-bit tag, one leading unmarked segment, a 5-minute
// camera-like source of shots cut together (testdata/make-clips.sh
// natural-shots-300s.mp4, 1280x720, 30 fps). Each session's 720p stream is
// assembled from the asset, attacked with the ffmpeg CLI and detected the
// way cmd/detect --asset does.
//
// Controls count false identifications under the full search: unmarked
// copies of the source and other content, each registered once and decoded
// under the asset's code and controlKeys-1 other assets' codes
// (watermark.DetectCodes: the search does not depend on the code, so one
// registration gives every key a trial under the same search). Every
// session's stream is also decoded under otherKeys other assets' codes: a
// strongly marked suspect read with the wrong code must name no one.

const (
	defaultsRendition = "720p"
	defaultsAssetID   = "wm-report-defaults"
	otherKeys         = 4
)

// defaultsAttacks are the attacks of the defaults section, as ffmpeg output
// options on a 1280x720 30 fps session stream (sizes relative where ffmpeg
// allows).
func defaultsAttacks() []attack {
	x264 := func(crf string, more ...string) []string {
		return append([]string{"-c:v", "libx264", "-preset", "veryfast", "-crf", crf}, more...)
	}
	a := []attack{
		{name: "CRF 28 at 640x360", args: x264("28", "-vf", "scale=640:360")},
		{name: "CRF 35 at 426x240", args: x264("35", "-vf", "scale=426:240")},
		{name: "10 % centred crop, rescaled", args: x264("23", "-vf", "crop=iw*0.9:ih*0.9,scale=1280:720")},
		{name: "off-centre crop (right and bottom), rescaled", args: x264("23", "-vf", "crop=iw*0.96:ih*0.94:0:0,scale=1280:720")},
		{name: "scaled to 95 %, letterboxed", args: x264("23", "-vf", "scale=1216:684,pad=1280:720:32:18")},
		{name: "squeezed to 4:3, pillarboxed", args: x264("23", "-vf", "scale=960:720,pad=1280:720:160:0")},
		{name: "mirrored, off-centre crop", args: x264("23", "-vf", "hflip,crop=iw*0.85:ih*0.9:iw*0.1:ih*0.04,scale=1280:720")},
		{name: "phone re-frame: 9:16 off-centre at 360x640", args: x264("26", "-vf", "crop=ih*9/16:ih:iw*0.3:0,scale=360:640")},
		{name: "rotated 3°, perspective", args: x264("26", "-vf",
			"rotate=3*PI/180:ow=iw:oh=ih,perspective=x0=W*0.02:y0=H*0.02:x1=W*0.985:y1=0:x2=0:y2=H*0.975:x3=W*0.975:y3=H")},
		{name: "picture in picture at 50 % over a test card", args: x264("23", "-filter_complex",
			"smptehdbars=size=1280x720:rate=30,format=yuv420p[bg];[0:v]scale=640:360[s];[bg][s]overlay=560:300:shortest=1")},
		{name: "camcorder-like (perspective, rotation 1.5°, blur, grain, gamma, 25 fps, 480p CRF 30)", args: x264("30", "-vf",
			"perspective=x0=W*0.016:y0=H*0.017:x1=W*0.98:y1=H*0.006:x2=W*0.006:y2=H*0.98:x3=W*0.99:y3=H*0.995,rotate=1.5*PI/180:ow=iw:oh=ih,gblur=sigma=1.2,noise=alls=6:allf=t,eq=gamma=1.15:contrast=1.1,fps=25,scale=854:480")},
		{name: "handheld: framing drifts (±4 % pan, ±3 % tilt) and rolls ±1°, 480p CRF 28", args: x264("28", "-vf",
			"crop=w=iw*0.88:h=ih*0.88:x='(iw-ow)/2+iw*0.04*sin(2*PI*t/17)':y='(ih-oh)/2+ih*0.03*cos(2*PI*t/23)',rotate='PI/180*sin(2*PI*t/29)':ow=iw:oh=ih,scale=854:480")},
		{name: "25 fps", args: x264("23", "-vf", "fps=25")},
		{name: "23.976 fps", args: x264("23", "-vf", "fps=24000/1001")},
		{name: "60 fps", args: x264("23", "-vf", "fps=60")},
		{name: "played 4.3 % fast (PAL speed-up)", args: x264("23", "-vf", "setpts=PTS/1.0427")},
		{name: "first 7.3 s and last 20 s trimmed", args: x264("23", "-ss", "7.3", "-t", "272.7")},
		{name: "30 s cut out of the middle", args: x264("23", "-vf", "select='not(between(t,120,150))',setpts=N/FRAME_RATE/TB")},
		{name: "1 frame in 25 dropped, the previous one repeated", args: x264("23", "-vf", "select='not(eq(mod(n,25),11))',fps=30")},
		{name: "1 frame in 50 dropped, the timeline closed up", args: x264("23", "-vf", "select='not(eq(mod(n,50),23))',setpts=N/FRAME_RATE/TB")},
		{name: "gamma, contrast, brightness, saturation", args: x264("23", "-vf", "eq=gamma=1.3:contrast=1.2:brightness=0.03:saturation=1.4")},
		{name: "colour graded (warm, lifted blacks)", args: x264("23", "-vf", "colorbalance=rs=0.1:gs=0.02:bs=-0.1:rm=0.05:bm=-0.05,curves=all='0/0.06 0.5/0.52 1/0.95'")},
		{name: "limited range stretched to full range", args: x264("23", "-vf", "scale=in_range=tv:out_range=pc", "-color_range", "pc")},
	}
	x265 := attack{name: "libx265 CRF 30", args: []string{"-c:v", "libx265", "-preset", "veryfast", "-crf", "30", "-x265-params", "log-level=error"}}
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); err != nil || !strings.Contains(string(out), "libx265") {
		x265.missing = "this ffmpeg has no libx265 encoder"
	}
	return append(a, x265)
}

// A control is a suspect that carries no session of the asset.
type control struct {
	name string
	// input args (before -i) and output args of the ffmpeg command that
	// makes it from the source (or from other content when other is set)
	in, out []string
	other   bool
}

func defaultsControls() []control {
	x264 := []string{"-c:v", "libx264", "-preset", "veryfast"}
	return []control{
		{name: "the source, unmarked, CRF 23", out: append(slices.Clone(x264), "-crf", "23")},
		{name: "the source, unmarked, CRF 28 at 640x360", out: append(slices.Clone(x264), "-crf", "28", "-vf", "scale=640:360")},
		{name: "the source, unmarked, phone re-frame", out: append(slices.Clone(x264), "-crf", "26", "-vf", "crop=ih*9/16:ih:iw*0.3:0,scale=360:640")},
		{name: "the source, unmarked, mirrored off-centre crop", out: append(slices.Clone(x264), "-crf", "23", "-vf", "hflip,crop=iw*0.85:ih*0.9:iw*0.1:ih*0.04,scale=1280:720")},
		{name: "other content (the textured clip looped to 5 min, 720p)", in: []string{"-stream_loop", "9"}, out: append(slices.Clone(x264), "-crf", "23", "-vf", "scale=1280:720", "-t", "300"), other: true},
		{name: "other content, CRF 28 at 640x360", in: []string{"-stream_loop", "9"}, out: append(slices.Clone(x264), "-crf", "28", "-vf", "scale=640:360", "-t", "300"), other: true},
	}
}

// trialResult is one session's detection under one attack; a line of
// the work directory's defaults-trials.jsonl, so an interrupted report
// resumes where it stopped.
type trialResult struct {
	Attack     string        `json:"attack"`
	Session    int           `json:"session"`
	WMID       uint64        `json:"wmid"`
	Identified bool          `json:"identified"`
	WrongID    bool          `json:"wrong_id"`
	Called     int           `json:"called"`
	WrongBits  int           `json:"wrong_bits"`
	MedianZ    float64       `json:"median_z"`
	Used       int           `json:"used"`
	Det        time.Duration `json:"detection_ns"`
	Dur        time.Duration `json:"duration_ns"`
	OtherFalse int           `json:"other_false"` // identifications under other assets' codes
	Transform  string        `json:"transform"`
}

// controlResult is one control suspect's trials (defaults-controls.jsonl).
type controlResult struct {
	Name     string  `json:"name"`
	Trials   int     `json:"trials"`
	FalseIDs int     `json:"false_ids"`
	Searched float64 `json:"searched"`
	Bound    float64 `json:"bound"`
}

// journal appends JSON lines to a file in the work directory and reads
// back what an earlier run of the report wrote there.
type journal struct {
	mu sync.Mutex
	f  *os.File
}

func openJournal[T any](path string) (*journal, []T, error) {
	var done []T
	torn := false
	if b, err := os.ReadFile(path); err == nil {
		torn = len(b) > 0 && b[len(b)-1] != '\n'
		for _, l := range strings.Split(string(b), "\n") {
			var v T
			if l == "" || json.Unmarshal([]byte(l), &v) != nil {
				continue // a line cut short by a kill
			}
			done = append(done, v)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, err
	}
	if torn {
		if _, err := f.Write([]byte{'\n'}); err != nil { // the next line starts on its own
			f.Close()
			return nil, nil, err
		}
	}
	return &journal{f: f}, done, nil
}

func (j *journal) add(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_, err = j.f.Write(append(b, '\n'))
	return err
}

func defaultsSection(ctx context.Context, stdout io.Writer, logf func(string, ...any), dir, clipPath string, names []string, nsessions, jobs, controlKeys int) error {
	if controlKeys < 1 {
		return errors.New("--control-keys must be at least 1")
	}
	all := defaultsAttacks()
	chosen, err := pick(all, names)
	if err != nil {
		return err
	}
	root, err := devenv.ModuleRoot()
	if err != nil {
		return err
	}
	src, source := clipPath, filepath.Base(clipPath)
	if src == "" {
		logf("defaults: generating the 5-minute source")
		if out, err := exec.CommandContext(ctx, filepath.Join(root, "testdata", "make-clips.sh"), dir, "natural-shots-300s.mp4").CombinedOutput(); err != nil {
			return fmt.Errorf("make clip: %v: %s", err, out)
		}
		src, source = filepath.Join(dir, "natural-shots-300s.mp4"), "generated camera-like shots cut together (natural-shots-300s.mp4), 1280x720, 30 fps, 5 min"
	}
	var otherSrc string
	needOther := false
	for _, c := range defaultsControls() {
		needOther = needOther || c.other
	}
	if needOther {
		if out, err := exec.CommandContext(ctx, filepath.Join(root, "testdata", "make-clips.sh"), dir, "hd-1080p30.mp4").CombinedOutput(); err != nil {
			return fmt.Errorf("make clip: %v: %s", err, out)
		}
		otherSrc = filepath.Join(dir, "hd-1080p30.mp4")
	}

	p := profile.Default()
	segDur := time.Duration(p.SegmentDuration)
	key, err := watermark.DeriveAssetKey([]byte(master), defaultsAssetID)
	if err != nil {
		return err
	}
	emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(segDur))
	if err != nil {
		return err
	}
	// The asset is rendered once per work directory: positions.json,
	// written after the render, says it is complete.
	assetDir := filepath.Join(dir, "defaults-asset")
	posFile := filepath.Join(dir, "defaults-positions.json")
	var positions []int
	if b, err := os.ReadFile(posFile); err == nil && json.Unmarshal(b, &positions) == nil && len(positions) > 0 {
		logf("defaults: reusing the asset rendered in %s", assetDir)
	} else {
		os.RemoveAll(assetDir)
		logf("defaults: rendering the marked asset (the default ladder, variants a and b)")
		t0 := time.Now()
		res, err := render(ctx, src, p, assetDir, pipeline.RenderOptions{Watermark: &pipeline.WatermarkOptions{Embedder: emb, Unmarked: unmarked}})
		if err != nil {
			return err
		}
		logf("defaults: rendered %s in %s", res.Duration.Round(time.Second), time.Since(t0).Round(time.Second))
		positions = res.Positions
		b, _ := json.Marshal(positions)
		if err := os.WriteFile(posFile, b, 0o600); err != nil {
			return err
		}
	}
	code, err := watermark.SessionCode([]byte(master), defaultsAssetID, watermark.DefaultIDBits, 0)
	if err != nil {
		return err
	}
	if n := len(positions) - unmarked; n < code.PatternLen() {
		return fmt.Errorf("defaults: %d marked segments, the pattern needs %d", n, code.PatternLen())
	}
	logf("defaults: decoding the %s reference", defaultsRendition)
	ref, err := detect.LocalReference(ctx, assetDir, defaultsRendition, segDur, unmarked)
	if err != nil {
		return err
	}
	// other[i] is another asset's code: the same master key, another id.
	var other []*watermark.Code
	for i := range max(otherKeys, controlKeys-1) {
		c, err := watermark.SessionCode([]byte(master), fmt.Sprintf("wm-report-control-%04d", i), watermark.DefaultIDBits, 0)
		if err != nil {
			return err
		}
		other = append(other, c)
	}

	// The trials: every (attack, session) pair, run by jobs workers.
	type trial struct {
		at      int
		session int
		wmid    uint64
	}
	jr, earlier, err := openJournal[trialResult](filepath.Join(dir, "defaults-trials.jsonl"))
	if err != nil {
		return err
	}
	defer jr.f.Close()
	results := make([][]trialResult, len(chosen))
	var trials []trial
	for i, at := range chosen {
		if at.missing != "" {
			continue
		}
		for s := range nsessions {
			// A session's wmid is a function of the attack and the session
			// number: the same whichever attacks a run picks.
			h := fnv.New64a()
			h.Write([]byte(at.name))
			wmid := uint64(rand.New(rand.NewPCG(h.Sum64(), uint64(s))).Uint32())
			if k := slices.IndexFunc(earlier, func(t trialResult) bool { return t.Attack == at.name && t.Session == s && t.WMID == wmid }); k >= 0 {
				results[i] = append(results[i], earlier[k])
				continue
			}
			trials = append(trials, trial{i, s, wmid})
		}
	}
	if n := nsessions*len(chosen) - len(trials); n > 0 {
		logf("defaults: %d trials done by an earlier run in this work directory", n)
	}
	var (
		mu       sync.Mutex
		firstErr error
		done     int
	)
	start := time.Now()
	work := make(chan trial)
	var wg sync.WaitGroup
	for w := range max(1, jobs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wdir := filepath.Join(dir, fmt.Sprintf("defaults-job-%d", w))
			if err := os.MkdirAll(wdir, 0o700); err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
				return
			}
			for tr := range work {
				mu.Lock()
				failed := firstErr != nil
				mu.Unlock()
				if failed {
					continue // drain: the report stops at the first error
				}
				at := chosen[tr.at]
				out, err := runTrial(ctx, wdir, assetDir, ref, code, other[:otherKeys], positions, at, tr.wmid)
				if err == nil {
					out.Attack, out.Session, out.WMID = at.name, tr.session, tr.wmid
					err = jr.add(out)
				}
				mu.Lock()
				if err != nil {
					firstErr = cmpErr(firstErr, fmt.Errorf("attack %s, session %d: %w", at.name, tr.session, err))
				} else {
					results[tr.at] = append(results[tr.at], out)
				}
				done++
				el := time.Since(start)
				logf("defaults: %d/%d %s, session %d: identified %v, %d called, %d wrong, detection %s (ETA %s)", done, len(trials), at.name, tr.session,
					out.Identified, out.Called, out.WrongBits, out.Det.Round(time.Second),
					time.Duration(float64(el)/float64(done)*float64(len(trials)-done)).Round(time.Minute))
				mu.Unlock()
			}
		}()
	}
	for _, tr := range trials {
		select {
		case work <- tr:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	fmt.Fprintf(stdout, "\n## Robustness at the defaults\n\n")
	fmt.Fprintf(stdout, "Source: %s. The built-in profile (%s segments, the default ladder), first %d segment unmarked, wmid %d bits + %d-bit tag (pattern %d positions); each session's %s stream assembled from the asset, attacked with the ffmpeg CLI (audio dropped), detected as `detect --asset` does; %d sessions (random wmids) per attack, %d trials at a time.\n\n",
		source, segDur, unmarked, watermark.DefaultIDBits, watermark.TagBits, code.PatternLen(), defaultsRendition, nsessions, max(1, jobs))
	fmt.Fprintf(stdout, "| attack | identified | wrong wmid | segments called (mean) | wrong bits (all sessions) | median \\|z\\| | other assets' codes: false identifications | detection time / duration | transform found (first session) |\n|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for i, at := range chosen {
		if at.missing != "" {
			continue
		}
		rs := results[i]
		var ident, wrongID, called, wrongBits, otherFalse int
		var det, dur time.Duration
		var zs []float64
		for _, t := range rs {
			if t.Identified {
				ident++
			}
			if t.WrongID {
				wrongID++
			}
			called += t.Called
			wrongBits += t.WrongBits
			otherFalse += t.OtherFalse
			det += t.Det
			dur += t.Dur
			zs = append(zs, t.MedianZ)
		}
		tf := ""
		if len(rs) > 0 {
			tf = rs[0].Transform
		}
		fmt.Fprintf(stdout, "| %s | %d/%d | %d | %.0f | %d | %.1f | %d of %d | %.2f | %s |\n", at.name, ident, len(rs), wrongID,
			float64(called)/math.Max(1, float64(len(rs))), wrongBits, median(zs), otherFalse, otherKeys*len(rs), det.Seconds()/math.Max(1e-9, dur.Seconds()), tf)
	}
	for _, at := range chosen {
		if at.missing != "" {
			fmt.Fprintf(stdout, "\nNot measured: %s (%s).\n", at.name, at.missing)
		}
	}

	// Controls.
	fmt.Fprintf(stdout, "\n### Controls at the defaults\n\nEach suspect is registered once under the full search and decoded under the asset's code and %d other assets' codes (`watermark.DetectCodes`).\n\n", controlKeys-1)
	fmt.Fprintf(stdout, "| suspect | trials | false identifications | alignments searched | bound per trial |\n|---|---:|---:|---:|---:|\n")
	codes := append([]*watermark.Code{code}, other[:controlKeys-1]...)
	cj, cdone, err := openJournal[controlResult](filepath.Join(dir, "defaults-controls.jsonl"))
	if err != nil {
		return err
	}
	defer cj.f.Close()
	totalTrials, totalFalse := 0, 0
	for i, c := range defaultsControls() {
		k := slices.IndexFunc(cdone, func(r controlResult) bool { return r.Name == c.name && r.Trials == len(codes) })
		var cr controlResult
		if k >= 0 {
			cr = cdone[k]
		} else {
			if cr, err = runControl(ctx, dir, i, c, src, otherSrc, ref, codes); err != nil {
				return err
			}
			if err := cj.add(cr); err != nil {
				return err
			}
		}
		totalTrials += cr.Trials
		totalFalse += cr.FalseIDs
		fmt.Fprintf(stdout, "| %s | %d | %d | %.0f | %.2g |\n", cr.Name, cr.Trials, cr.FalseIDs, cr.Searched, cr.Bound)
		logf("defaults: control %s: %d false identifications in %d trials", c.name, cr.FalseIDs, cr.Trials)
	}
	fmt.Fprintf(stdout, "\nControls: %d false identifications in %d trials.\n", totalFalse, totalTrials)
	return nil
}

// runControl makes control suspect c and decodes it under every code.
func runControl(ctx context.Context, dir string, i int, c control, src, otherSrc string, ref *watermark.Reference, codes []*watermark.Code) (controlResult, error) {
	in := src
	if c.other {
		in = otherSrc
	}
	sus := filepath.Join(dir, fmt.Sprintf("control-%d.mp4", i))
	defer os.Remove(sus)
	args := append(append(append([]string{"-hide_banner", "-v", "error", "-y"}, c.in...), "-i", in, "-an"), c.out...)
	if out, err := exec.CommandContext(ctx, "ffmpeg", append(args, sus)...).CombinedOutput(); err != nil {
		return controlResult{}, fmt.Errorf("control %s: %v: %s", c.name, err, out)
	}
	s, _, err := detect.DecodeSuspect(ctx, sus)
	if err != nil {
		return controlResult{}, fmt.Errorf("control %s: %w", c.name, err)
	}
	rs, err := watermark.DetectCodes(ref, s, codes)
	if err != nil {
		return controlResult{}, fmt.Errorf("control %s: %w", c.name, err)
	}
	cr := controlResult{Name: c.name, Trials: len(rs), Searched: rs[0].FalsePositiveBound / watermark.FalsePositiveBound, Bound: rs[0].FalsePositiveBound}
	for _, r := range rs {
		if r.WMID != nil {
			cr.FalseIDs++
		}
	}
	return cr, nil
}

// runTrial assembles the session wmid's stream, attacks it, detects it and
// decodes it under the other codes too.
func runTrial(ctx context.Context, wdir, assetDir string, ref *watermark.Reference, code *watermark.Code, other []*watermark.Code, positions []int, at attack, wmid uint64) (trialResult, error) {
	var out trialResult
	pat, err := code.Pattern(wmid)
	if err != nil {
		return out, err
	}
	sess := filepath.Join(wdir, "session.mp4")
	if err := detect.AssembleSession(assetDir, defaultsRendition, pat, positions, sess); err != nil {
		return out, err
	}
	leak := filepath.Join(wdir, "leak.mp4")
	args := append(append([]string{"-hide_banner", "-v", "error", "-y", "-i", sess, "-an"}, at.args...), leak)
	if o, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput(); err != nil {
		return out, fmt.Errorf("ffmpeg: %v: %s", err, o)
	}
	t0 := time.Now()
	sus, dur, err := detect.DecodeSuspect(ctx, leak)
	if err != nil {
		return out, err
	}
	rs, err := watermark.DetectCodes(ref, sus, append([]*watermark.Code{code}, other...))
	if err != nil {
		return out, err
	}
	out.Det, out.Dur = time.Since(t0), dur
	res := rs[0]
	out.Identified = res.WMID != nil && *res.WMID == wmid
	out.WrongID = res.WMID != nil && *res.WMID != wmid
	out.Used = res.SegmentsUsed
	var zs []float64
	for _, s := range res.Segments {
		zs = append(zs, math.Abs(s.Score))
		if s.Bit == nil {
			continue
		}
		out.Called++
		if *s.Bit != int(pat[s.Position%len(pat)]) {
			out.WrongBits++
		}
	}
	out.MedianZ = median(zs)
	for _, r := range rs[1:] {
		if r.WMID != nil {
			out.OtherFalse++
		}
	}
	out.Transform = fmt.Sprintf("crop %.2f, rate %.4f, offset %s", res.Crop, res.Rate, res.Offset.Round(10*time.Millisecond))
	if res.Transform != nil {
		out.Transform += fmt.Sprintf(", match %.2f", res.Transform.Match)
		if res.Transform.Mirrored {
			out.Transform += ", mirrored"
		}
	}
	if len(res.Cuts) > 0 {
		out.Transform += fmt.Sprintf(", %d cut(s)", len(res.Cuts))
	}
	os.Remove(leak)
	return out, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	return s[len(s)/2]
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}
