// Command detect names the session a leaked copy came from.
//
//	detect --asset DIR --suspect FILE --watermark-key FILE [--asset-id ID]
//	       [--rendition NAME] [--unmarked N] [--segment-duration D]
//	       [--wmid-bits 32] [--operator 0] [--json]
//
// DIR is an asset as `worker process` lays it out (plain files). The
// suspect may be any file FFmpeg reads: re-encoded, scaled, slightly
// cropped, trimmed or at another frame rate. The verdict is "identified"
// with the session's wmid and the false-positive bound, or "inconclusive".
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/pipeline"
	"github.com/abseal/abseal/transcode"
	"github.com/abseal/abseal/watermark"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	transcode.RouteLogs(slog.New(slog.NewTextHandler(os.Stderr, nil)), slog.LevelError)
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "detect:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("detect", flag.ContinueOnError)
	asset := fl.String("asset", "", "asset directory (worker process output)")
	suspect := fl.String("suspect", "", "suspect video file")
	keyFile := fl.String("watermark-key", "", "file holding the watermark master key")
	assetID := fl.String("asset-id", "", "asset id the key was derived for (default: the asset directory's name)")
	rendition := fl.String("rendition", "", "reference rendition (default: the largest)")
	unmarked := fl.Int("unmarked", 1, "leading unmarked segments of the asset")
	segDur := fl.Duration("segment-duration", 2*time.Second, "segment duration of the asset")
	idBits := fl.Int("wmid-bits", 32, "wmid size in bits")
	opID := fl.Uint64("operator", 0, "operator id (wmopid)")
	asJSON := fl.Bool("json", false, "print the result as JSON")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *asset == "" || *suspect == "" || *keyFile == "" {
		fl.Usage()
		return errors.New("--asset, --suspect and --watermark-key are required")
	}
	master, err := os.ReadFile(*keyFile)
	if err != nil {
		return fmt.Errorf("watermark key: %w", err)
	}
	id := *assetID
	if id == "" {
		id = filepath.Base(filepath.Clean(*asset))
	}
	key, err := watermark.DeriveAssetKey([]byte(strings.TrimSpace(string(master))), id)
	if err != nil {
		return err
	}
	code, err := watermark.NewCode(key, *idBits, *opID)
	if err != nil {
		return err
	}
	rung := *rendition
	if rung == "" {
		if rung, err = largestRendition(*asset); err != nil {
			return err
		}
	}
	start := time.Now()
	ref, err := pipeline.LocalReference(ctx, *asset, rung, *segDur, *unmarked)
	if err != nil {
		return err
	}
	sus, susDur, err := pipeline.DecodeSuspect(ctx, *suspect)
	if err != nil {
		return err
	}
	res, err := watermark.Detect(ref, sus, code)
	if err != nil {
		return err
	}
	took := time.Since(start)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Fprintf(stdout, "verdict: %s\n", res.Verdict)
	if res.WMID != nil {
		fmt.Fprintf(stdout, "wmid: %d (false-positive bound %.2g per attempt)\n", *res.WMID, res.FalsePositiveBound)
	}
	called := 0
	for _, s := range res.Segments {
		if s.Bit != nil {
			called++
		}
	}
	fmt.Fprintf(stdout, "segments: %d scored, %d called; suspect starts at %s of the asset, shows %.0f%% of the picture\n",
		res.SegmentsUsed, called, res.Offset.Round(time.Millisecond), 100*res.Crop)
	fmt.Fprintf(stdout, "detection took %s for %s of suspect video\n", took.Round(time.Millisecond), susDur.Round(time.Second))
	return nil
}

// largestRendition picks the video rendition with the most bytes per
// segment (the largest picture).
func largestRendition(asset string) (string, error) {
	entries, err := os.ReadDir(asset)
	if err != nil {
		return "", err
	}
	best, bestSize := "", int64(-1)
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		fi, err := os.Stat(filepath.Join(asset, e.Name(), "a", cmaf.SegmentName(1)))
		if err != nil {
			continue
		}
		if fi.Size() > bestSize {
			best, bestSize = e.Name(), fi.Size()
		}
	}
	if best == "" {
		return "", fmt.Errorf("no watermarked rendition (with a/ and b/ variants) in %s", asset)
	}
	return best, nil
}
