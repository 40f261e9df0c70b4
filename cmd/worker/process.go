package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/internal/cliconf"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/profile"
	"github.com/abseal/abseal/storage/fs"
	"github.com/abseal/abseal/watermark"
)

func runProcess(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("worker process", flag.ContinueOnError)
	fl.SetOutput(stderr)
	in := fl.String("in", "", "source video file")
	out := fl.String("out", "", "output directory (created; must be empty or absent)")
	profilePath := fl.String("profile", "", "profile JSON file (default: the built-in ladder)")
	variants := fl.Int("variants", 1, "encoders per rendition: 1 (a) or 2 (a and b)")
	play := fl.String("play", "a", "link the neutral segment paths to this variant so the manifests play locally (a, b or none)")
	threads := fl.Int("threads", 0, "CPU budget (0: all CPUs)")
	var (
		env  cliconf.Env
		kekc cliconf.KEK
		wk   cliconf.WatermarkKey
	)
	kekc.Flags(fl, &env)
	wk.Flags(fl, &env, "watermark-key", "", "watermark master key file, wrapped by --kek-uri's KEK (enables the A/B watermark and --variants 2)")
	assetID := fl.String("asset-id", "", "asset id for the watermark key (default: the input's base name)")
	unmarked := fl.Int("unmarked", asset.DefaultUnmarked, "leading segments left unmarked (watermark position -1)")
	if err := fl.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := env.Err(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *in == "" || *out == "" {
		fl.Usage()
		return fmt.Errorf("%w: --in and --out are required", errUsage)
	}
	if *play != "a" && *play != "b" && *play != "none" {
		return fmt.Errorf("%w: --play must be a, b or none", errUsage)
	}
	if *play == "b" && *variants < 2 && wk.Path == "" {
		return fmt.Errorf("%w: --play b needs --variants 2", errUsage)
	}
	p := profile.Default()
	if *profilePath != "" {
		var err error
		if p, err = profile.Load(*profilePath); err != nil {
			return err
		}
	}
	if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
		return fmt.Errorf("%w: output directory %s is not empty", errUsage, *out)
	}
	ropts := pipeline.RenderOptions{Variants: *variants, Threads: *threads}
	if wk.Path != "" {
		var kek *envelope.KEK
		if kekc.URI != "" {
			var err error
			if kek, err = kekc.Open(ctx); err != nil {
				return err
			}
		}
		master, err := wk.Read(kek, slog.New(slog.NewTextHandler(stderr, nil)))
		if err != nil {
			return err
		}
		id := *assetID
		if id == "" {
			id = strings.TrimSuffix(filepath.Base(*in), filepath.Ext(*in))
		}
		key, err := watermark.DeriveAssetKey(master, id)
		if err != nil {
			return err
		}
		emb, err := watermark.NewEmbedder(key, watermark.DefaultParams(time.Duration(p.SegmentDuration)))
		if err != nil {
			return err
		}
		ropts.Watermark = &pipeline.WatermarkOptions{Embedder: emb, Unmarked: *unmarked}
	}
	st, err := fs.New(*out)
	if err != nil {
		return err
	}
	start := time.Now()
	ropts.Progress = func(done, total time.Duration) {
		if total > 0 {
			fmt.Fprintf(stderr, "\rprocess: %5.1f%% (%s of %s)", 100*done.Seconds()/total.Seconds(), done.Round(time.Second), total.Round(time.Second))
		}
	}
	res, err := pipeline.Render(ctx, *in, p, ropts, pipeline.StoreWriter{Store: st})
	fmt.Fprintln(stderr)
	if err != nil {
		// Nothing half-done is left behind.
		os.RemoveAll(*out)
		return err
	}
	os.Remove(filepath.Join(st.Root(), ".abseal-tmp")) // the store's (now empty) temp dir
	if *play != "none" {
		if err := linkVariant(st.Root(), res, *play); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "processed %s in %s: %s of %dx%d %s\n", *in, time.Since(start).Round(time.Millisecond),
		res.Duration.Round(time.Millisecond), res.Info.Video.DisplayWidth, res.Info.Video.DisplayHeight, res.Info.Video.Codec)
	for _, r := range append(res.Renditions, deref(res.Audio)...) {
		peak, avg := r.Bandwidth()
		fmt.Fprintf(stdout, "  %-6s %-22s %4dx%-4d %3d segments  avg %5d kb/s  peak %5d kb/s\n",
			r.Name, r.Codecs, r.Width, r.Height, len(r.Segments), avg/1000, peak/1000)
	}
	fmt.Fprintf(stdout, "  %d objects, %d bytes in %s; manifests: %s, %s\n", res.Objects, res.Bytes, *out,
		filepath.Join(*out, filepath.FromSlash(asset.HLSMaster().Path())), filepath.Join(*out, filepath.FromSlash(asset.DASH().Path())))
	return nil
}

func deref(r *cmaf.Rendition) []cmaf.Rendition {
	if r == nil {
		return nil
	}
	return []cmaf.Rendition{*r}
}

// linkVariant makes <rendition>/seg-N.m4s a symlink to <variant>/seg-N.m4s,
// so the neutral manifests play as the session that always gets variant v.
func linkVariant(root string, res *pipeline.RenderResult, v string) error {
	for _, r := range res.Renditions {
		for _, s := range r.Segments {
			name := asset.Segment(r.Name, "", s.Number)
			link := filepath.Join(root, filepath.FromSlash(name.Path()))
			if err := os.Symlink(filepath.Join(v, name.File()), link); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("link %s: %w", link, err)
			}
		}
	}
	return nil
}
