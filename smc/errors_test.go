package smc

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/internal/testutil"
)

// runErr runs a toy configuration and returns its error.
func runErr(t *testing.T, tg Target, cfg Config) error {
	t.Helper()
	if cfg.Grid == nil {
		cfg.Grid = toyGrid(t, toyT)
	}
	if cfg.Lambda.Kind == "" {
		cfg.Lambda = Lambda{Kind: "constant"}
	}
	if cfg.N == 0 {
		cfg.N = 8
	}
	s, err := New(tg, cfg)
	if err != nil {
		return err
	}
	_, err = s.Run(rand.New(rand.NewPCG(1, 1)))
	return err
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// TestBadInputErrors: each bad input gives an error that names the problem
// (and, during a run, the step), never a panic or a silent result.
func TestBadInputErrors(t *testing.T) {
	base := toyReverse(t, 1)
	nan := SequenceReward{L: toyL, F: func(x []int) float64 {
		if x[0] == 1 {
			return math.NaN()
		}
		return 0
	}}
	ninf := SequenceReward{L: toyL, F: func([]int) float64 { return math.Inf(-1) }}
	pinf := SequenceReward{L: toyL, F: func([]int) float64 { return math.Inf(1) }}

	t.Run("nan reward at the end", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: nan, Alpha: 1}, Config{N: 64}), "step 8", "reward", "NaN")
	})
	t.Run("nan reward in the look-ahead", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: nan, Alpha: 1}, Config{N: 64, Twist: LookAhead{Phi: 4}}), "initialisation", "look-ahead", "NaN")
	})
	t.Run("+inf reward", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: pinf, Alpha: 1}, Config{}), "step 8", "+Inf")
	})
	t.Run("all weights -inf", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: ninf, Alpha: 1}, Config{}), "step 8", "all 8 log-weights are -Inf", "reward")
	})
	t.Run("all weights -inf in the look-ahead", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: ninf, Alpha: 1}, Config{Twist: LookAhead{Phi: 2}}), "initialisation", "-Inf")
	})
	t.Run("alpha", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Alpha: 0}, Config{}), "alpha")
	})
	t.Run("particles", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Alpha: 1}, Config{N: -1}), "N = -1")
	})
	t.Run("trigger", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Alpha: 1}, Config{Trigger: Trigger{Kind: "sometimes"}}), `"sometimes"`)
		wantErr(t, runErr(t, Target{Base: base, Alpha: 1}, Config{Trigger: Trigger{Kappa: 1.5}}), "kappa")
	})
	t.Run("final", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Alpha: 1}, Config{Final: "best"}), `"best"`)
	})
	t.Run("lambda", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Alpha: 1}, Config{Lambda: Lambda{Kind: "list", Values: []float64{0, 1}}}), "T+1 = 9")
		wantErr(t, runErr(t, Target{Base: base, Alpha: 1}, Config{Lambda: Lambda{Kind: "cubic"}}), `"cubic"`)
		wantErr(t, runErr(t, Target{Base: base, Alpha: 1}, Config{Lambda: Lambda{Kind: "linear"}}), "k >= 1")
	})
	t.Run("lop needs a deterministic twist", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: toyTable(), Alpha: 1}, Config{Proposal: LOP{}, Twist: LookAhead{Phi: 3}}), "deterministic twist")
	})
	t.Run("lop enumeration limit", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: toyTable(), Alpha: 1}, Config{Proposal: LOP{MaxEnum: 10}, Twist: ExactLookAhead{}}), "max_enum = 10")
	})
	t.Run("grad needs a differentiable twist", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: toyTable(), Alpha: 1}, Config{Proposal: GradProposal{}, Twist: LookAhead{Phi: 1}}), "differentiable")
	})
	t.Run("grad options", func(t *testing.T) {
		fg := GradLookAhead{Pool: []LookAheadGrad{&fakeGrad{den: testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, reward: toyTable(), B: 4, Ph: 1}}}
		wantErr(t, runErr(t, Target{Base: base, Reward: toyTable(), Alpha: 1}, Config{Proposal: GradProposal{Space: "logits"}, Twist: fg}), `"logits"`)
	})
	t.Run("grad shape", func(t *testing.T) {
		fg := GradLookAhead{Pool: []LookAheadGrad{&fakeGrad{den: testutil.HashDenoiser{L: 2, V: toyV, Scale: 2}, reward: toyTable(), B: 4, Ph: 1}}}
		wantErr(t, runErr(t, Target{Base: base, Reward: toyTable(), Alpha: 1}, Config{Proposal: GradProposal{}, Twist: fg}), "shape L=2")
	})
	t.Run("exact look-ahead limit", func(t *testing.T) {
		wantErr(t, runErr(t, Target{Base: base, Reward: toyNonAdditive(), Alpha: 1}, Config{Twist: ExactLookAhead{MaxEnum: 5}}), "max_enum = 5")
	})
	t.Run("denoiser shapes", func(t *testing.T) {
		_, err := NewReverse(toyKernel(), []diffusion.Denoiser{testutil.HashDenoiser{L: 3, V: 3, Scale: 2}, testutil.HashDenoiser{L: 2, V: 3, Scale: 2}}, 4)
		wantErr(t, err, "denoiser 1 has shape L=2")
		_, err = NewReverse(toyKernel(), nil, 4)
		wantErr(t, err, "at least one denoiser")
		_, err = NewReverse(toyKernel(), toyPool(1, 0), 0)
		wantErr(t, err, "batch size 0")
	})
	t.Run("finished run", func(t *testing.T) {
		s, err := New(Target{Base: base, Alpha: 1}, Config{N: 4, Grid: toyGrid(t, 2), Lambda: Lambda{Kind: "constant"}})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 1))
		st, _, _ := s.Init(rng)
		for range 2 {
			if _, err := s.Step(rng, st); err != nil {
				t.Fatal(err)
			}
		}
		_, err = s.Step(rng, st)
		wantErr(t, err, "finished")
	})
}

