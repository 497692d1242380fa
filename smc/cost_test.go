package smc

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/internal/testutil"
)

// TestCostCountsWhatTheEngineMustDo: on small runs (N = 13 particles, not a
// multiple of the batch of 16·workers, so padding occurs) the counts equal
// what the engine must have done. The base is evaluated at initialisation
// and after each of the first T−1 steps (the last step scores the exact
// reward instead), so the time-dependent (uncached) reverse base costs N·T
// denoiser rows; rewards are N at the end plus φ per particle per
// look-ahead evaluation; the gradient look-ahead passes N rows T times; q_φ
// is evaluated where the base is. The trace's counts are cumulative and end
// at the result's; counts do not depend on the number of workers.
func TestCostCountsWhatTheEngineMustDo(t *testing.T) {
	const N, T = 13, toyT
	learned := func(workers int) Proposal {
		q, err := NewLearned(toyKernel(), toyPool(workers, 99), 16)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	fg := func(workers int) Twist {
		pool := make([]LookAheadGrad, workers)
		for i := range pool {
			pool[i] = newFakeGrad(8, 2)
		}
		return GradLookAhead{Pool: pool}
	}
	cases := []struct {
		name  string
		prop  func(workers int) Proposal
		twist func(workers int) Twist
		final Final
		want  Cost
	}{
		{"best-of-N", func(int) Proposal { return ReverseProposal{} }, func(int) Twist { return NoTwist{} }, FinalArgmaxReward,
			Cost{DenoiserRows: N * T, RewardEvals: N}},
		{"reverse/mc", func(int) Proposal { return ReverseProposal{} }, func(int) Twist { return LookAhead{Phi: 3} }, FinalResample,
			Cost{DenoiserRows: N * T, RewardEvals: N*T*3 + N}},
		{"grad", func(int) Proposal { return GradProposal{} }, fg, FinalResample,
			Cost{DenoiserRows: N * T, GradRows: N * T, RewardEvals: N*T*2 + N}},
		{"learned/none", learned, func(int) Twist { return NoTwist{} }, FinalResample,
			Cost{DenoiserRows: N * T, ProposalRows: N * T, RewardEvals: N}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got [2]Cost
			for w, workers := range []int{1, 3} {
				s, err := New(Target{Base: toyReverse(t, workers), Reward: toyTable(), Alpha: 0.7}, Config{N: N, Grid: toyGrid(t, T),
					Twist: c.twist(workers), Proposal: c.prop(workers), Final: c.final, Workers: workers, RewardBatch: 5})
				if err != nil {
					t.Fatal(err)
				}
				// Two runs on one sampler: each counts its own work.
				for range 2 {
					res, err := s.Run(rand.New(rand.NewPCG(1, 2)))
					if err != nil {
						t.Fatal(err)
					}
					cost := res.Cost
					if cost != c.want {
						t.Errorf("%d workers: cost %+v, want %+v", workers, cost, c.want)
					}
					var prev Cost
					for i, in := range res.Trace {
						if in.Cost.DenoiserRows < prev.DenoiserRows || in.Cost.RewardEvals < prev.RewardEvals ||
							in.Cost.GradRows < prev.GradRows || in.Cost.ProposalRows < prev.ProposalRows {
							t.Errorf("trace row %d: counts %+v decrease from %+v", i, in.Cost, prev)
						}
						prev = in.Cost
					}
					if prev != cost {
						t.Errorf("last trace row counts %+v, want the result's %+v", prev, cost)
					}
					if first := res.Trace[0].Cost; first.DenoiserRows != N {
						t.Errorf("initialisation counted %d denoiser rows, want N = %d", first.DenoiserRows, N)
					}
					got[w] = cost
				}
			}
			if got[0] != got[1] {
				t.Errorf("counts differ between 1 and 3 workers: %+v vs %+v", got[0], got[1])
			}
		})
	}
}

