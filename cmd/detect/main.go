// Command detect names the session a leaked copy came from.
//
//	detect --bucket B --asset-id ID --suspect FILE --kek-uri URI --watermark-key FILE
//	       [--rendition NAME] [--operator 0] [--json]
//	detect --bucket B --asset-id ID --suspect FILE ... --wmids 1-100000 [--epsilon 1e-6]
//	detect --asset DIR --suspect FILE --watermark-key FILE [--asset-id ID]
//	       [--rendition NAME] [--unmarked N] [--segment-duration D]
//	       [--wmid-bits 32] [--operator 0] [--json]
//
// With --bucket, the reference is the sealed asset in the output bucket:
// its manifest gives the positions, segment duration and wmid size, and its
// objects are opened through the KEK (S3 settings from --s3-* flags or the
// worker's ABSEAL_S3_* variables). With --asset, DIR is an asset as
// `worker process` lays it out (plain files). The
// suspect may be any file FFmpeg reads: re-encoded, scaled, slightly
// cropped, trimmed or at another frame rate. The verdict is "identified"
// with the session's wmid and the false-positive bound, or "inconclusive".
//
// An asset with the collusion-resistant session code (the manifest's
// watermark code "tardos-v1") is not decoded: the sessions named with
// --wmids, or else those the session registry (JetStream at --nats-url)
// recorded for the asset, are scored against the leak and those past the
// thresholds are accused (verdict "accused", with the registry's record
// of each); the probability that any innocent one is accused is at most
// --epsilon, however many colluders built the leak.
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
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/detect"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/forensic"
	"github.com/abseal/abseal/internal/cliconf"
	"github.com/abseal/abseal/queue"
	"github.com/abseal/abseal/sealed"
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
	assetDir := fl.String("asset", "", "asset directory (worker process output)")
	suspect := fl.String("suspect", "", "suspect video file")
	assetID := fl.String("asset-id", "", "asset id the key was derived for (default: the asset directory's name)")
	rendition := fl.String("rendition", "", "reference rendition (default: the largest)")
	unmarked := fl.Int("unmarked", asset.DefaultUnmarked, "leading unmarked segments of the asset")
	segDur := fl.Duration("segment-duration", 2*time.Second, "segment duration of the asset")
	idBits := fl.Int("wmid-bits", watermark.DefaultIDBits, "wmid size in bits")
	opID := fl.Uint64("operator", 0, "operator id (wmopid)")
	asJSON := fl.Bool("json", false, "print the result as JSON")
	bucket := fl.String("bucket", "", "output bucket holding the sealed asset (instead of --asset)")
	var wmids []uint64
	fl.Func("wmids", "assets with the collusion-resistant session code: the sessions to score, as wmids and ranges (1-5000,7001)", func(v string) error {
		ids, err := parseWMIDs(v)
		wmids = append(wmids, ids...)
		return err
	})
	eps := fl.Float64("epsilon", 1e-6, "assets with the collusion-resistant session code: total probability of accusing any innocent session")
	var natsConf cliconf.NATS
	var (
		env     cliconf.Env
		s3conf  cliconf.S3
		kekconf cliconf.KEK
		wk      cliconf.WatermarkKey
	)
	s3conf.Flags(fl, &env)
	natsConf.Flags(fl, &env)
	kekconf.Flags(fl, &env)
	wk.Flags(fl, &env, "watermark-key", "", "file holding the watermark master key (wrapped by the KEK)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if err := env.Err(); err != nil {
		return err
	}
	slices.Sort(wmids)
	wmids = slices.Compact(wmids)
	if (*assetDir == "") == (*bucket == "") || *suspect == "" || wk.Path == "" {
		fl.Usage()
		return errors.New("--suspect, --watermark-key and one of --asset and --bucket are required")
	}
	if *bucket != "" && kekconf.URI == "" {
		return errors.New("--kek-uri is required with --bucket (the asset is sealed)")
	}
	var kek *envelope.KEK
	if kekconf.URI != "" {
		var err error
		if kek, err = kekconf.Open(ctx); err != nil {
			return err
		}
	}
	master, err := wk.Read(kek, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		return err
	}
	id := *assetID
	if id == "" && *assetDir != "" {
		id = filepath.Base(filepath.Clean(*assetDir))
	}
	if id == "" {
		return errors.New("--asset-id is required with --bucket")
	}
	start := time.Now()
	var ref *watermark.Reference
	var man *asset.Manifest
	if *bucket != "" {
		if kek == nil {
			return errors.New("--kek-uri is required with --bucket (the asset is sealed)")
		}
		st, err := s3conf.Store(*bucket)
		if err != nil {
			return err
		}
		m, err := sealed.ReadManifest(ctx, st, id)
		if err != nil {
			return err
		}
		if m.Watermark == nil {
			return fmt.Errorf("asset %s carries no watermark", id)
		}
		if m.Watermark.IDBits > 0 {
			*idBits = m.Watermark.IDBits
		}
		man = m
		if ref, err = detect.SealedReference(ctx, st, kek, m, *rendition); err != nil {
			return err
		}
	} else {
		rung := *rendition
		if rung == "" {
			if rung, err = detect.LargestRendition(*assetDir); err != nil {
				return err
			}
		}
		if ref, err = detect.LocalReference(ctx, *assetDir, rung, *segDur, *unmarked); err != nil {
			return err
		}
	}
	if man != nil && man.Watermark.Code == asset.CodeTardos {
		// The sessions to score: those the registry recorded for the
		// asset, or those --wmids names.
		var records []queue.SessionRecord
		if len(wmids) == 0 {
			if records, err = registrySessions(ctx, natsConf, id); err != nil {
				return err
			}
			for _, r := range records {
				if r.OpID == *opID {
					wmids = append(wmids, r.WMID)
				}
			}
			if len(wmids) == 0 {
				return fmt.Errorf("the session registry holds no session of asset %s (operator %d): nothing to score", id, *opID)
			}
			slices.Sort(wmids)
			wmids = slices.Compact(wmids)
		}
		return accuse(ctx, stdout, master, man, *opID, ref, *suspect, wmids, records, *eps, *asJSON, start)
	}
	if len(wmids) > 0 {
		return errors.New("--wmids is for assets with the collusion-resistant session code; this asset's sessions decode to their wmid")
	}
	code, err := watermark.SessionCode(master, id, *idBits, *opID)
	if err != nil {
		return err
	}
	sus, susDur, err := detect.DecodeSuspect(ctx, *suspect)
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
	fmt.Fprintf(stdout, "segments: %d scored, %d called; suspect starts at %s of the asset, shows %.0f%% of the picture's area\n",
		res.SegmentsUsed, called, res.Offset.Round(time.Millisecond), 100*res.Crop)
	fmt.Fprintf(stdout, "detection took %s for %s of suspect video\n", took.Round(time.Millisecond), susDur.Round(time.Second))
	return nil
}

