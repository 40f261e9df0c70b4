package detect

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/abseal/abseal/forensic"
	"github.com/abseal/abseal/watermark"
)

// Accusation is the detector's verdict on a leak of an asset whose session
// code is collusion-resistant (asset.CodeTardos): the issued sessions
// whose codewords explain the leak beyond the thresholds.
type Accusation struct {
	Verdict string `json:"verdict"` // "accused" or "inconclusive"
	// Accused are the sessions accused, most strongly first.
	Accused []forensic.Accused `json:"accused"`
	// Sessions is how many sessions were scored (N in the bound), Epsilon
	// the total probability that any innocent one is accused, Tries the
	// readings (alignments) each was scored under.
	Sessions int     `json:"sessions"`
	Epsilon  float64 `json:"epsilon"`
	Tries    int     `json:"tries"`
	// Positions is how many of the code's positions the leak gives
	// evidence for (the strongest reading's).
	Positions  int                  `json:"positions"`
	Thresholds []forensic.Threshold `json:"thresholds"`
	// Reading is the strongest reading: segment scores and the
	// registration.
	Reading watermark.Reading `json:"reading"`
}

// Evidence turns a reading's segment scores into the code's evidence: per
// position, a z-score positive for variant B (bit 1), 0 where no segment
// was read. A position read twice (a repeated part) counts once, with the
// scores combined.
func Evidence(rd watermark.Reading, positions int) []float64 {
	z := make([]float64, positions)
	n := make([]int, positions)
	for _, s := range rd.Segments {
		if s.Position < 0 || s.Position >= positions {
			continue
		}
		z[s.Position] -= s.Score // the watermark's scores are positive for A
		n[s.Position]++
	}
	for i, k := range n {
		if k > 1 {
			z[i] /= math.Sqrt(float64(k))
		}
	}
	return z
}

// Accuse scores every session in wmids against each reading of the leak
// and accuses those that pass a threshold under any reading, at a total
// false-accusation probability eps over all of them.
func Accuse(readings []watermark.Reading, code *forensic.Code, wmids []uint64, eps float64) (*Accusation, error) {
	if len(readings) == 0 {
		return nil, errors.New("detect: accuse: no reading of the leak")
	}
	if len(wmids) == 0 {
		return nil, errors.New("detect: accuse: no sessions to score")
	}
	out := &Accusation{Verdict: "inconclusive", Sessions: len(wmids), Epsilon: eps, Tries: len(readings)}
	strongest := 0
	for i, rd := range readings {
		if rd.Evidence > readings[strongest].Evidence {
			strongest = i
		}
	}
	found := map[uint64]int{}
	for i, rd := range readings {
		a, err := forensic.NewAccuser(code, Evidence(rd, code.Positions()), len(wmids), eps, len(readings))
		if err != nil {
			return nil, fmt.Errorf("detect: accuse: %w", err)
		}
		if i == strongest {
			out.Positions, out.Thresholds, out.Reading = a.Positions, a.Thresholds, rd
		}
		for _, acc := range a.Accuse(wmids) {
			if k, ok := found[acc.WMID]; ok {
				if acc.Margin > out.Accused[k].Margin {
					out.Accused[k] = acc
				}
				continue
			}
			found[acc.WMID] = len(out.Accused)
			out.Accused = append(out.Accused, acc)
		}
	}
	slices.SortStableFunc(out.Accused, func(x, y forensic.Accused) int { return cmp.Compare(y.Margin, x.Margin) })
	if len(out.Accused) > 0 {
		out.Verdict = "accused"
	}
	return out, nil
}
