package watermark_test

import (
	"math/rand/v2"
	"testing"

	"github.com/abseal/abseal/watermark"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func code(t testing.TB, bits int) *watermark.Code {
	c, err := watermark.NewCode(testKey, bits, 7)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// scores turns a pattern into soft scores with noise: each position gets
// ±amp plus Gaussian noise of deviation 1.
func scores(pat []uint8, amp float64, r *rand.Rand) []float64 {
	s := make([]float64, len(pat))
	for i, b := range pat {
		s[i] = amp*float64(2*int(b)-1) + r.NormFloat64()
	}
	return s
}

func TestPatternRoundTrip(t *testing.T) {
	for _, bits := range []int{32, 48, 64} {
		c := code(t, bits)
		if c.PatternLen() != 2*(bits+32+6) {
			t.Fatalf("%d-bit wmids: pattern length %d", bits, c.PatternLen())
		}
		r := rand.New(rand.NewPCG(uint64(bits), 1))
		for range 50 {
			wmid := r.Uint64() >> (64 - bits)
			pat, err := c.Pattern(wmid)
			if err != nil {
				t.Fatal(err)
			}
			s := make([]float64, len(pat))
			for i, b := range pat {
				s[i] = float64(2*int(b) - 1)
			}
			d, err := c.Decode(s)
			if err != nil || !d.OK || d.WMID != wmid {
				t.Fatalf("%d bits: wmid %d decoded as %+v, %v", bits, wmid, d, err)
			}
		}
	}
	if _, err := code(t, 32).Pattern(1 << 40); err == nil {
		t.Fatal("a 41-bit wmid was accepted by a 32-bit code")
	}
}

// The pattern looks random: balanced, and far from any other session's.
func TestPatternsDiffer(t *testing.T) {
	c := code(t, 32)
	p1, _ := c.Pattern(1)
	p2, _ := c.Pattern(2)
	ones, diff := 0, 0
	for i := range p1 {
		ones += int(p1[i])
		if p1[i] != p2[i] {
			diff++
		}
	}
	n := len(p1)
	if ones < n/4 || ones > 3*n/4 || diff < n/4 {
		t.Fatalf("pattern of %d bits: %d ones; %d bits differ from a neighbour wmid", n, ones, diff)
	}
	other, _ := watermark.NewCode([]byte("another key, 32 bytes long......"), 32, 7)
	q, _ := other.Pattern(1)
	same := 0
	for i := range q {
		if q[i] == p1[i] {
			same++
		}
	}
	if same > 3*n/4 {
		t.Fatalf("two keys give nearly the same pattern (%d of %d bits)", same, n)
	}
}

// Soft decoding corrects wrong bits and erasures together.
func TestPayloadCorrects(t *testing.T) {
	c := code(t, 32)
	r := rand.New(rand.NewPCG(9, 9))
	for _, tc := range []struct {
		name           string
		flip, erase    float64 // fractions of positions
		amp            float64 // signal to noise of the scores
		minSuccessRate float64
	}{
		{"3% wrong", 0.03, 0, 3, 0.99},
		{"30% erased", 0, 0.30, 3, 0.99},
		{"2% wrong and 20% erased", 0.02, 0.20, 3, 0.93},
		{"noisy scores (raw BER 7%)", 0, 0, 1.5, 0.99},
		{"first 20% lost (a trimmed start)", 0, 0, 3, 0.995},
	} {
		ok := 0
		const trials = 1000
		for i := range trials {
			wmid := uint64(r.Uint32())
			pat, _ := c.Pattern(wmid)
			s := scores(pat, tc.amp, r)
			for p := range s {
				if r.Float64() < tc.flip {
					s[p] = -s[p]
				}
				if r.Float64() < tc.erase {
					s[p] = 0
				}
			}
			if tc.name == "first 20% lost (a trimmed start)" {
				for p := range len(s) / 5 {
					s[p] = 0
				}
			}
			d, _ := c.Decode(s)
			if d.OK && d.WMID != wmid {
				t.Fatalf("%s: trial %d named wmid %d instead of %d", tc.name, i, d.WMID, wmid)
			}
			if d.OK {
				ok++
			}
		}
		rate := float64(ok) / trials
		t.Logf("%s: identified %.1f%% of %d trials", tc.name, 100*rate, trials)
		if rate < tc.minSuccessRate {
			t.Errorf("%s: identified %.1f%% of trials, want >= %.0f%%", tc.name, 100*rate, 100*tc.minSuccessRate)
		}
	}
}

// Unmarked content (pure noise scores), a mark under another key, and no
// scores at all are never identified.
func TestNoFalsePositives(t *testing.T) {
	c := code(t, 32)
	other, _ := watermark.NewCode([]byte("another key, 32 bytes long......"), 32, 7)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		s := make([]float64, c.PatternLen())
		for p := range s {
			s[p] = r.NormFloat64()
		}
		if d, _ := c.Decode(s); d.OK {
			t.Fatalf("noise trial %d identified wmid %d", i, d.WMID)
		}
	}
	for range 200 {
		pat, _ := other.Pattern(uint64(r.Uint32()))
		if d, _ := c.Decode(scores(pat, 3, r)); d.OK {
			t.Fatalf("a pattern under another key identified wmid %d", d.WMID)
		}
	}
	if d, _ := c.Decode(make([]float64, c.PatternLen())); d.OK {
		t.Fatal("all-erased scores identified a wmid")
	}
}

func BenchmarkDecode(b *testing.B) {
	c := code(b, 32)
	pat, _ := c.Pattern(12345)
	s := scores(pat, 2, rand.New(rand.NewPCG(1, 1)))
	b.ReportAllocs()
	for b.Loop() {
		c.Decode(s)
	}
}
