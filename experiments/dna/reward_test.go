package dna

import (
	"errors"
	"math"
	"sort"
	"strings"
	"testing"
)

func trlPWM(t *testing.T) *PWM {
	t.Helper()
	ms, err := LoadMotifs(realDataDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 126 {
		t.Fatalf("%d insect matrices, want 126", len(ms))
	}
	m, err := FindMotif(ms, "MA0205.1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPWM(m, Background, 100)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func quantile(sorted []float64, q float64) float64 {
	return sorted[int(math.Round(q*float64(len(sorted)-1)))]
}

// TestTrlMatrix checks the reward matrix against domains.md §2.3: width
// 10, consensus TCGCTCTCTC scoring 9.19 nats, exact 1e-4 threshold 7.04.
func TestTrlMatrix(t *testing.T) {
	p := trlPWM(t)
	if p.Width() != 10 || p.Consensus() != "TCGCTCTCTC" {
		t.Fatalf("width %d, consensus %s", p.Width(), p.Consensus())
	}
	if _, hi := p.Bounds(); math.Abs(hi-9.19) > 0.005 {
		t.Errorf("consensus score %.4f, want 9.19", hi)
	}
	if thr := p.Threshold(1e-4); math.Abs(thr-7.04) > 0.0051 {
		t.Errorf("1e-4 threshold %.3f, want 7.04", thr)
	}
}

// TestRewardDistribution checks the reward on real windows and reference
// sequences against domains.md §2.3: over the 17,215 unique windows, mean
// 4.40, median 4.20, 99th percentile 9.39, max 11.25 (all to 0.01 nats,
// the precision quoted); (GA)₅₀ 12.42, (GAGAG)₂₀ 8.62, poly-A 0.81; the
// hard maximum's median 3.45 and 99th percentile 8.59.
func TestRewardDistribution(t *testing.T) {
	c := realCorpus(t)
	p := trlPWM(t)
	r, err := NewReward(p, 100)
	if err != nil {
		t.Fatal(err)
	}
	all := c.All()
	out := make([]float64, all.Len())
	if err := r.Reward(all.Tokens, out); err != nil {
		t.Fatal(err)
	}
	sc := NewScanner(p)
	hard := make([]float64, all.Len())
	mean := 0.0
	for i := range out {
		mean += out[i] / float64(len(out))
		hard[i] = sc.MaxScore(all.Row(i))
		if d := math.Abs(sc.SoftScore(all.Row(i)) - out[i]); d > 1e-9 {
			t.Fatalf("row %d: scanner %v, reward %v", i, sc.SoftScore(all.Row(i)), out[i])
		}
	}
	sort.Float64s(out)
	sort.Float64s(hard)
	check := func(what string, got, want, tol float64) {
		t.Helper()
		if math.Abs(got-want) > tol {
			t.Errorf("%s = %.3f, want %.2f ± %.2f", what, got, want, tol)
		}
	}
	check("mean", mean, 4.40, 0.01)
	check("median", quantile(out, 0.5), 4.20, 0.01)
	check("99th percentile", quantile(out, 0.99), 9.39, 0.02)
	check("max", out[len(out)-1], 11.25, 0.01)
	check("hard max, median", quantile(hard, 0.5), 3.45, 0.01)
	check("hard max, 99th percentile", quantile(hard, 0.99), 8.59, 0.02)
	ref := func(s string) float64 {
		v := make([]float64, 1)
		if err := r.Reward(MustDecode(s), v); err != nil {
			t.Fatal(err)
		}
		return v[0]
	}
	check("(GA)50", ref(strings.Repeat("GA", 50)), 12.42, 0.005)
	check("(GAGAG)20", ref(strings.Repeat("GAGAG", 20)), 8.62, 0.005)
	check("poly-A", ref(strings.Repeat("A", 100)), 0.81, 0.005)
}

// TestBadMotifs: an unknown id, a zero column, a wrong width and a
// malformed file are named errors.
func TestBadMotifs(t *testing.T) {
	ms, err := ReadJASPAR(strings.NewReader(">X1 a\nA [1 0 2 3]\nC [1 0 2 3]\nG [1 0 2 3]\nT [1 0 2 3]\n>X2 b\nA [1 1 1]\nC [1 1 1]\nG [1 1 1]\nT [1 1 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FindMotif(ms, "MA9999.1"); !errors.Is(err, ErrUnknownMotif) {
		t.Errorf("unknown id: %v", err)
	}
	if _, err := NewPWM(ms[0], Background, 100); !errors.Is(err, ErrBadMotif) || !strings.Contains(err.Error(), "zero column at position 2") {
		t.Errorf("zero column: %v", err)
	}
	if _, err := NewPWM(ms[1], Background, 100); !errors.Is(err, ErrBadMotif) {
		t.Errorf("width 3: %v", err)
	}
	ms[0].Counts[0][1] = 1
	if _, err := NewPWM(ms[0], Background, 3); !errors.Is(err, ErrBadMotif) {
		t.Errorf("wider than the sequence: %v", err)
	}
	for name, in := range map[string]string{
		"ragged":      ">X a\nA [1 2]\nC [1 2 3]\nG [1 2]\nT [1 2]\n",
		"missing row": ">X a\nA [1 2]\nC [1 2]\nG [1 2]\n",
		"negative":    ">X a\nA [1 -2]\nC [1 2]\nG [1 2]\nT [1 2]\n",
		"no header":   "A [1 2]\n",
		"bad row":     ">X a\nA 1 2\n",
	} {
		if _, err := ReadJASPAR(strings.NewReader(in)); !errors.Is(err, ErrBadMotif) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The task reports an unknown reward.motif when it loads.
	tk, err := open(specFor(), optionsFor(map[string]any{"data.dir": realDataDir(t), "reward.motif": "MA0000.9"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tk.Reward(1); !errors.Is(err, ErrUnknownMotif) || !strings.Contains(err.Error(), "reward.motif") {
		t.Errorf("task with an unknown motif: %v", err)
	}
}