// TestCostCountsCachedRows: with a time-independent denoiser the reverse
// base caches logits by state, and the cost of a run on a fresh sampler
// counts the rows the denoiser actually computed (batch 1, so no padding:
// the denoiser's own count), far fewer than N·T; the uncached run counts
// N·T. Repeating the run on the used sampler counts the same.
func TestCostCountsCachedRows(t *testing.T) {
	defer func(old int) { MaxCachedStates = old }(MaxCachedStates)
	const N = 200
	for _, maxCache := range []int{0, 1 << 16} {
		MaxCachedStates = maxCache
		rows := 0
		dens := []diffusion.Denoiser{countingTI{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, &rows}}
		b, err := NewReverse(toyKernel(), dens, 1)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Target{Base: b, Reward: toyTable(), Alpha: 0.7}, Config{N: N, Grid: toyGrid(t, toyT), Twist: LookAhead{Phi: 2}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(4, 4)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Cost.DenoiserRows != int64(rows) {
			t.Errorf("cache %d: counted %d denoiser rows, the denoiser computed %d", maxCache, res.Cost.DenoiserRows, rows)
		}
		switch {
		case maxCache == 0 && rows != N*toyT:
			t.Errorf("uncached: %d rows, want N·T = %d", rows, N*toyT)
		case maxCache > 0 && rows > 64:
			t.Errorf("cached: %d rows, want at most the 64 states", rows)
		}
		t.Logf("cache %d: %d denoiser rows", maxCache, rows)
		// A second run on the same sampler finds its states cached by the
		// first, yet counts what a fresh sampler computes: its count does
		// not depend on the sampler's history.
		before := rows
		again, err := s.Run(rand.New(rand.NewPCG(4, 4)))
		if err != nil {
			t.Fatal(err)
		}
		if again.Cost != res.Cost {
			t.Errorf("cache %d: the same run on a used sampler counts %+v, on a fresh one %+v", maxCache, again.Cost, res.Cost)
		}
		if maxCache > 0 && rows != before {
			t.Errorf("cache %d: the repeated run computed %d new rows, want 0 (all cached)", maxCache, rows-before)
		}
	}
}

// TestCostRunMany: RunMany's runs each report the per-run share of the
// batch, equal to a single run's counts when every run does the same work.
func TestCostRunMany(t *testing.T) {
	s, err := New(Target{Base: toyReverse(t, 1), Reward: toyTable(), Alpha: 0.7}, Config{N: 10, Grid: toyGrid(t, toyT),
		Twist: LookAhead{Phi: 2}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.RunMany([]*rand.Rand{rand.New(rand.NewPCG(1, 1)), rand.New(rand.NewPCG(2, 2)), rand.New(rand.NewPCG(3, 3))})
	if err != nil {
		t.Fatal(err)
	}
	want := Cost{DenoiserRows: 10 * toyT, RewardEvals: 10*toyT*2 + 10}
	for r, x := range res {
		c := x.Cost
		if c != want {
			t.Errorf("run %d: cost %+v, want %+v", r, c, want)
		}
		if last := x.Trace[len(x.Trace)-1].Cost; fmt.Sprint(last) != fmt.Sprint(c) {
			t.Errorf("run %d: trace ends at %+v, result %+v", r, last, c)
		}
	}
}

// TestCostLOPCountsCandidates: the locally optimal proposal evaluates the
// base at every distinct candidate next state; those rows are counted, so
// its denoiser rows exceed N·T, and its exact look-ahead's reward calls
// (none for an additive reward) are not invented.
func TestCostLOPCountsCandidates(t *testing.T) {
	const N = 20
	s, err := New(Target{Base: toyReverse(t, 1), Reward: toyTable(), Alpha: 0.7}, Config{N: N, Grid: toyGrid(t, toyT),
		Twist: ExactLookAhead{}, Proposal: LOP{}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Cost.DenoiserRows <= N*toyT {
		t.Errorf("LOP counted %d denoiser rows, want more than N·T = %d (its candidates)", res.Cost.DenoiserRows, N*toyT)
	}
	if res.Cost.RewardEvals < N {
		t.Errorf("LOP counted %d reward evaluations, want at least the N = %d final ones plus the last step's candidates", res.Cost.RewardEvals, N)
	}
	t.Logf("LOP: %+v", res.Cost)
}

// TestTraceCarriesCost: the trace files carry each row's cumulative counts
// under the Cost column names.
func TestTraceCarriesCost(t *testing.T) {
	tr := []Info{{Step: 0, Cost: Cost{DenoiserRows: 7, RewardEvals: 21}}, {Step: 1, Cost: Cost{DenoiserRows: 14, GradRows: 3, RewardEvals: 42, ProposalRows: 5}}}
	dir := t.TempDir()
	csvPath, jsonPath := dir+"/trace.csv", dir+"/trace.jsonl"
	if err := WriteTraceCSV(csvPath, tr); err != nil {
		t.Fatal(err)
	}
	if err := WriteTraceJSONL(jsonPath, tr); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	jb, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(jb)), "\n")
	for r, in := range tr {
		var row map[string]any
		if err := json.Unmarshal([]byte(lines[r]), &row); err != nil {
			t.Fatal(err)
		}
		for k, want := range map[string]int64{"denoiser_rows": in.Cost.DenoiserRows, "grad_rows": in.Cost.GradRows,
			"reward_evals": in.Cost.RewardEvals, "proposal_rows": in.Cost.ProposalRows} {
			i, ok := col[k]
			if !ok {
				t.Fatalf("trace.csv has no column %s", k)
			}
			if got := recs[r+1][i]; got != strconv.FormatInt(want, 10) {
				t.Errorf("row %d %s = %s in trace.csv, want %d", r, k, got, want)
			}
			if got, ok := row[k].(float64); !ok || int64(got) != want {
				t.Errorf("row %d %s = %v in trace.jsonl, want %d", r, k, row[k], want)
			}
		}
	}
}

// TestDisableCache: without the logit cache a time-independent denoiser is
// evaluated at every state of every step (N·T rows, counted), and the run
// is bit-identical to the cached one.
func TestDisableCache(t *testing.T) {
	const N = 50
	run := func(off bool) (*Result, int) {
		rows := 0
		b, err := NewReverse(toyKernel(), []diffusion.Denoiser{countingTI{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, &rows}}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if off {
			b.DisableCache()
		}
		s, err := New(Target{Base: b, Reward: toyTable(), Alpha: 0.7}, Config{N: N, Grid: toyGrid(t, toyT), Twist: LookAhead{Phi: 2}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(8, 8)))
		if err != nil {
			t.Fatal(err)
		}
		return res, rows
	}
	on, rowsOn := run(false)
	off, rowsOff := run(true)
	if rowsOff != N*toyT || off.Cost.DenoiserRows != N*toyT {
		t.Errorf("uncached: denoiser computed %d rows, counted %d; want N·T = %d", rowsOff, off.Cost.DenoiserRows, N*toyT)
	}
	if rowsOn >= rowsOff || on.Cost.DenoiserRows != int64(rowsOn) {
		t.Errorf("cached: computed %d rows, counted %d; want fewer than %d", rowsOn, on.Cost.DenoiserRows, rowsOff)
	}
	if on.LogZ != off.LogZ || fmt.Sprint(on.X, on.LogW) != fmt.Sprint(off.X, off.LogW) {
		t.Errorf("disabling the cache changed the run")
	}
}

// TestCostRunManyWithCache: with a caching base (time-independent
// denoiser) each of RunMany's runs is charged what it would cost alone on a
// fresh sampler, for batched evaluations (reverse proposal) and per-run
// ones (the locally optimal proposal's candidates), and the results are
// those of the runs alone.
func TestCostRunManyWithCache(t *testing.T) {
	cached := func() *Reverse {
		rows := 0
		b, err := NewReverse(toyKernel(), []diffusion.Denoiser{countingTI{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, &rows}}, 4)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		name string
		prop Proposal
		tw   Twist
	}{{"reverse/mc", ReverseProposal{}, LookAhead{Phi: 2}}, {"lop/exact", LOP{}, ExactLookAhead{}}} {
		build := func() *Sampler {
			s, err := New(Target{Base: cached(), Reward: toyTable(), Alpha: 0.7}, Config{N: 12, Grid: toyGrid(t, toyT), Twist: c.tw, Proposal: c.prop})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		seeds := []uint64{1, 2, 3}
		rngs := make([]*rand.Rand, len(seeds))
		for i, sd := range seeds {
			rngs[i] = rand.New(rand.NewPCG(sd, 9))
		}
		many, err := build().RunMany(rngs)
		if err != nil {
			t.Fatal(err)
		}
		alone := build()
		for i, sd := range seeds {
			one, err := alone.Run(rand.New(rand.NewPCG(sd, 9)))
			if err != nil {
				t.Fatal(err)
			}
			if one.Cost != many[i].Cost {
				t.Errorf("%s run %d: RunMany charges %+v, the run alone %+v", c.name, i, many[i].Cost, one.Cost)
			}
			if a, b := resultString(one), resultString(many[i]); a != b {
				t.Errorf("%s run %d: RunMany and Run differ", c.name, i)
			}
		}
	}
}
