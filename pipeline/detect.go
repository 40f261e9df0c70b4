package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/abseal/abseal/cmaf"
	"github.com/abseal/abseal/transcode"
	"github.com/abseal/abseal/watermark"
)

// Analysis size of the detector: the mark lives at low spatial frequencies.
const AnalysisW, AnalysisH = 160, 90

// LocalReference decodes both variants of a rendition of an asset laid out
// in a directory (as `worker process` writes it) into a detector reference.
// Segment k has position k-unmarked (-1 for the first unmarked ones).
func LocalReference(ctx context.Context, dir, rendition string, segDur time.Duration, unmarked int) (*watermark.Reference, error) {
	ref := &watermark.Reference{W: AnalysisW, H: AnalysisH, SegmentDuration: segDur}
	for _, v := range []string{"a", "b"} {
		pics, err := decodeVariant(ctx, dir, rendition, v)
		if err != nil {
			return nil, err
		}
		if v == "a" {
			ref.A = pics
		} else {
			ref.B = pics
		}
	}
	if len(ref.A) != len(ref.B) || len(ref.A) == 0 {
		return nil, fmt.Errorf("pipeline: variants of %s have %d and %d frames", rendition, len(ref.A), len(ref.B))
	}
	segments := int(ref.A[len(ref.A)-1].PTS/segDur) + 1
	for k := range segments {
		ref.Positions = append(ref.Positions, Position(k, unmarked))
	}
	return ref, nil
}

// DecodeSuspect decodes a suspect file at the analysis size and returns its
// frames and duration.
func DecodeSuspect(ctx context.Context, path string) ([]watermark.Picture, time.Duration, error) {
	var pics []watermark.Picture
	var last time.Duration
	err := transcode.DecodeGray(ctx, path, AnalysisW, AnalysisH, func(f transcode.GrayFrame) error {
		pics = append(pics, watermark.Picture{PTS: f.PTS, Y: append([]byte(nil), f.Y...)})
		last = f.PTS
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("pipeline: suspect: %w", err)
	}
	return pics, last, nil
}

// decodeVariant joins a variant's init and media segments into one
// fragmented MP4 (in a private temp file) and decodes it.
func decodeVariant(ctx context.Context, dir, rendition, v string) ([]watermark.Picture, error) {
	segs, _ := filepath.Glob(filepath.Join(dir, rendition, v, "seg-*.m4s"))
	if len(segs) == 0 {
		return nil, fmt.Errorf("pipeline: no segments in %s", filepath.Join(dir, rendition, v))
	}
	sort.Strings(segs)
	tmp, err := os.CreateTemp("", "abseal-ref-*.mp4")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	for _, p := range append([]string{filepath.Join(dir, rendition, cmaf.InitName)}, segs...) {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		if _, err := tmp.Write(data); err != nil {
			return nil, err
		}
	}
	pics, _, err := DecodeSuspect(ctx, tmp.Name())
	if err != nil {
		return nil, fmt.Errorf("pipeline: reference %s/%s: %w", rendition, v, err)
	}
	return pics, nil
}

// AssembleSession writes the stream a session with this pattern receives
// from a rendition of a local asset: the init segment, then per segment the
// variant the pattern selects (A where the position is -1).
func AssembleSession(dir, rendition string, pattern []uint8, positions []int, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	init, err := os.ReadFile(filepath.Join(dir, rendition, cmaf.InitName))
	if err != nil {
		return err
	}
	f.Write(init)
	for k, pos := range positions {
		v := "a"
		if pos >= 0 && pattern[pos%len(pattern)] == 1 {
			v = "b"
		}
		seg, err := os.ReadFile(filepath.Join(dir, rendition, v, cmaf.SegmentName(k+1)))
		if err != nil {
			return err
		}
		if _, err := f.Write(seg); err != nil {
			return err
		}
	}
	return f.Close()
}
