package objectives

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
)

// lvLoRA returns a rank-2 LoRA copy of base (LoadBase), so it starts as
// base's function.
func lvLoRA(t testing.TB, base *graph.Model, rank int, alpha float64) *graph.Model {
	t.Helper()
	cfg := base.Cfg
	cfg.LoRARank, cfg.LoRAAlpha = rank, alpha
	q, err := graph.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.LoadBase(base); err != nil {
		t.Fatal(err)
	}
	return q
}

func lvSnapshot(m *graph.Model) map[string][]float64 {
	s := map[string][]float64{}
	for _, n := range m.Store.Names() {
		s[n] = layers.Float64s(m.Store.Get(n), nil)
	}
	return s
}

// With a LoRA q and Trainable = q.Trainable(), training touches only the
// adapters: every other parameter stays bit-identical, every adapter
// tensor moves, the loss on a fixed set of batches falls, and the
// accumulated gradient of an adapter entry (lora_A and lora_B) matches
// five-point finite differences of the loss.
func TestLogVarLoRATrainsOnlyAdapters(t *testing.T) {
	const B, T = 8, 2
	k := lvMDLM()
	teacher := lvModel(t, "float64", 101)
	base := lvModel(t, "float64", 3)
	q := lvLoRA(t, base, 2, 4)
	before := lvSnapshot(q)
	l := lvNew(t, q, nil, k, LogVarConfig{Batch: B, Steps: T, LR: 1e-2, Trainable: q.Trainable()})

	nAdapters := 0
	for _, n := range q.Store.Names() {
		if layers.IsLoRA(n) {
			nAdapters++
		}
	}
	if len(l.params) != nAdapters || nAdapters == 0 {
		t.Fatalf("%d trained parameters, want the %d adapters", len(l.params), nAdapters)
	}
	for _, p := range l.params {
		if !layers.IsLoRA(p.Name()) {
			t.Fatalf("non-adapter %s is trained", p.Name())
		}
	}

	rng := rand.New(rand.NewPCG(11, 12))
	type batch struct {
		xt, xs []int
		t, s   float64
		c      []float64
	}
	times := [][2]float64{{1, 0.6}, {0.6, 0.2}}
	var bs []batch
	for i, ts := range times {
		xt, xs := lvTransitions(t, rng, teacher, k, B, ts[0], ts[1])
		c := lvKernelLogQ(t, teacher, k, xt, xs, ts[0], ts[1], B)
		for b := range c {
			c[b] += 1.5 * float64(i+1)
		}
		bs = append(bs, batch{xt, xs, ts[0], ts[1], c})
	}
	epoch := func() float64 {
		sum := 0.0
		for i, b := range bs {
			loss, _, err := l.Accumulate(b.xt, b.xs, b.t, b.s, i, b.c)
			if err != nil {
				t.Fatal(err)
			}
			sum += loss
		}
		if err := l.Apply(); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	first := epoch()
	last := first
	const epochs = 100
	for i := 1; i < epochs; i++ {
		last = epoch()
	}
	t.Logf("summed loss over the fixed batches: %.4g at step 1, %.4g at step %d (×%.1f); F = %v", first, last, epochs, first/last, l.F())
	if !(last < 0.5*first) {
		t.Fatalf("loss fell only from %g to %g", first, last)
	}

	after := lvSnapshot(q)
	for n, v := range before {
		changed := false
		for i := range v {
			if math.Float64bits(v[i]) != math.Float64bits(after[n][i]) {
				changed = true
				break
			}
		}
		if changed != layers.IsLoRA(n) {
			t.Fatalf("parameter %s changed = %v (adapter: %v)", n, changed, layers.IsLoRA(n))
		}
	}

	// Finite differences of the loss of one batch w.r.t. the entries of
	// one lora_A and one lora_B with the largest accumulated gradient.
	b := bs[1]
	total := func() float64 {
		lv, reg, err := l.Accumulate(b.xt, b.xs, b.t, b.s, 1, b.c)
		if err != nil {
			t.Fatal(err)
		}
		return lv + reg
	}
	lvZero(l)
	total()
	gq, _ := lvGrads(l)
	lvZero(l)
	checked := map[byte]bool{}
	for i, p := range l.params {
		kind := p.Name()[len(p.Name())-1] // 'A' or 'B'
		if checked[kind] || !strings.HasPrefix(p.Name(), "mlp.1.") {
			continue
		}
		checked[kind] = true
		d := l.master[i].Data().([]float64)
		j := 0
		for jj := range gq[i] {
			if math.Abs(gq[i][jj]) > math.Abs(gq[i][j]) {
				j = jj
			}
		}
		fd := testutil.Checker{Stencil: testutil.FivePoint, H: 1e-4, Tol: 1e-6, Floor: 1e-3}
		an := gq[i][j]
		rel := fd.Coord(t, "d loss/d "+p.Name(), total, d, j, an)
		lvZero(l)
		t.Logf("d loss/d %s[%d]: analytic %.10g, rel err %.2g", p.Name(), j, an, rel)
		if an == 0 {
			t.Fatalf("d loss/d %s[%d]: analytic gradient is zero", p.Name(), j)
		}
	}
	if !checked['A'] || !checked['B'] {
		t.Fatalf("adapter entries checked: %v", checked)
	}
}

// Trainable nil trains every parameter of a LoRA q (adapters included);
// a filter selecting nothing is an error.
func TestLogVarTrainableSelection(t *testing.T) {
	q := lvLoRA(t, lvModel(t, "float64", 3), 1, 0)
	l := lvNew(t, q, nil, lvMDLM(), LogVarConfig{Batch: 2, Steps: 1, LR: 1e-3})
	if len(l.params) != len(q.Store.Names()) {
		t.Fatalf("Trainable nil: %d trained parameters, want all %d", len(l.params), len(q.Store.Names()))
	}
	plain := lvModel(t, "float64", 3)
	l2 := lvNew(t, plain, nil, lvMDLM(), LogVarConfig{Batch: 2, Steps: 1, LR: 1e-3, Trainable: plain.Trainable()})
	if len(l2.params) != len(plain.Store.Names()) {
		t.Fatalf("plain Trainable(): %d trained parameters, want all %d", len(l2.params), len(plain.Store.Names()))
	}
	_, err := NewLogVarLoss(plain, nil, lvMDLM(), LogVarConfig{Batch: 2, Steps: 1, LR: 1e-3, Trainable: layers.IsLoRA})
	if err == nil || !strings.Contains(err.Error(), "selects none") {
		t.Fatalf("Trainable selecting nothing: err = %v", err)
	}
}
