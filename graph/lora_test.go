package graph

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
)

func withLoRA(cfg Config, rank int, alpha float64) Config {
	cfg.LoRARank, cfg.LoRAAlpha = rank, alpha
	return cfg
}

// perturb moves every parameter accepted by keep off its initial value,
// deterministically (a stand-in for training).
func perturb(t *testing.T, m *Model, seed uint64, keep func(string) bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, n := range m.Store.Names() {
		if !keep(n) {
			continue
		}
		v := layers.Float64s(m.Store.Get(n), nil)
		for i := range v {
			v[i] += 0.05 * rng.NormFloat64()
		}
		if err := layers.SetFloat64s(m.Store.Get(n), v); err != nil {
			t.Fatal(err)
		}
	}
}

func all(string) bool { return true }

// A LoRA model loaded from a (perturbed) base reproduces the base's logits
// and input gradients bit for bit; moving the adapters then changes them,
// and InputGrad of the adapted model still matches finite differences.
func TestLoRALoadBaseReproducesBase(t *testing.T) {
	for _, dt := range []string{"float64", "float32"} {
		for _, cfg := range testConfigs(dt) {
			base, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			perturb(t, base, 1, all)
			q, err := New(withLoRA(cfg, 2, 3))
			if err != nil {
				t.Fatal(err)
			}
			// Every Linear (".W") has an adapter pair; nothing else does.
			nW, nA := 0, 0
			for _, n := range q.Store.Names() {
				if strings.HasSuffix(n, ".W") {
					nW++
					a, b := q.Store.Get(strings.TrimSuffix(n, ".W")+".lora_A"), q.Store.Get(strings.TrimSuffix(n, ".W")+".lora_B")
					if a == nil || b == nil || a.Shape()[1] != 2 || b.Shape()[0] != 2 {
						t.Fatalf("%s: linear %s lacks a rank-2 adapter", cfg.Arch, n)
					}
				}
				if layers.IsLoRA(n) {
					nA++
				}
			}
			if nA != 2*nW || q.Store.Get("embed.E.lora_A") != nil || q.Store.Get("embed.lora_A") != nil {
				t.Fatalf("%s: %d adapter tensors for %d linears", cfg.Arch, nA, nW)
			}
			if err := q.LoadBase(base); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(4, 4))
			const B = 3
			xt := randTokens(rng, B*cfg.L, cfg.V)
			ts := []float64{0.2, 0.5, 0.9}
			n := B * cfg.L * cfg.V
			want, got := make([]float64, n), make([]float64, n)
			if err := base.X0Logits(xt, ts, want); err != nil {
				t.Fatal(err)
			}
			if err := q.X0Logits(xt, ts, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if math.Float64bits(want[i]) != math.Float64bits(got[i]) {
					t.Fatalf("%s %s: logit %d: LoRA model %v, base %v", dt, cfg.Arch, i, got[i], want[i])
				}
			}
			x := make([]float64, B*cfg.L*(cfg.V+1))
			for i := range x {
				x[i] = rng.Float64()
			}
			cot := make([]float64, n)
			for i := range cot {
				cot[i] = rng.NormFloat64()
			}
			dxW, dxG := make([]float64, len(x)), make([]float64, len(x))
			if err := base.InputGrad(x, ts, cot, want, dxW); err != nil {
				t.Fatal(err)
			}
			if err := q.InputGrad(x, ts, cot, got, dxG); err != nil {
				t.Fatal(err)
			}
			for i := range dxW {
				if math.Float64bits(dxW[i]) != math.Float64bits(dxG[i]) {
					t.Fatalf("%s %s: dx %d: LoRA model %v, base %v", dt, cfg.Arch, i, dxG[i], dxW[i])
				}
			}
			// Moving the adapters changes the function (they are wired in).
			perturb(t, q, 2, layers.IsLoRA)
			if err := q.X0Logits(xt, ts, got); err != nil {
				t.Fatal(err)
			}
			if err := base.X0Logits(xt, ts, want); err != nil {
				t.Fatal(err)
			}
			diff := 0.0
			for i := range want {
				diff = math.Max(diff, math.Abs(want[i]-got[i]))
			}
			if diff < 1e-4 {
				t.Fatalf("%s %s: moving the adapters changed the logits by only %v", dt, cfg.Arch, diff)
			}
			t.Logf("%s %s: %d linears adapted; base logits and dx reproduced bit for bit; moved adapters change logits by up to %.3g", dt, cfg.Arch, nW, diff)
			if dt == "float64" {
				inputGradFD(t, q, x, ts, cot)
			}
		}
	}
}