// failingDenoiser is the hash denoiser until the time drops below at, then
// fails with err.
type failingDenoiser struct {
	testutil.HashDenoiser
	at  float64
	err error
}

func (d failingDenoiser) X0Logits(xt []int, t []float64, out []float64) error {
	if t[0] < d.at {
		return d.err
	}
	return d.HashDenoiser.X0Logits(xt, t, out)
}

// An error during a run names the package once, then the step, then any
// inner context: "smc: step 8 (…): reward of …", not "smc: step 8 (…):
// smc: reward of …"; the underlying error stays reachable with errors.Is.
func TestStepErrorsNameThePackageOnce(t *testing.T) {
	nan := SequenceReward{L: toyL, F: func(x []int) float64 {
		if x[0] == 1 {
			return math.NaN()
		}
		return 0
	}}
	err := runErr(t, Target{Base: toyReverse(t, 1), Reward: nan, Alpha: 1}, Config{N: 64})
	if want := "smc: step 8 (t=0.125 -> s=0): reward of final particle 0 is NaN"; err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}

	boom := errors.New("boom")
	d := failingDenoiser{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, 0.5, boom}
	base, err := NewReverse(toyKernel(), []diffusion.Denoiser{d}, 4)
	if err != nil {
		t.Fatal(err)
	}
	err = runErr(t, Target{Base: base, Alpha: 1}, Config{})
	if want := "smc: step 5 (t=0.5 -> s=0.375): denoiser at t=0.375: boom"; err == nil || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if !errors.Is(err, boom) {
		t.Fatalf("errors.Is(%q, boom) = false", err)
	}

	inner := wrapf(errors.New("smc: x"), "b")
	if got := wrapf(inner, "a %d", 1).Error(); got != "smc: a 1: b: x" {
		t.Fatalf("nested contexts read %q, want %q", got, "smc: a 1: b: x")
	}
}

// unwritten is a denoiser that writes every x0-logit but the last one.
type unwritten struct{ L, V int }

func (u unwritten) Shape() (int, int) { return u.L, u.V }
func (u unwritten) X0Logits(xt []int, t []float64, out []float64) error {
	for i := range out[:len(out)-1] {
		out[i] = 0
	}
	return nil
}

// nanLast is a denoiser whose logits are NaN for the last particle of a
// batch only (not the first of its distinct states).
type nanLast struct{ L, V int }

func (u nanLast) Shape() (int, int) { return u.L, u.V }
func (u nanLast) X0Logits(xt []int, t []float64, out []float64) error {
	for i := range out {
		out[i] = 0
	}
	out[len(out)-1] = math.NaN()
	return nil
}

// Library-level checks: a denoiser that leaves part of its output
// unwritten, NaN logits of any particle (not only the first of each
// distinct state), and a learned proposal of the wrong shape are errors
// that say so.
func TestDenoiserOutputIsChecked(t *testing.T) {
	k := diffusion.Kernel{Schedule: diffusion.Linear()}
	grid, _ := diffusion.NewGrid(3, "linear")
	for _, c := range []struct {
		d    diffusion.Denoiser
		want string
	}{{unwritten{2, 3}, "left unwritten"}, {nanLast{2, 3}, "particle 3, position 1, token 2 is NaN"}} {
		base, err := NewReverse(k, []diffusion.Denoiser{c.d}, 4)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Target{Base: base, Alpha: 1}, Config{N: 4, Grid: grid})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(rand.New(rand.NewPCG(1, 1))); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%T: %v, want an error containing %q", c.d, err, c.want)
		}
	}
	base, _ := NewReverse(k, []diffusion.Denoiser{unwritten{2, 3}}, 4)
	q, err := NewLearned(k, []diffusion.Denoiser{unwritten{3, 3}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Target{Base: base, Alpha: 1}, Config{N: 4, Grid: grid, Proposal: q}); err == nil || !strings.Contains(err.Error(), "learned proposal is for L=3, V=3") {
		t.Errorf("learned proposal of the wrong shape: %v", err)
	}
}
