package forensic

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
)

// BenchmarkAccuse is the scale goal: a leak of a 2-hour asset (3,600
// positions at 2 s segments) scored against 10⁶ issued sessions on all
// CPUs (make bench; -short: 10⁴ sessions). Reported: seconds per 10⁶
// sessions and the heap in use.
func BenchmarkAccuse(b *testing.B) {
	const n = 3600
	sessions := 1_000_000
	if testing.Short() {
		sessions = 10_000
	}
	c, err := NewCode(testKey, n, 0)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 1))
	z := evidence(c.Codeword(nil, 42), 3, r)
	b.ResetTimer()
	for b.Loop() {
		workers := runtime.GOMAXPROCS(0)
		var wg sync.WaitGroup
		accused := make([]int, workers)
		for w := range workers {
			wg.Go(func() {
				// One Accuser per worker: it holds a codeword buffer.
				a, err := NewAccuser(c, z, sessions, 1e-6, 2)
				if err != nil {
					b.Error(err)
					return
				}
				for id := w; id < sessions; id += workers {
					if _, ok := a.Check(uint64(id)); ok {
						accused[w]++
					}
				}
			})
		}
		wg.Wait()
		total := 0
		for _, k := range accused {
			total += k
		}
		if total != 1 {
			b.Fatalf("%d sessions accused, want the leaker alone", total)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e6/float64(sessions), "s/1e6-sessions")
	b.ReportMetric(float64(ms.HeapSys)/(1<<20), "heap-MiB")
}