// inputGradFD checks m.InputGrad against central differences of SoftLogits.
func inputGradFD(t *testing.T, m *Model, x, ts, cot []float64) {
	t.Helper()
	logits, dx, ref := make([]float64, len(cot)), make([]float64, len(x)), make([]float64, len(cot))
	if err := m.InputGrad(x, ts, cot, logits, dx); err != nil {
		t.Fatal(err)
	}
	f := func() float64 {
		if err := m.SoftLogits(x, ts, ref); err != nil {
			t.Fatal(err)
		}
		s := 0.0
		for i := range ref {
			s += ref[i] * cot[i]
		}
		return s
	}
	fd := testutil.Checker{H: 1e-6, Tol: 1e-6, ScaleByEstimate: true}
	fd.All(t, m.Cfg.Arch+": dx", f, x, dx)
	t.Logf("%s with moved adapters: InputGrad vs finite differences, worst rel err %.2g", m.Cfg.Arch, fd.Worst)
}

// Save/Load round-trips a LoRA model: config (rank, alpha) and adapters.
// Configs without adapters serialise without any lora key, so their
// checkpoint headers are unchanged.
func TestLoRASaveLoadRoundTrip(t *testing.T) {
	for _, cfg := range testConfigs("float64") {
		js, _ := json.Marshal(cfg)
		if strings.Contains(string(js), "lora") {
			t.Fatalf("config without adapters serialises LoRA fields: %s", js)
		}
		q, err := New(withLoRA(cfg, 3, 1.5))
		if err != nil {
			t.Fatal(err)
		}
		perturb(t, q, 7, all)
		p := filepath.Join(t.TempDir(), "q.ckpt")
		if err := q.Save(p, map[string]string{"step": "3"}); err != nil {
			t.Fatal(err)
		}
		ck, err := ReadCheckpoint(p)
		if err != nil {
			t.Fatal(err)
		}
		if s := ck.Meta[metaConfig]; !strings.Contains(s, `"lora_rank":3`) || !strings.Contains(s, `"lora_alpha":1.5`) {
			t.Fatalf("saved config lacks the LoRA fields: %s", s)
		}
		got, meta, err := Load(p)
		if err != nil {
			t.Fatal(err)
		}
		if meta["step"] != "3" || got.Cfg != q.Cfg {
			t.Fatalf("%s: config %+v / meta %v not restored (want %+v)", cfg.Arch, got.Cfg, meta, q.Cfg)
		}
		if len(got.Store.Names()) != len(q.Store.Names()) {
			t.Fatalf("%s: %d tensors loaded, want %d", cfg.Arch, len(got.Store.Names()), len(q.Store.Names()))
		}
		nA := 0
		for _, n := range q.Store.Names() {
			a, b := layers.Float64s(q.Store.Get(n), nil), layers.Float64s(got.Store.Get(n), nil)
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("%s: %s[%d]: saved %v, loaded %v", cfg.Arch, n, i, a[i], b[i])
				}
			}
			if layers.IsLoRA(n) {
				nA++
			}
		}
		if nA == 0 {
			t.Fatal("no adapters saved")
		}
		rng := rand.New(rand.NewPCG(5, 5))
		xt := randTokens(rng, 2*cfg.L, cfg.V)
		a, b := make([]float64, 2*cfg.L*cfg.V), make([]float64, 2*cfg.L*cfg.V)
		q.X0Logits(xt, []float64{0.3, 0.6}, a)
		got.X0Logits(xt, []float64{0.3, 0.6}, b)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s: logit %d: saved %v, loaded %v", cfg.Arch, i, a[i], b[i])
			}
		}
		// A plain model cannot take the LoRA checkpoint's parameters.
		plain, _ := New(cfg)
		if _, err := plain.LoadParams(p); err == nil || !strings.Contains(err.Error(), "unexpected tensor") {
			t.Fatalf("loading LoRA params into a plain model: err = %v", err)
		}
	}
}

