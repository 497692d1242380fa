package diffusion

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// allKernels returns every schedule × η ∈ {0, 0.3, 1} × remask strategy.
func allKernels() []Kernel {
	var ks []Kernel
	for _, s := range allSchedules() {
		for _, eta := range []float64{0, 0.3, 1} {
			for _, r := range []Remask{RemaskRescale, RemaskMaxCap} {
				ks = append(ks, Kernel{Schedule: s, Eta: eta, Remask: r})
			}
		}
	}
	return ks
}

// stepPairs are (t, s) pairs covering the first step, the last step, tiny
// steps and steps in the middle.
var stepPairs = [][2]float64{{1, 0}, {1, 0.99}, {1, 0.5}, {0.9, 0.8}, {0.5, 0.4}, {0.5, 0.499999}, {0.2, 0}, {0.01, 0}, {0.3, 0.01}}

// randomLogits fills lg with N(0, 3²) logits, each −Inf with probability
// 0.3, keeping at least one finite.
func randomLogits(rng *rand.Rand, lg []float64) {
	for v := range lg {
		lg[v] = 3 * rng.NormFloat64()
		if rng.Float64() < 0.3 {
			lg[v] = math.Inf(-1)
		}
	}
	lg[rng.IntN(len(lg))] = rng.NormFloat64()
}

func kname(k Kernel) string {
	return k.Schedule.Name() + "/" + k.Remask.String()
}

// TestPositionLogProbsSumToOne (item 1): every transition distribution is a
// proper distribution: no NaN or +Inf, and Σ_v exp = 1 within 1e-12.
func TestPositionLogProbsSumToOne(t *testing.T) {
	const V = 6
	rng := rand.New(rand.NewPCG(3, 0))
	lg := make([]float64, V)
	out := make([]float64, V+1)
	for _, k := range allKernels() {
		for _, ts := range stepPairs {
			for rep := range 20 {
				randomLogits(rng, lg)
				for _, xt := range []int{0, rep % V, V - 1, V} {
					if err := k.PositionLogProbs(xt, lg, ts[0], ts[1], out); err != nil {
						t.Fatalf("%s eta=%v t=%v s=%v: %v", kname(k), k.Eta, ts[0], ts[1], err)
					}
					sum := 0.0
					for v, x := range out {
						if math.IsNaN(x) || x > 1e-15 {
							t.Fatalf("%s eta=%v t=%v s=%v xt=%d: bad log-prob %v at %d", kname(k), k.Eta, ts[0], ts[1], xt, x, v)
						}
						sum += math.Exp(x)
					}
					if math.Abs(sum-1) > 1e-12 {
						t.Errorf("%s eta=%v t=%v s=%v xt=%d: sums to %v", kname(k), k.Eta, ts[0], ts[1], xt, sum)
					}
					// SUBS: a −Inf x0-logit stays impossible for a masked token.
					if xt == V {
						for v := range V {
							if math.IsInf(lg[v], -1) && !math.IsInf(out[v], -1) {
								t.Errorf("%s: zero x0 mass at %d became %v", kname(k), v, out[v])
							}
						}
					}
				}
			}
		}
	}
}

