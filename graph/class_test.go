package graph

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
)

// A class-conditional net's logits depend on the class, a WithClass view
// and the gradient program agree with each other, the default is the null
// class, and the class survives a save and load.
func TestClassConditioning(t *testing.T) {
	for _, cfg := range testConfigs("float64") {
		cfg.Classes = 3
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(2, 2))
		const B = 2
		xt := randTokens(rng, B*cfg.L, cfg.V)
		ts := []float64{0.3, 0.8}
		n := B * cfg.L * cfg.V
		logits := map[int][]float64{}
		for _, c := range []int{0, 1, 2, NullClass} {
			v, err := m.WithClass(c)
			if err != nil {
				t.Fatal(err)
			}
			if v.Class() != c {
				t.Fatalf("view class %d, want %d", v.Class(), c)
			}
			out := make([]float64, n)
			if err := v.X0Logits(xt, ts, out); err != nil {
				t.Fatal(err)
			}
			logits[c] = out
			// The gradient program conditions on the same class.
			x := make([]float64, B*cfg.L*(cfg.V+1))
			for i, tok := range xt {
				x[i*(cfg.V+1)+tok] = 1
			}
			g := make([]float64, n)
			dx := make([]float64, len(x))
			if err := v.InputGrad(x, ts, make([]float64, n), g, dx); err != nil {
				t.Fatal(err)
			}
			for i := range g {
				if math.Abs(g[i]-out[i]) > 1e-10 {
					t.Fatalf("%s class %d: gradient program logit %d = %v, forward %v", cfg.Arch, c, i, g[i], out[i])
				}
			}
		}
		for _, c := range []int{1, 2, NullClass} {
			diff := 0.0
			for i := range logits[c] {
				diff = math.Max(diff, math.Abs(logits[c][i]-logits[0][i]))
			}
			if diff < 1e-6 {
				t.Errorf("%s: class %d gives the logits of class 0 (max diff %v)", cfg.Arch, c, diff)
			}
		}
		// The default model conditions on the null class.
		out := make([]float64, n)
		if err := m.X0Logits(xt, ts, out); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if out[i] != logits[NullClass][i] {
				t.Fatalf("%s: default model logit %d = %v, null class %v", cfg.Arch, i, out[i], logits[NullClass][i])
			}
		}
		// Per-row classes are range-checked.
		in := NewInputs(cfg, B)
		if err := in.SetClasses([]int{2, NullClass}); err != nil {
			t.Fatal(err)
		}
		if err := in.SetClasses([]int{2, 3}); err == nil || !strings.Contains(err.Error(), "class 3") {
			t.Errorf("class 3 of 3: error %v", err)
		}
		// Save and load keep the class input.
		path := filepath.Join(t.TempDir(), "c.ckpt")
		if err := m.Save(path, nil); err != nil {
			t.Fatal(err)
		}
		back, _, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if back.Cfg.Classes != 3 {
			t.Fatalf("loaded classes %d, want 3", back.Cfg.Classes)
		}
		bv, _ := back.WithClass(1)
		if err := bv.X0Logits(xt, ts, out); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if math.Abs(out[i]-logits[1][i]) > 1e-12 {
				t.Fatalf("%s: loaded class-1 logit %d = %v, want %v", cfg.Arch, i, out[i], logits[1][i])
			}
		}
	}
}

func TestClassErrors(t *testing.T) {
	cfg := testConfigs("float64")[0]
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.WithClass(0); err == nil || !strings.Contains(err.Error(), "unconditional") {
		t.Errorf("class of an unconditional model: error %v", err)
	}
	if err := NewInputs(cfg, 1).SetClasses([]int{0}); err == nil {
		t.Error("SetClasses on an unconditional net: no error")
	}
	cfg.Classes = 2
	if m, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []int{2, -2} {
		if _, err := m.WithClass(c); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("class %d of 2: error %v", c, err)
		}
	}
	cfg.Classes = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "model.classes") {
		t.Errorf("classes = -1: error %v", err)
	}
}