// LoadBase reports shape mismatches, missing base parameters, extra base
// parameters (adapters into a plain model) and adapter-scale mismatches, and
// copies nothing when it fails.
func TestLoRALoadBaseErrors(t *testing.T) {
	cfg := testConfigs("float64")[0]
	q, _ := New(withLoRA(cfg, 2, 0))
	before := map[string][]float64{}
	for _, n := range q.Store.Names() {
		before[n] = layers.Float64s(q.Store.Get(n), nil)
	}
	unchanged := func(what string) {
		t.Helper()
		for _, n := range q.Store.Names() {
			v := layers.Float64s(q.Store.Get(n), nil)
			for i := range v {
				if v[i] != before[n][i] {
					t.Fatalf("%s: failed LoadBase modified %s", what, n)
				}
			}
		}
	}

	wide := cfg
	wide.Hidden = 32
	b1, _ := New(wide)
	perturb(t, b1, 3, all)
	err := q.LoadBase(b1)
	if err == nil || !strings.Contains(err.Error(), `parameter "mlp.0.W" has shape [32 32] in the base model, [32 16] in the model`) {
		t.Fatalf("shape mismatch: err = %v", err)
	}
	unchanged("shape mismatch")

	notime := cfg
	notime.TimeDim = 0
	b2, _ := New(notime)
	if err := q.LoadBase(b2); err == nil || !strings.Contains(err.Error(), `base model lacks parameter "time.0.W"`) {
		t.Fatalf("missing parameter: err = %v", err)
	}
	unchanged("missing parameter")

	plain, _ := New(cfg)
	if err := plain.LoadBase(q); err == nil || !strings.Contains(err.Error(), `base parameter "mlp.0.lora_A"`) {
		t.Fatalf("adapters into a plain model: err = %v", err)
	}

	other, _ := New(withLoRA(cfg, 2, 4)) // scale 2, q has scale 1
	if err := q.LoadBase(other); err == nil || !strings.Contains(err.Error(), "adapter scale") {
		t.Fatalf("scale mismatch: err = %v", err)
	}
	unchanged("scale mismatch")
	if err := q.LoadBase(nil); err == nil {
		t.Fatal("nil base accepted")
	}
	if err := q.LoadBase(q); err == nil {
		t.Fatal("self as base accepted")
	}

	// A LoRA base with the same scale loads completely (adapters included).
	same, _ := New(withLoRA(cfg, 2, 2)) // alpha = rank: the same scale 1 as q's alpha 0
	perturb(t, same, 4, all)
	if err := q.LoadBase(same); err != nil {
		t.Fatal(err)
	}
	for _, n := range same.Store.Names() {
		a, b := layers.Float64s(same.Store.Get(n), nil), layers.Float64s(q.Store.Get(n), nil)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("%s not copied", n)
			}
		}
	}
}

func TestLoRAConfigValidateAndTrainable(t *testing.T) {
	cfg := testConfigs("float32")[1]
	for _, bad := range []Config{withLoRA(cfg, -1, 0), withLoRA(cfg, 2, -1), withLoRA(cfg, 2, math.Inf(1)), withLoRA(cfg, 2, math.NaN())} {
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "model.lora_") {
			t.Fatalf("%d/%v: err = %v", bad.LoRARank, bad.LoRAAlpha, err)
		}
	}
	plain, _ := New(cfg)
	q, err := New(withLoRA(cfg, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	pt, qt := plain.Trainable(), q.Trainable()
	nq := 0
	for _, n := range q.Store.Names() {
		if !pt(n) {
			t.Fatalf("plain Trainable rejects %s", n)
		}
		if qt(n) != layers.IsLoRA(n) {
			t.Fatalf("LoRA Trainable(%s) = %v", n, qt(n))
		}
		if qt(n) {
			nq += q.Store.Get(n).Shape().TotalSize()
		}
	}
	t.Logf("transformer: %d parameters, %d trainable with rank-1 adapters (base %d)", q.Store.NumParams(), nq, plain.Store.NumParams())
}