// TestCarryOverExact (item 2): with η = 0 an unmasked token stays with
// log-prob exactly 0 and everything else is −Inf; a step to s = 0 leaves no
// mask for every schedule, η and strategy; and a masked token's x0 part is
// exactly the SUBS formula.
func TestCarryOverExact(t *testing.T) {
	const V = 5
	rng := rand.New(rand.NewPCG(4, 0))
	lg := make([]float64, V)
	out := make([]float64, V+1)
	for _, k := range allKernels() {
		for _, ts := range stepPairs {
			randomLogits(rng, lg)
			if k.Eta == 0 {
				for xt := range V {
					if err := k.PositionLogProbs(xt, lg, ts[0], ts[1], out); err != nil {
						t.Fatal(err)
					}
					for v, x := range out {
						if v == xt && x != 0 {
							t.Errorf("%s t=%v s=%v: carry-over log-prob %v, want exactly 0", kname(k), ts[0], ts[1], x)
						}
						if v != xt && !math.IsInf(x, -1) {
							t.Errorf("%s t=%v s=%v: entry %d of unmasked token %d is %v, want -Inf", kname(k), ts[0], ts[1], v, xt, x)
						}
					}
				}
				// masked token: (α_s−α_t)/(1−α_t)·x̂ and (1−α_s)/(1−α_t).
				if err := k.PositionLogProbs(V, lg, ts[0], ts[1], out); err != nil {
					t.Fatal(err)
				}
				at, as := k.Schedule.Alpha(ts[0]), k.Schedule.Alpha(ts[1])
				lse := 0.0
				for _, x := range lg {
					lse += math.Exp(x)
				}
				for v := range V {
					want := (as - at) / (1 - at) * math.Exp(lg[v]) / lse
					if got := math.Exp(out[v]); math.Abs(got-want) > 1e-13 {
						t.Errorf("%s t=%v s=%v: p(%d) = %v, SUBS %v", kname(k), ts[0], ts[1], v, got, want)
					}
				}
				if got, want := math.Exp(out[V]), (1-as)/(1-at); math.Abs(got-want) > 1e-13 {
					t.Errorf("%s t=%v s=%v: p(mask) = %v, SUBS %v", kname(k), ts[0], ts[1], got, want)
				}
			}
			if ts[1] != 0 {
				continue
			}
			for xt := range V + 1 {
				if err := k.PositionLogProbs(xt, lg, ts[0], 0, out); err != nil {
					t.Fatal(err)
				}
				if !math.IsInf(out[V], -1) {
					t.Errorf("%s eta=%v t=%v -> 0, xt=%d: mask log-prob %v, want -Inf", kname(k), k.Eta, ts[0], xt, out[V])
				}
			}
		}
	}
}

