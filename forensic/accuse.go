package forensic

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Accusation.
//
// The detector gives, per position, a z-score of the leak's evidence
// (positive: the position shows bit 1, variant B; 0: the position is
// missing or unreadable, e.g. A and B averaged). Each score function turns
// it into two values per position, v1 and v0, and a session's score is the
// sum of v1 where its codeword has a 1 and v0 where it has a 0.
//
// Score functions (Scores): the log-likelihood ratio of "this session
// took part in an interleaving of c sessions" for c = 1 (a single leaker),
// 2, 4 and 8 (Laarhoven's interleaving decoder), and the symmetric Tardos
// score (Škorić et al.), which holds against any strategy. Each position's
// evidence enters through the probability e that its sign is wrong,
// Φ(−|z|) but at least MinError, so that a few confidently wrong segments
// cost a guilty session little.
//
// Thresholds are exact, not asymptotic: given the evidence, an innocent
// session's codeword is independent of it (its bits are a PRF output drawn
// with the positions' biases), so its score is a sum of independent
// two-valued variables with known probabilities, and the Chernoff bound
//
//	P(S ≥ T) ≤ min over λ > 0 of exp(−λT) · Π_i (p_i·e^{λ·v1_i} + (1−p_i)·e^{λ·v0_i})
//
// gives, for each score function f, the smallest T whose bound is
// ε · share_f / (N · tries): N issued sessions, share_f the function's part
// of ε (Score.Share; the shares sum to 1), tries the alignments of the
// leak that were scored. By the union bound, the
// probability that any innocent session is accused is at most ε.

// MinError is the smallest probability of a wrong sign a position's
// evidence is given (a segment with |z| ≥ 2 counts as 98 % sure).
const MinError = 0.02

// Score is one score function.
type Score struct {
	Name string `json:"name"`
	// Colluders is the c the likelihood ratio is for; 0 is the symmetric
	// Tardos score.
	Colluders int `json:"colluders"`
	// Attack is how the c colluders pick the variant where they differ:
	// interleave (each position from one of them), majority or minority.
	Attack string `json:"attack,omitempty"`
	// Share is the part of ε this function's threshold is set for (the
	// shares sum to 1, so the union bound over all functions is still ε).
	Share float64 `json:"epsilon_share"`
}

// Scores are the score functions an Accuser uses.
//
// Four colluders voting by minority need the most segments of the cells
// abseal is sized for (the simulation): their function gets half of ε,
// the others 1/16 each, which moves that cell from 1,841 to about 1,734
// segments and costs the others 1–2 %.
var Scores = [nf]Score{
	{"single leaker", 1, "interleave", 1.0 / 16},
	{"2 colluders (interleaving)", 2, "interleave", 1.0 / 16},
	{"4 colluders (interleaving)", 4, "interleave", 1.0 / 16},
	{"4 colluders (majority)", 4, "majority", 1.0 / 16},
	{"4 colluders (minority)", 4, "minority", 1.0 / 2},
	{"8 colluders (interleaving)", 8, "interleave", 1.0 / 16},
	{"8 colluders (majority)", 8, "majority", 1.0 / 16},
	{"8 colluders (minority)", 8, "minority", 1.0 / 16},
	{"symmetric Tardos", 0, "", 1.0 / 16},
}

// Threshold is one score function's threshold for the evidence.
type Threshold struct {
	Score
	Threshold float64 `json:"threshold"` // +Inf: the evidence cannot accuse anyone
	// Bound is the probability that one innocent session scores at or
	// above the threshold (Chernoff, given the evidence).
	Bound float64 `json:"bound"`
	// Mean and SD are an innocent session's mean score and its standard
	// deviation, given the evidence.
	Mean float64 `json:"innocent_mean"`
	SD   float64 `json:"innocent_sd"`
}

// Accuser scores sessions of one code against one leak's evidence.
type Accuser struct {
	code       *Code
	base       []float64     // per function: Σ v0
	d          [][nf]float64 // per position: v1 − v0 per function
	Thresholds []Threshold
	// Positions is how many positions carry evidence.
	Positions int
	// Epsilon is the total false-accusation probability the thresholds
	// are set for, over Sessions sessions, the functions and Tries.
	Epsilon  float64
	Sessions int
	Tries    int
	cw       []uint8
	scratch  []byte
}

const nf = 9 // len(Scores)

