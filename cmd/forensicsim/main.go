// Command forensicsim simulates accusation with abseal's session code
// (package forensic): the real code, evidence and thresholds over a
// channel model of the detector's per-segment evidence, for c colluders
// and their strategies. For each cell it finds the fewest segments at
// which at least one colluder is accused in ≥ 99 % of leaks, then counts
// catches and innocents accused over --trials leaks at that length.
//
//	go run ./cmd/forensicsim [--trials 10000] [--colluders 1,2,4,8]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/abseal/abseal/forensic"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "forensicsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("forensicsim", flag.ContinueOnError)
	fl.SetOutput(stderr)
	trials := fl.Int("trials", 10000, "leaks simulated per cell at the length found")
	searchTrials := fl.Int("search-trials", 300, "leaks per length tried while searching")
	sessions := fl.Int("sessions", 1_000_000, "sessions issued for the asset (N)")
	eps := fl.Float64("eps", 1e-6, "total false-accusation probability")
	innocents := fl.Int("innocents", 10, "innocent sessions scored per leak")
	maxSeg := fl.Int("max-segments", 16000, "longest leak tried (segments)")
	coll := fl.String("colluders", "1,2,4,8", "colluder counts, comma-separated")
	strat := fl.String("strategies", strings.Join(forensic.Strategies, ","), "colluder strategies, comma-separated")
	mu := fl.Float64("mu", 11, "channel: mean |z| of a segment's evidence")
	flip := fl.Float64("flip", 0.01, "channel: share of segments whose sign is wrong")
	seed := fl.Uint64("seed", 1, "random seed")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *trials < 1 || *searchTrials < 1 || *sessions < 1 || *maxSeg < 1 {
		return errors.New("--trials, --search-trials, --sessions and --max-segments must be positive")
	}
	var cs []int
	for _, f := range strings.Split(*coll, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > 64 {
			return fmt.Errorf("--colluders: %q is not a count from 1 to 64", f)
		}
		cs = append(cs, c)
	}
	strategies := strings.Split(*strat, ",")
	for _, s := range strategies {
		if !contains(forensic.Strategies, s) {
			return fmt.Errorf("--strategies: unknown %q (known: %s)", s, strings.Join(forensic.Strategies, ", "))
		}
	}
	ch := forensic.Channel{Name: "measured", Mu: *mu, Flip: *flip}
	fmt.Fprintf(stdout, "# abseal forensic simulation\n\nN = %d issued sessions, ε = %g, channel: segment evidence ±%.1f with unit noise, %.1f %% of segments' signs wrong; %d score functions (%s). Segments needed for ≥ 99 %% of leaks to accuse at least one colluder (searched with %d leaks per length), then %d leaks at that length with %d innocent sessions scored in each.\n\n",
		*sessions, *eps, ch.Mu, 100*ch.Flip, len(forensic.Scores), scoreNames(), *searchTrials, *trials, *innocents)
	fmt.Fprintf(stdout, "| colluders | strategy | segments | minutes (2 s segments) | colluder accused | innocents accused / scored |\n|---:|---|---:|---:|---:|---:|\n")
	for _, c := range cs {
		for _, s := range strategies {
			if c == 1 && s != strategies[0] {
				continue // one leaker has no strategy
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			start := time.Now()
			cell := func(n, k int, seed uint64) (caught, innocent int, err error) {
				return simulate(n, c, s, ch, *sessions, *eps, k, *innocents, seed)
			}
			n, err := search(cell, *searchTrials, *maxSeg, *seed)
			if err != nil {
				return err
			}
			name := s
			if c == 1 {
				name = "—"
			}
			if n < 0 {
				fmt.Fprintf(stdout, "| %d | %s | > %d | | | |\n", c, name, *maxSeg)
				continue
			}
			// The search's estimate, confirmed with all the trials: a
			// length whose catch rate falls short grows by 4 %.
			var caught, innocent int
			for {
				caught, innocent, err = cell(n, *trials, *seed+1000)
				if err != nil {
					return err
				}
				if float64(caught) >= 0.99*float64(*trials) || n >= *maxSeg {
					break
				}
				n = min(*maxSeg, n+max(1, n/25))
			}
			fmt.Fprintf(stdout, "| %d | %s | %d | %.1f | %.2f %% | %d / %d |\n", c, name, n, float64(n)*2/60, 100*float64(caught)/float64(*trials), innocent, *trials**innocents)
			fmt.Fprintf(stderr, "forensicsim: c=%d %s: %d segments (%s)\n", c, s, n, time.Since(start).Round(time.Second))
		}
	}
	return nil
}

// search finds the fewest segments (to about 3 %) at which ≥ 99 % of
// leaks accuse a colluder, or -1 above max.
func search(cell func(n, k int, seed uint64) (int, int, error), k, limit int, seed uint64) (int, error) {
	ok := func(n int) (bool, error) {
		caught, _, err := cell(n, k, seed+uint64(n))
		return float64(caught) >= 0.99*float64(k), err
	}
	lo, hi := 8, 16
	for {
		good, err := ok(hi)
		if err != nil {
			return 0, err
		}
		if good {
			break
		}
		if hi >= limit {
			return -1, nil
		}
		lo, hi = hi, min(limit, hi*2)
	}
	for hi-lo > max(1, lo/32) {
		mid := (lo + hi) / 2
		good, err := ok(mid)
		if err != nil {
			return 0, err
		}
		if good {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi, nil
}

// simulate runs k leaks on all CPUs and counts those that accuse a
// colluder and the innocents accused.
func simulate(n, c int, strategy string, ch forensic.Channel, sessions int, eps float64, k, innocents int, seed uint64) (int, int, error) {
	var caught, innocent, next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	for w := range runtime.NumCPU() {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for next.Add(1) <= int64(k) {
				t, err := forensic.SimTrial(r, n, c, strategy, ch, sessions, eps, innocents)
				if err != nil {
					errs <- err
					return
				}
				if t.Caught {
					caught.Add(1)
				}
				innocent.Add(int64(t.Innocent))
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, 0, err
	}
	return int(caught.Load()), int(innocent.Load()), nil
}

func scoreNames() string {
	var s []string
	for _, f := range forensic.Scores {
		s = append(s, f.Name)
	}
	return strings.Join(s, ", ")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