// TestRemaskProbability (item 8): with η > 0 an unmasked token remasks with
// probability exactly σ (hand-computed from the ReMDM formulas), stays with
// 1 − σ, the masked token's mask probability is (1 − α_s − σα_t)/(1 − α_t),
// and Step's remasking frequency matches σ within 5 binomial sd.
func TestRemaskProbability(t *testing.T) {
	const V = 4
	lg := []float64{0.3, -1, math.Inf(-1), 2}
	out := make([]float64, V+1)
	// linear schedule: α_t = 1 − t.
	cases := []struct {
		t, s, eta float64
		r         Remask
		sigma     float64
	}{
		{0.5, 0.4, 0.3, RemaskRescale, 0.3 * 0.8},  // σ_max = 0.4/0.5 = 0.8
		{0.5, 0.4, 0.3, RemaskMaxCap, 0.3},         // min(0.3, 0.8)
		{0.5, 0.4, 0.9, RemaskMaxCap, 0.8},         // capped at σ_max
		{0.5, 0.4, 1, RemaskRescale, 0.8},          // σ = σ_max: masked tokens never stay masked
		{0.9, 0.8, 0.3, RemaskRescale, 0.3},        // σ_max = min(1, 0.8/0.1) = 1
		{0.9, 0.8, 0.3, RemaskMaxCap, 0.3},         //
		{1, 0.6, 0.7, RemaskRescale, 0.7},          // α_t = 0: σ_max = 1
		{0.3, 0, 0.7, RemaskRescale, 0},            // α_s = 1: no remasking
		{0.25, 0.125, 0.5, RemaskRescale, 0.5 / 6}, // σ_max = 0.125/0.75
	}
	rng := rand.New(rand.NewPCG(5, 0))
	for _, c := range cases {
		k := Kernel{Schedule: Linear(), Eta: c.eta, Remask: c.r}
		at, as := 1-c.t, 1-c.s
		sig, err := k.Sigma(c.t, c.s)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(sig-c.sigma) > 1e-15 {
			t.Errorf("%+v: Sigma = %v, want %v", c, sig, c.sigma)
		}
		if err := k.PositionLogProbs(1, lg, c.t, c.s, out); err != nil {
			t.Fatal(err)
		}
		if got := math.Exp(out[V]); math.Abs(got-c.sigma) > 1e-15 {
			t.Errorf("%+v: remask prob %v, want sigma %v", c, got, c.sigma)
		}
		if got := math.Exp(out[1]); math.Abs(got-(1-c.sigma)) > 1e-15 {
			t.Errorf("%+v: stay prob %v, want %v", c, got, 1-c.sigma)
		}
		if err := k.PositionLogProbs(V, lg, c.t, c.s, out); err != nil {
			t.Fatal(err)
		}
		wantMask := (1 - as - c.sigma*at) / (1 - at)
		if got := math.Exp(out[V]); math.Abs(got-wantMask) > 1e-14 {
			t.Errorf("%+v: masked stays masked with %v, want %v", c, got, wantMask)
		}
		// Empirical remasking rate over n unmasked tokens.
		const n = 100000
		xt := make([]int, n)
		for i := range xt {
			xt[i] = i % V
		}
		logits := make([]float64, n*V)
		for i := range n {
			copy(logits[i*V:], lg)
		}
		xs := make([]int, n)
		if err := k.Step(rng, xt, logits, 1, V, c.t, c.s, xs); err != nil {
			t.Fatal(err)
		}
		rem := 0
		for i, v := range xs {
			if v == V {
				rem++
			} else if v != xt[i] {
				t.Fatalf("%+v: unmasked token %d moved to %d", c, xt[i], v)
			}
		}
		sd := math.Sqrt(c.sigma * (1 - c.sigma) / n)
		if got := float64(rem) / n; math.Abs(got-c.sigma) > 5*sd {
			t.Errorf("%+v: empirical remask rate %v, sigma %v (5 sd %v)", c, got, c.sigma, 5*sd)
		}
	}
}

// TestLogProbMatchesStep (item 7): on L = 2, V = 3 with one masked and one
// unmasked position, LogProb equals the sum of PositionLogProbs for all 16
// outcomes, its exponentials sum to 1, and the frequencies of n Step draws
// match exp(LogProb) within 5 binomial sd (impossible outcomes never occur).
func TestLogProbMatchesStep(t *testing.T) {
	const L, V, n = 2, 3, 200000
	logits := []float64{1.5, math.Inf(-1), -0.5, 0.2, 0.9, -2}
	for _, k := range []Kernel{
		{Schedule: Linear()},
		{Schedule: Cosine(), Eta: 0.3, Remask: RemaskRescale},
		{Schedule: LogLinear(1e-3), Eta: 0.5, Remask: RemaskMaxCap},
	} {
		tm, s := 0.6, 0.3
		xt := []int{V, 1}
		rows := make([]float64, L*(V+1))
		if err := k.PositionLogProbsInto(xt, logits, tm, s, rows); err != nil {
			t.Fatal(err)
		}
		probs := make(map[[2]int]float64)
		total := 0.0
		for a := range V + 1 {
			for b := range V + 1 {
				lp, err := k.LogProb(xt, []int{a, b}, logits, tm, s)
				if err != nil {
					t.Fatal(err)
				}
				if want := rows[a] + rows[V+1+b]; lp != want && !(math.IsInf(lp, -1) && math.IsInf(want, -1)) {
					t.Errorf("%s: LogProb(%d,%d) = %v, sum of position log-probs %v", kname(k), a, b, lp, want)
				}
				probs[[2]int{a, b}] = math.Exp(lp)
				total += math.Exp(lp)
			}
		}
		if math.Abs(total-1) > 1e-12 {
			t.Errorf("%s: LogProb over all outcomes sums to %v", kname(k), total)
		}
		rng := rand.New(rand.NewPCG(6, 0))
		big := make([]int, n*L)
		bigLogits := make([]float64, n*L*V)
		for i := range n {
			copy(big[i*L:], xt)
			copy(bigLogits[i*L*V:], logits)
		}
		if err := k.Step(rng, big, bigLogits, L, V, tm, s, big); err != nil { // in place
			t.Fatal(err)
		}
		counts := make(map[[2]int]int)
		for i := range n {
			counts[[2]int{big[i*L], big[i*L+1]}]++
		}
		for o, c := range counts {
			if probs[o] == 0 {
				t.Errorf("%s: impossible outcome %v drawn %d times", kname(k), o, c)
			}
		}
		for o, p := range probs {
			got := float64(counts[o]) / n
			if tol := 5 * math.Sqrt(p*(1-p)/n); math.Abs(got-p) > tol {
				t.Errorf("%s: outcome %v frequency %v, exp(LogProb) %v (5 sd %v)", kname(k), o, got, p, tol)
			}
		}
	}
}