// NewAccuser prepares the accusation of a leak with evidence z (one z-score
// per position of code, 0 for none) among sessions issued sessions, at a
// total false-accusation probability eps, for a leak that was scored under
// tries alignments.
func NewAccuser(code *Code, z []float64, sessions int, eps float64, tries int) (*Accuser, error) {
	if len(z) != code.Positions() {
		return nil, fmt.Errorf("forensic: evidence for %d positions, the code has %d", len(z), code.Positions())
	}
	if sessions < 1 || tries < 1 {
		return nil, errors.New("forensic: sessions and tries must be at least 1")
	}
	if !(eps > 0 && eps < 1) {
		return nil, fmt.Errorf("forensic: ε = %g, want 0 < ε < 1", eps)
	}
	a := &Accuser{code: code, base: make([]float64, nf), d: make([][nf]float64, len(z)),
		Epsilon: eps, Sessions: sessions, Tries: tries}
	// Positions with the same bias and the same evidence (z rounded to a
	// quarter) have the same values: the bound is computed per group.
	type key struct {
		level int
		zq    int
	}
	type group struct {
		p      float64
		v1, v0 [nf]float64
		n      float64
	}
	groups := map[key]*group{}
	for i, zi := range z {
		if math.IsNaN(zi) || math.IsInf(zi, 0) {
			return nil, fmt.Errorf("forensic: position %d: evidence %v", i, zi)
		}
		zq := quantize(zi)
		if zq == 0 {
			continue
		}
		a.Positions++
		k := key{code.Level(i), zq}
		g := groups[k]
		if g == nil {
			p := Bias(k.level)
			g = &group{p: p}
			g.v1, g.v0 = values(p, float64(zq)/4)
			groups[k] = g
		}
		g.n++
		for f := range nf {
			a.base[f] += g.v0[f]
			a.d[i][f] = g.v1[f] - g.v0[f]
		}
	}
	// Deterministic order: map iteration order must not change the sums.
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y key) int {
		if x.level != y.level {
			return x.level - y.level
		}
		return x.zq - y.zq
	})
	for f, s := range Scores {
		logDelta := math.Log(eps*s.Share) - math.Log(float64(sessions)) - math.Log(float64(tries))
		terms := make([]term, 0, len(keys))
		for _, k := range keys {
			g := groups[k]
			terms = append(terms, term{g.p, g.v1[f], g.v0[f], g.n})
		}
		t, bound := chernoff(terms, -logDelta)
		_, mean, v := cumulants(terms, 0)
		a.Thresholds = append(a.Thresholds, Threshold{Score: s, Threshold: t, Bound: bound, Mean: mean, SD: math.Sqrt(v)})
	}
	return a, nil
}

// quantize rounds z to a quarter (as an integer count of quarters); beyond
// the z where the error floor applies every value is the same.
func quantize(z float64) int {
	zc := math.Max(-zSat, math.Min(zSat, z))
	return int(math.Round(zc * 4))
}

// zSat is the |z| from which Φ(−|z|) ≤ MinError.
var zSat = math.Ceil(math.Sqrt2*math.Erfcinv(2*MinError)*4) / 4

// values are the score functions' values for a session's bit 1 and 0 at a
// position with bias p and evidence z.
func values(p, z float64) (v1, v0 [nf]float64) {
	e := math.Max(MinError, 0.5*math.Erfc(math.Abs(z)/math.Sqrt2))
	up := z > 0 // the evidence says 1
	for f, s := range Scores {
		if s.Colluders == 0 {
			w := 1 - 2*e
			g1, g0 := math.Sqrt((1-p)/p), math.Sqrt(p/(1-p))
			if up {
				v1[f], v0[f] = w*g1, -w*g0
			} else {
				v1[f], v0[f] = -w*g1, w*g0
			}
			continue
		}
		pi1, pi0, pin := leakOdds(p, s.Colluders, s.Attack)
		obs := func(pi float64) float64 { // P(the evidence's sign | P(1) = pi)
			if up {
				return (1-e)*pi + e*(1-pi)
			}
			return (1-e)*(1-pi) + e*pi
		}
		v1[f] = math.Log(obs(pi1) / obs(pin))
		v0[f] = math.Log(obs(pi0) / obs(pin))
	}
	return v1, v0
}

// leakOdds is the probability that the leak shows 1 at a position of
// bias p when c colluders build it with attack: given that one colluder
// has 1 (pi1) or 0 (pi0), and for a session that is not among them (pin).
// Where all colluders have the same variant the leak shows it.
func leakOdds(p float64, c int, attack string) (pi1, pi0, pin float64) {
	theta := func(k int) float64 { // P(1 | k of the c colluders have 1)
		switch {
		case k == 0:
			return 0
		case k == c:
			return 1
		case attack == "interleave":
			return float64(k) / float64(c)
		case 2*k == c:
			return 0.5
		case (2*k > c) == (attack == "majority"):
			return 1
		}
		return 0
	}
	binom := func(n, k int) float64 {
		return math.Exp(lgamma(n+1) - lgamma(k+1) - lgamma(n-k+1))
	}
	pk := func(n, k int) float64 { // P(k of n have 1)
		return binom(n, k) * math.Pow(p, float64(k)) * math.Pow(1-p, float64(n-k))
	}
	for k := 0; k <= c; k++ {
		pin += pk(c, k) * theta(k)
	}
	for k := 0; k < c; k++ { // k of the other c−1
		pi1 += pk(c-1, k) * theta(k+1)
		pi0 += pk(c-1, k) * theta(k)
	}
	return pi1, pi0, pin
}

