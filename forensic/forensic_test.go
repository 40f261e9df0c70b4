package forensic

import (
	"math"
	"math/rand/v2"
	"testing"
)

var testKey = []byte("an asset key of thirty-two bytes")

func TestLevels(t *testing.T) {
	for k, l := range Levels {
		if want := math.Round(65536 * levelOf(k)); float64(l) != want {
			t.Errorf("level %d: %d, the formula gives %.0f", k, l, want)
		}
	}
}

// TestCodeword: codewords are deterministic, differ between sessions,
// operators and assets, and have each position's bias.
func TestCodeword(t *testing.T) {
	const n = 4000
	c, err := NewCode(testKey, n, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Codeword(nil, 7), c.Codeword(nil, 7)
	if string(a) != string(b) {
		t.Fatal("the same session's codeword differs between calls")
	}
	c2, _ := NewCode(testKey, n, 1)
	other, _ := NewCode([]byte("another asset key of 32 bytes..."), n, 0)
	for name, cw := range map[string][]uint8{"another session": c.Codeword(nil, 8), "another operator": c2.Codeword(nil, 7), "another asset": other.Codeword(nil, 7)} {
		same := 0
		for i := range a {
			if a[i] == cw[i] {
				same++
			}
		}
		// Two independent codewords agree on about 64 % of positions
		// (E[p² + (1−p)²] over the levels).
		if same > n*72/100 {
			t.Errorf("%s: agrees on %d of %d positions", name, same, n)
		}
	}
	// Bits per level over many sessions match the level's bias.
	ones, count := make([]float64, 16), make([]float64, 16)
	var cw []uint8
	for w := range uint64(300) {
		cw = c.Codeword(cw[:0], w)
		for i, bit := range cw {
			ones[c.Level(i)] += float64(bit)
			count[c.Level(i)]++
		}
	}
	for k := range 16 {
		if count[k] == 0 {
			t.Fatalf("level %d never drawn in %d positions", k, n)
		}
		got, p := ones[k]/count[k], Bias(k)
		if sd := math.Sqrt(p * (1 - p) / count[k]); math.Abs(got-p) > 5*sd {
			t.Errorf("level %d: %.4f ones, bias %.4f", k, got, p)
		}
	}
	if _, err := NewCode(testKey[:8], n, 0); err == nil {
		t.Error("a short key was accepted")
	}
	if _, err := NewCode(testKey, MaxPositions+1, 0); err == nil {
		t.Error("more than wmpatlen positions were accepted")
	}
}

// evidence is a leak's z-scores: each position shows bit y[i] with
// strength mu, and noise.
func evidence(y []uint8, mu float64, r *rand.Rand) []float64 {
	z := make([]float64, len(y))
	for i, b := range y {
		s := -1.0
		if b == 1 {
			s = 1
		}
		z[i] = s*mu + r.NormFloat64()
	}
	return z
}

// TestSingleLeaker: at N = 10⁶ issued sessions and ε = 10⁻⁶, a single
// leaker's clean copy is accused from 64 positions, and no one else among
// 20,000 other sessions.
func TestSingleLeaker(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	caught := 0
	const trials = 20
	for trial := range trials {
		c, _ := NewCode([]byte{byte(trial), 31: 1}, 64, 0)
		leaker := r.Uint64N(1 << 32)
		z := evidence(c.Codeword(nil, leaker), 10, r)
		a, err := NewAccuser(c, z, 1_000_000, 1e-6, 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := a.Check(leaker); ok {
			caught++
		}
		for w := range uint64(1000) {
			if acc, ok := a.Check(w<<33 | 1); ok {
				t.Fatalf("innocent session %d accused: %+v", acc.WMID, acc)
			}
		}
	}
	t.Logf("caught %d of %d single leakers from 64 positions", caught, trials)
	if caught < trials*9/10 {
		t.Errorf("caught %d of %d", caught, trials)
	}
}

// TestBoundHolds: with a loose ε the bound is checked by counting: over
// random evidence, the share of innocent sessions whose score passes a
// function's threshold stays at or below the bound that threshold claims.
func TestBoundHolds(t *testing.T) {
	total := 0.0
	for _, s := range Scores {
		total += s.Share
	}
	if math.Abs(total-1) > 1e-12 {
		t.Fatalf("the score functions' shares of ε sum to %g, want 1", total)
	}
	r := rand.New(rand.NewPCG(3, 4))
	c, _ := NewCode(testKey, 200, 0)
	for trial := range 5 {
		// Colluders' interleaving as the leak, weak evidence.
		y := c.Codeword(nil, 1000+uint64(trial))
		y2 := c.Codeword(nil, 2000+uint64(trial))
		for i := range y {
			if i%10 >= 5 {
				y[i] = y2[i]
			}
		}
		z := evidence(y, 1.5, r)
		a, err := NewAccuser(c, z, 1, 0.05, 1)
		if err != nil {
			t.Fatal(err)
		}
		pass := make([]int, nf)
		const innocents = 20000
		for w := range uint64(innocents) {
			s := a.Score(1<<40 + w)
			for f, th := range a.Thresholds {
				if s[f] >= th.Threshold {
					pass[f]++
				}
			}
		}
		for f, th := range a.Thresholds {
			got := float64(pass[f]) / innocents
			// The bound with three standard errors of slack for the count.
			if slack := 3 * math.Sqrt(th.Bound/innocents); got > th.Bound+slack {
				t.Errorf("%s: %.4f of innocents pass, bound %.4f", th.Name, got, th.Bound)
			}
			if th.Bound > 0.05*th.Share*1.0001 {
				t.Errorf("%s: bound %.4g above its share of ε (%.4g)", th.Name, th.Bound, 0.05*th.Share)
			}
		}
	}
}
