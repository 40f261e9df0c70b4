package detect

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/abseal/abseal/asset"
	"github.com/abseal/abseal/delivery"
	"github.com/abseal/abseal/envelope"
	"github.com/abseal/abseal/sealed"
	"github.com/abseal/abseal/storage"
	"github.com/abseal/abseal/transcode"
	"github.com/abseal/abseal/watermark"
)

// Analysis size of the detector: the mark lives at low spatial frequencies.
const AnalysisW, AnalysisH = 160, 90

// SuspectArea is the number of pixels the detector reads of each suspect
// frame (about 1.5 times the analysis size), at the suspect's own display
// aspect: a copy re-framed to 9:16, letterboxed or put in a window keeps
// its geometry for the registration to find.
const SuspectArea = 3 * AnalysisW * AnalysisH / 2

// MaxSuspectAspect bounds a suspect's display aspect (width over height,
// and its inverse): beyond it a file is a strip, not a copy of a picture,
// and its frames would be very wide at the suspect's area.
const MaxSuspectAspect = 16

// DecodeSuspect decodes a suspect file at about SuspectArea pixels per
// frame, its display aspect kept, and returns its frames and duration.
func DecodeSuspect(ctx context.Context, path string) (*watermark.Suspect, time.Duration, error) {
	info, err := transcode.Probe(ctx, path, transcode.DefaultLimits())
	if err != nil {
		return nil, 0, fmt.Errorf("detect: suspect: %w", err)
	}
	dw, dh := info.Video.DisplayWidth, info.Video.DisplayHeight
	if dw <= 0 || dh <= 0 {
		return nil, 0, fmt.Errorf("detect: suspect: no picture size (%dx%d)", dw, dh)
	}
	ar := float64(dw) / float64(dh)
	if ar > MaxSuspectAspect || ar < 1.0/MaxSuspectAspect {
		return nil, 0, fmt.Errorf("detect: suspect: display size %dx%d (aspect %.3g:1) is outside 1:%d to %d:1: not a picture the detector can register", dw, dh, ar, MaxSuspectAspect, MaxSuspectAspect)
	}
	w := max(16, 2*int(math.Round(math.Sqrt(SuspectArea*ar)/2)))
	h := max(16, 2*int(math.Round(float64(w)/ar/2)))
	sus := &watermark.Suspect{W: w, H: h}
	var pf *pictureFile
	sus.Frames, pf, err = decodeAt(ctx, path, w, h)
	if err != nil {
		return nil, 0, fmt.Errorf("detect: suspect: %w", err)
	}
	releaseWith(sus, pf)
	var last time.Duration
	if n := len(sus.Frames); n > 0 {
		last = sus.Frames[n-1].PTS
	}
	return sus, last, nil
}

// decodeAt decodes a file's frames to w×h luma, kept in a pictureFile
// (released on error; else the caller ties it to the pictures' owner with
// releaseWith).
func decodeAt(ctx context.Context, path string, w, h int) ([]watermark.Picture, *pictureFile, error) {
	pf, err := newPictureFile(w * h)
	if err != nil {
		return nil, nil, err
	}
	var pics []watermark.Picture
	err = transcode.DecodeGray(ctx, path, w, h, func(f transcode.GrayFrame) error {
		y, err := pf.add(f.Y)
		if err != nil {
			return err
		}
		pics = append(pics, watermark.Picture{PTS: f.PTS, Y: y})
		return nil
	})
	if err != nil {
		pf.release()
		return nil, nil, err
	}
	return pics, pf, nil
}

// SealedReference decodes variants A and B of a rendition of a sealed
// asset (opened through the KEK, checked against the manifest) into a
// detector reference with the manifest's positions and segment duration.
func SealedReference(ctx context.Context, st storage.Store, kek *envelope.KEK, m *asset.Manifest, rendition string) (*watermark.Reference, error) {
	r, err := m.FindRendition(rendition)
	if err != nil {
		return nil, err
	}
	ref := &watermark.Reference{W: AnalysisW, H: AnalysisH, SegmentDuration: time.Duration(m.SegDur * float64(time.Second))}
	for _, s := range r.Segments {
		ref.Positions = append(ref.Positions, s.Position)
	}
	// The all-A and all-B sessions: patterns of one bit.
	for i, bits := range [][]uint8{{0}, {1}} {
		pics, pf, err := decodeStream(ctx, func(w io.Writer) error {
			return sealed.WriteSession(ctx, st, kek, m, r.Name, bits, w)
		})
		if err != nil {
			return nil, fmt.Errorf("detect: reference %s/%s: %w", r.Name, asset.Variants[i], err)
		}
		releaseWith(ref, pf)
		if i == 0 {
			ref.A = pics
		} else {
			ref.B = pics
		}
	}
	if len(ref.A) != len(ref.B) || len(ref.A) == 0 {
		return nil, fmt.Errorf("detect: variants of %s have %d and %d frames", r.Name, len(ref.A), len(ref.B))
	}
	return ref, nil
}