func lgamma(n int) float64 {
	v, _ := math.Lgamma(float64(n))
	return v
}

// term is a group of n positions whose innocent score is v1 with
// probability p and v0 otherwise.
type term struct{ p, v1, v0, n float64 }

// cumulants are K(λ) = Σ n·ln(p·e^{λv1} + (1−p)·e^{λv0}) and its first two
// derivatives.
func cumulants(ts []term, l float64) (k, k1, k2 float64) {
	for _, t := range ts {
		a, b := l*t.v1, l*t.v0
		m := math.Max(a, b)
		w1, w0 := t.p*math.Exp(a-m), (1-t.p)*math.Exp(b-m)
		s := w1 + w0
		mean := (w1*t.v1 + w0*t.v0) / s
		sq := (w1*t.v1*t.v1 + w0*t.v0*t.v0) / s
		k += t.n * (m + math.Log(s))
		k1 += t.n * mean
		k2 += t.n * (sq - mean*mean)
	}
	return k, k1, k2
}

// chernoff is the smallest T with min_λ exp(K(λ) − λT) ≤ e^{−A}, and that
// bound. T = K'(λ*) where λ*·K'(λ*) − K(λ*) = A; h(λ) = λK' − K is
// increasing from 0, so λ* is found by bracketing and bisection. If h stays
// below A (an innocent reaches the highest possible score too often) no
// threshold works: +Inf.
func chernoff(ts []term, A float64) (float64, float64) {
	if len(ts) == 0 {
		return math.Inf(1), 1
	}
	h := func(l float64) float64 {
		k, k1, _ := cumulants(ts, l)
		return l*k1 - k
	}
	lo, hi := 0.0, 1.0
	for h(hi) < A {
		lo, hi = hi, hi*2
		if hi > 1e6 {
			return math.Inf(1), 1
		}
	}
	for range 100 {
		mid := (lo + hi) / 2
		if h(mid) < A {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-9*hi {
			break
		}
	}
	k, k1, _ := cumulants(ts, hi)
	// At λ = hi, h ≥ A: exp(K − λ·K') ≤ e^{−A}.
	return k1, math.Exp(k - hi*k1)
}

// Scored is one session's scores.
type Scored struct {
	WMID   uint64      `json:"wmid"`
	Scores [nf]float64 `json:"scores"`
}

// Score is session wmid's score under each function.
func (a *Accuser) Score(wmid uint64) [nf]float64 {
	if len(a.scratch) != 2*len(a.d) {
		a.scratch = make([]byte, 2*len(a.d))
	}
	a.cw = a.code.codeword(a.cw[:0], a.scratch, wmid)
	var s [nf]float64
	copy(s[:], a.base)
	for i, b := range a.cw {
		if b == 1 {
			d := &a.d[i]
			for f := range nf {
				s[f] += d[f]
			}
		}
	}
	return s
}

// Accused is a session whose score passes a threshold.
type Accused struct {
	WMID uint64 `json:"wmid"`
	// Score is the function under which the session's score passes its
	// threshold by the most, Margin by how much, in an innocent score's
	// standard deviations.
	Score     string  `json:"score"`
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	Margin    float64 `json:"margin"`
}

// Accuse scores every session in wmids and returns those accused, most
// strongly accused first.
func (a *Accuser) Accuse(wmids []uint64) []Accused {
	var out []Accused
	for _, w := range wmids {
		if acc, ok := a.Check(w); ok {
			out = append(out, acc)
		}
	}
	slices.SortStableFunc(out, func(x, y Accused) int { return cmp.Compare(y.Margin, x.Margin) })
	return out
}

// Check scores session wmid and reports whether it is accused.
func (a *Accuser) Check(wmid uint64) (Accused, bool) {
	s := a.Score(wmid)
	best, bestM := -1, 0.0
	for f, t := range a.Thresholds {
		if math.IsInf(t.Threshold, 1) || s[f] < t.Threshold {
			continue
		}
		m := (s[f] - t.Threshold) / max(t.SD, 1e-12)
		if best < 0 || m > bestM {
			best, bestM = f, m
		}
	}
	if best < 0 {
		return Accused{}, false
	}
	return Accused{WMID: wmid, Score: Scores[best].Name, Value: s[best], Threshold: a.Thresholds[best].Threshold, Margin: bestM}, true
}