// accuse scores the sessions wmids of an asset with the collusion-resistant
// session code against the suspect.
// registrySessions reads the sessions issued for an asset from the
// session registry.
func registrySessions(ctx context.Context, nc cliconf.NATS, assetID string) ([]queue.SessionRecord, error) {
	conn, err := nc.Connect()
	if err != nil {
		return nil, fmt.Errorf("the session registry (%w): name the sessions to score with --wmids, or point --nats-url at the registry", err)
	}
	defer conn.Close()
	reg, err := queue.OpenRegistry(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("%w: name the sessions to score with --wmids, or point --nats-url at the registry", err)
	}
	return reg.Sessions(ctx, assetID)
}

// report is what detect prints for an accusation: the verdict and, from
// the registry, the accused sessions' records.
type report struct {
	*detect.Accusation
	Sessions []queue.SessionRecord `json:"accused_sessions,omitempty"`
}

func accuse(ctx context.Context, stdout io.Writer, master []byte, m *asset.Manifest, opID uint64, ref *watermark.Reference, suspect string, wmids []uint64, records []queue.SessionRecord, eps float64, asJSON bool, start time.Time) error {
	pc, err := sealed.SessionCode(master, m, opID)
	if err != nil {
		return err
	}
	code, ok := pc.(*forensic.Code)
	if !ok {
		return fmt.Errorf("asset %s: session code %q is not collusion-resistant", m.AssetID, m.Watermark.Code)
	}
	sus, susDur, err := detect.DecodeSuspect(ctx, suspect)
	if err != nil {
		return err
	}
	readings, err := watermark.Read(ref, sus)
	if err != nil {
		return err
	}
	acc, err := detect.Accuse(readings, code, wmids, eps)
	if err != nil {
		return err
	}
	rep := report{Accusation: acc}
	byWMID := map[uint64]queue.SessionRecord{}
	for _, r := range records {
		if r.OpID == opID {
			byWMID[r.WMID] = r
		}
	}
	for _, a := range acc.Accused {
		if r, ok := byWMID[a.WMID]; ok {
			rep.Sessions = append(rep.Sessions, r)
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "verdict: %s\n", acc.Verdict)
	for _, a := range acc.Accused {
		who := ""
		if r, ok := byWMID[a.WMID]; ok {
			who = fmt.Sprintf(", subject %q, token %s, issued %s by %s", r.Subject, r.TokenID, r.IssuedAt.Format(time.RFC3339), r.Operator)
		}
		fmt.Fprintf(stdout, "accused: wmid %d%s (%s: score %.1f, threshold %.1f, %.1f innocent standard deviations past it)\n", a.WMID, who, a.Score, a.Value, a.Threshold, a.Margin)
	}
	fmt.Fprintf(stdout, "scored %d sessions under %d reading(s): the probability that any innocent one is accused is at most %.2g\n", acc.Sessions, acc.Tries, acc.Epsilon)
	fmt.Fprintf(stdout, "segments: evidence for %d of the code's %d positions; suspect starts at %s of the asset, shows %.0f%% of the picture's area\n",
		acc.Positions, code.Positions(), acc.Reading.Offset.Round(time.Millisecond), 100*acc.Reading.Crop)
	fmt.Fprintf(stdout, "detection took %s for %s of suspect video\n", time.Since(start).Round(time.Millisecond), susDur.Round(time.Second))
	return nil
}

// maxWMIDs bounds the sessions one --wmids flag names.
const maxWMIDs = 10_000_000

// parseWMIDs reads "1-5000,7001": wmids and inclusive ranges.
func parseWMIDs(v string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		lo, hi, isRange := strings.Cut(f, "-")
		a, err := strconv.ParseUint(lo, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a wmid or a range of them", f)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 64); err != nil || b < a {
				return nil, fmt.Errorf("%q is not a range of wmids (low-high)", f)
			}
		}
		if b-a >= maxWMIDs || len(out)+int(b-a+1) > maxWMIDs {
			return nil, fmt.Errorf("more than %d wmids", maxWMIDs)
		}
		for w := a; ; w++ {
			out = append(out, w)
			if w == b {
				break
			}
		}
	}
	return out, nil
}