// LocalReference decodes both variants of a rendition of an asset laid out
// in a directory (as `worker process` writes it) into a detector reference.
// Segment k has position asset.Position(k, unmarked).
func LocalReference(ctx context.Context, dir, rendition string, segDur time.Duration, unmarked int) (*watermark.Reference, error) {
	ref := &watermark.Reference{W: AnalysisW, H: AnalysisH, SegmentDuration: segDur}
	n, err := localSegments(dir, rendition)
	if err != nil {
		return nil, err
	}
	for i, v := range asset.Variants {
		pics, pf, err := decodeStream(ctx, func(w io.Writer) error {
			return writeLocal(dir, rendition, n, func(int) string { return v }, w)
		})
		if err != nil {
			return nil, fmt.Errorf("detect: reference %s/%s: %w", rendition, v, err)
		}
		releaseWith(ref, pf)
		if i == 0 {
			ref.A = pics
		} else {
			ref.B = pics
		}
	}
	if len(ref.A) != len(ref.B) || len(ref.A) == 0 {
		return nil, fmt.Errorf("detect: variants of %s have %d and %d frames", rendition, len(ref.A), len(ref.B))
	}
	segments := int(ref.A[len(ref.A)-1].PTS/segDur) + 1
	for k := range segments {
		ref.Positions = append(ref.Positions, asset.Position(k, unmarked))
	}
	return ref, nil
}

// AssembleSession writes the stream a session with this pattern (bits,
// one per position) receives from a rendition of a local asset: the init
// segment, then per segment the variant delivery.Variant picks for the
// segment's position.
func AssembleSession(dir, rendition string, bits []uint8, positions []int, out string) error {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	packed := delivery.PackBits(bits)
	err = writeLocal(dir, rendition, len(positions), func(k int) string {
		return delivery.Variant(packed, len(bits), positions[k], true)
	}, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// LargestRendition picks the watermarked video rendition of a local asset
// with the most bytes in its first segment (the largest picture).
func LargestRendition(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	best, bestSize := "", int64(-1)
	for _, e := range entries {
		if !e.IsDir() || !asset.ValidRung(e.Name()) {
			continue
		}
		fi, err := os.Stat(localPath(dir, asset.Segment(e.Name(), asset.VariantA, 1)))
		if err != nil {
			continue
		}
		if fi.Size() > bestSize {
			best, bestSize = e.Name(), fi.Size()
		}
	}
	if best == "" {
		return "", fmt.Errorf("detect: no watermarked rendition (with a/ and b/ variants) in %s", dir)
	}
	return best, nil
}

func localPath(dir string, r asset.Ref) string {
	return filepath.Join(dir, filepath.FromSlash(r.Path()))
}

// localSegments counts a local rendition's segments of variant A.
func localSegments(dir, rendition string) (int, error) {
	n := 0
	for {
		if _, err := os.Stat(localPath(dir, asset.Segment(rendition, asset.VariantA, n+1))); err != nil {
			break
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("detect: no segments in %s", localPath(dir, asset.Segment(rendition, asset.VariantA, 1)))
	}
	return n, nil
}

// writeLocal writes a local rendition's init segment and its first n
// segments, segment k (0-based) from variant(k).
func writeLocal(dir, rendition string, n int, variant func(k int) string, w io.Writer) error {
	refs := []asset.Ref{asset.Init(rendition)}
	for k := range n {
		refs = append(refs, asset.Segment(rendition, variant(k), k+1))
	}
	for _, r := range refs {
		data, err := os.ReadFile(localPath(dir, r))
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	return nil
}

// decodeStream writes a stream into a private temp file and decodes it.
func decodeStream(ctx context.Context, write func(io.Writer) error) ([]watermark.Picture, *pictureFile, error) {
	f, err := os.CreateTemp("", "abseal-ref-*.mp4")
	if err != nil {
		return nil, nil, err
	}
	defer os.Remove(f.Name())
	err = write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	pics, pf, err := decodeAt(ctx, f.Name(), AnalysisW, AnalysisH)
	if err != nil {
		return nil, nil, fmt.Errorf("detect: reference: %w", err)
	}
	return pics, pf, nil
}
