package forensic

import (
	"fmt"
	"math/rand/v2"
)

// The simulation (make forensic-sim): the real code, evidence and
// thresholds, over a channel model of the detector's per-segment evidence.

// Channel is the detector's evidence for a segment that shows one
// variant: a z-score of mean ±Mu (the sign of the variant) and unit noise,
// whose sign is wrong outright with probability Flip (a segment the
// attack damaged).
type Channel struct {
	Name string
	Mu   float64
	Flip float64
}

// Strategies are the colluders' ways of building their copy.
var Strategies = []string{"interleave", "majority", "minority", "random", "average", "drop"}

// leak builds the colluders' copy at each position from their codewords
// (cws[j][i]) and returns the detector's evidence for it.
func leak(cws [][]uint8, strategy string, ch Channel, r *rand.Rand) ([]float64, error) {
	n, c := len(cws[0]), len(cws)
	z := make([]float64, n)
	off := r.IntN(c)
	for i := range n {
		ones := 0
		for _, cw := range cws {
			ones += int(cw[i])
		}
		sign := func(bit uint8) float64 {
			s := -ch.Mu
			if bit == 1 {
				s = ch.Mu
			}
			if r.Float64() < ch.Flip {
				s = -s
			}
			return s + r.NormFloat64()
		}
		if ones == 0 || ones == c {
			// The colluders all have the same variant: they cannot
			// show the other.
			z[i] = sign(cws[0][i])
			continue
		}
		switch strategy {
		case "interleave": // chunks of 5 segments (10 s) in turn
			z[i] = sign(cws[(i/5+off)%c][i])
		case "random":
			z[i] = sign(cws[r.IntN(c)][i])
		case "majority", "minority":
			bit := uint8(0)
			switch {
			case 2*ones == c:
				bit = uint8(r.IntN(2))
			case (2*ones > c) == (strategy == "majority"):
				bit = 1
			}
			z[i] = sign(bit)
		case "average": // the pictures of all averaged: a weaker mark
			z[i] = ch.Mu*float64(2*ones-c)/float64(c) + r.NormFloat64()
		case "drop": // segments where they differ are left out
			z[i] = 0
		default:
			return nil, fmt.Errorf("forensic: unknown strategy %q", strategy)
		}
	}
	return z, nil
}

// Trial is one simulated leak's outcome.
type Trial struct {
	Caught   bool // at least one colluder accused
	Innocent int  // innocent sessions accused
}

// SimTrial simulates one leak of n positions by c colluders of a fresh
// asset: their copy, its evidence, the accusation at total ε among
// sessions issued sessions, scoring the colluders and innocents other
// sessions.
func SimTrial(r *rand.Rand, n, c int, strategy string, ch Channel, sessions int, eps float64, innocents int) (Trial, error) {
	var key [32]byte
	for i := range key {
		key[i] = byte(r.Uint32())
	}
	code, err := NewCode(key[:], n, 0)
	if err != nil {
		return Trial{}, err
	}
	// wmids: colluders and innocents distinct.
	base := r.Uint64N(1<<40) << 20
	cws := make([][]uint8, c)
	for j := range c {
		cws[j] = code.Codeword(nil, base+uint64(j))
	}
	z, err := leak(cws, strategy, ch, r)
	if err != nil {
		return Trial{}, err
	}
	a, err := NewAccuser(code, z, sessions, eps, 1)
	if err != nil {
		return Trial{}, err
	}
	var t Trial
	for j := range c {
		if _, ok := a.Check(base + uint64(j)); ok {
			t.Caught = true
			break
		}
	}
	for k := range innocents {
		if _, ok := a.Check(base + uint64(c+k)); ok {
			t.Innocent++
		}
	}
	return t, nil
}