// TestKernelErrors (item 7): bad inputs return "diffusion: " errors, never panic.
func TestKernelErrors(t *testing.T) {
	k := Kernel{Schedule: Linear()}
	lg := []float64{0, 1, 2}
	out := make([]float64, 4)
	nan := math.NaN()
	inf := math.Inf(1)
	rng := rand.New(rand.NewPCG(7, 0))
	cases := map[string]error{
		"s=t":         k.PositionLogProbs(3, lg, 0.5, 0.5, out),
		"s>t":         k.PositionLogProbs(3, lg, 0.4, 0.5, out),
		"s<0":         k.PositionLogProbs(3, lg, 0.5, -0.1, out),
		"t>1":         k.PositionLogProbs(3, lg, 1.1, 0.5, out),
		"t NaN":       k.PositionLogProbs(3, lg, nan, 0.5, out),
		"token>V":     k.PositionLogProbs(4, lg, 0.5, 0.4, out),
		"token<0":     k.PositionLogProbs(-1, lg, 0.5, 0.4, out),
		"short out":   k.PositionLogProbs(3, lg, 0.5, 0.4, out[:3]),
		"no logits":   k.PositionLogProbs(0, nil, 0.5, 0.4, out[:1]),
		"NaN logit":   k.PositionLogProbs(3, []float64{0, nan, 1}, 0.5, 0.4, out),
		"NaN unmask":  k.PositionLogProbs(0, []float64{0, nan, 1}, 0.5, 0.4, out),
		"+Inf logit":  k.PositionLogProbs(3, []float64{0, inf, 1}, 0.5, 0.4, out),
		"all -Inf":    k.PositionLogProbs(3, []float64{-inf, -inf, -inf}, 0.5, 0.4, out),
		"nil sched":   Kernel{}.PositionLogProbs(3, lg, 0.5, 0.4, out),
		"eta<0":       Kernel{Schedule: Linear(), Eta: -0.1}.PositionLogProbs(3, lg, 0.5, 0.4, out),
		"eta>1 resc":  Kernel{Schedule: Linear(), Eta: 1.5}.PositionLogProbs(3, lg, 0.5, 0.4, out),
		"eta NaN":     Kernel{Schedule: Linear(), Eta: nan, Remask: RemaskMaxCap}.PositionLogProbs(3, lg, 0.5, 0.4, out),
		"remask":      Kernel{Schedule: Linear(), Remask: 7}.PositionLogProbs(3, lg, 0.5, 0.4, out),
		"bad alpha":   Kernel{Schedule: LogLinear(-1)}.PositionLogProbs(3, lg, 1, 0.4, out),
		"into out":    k.PositionLogProbsInto([]int{3, 0}, append(lg, lg...), 0.5, 0.4, out),
		"into logits": k.PositionLogProbsInto([]int{3, 0}, lg, 0.5, 0.4, make([]float64, 8)),
		"into token":  k.PositionLogProbsInto([]int{3, 4}, append(lg, lg...), 0.5, 0.4, make([]float64, 8)),
	}
	_, cases["LogProb len"] = k.LogProb([]int{3, 0}, []int{1}, append(lg, lg...), 0.5, 0.4)
	_, cases["LogProb logits"] = k.LogProb([]int{3, 0}, []int{1, 0}, lg[:2], 0.5, 0.4)
	_, cases["LogProb token"] = k.LogProb([]int{3, 0}, []int{1, 5}, append(lg, lg...), 0.5, 0.4)
	_, cases["LogProb s>=t"] = k.LogProb([]int{3, 0}, []int{1, 0}, append(lg, lg...), 0.4, 0.4)
	_, cases["LogProb NaN"] = k.LogProb([]int{3, 0}, []int{3, 0}, []float64{0, 0, nan, 0, 0, 0}, 0.5, 0.4)
	_, cases["LogProb empty"] = k.LogProb(nil, nil, nil, 0.5, 0.4)
	xs := make([]int, 4)
	l2 := append(append(append(append([]float64{}, lg...), lg...), lg...), lg...)
	cases["Step nil rng"] = k.Step(nil, []int{3, 3, 3, 3}, l2, 2, 3, 0.5, 0.4, xs)
	cases["Step L"] = k.Step(rng, []int{3, 3, 3, 3}, l2, 3, 3, 0.5, 0.4, xs)
	cases["Step xs"] = k.Step(rng, []int{3, 3, 3, 3}, l2, 2, 3, 0.5, 0.4, xs[:3])
	cases["Step logits"] = k.Step(rng, []int{3, 3, 3, 3}, l2[:9], 2, 3, 0.5, 0.4, xs)
	cases["Step token"] = k.Step(rng, []int{3, 3, 4, 3}, l2, 2, 3, 0.5, 0.4, xs)
	cases["Step s>=t"] = k.Step(rng, []int{3, 3, 3, 3}, l2, 2, 3, 0.5, 0.6, xs)
	l2[5] = nan
	cases["Step NaN"] = k.Step(rng, []int{3, 3, 3, 3}, l2, 2, 3, 0.5, 0.4, xs)
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "diffusion: ") {
			t.Errorf("%s: error %q lacks the prefix", name, err)
		}
	}
	// maxcap accepts η > 1 (it is capped by σ_max ≤ 1).
	if err := (Kernel{Schedule: Linear(), Eta: 2, Remask: RemaskMaxCap}).PositionLogProbs(0, lg, 0.5, 0.4, out); err != nil {
		t.Errorf("maxcap eta=2: %v", err)
	}
}

