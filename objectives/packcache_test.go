package objectives

import (
	"math"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
)

// TestPackedWeightsFollowTraining checks that the products which keep
// their weights packed between runs (layers.MatMulParam) see every Adam
// step: after each step, a float32 model's logits and input gradient
// equal, bit for bit, those of a fresh clone of its weights (which packs
// them anew), and they do change.
func TestPackedWeightsFollowTraining(t *testing.T) {
	d := &labelledRows{}
	for i := 0; i < 12; i++ {
		d.rows = append(d.rows, []int{i % 3, (i + 1) % 3})
		d.labels = append(d.labels, 0)
	}
	m, err := graph.New(graph.Config{Arch: "mlp", L: 2, V: 3, Embed: 8, Hidden: 32, Layers: 2, TimeDim: 4, Act: "silu", DType: "float32", InitSeed: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 3, Batch: 8, LR: 1e-2, ValSamples: 1, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	xt, ts := []int{3, 1, 0, 3}, []float64{0.7, 0.7}
	cot := []float64{1, -2, 0.5, 3, -1, 0.25, 2, 1, -0.5, 1.5, 0.75, -3}
	x := make([]float64, 2*2*4)
	for i, v := range xt {
		x[i*4+v] = 1
	}
	eval := func(mm *graph.Model) ([]float64, []float64) {
		lg, lg2, dx := make([]float64, 12), make([]float64, 12), make([]float64, len(x))
		if err := mm.X0Logits(xt, ts, lg); err != nil {
			t.Fatal(err)
		}
		if err := mm.InputGrad(x, ts, cot, lg2, dx); err != nil {
			t.Fatal(err)
		}
		return lg, dx
	}
	prev, _ := eval(m)
	for step := 0; step < 3; step++ {
		if _, err := tr.Step(d); err != nil {
			t.Fatal(err)
		}
		c, err := m.Clone()
		if err != nil {
			t.Fatal(err)
		}
		lg, dx := eval(m)
		wlg, wdx := eval(c)
		for i := range lg {
			if math.Float64bits(lg[i]) != math.Float64bits(wlg[i]) {
				t.Fatalf("step %d: logit %d = %v, fresh clone %v (stale packed weights?)", step, i, lg[i], wlg[i])
			}
		}
		for i := range dx {
			if math.Float64bits(dx[i]) != math.Float64bits(wdx[i]) {
				t.Fatalf("step %d: input gradient %d = %v, fresh clone %v", step, i, dx[i], wdx[i])
			}
		}
		moved := false
		for i := range lg {
			moved = moved || lg[i] != prev[i]
		}
		if !moved {
			t.Fatalf("step %d: the logits did not change", step)
		}
		prev = lg
	}
}
