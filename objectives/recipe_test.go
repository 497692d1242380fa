package objectives

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/layers"
)

// The masked-CE loss is the mean cross-entropy over the masked tokens of
// the batch, checked against the model's own logits; the ELBO loss is the
// rate-weighted sum over B·L (today's loss, unchanged).
func TestMaskedCrossEntropyLoss(t *testing.T) {
	m, err := graph.New(graph.Config{Arch: "mlp", L: 3, V: 4, Embed: 4, Hidden: 8, Layers: 1, Act: "relu", DType: "float64", InitSeed: 3})
	if err != nil {
		t.Fatal(err)
	}
	const B = 5
	x0 := []int{0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2}
	times := []float64{0.3, 0.5, 0.7, 0.9, 0.6}
	for _, masked := range []bool{false, true} {
		f, err := NewMDLMLoss(m, diffusion.Linear(), B)
		if err != nil {
			t.Fatal(err)
		}
		f.MaskedMean = masked
		if err := f.SetBatch(rand.New(rand.NewPCG(1, 2)), x0, times); err != nil {
			t.Fatal(err)
		}
		vm := layers.TapeMachine(f.Graph())
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		got := f.Value()
		vm.Close()
		// By hand: the model's log-probabilities of x0 at the masked
		// positions of the same masked batch.
		z := make([]float64, B*3*4)
		if err := m.X0Logits(f.xt, times, z); err != nil {
			t.Fatal(err)
		}
		sum, n, want := 0.0, 0, 0.0
		for i, x := range f.xt {
			if x != 4 {
				continue
			}
			row := z[i*4 : (i+1)*4]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, v)
			}
			lse := 0.0
			for _, v := range row {
				lse += math.Exp(v - mx)
			}
			ce := -(row[x0[i]] - mx - math.Log(lse))
			sum += ce
			n++
			want += ce * diffusion.Linear().Rate(times[i/3]) / float64(B*3)
		}
		if masked {
			want = sum / float64(n)
		}
		if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("masked=%v: loss %v, by hand %v", masked, got, want)
		}
	}
}

// Warm-up: the first step of a trainer with warmup = 4 moves every
// parameter by a quarter of what the same step without warm-up moves it.
func TestWarmupScalesTheFirstUpdates(t *testing.T) {
	data := &fixedData{rows: [][]int{{0, 1, 2}, {3, 2, 1}, {1, 1, 0}}}
	delta := func(warmup int) []float64 {
		m, err := graph.New(graph.Config{Arch: "mlp", L: 3, V: 4, Embed: 4, Hidden: 8, Layers: 1, Act: "relu", DType: "float64", InitSeed: 3})
		if err != nil {
			t.Fatal(err)
		}
		before := params(m)
		tr, err := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 1, Batch: 4, LR: 1e-2, ValSamples: 1, Seed: 9, Warmup: warmup, Loss: "masked_ce"})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if _, err := tr.Step(data); err != nil {
			t.Fatal(err)
		}
		after := params(m)
		for i := range after {
			after[i] -= before[i]
		}
		return after
	}
	full, quarter := delta(0), delta(4)
	moved := 0
	for i := range full {
		if math.Abs(quarter[i]-full[i]/4) > 1e-12+1e-9*math.Abs(full[i]) {
			t.Fatalf("parameter %d moved %v with warm-up, want a quarter of %v", i, quarter[i], full[i])
		}
		if full[i] != 0 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no parameter moved")
	}
	if err := (TrainConfig{Steps: 1, Batch: 1, LR: 0.1, ValSamples: 1, Loss: "ce"}).Validate(); err == nil {
		t.Error("train.loss = ce: no error")
	}
}

func params(m *graph.Model) []float64 {
	var out []float64
	for _, name := range m.Store.Names() {
		out = append(out, layers.Float64s(m.Store.Get(name), nil)...)
	}
	return out
}

// fixedData is a Data of given rows.
type fixedData struct{ rows [][]int }

func (d *fixedData) Len() int        { return len(d.rows) }
func (d *fixedData) Row(i int) []int { return d.rows[i] }

// The cosine decay starts at 1 after the warm-up, is monotone, passes the
// midpoint at half the remaining steps and ends at min_lr.
func TestCosineDecayFactor(t *testing.T) {
	c := TrainConfig{Steps: 1010, Warmup: 10, Decay: "cosine", MinLR: 0.2}
	if f := c.lrFactor(4); math.Abs(f-0.5) > 1e-15 {
		t.Errorf("warm-up step 4: factor %v, want 0.5", f)
	}
	if f := c.lrFactor(10); f != 1 {
		t.Errorf("first step after warm-up: factor %v, want 1", f)
	}
	if f := c.lrFactor(510); math.Abs(f-0.6) > 1e-12 {
		t.Errorf("midpoint: factor %v, want (1+0.2)/2 = 0.6", f)
	}
	if f := c.lrFactor(1010); math.Abs(f-0.2) > 1e-12 {
		t.Errorf("end: factor %v, want min_lr 0.2", f)
	}
	prev := 2.0
	for k := 10; k <= 1010; k++ {
		f := c.lrFactor(k)
		if f > prev {
			t.Fatalf("factor rises at step %d: %v > %v", k, f, prev)
		}
		prev = f
	}
	if f := (TrainConfig{Steps: 100}).lrFactor(50); f != 1 {
		t.Errorf("no warm-up, no decay: factor %v, want 1", f)
	}
	for _, bad := range []TrainConfig{{Decay: "linear"}, {Decay: "cosine", MinLR: 1.5}, {MinLR: math.NaN()}} {
		bad.Steps, bad.Batch, bad.LR, bad.ValSamples = 1, 1, 0.1, 1
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