func TestRemaskParse(t *testing.T) {
	for _, r := range []Remask{RemaskRescale, RemaskMaxCap} {
		got, err := ParseRemask(r.String())
		if err != nil || got != r {
			t.Errorf("round trip %v: %v %v", r, got, err)
		}
	}
	if r, err := ParseRemask("max_cap"); err != nil || r != RemaskMaxCap {
		t.Errorf("max_cap: %v %v", r, err)
	}
	if _, err := ParseRemask("loop"); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("unknown remask: %v", err)
	}
	if s := Remask(9).String(); s != "Remask(9)" {
		t.Errorf("String of unknown: %q", s)
	}
}

func BenchmarkStep(b *testing.B) {
	const B, L, V = 256, 32, 30
	rng := rand.New(rand.NewPCG(8, 0))
	xt := make([]int, B*L)
	for i := range xt {
		if rng.Float64() < 0.5 {
			xt[i] = V
		} else {
			xt[i] = rng.IntN(V)
		}
	}
	logits := make([]float64, B*L*V)
	for i := range logits {
		logits[i] = rng.NormFloat64()
	}
	xs := make([]int, B*L)
	k := Kernel{Schedule: Cosine()}
	for b.Loop() {
		if err := k.Step(rng, xt, logits, L, V, 0.5, 0.49, xs); err != nil {
			b.Fatal(err)
		}
	}
}
