package objectives

import (
	"math"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
)

// labelledRows is a LabelledData: rows of class c are all c.
type labelledRows struct {
	fixedData
	labels []int
}

func (d *labelledRows) Label(i int) int { return d.labels[i] }

// Trained with label dropout on data whose class fixes every token, one
// class-conditional network learns both factors of classifier-free
// guidance: p(x0 | c) concentrates on c, and the null class p(x0) spreads
// over the three classes (each about a third).
func TestLabelDropoutLearnsConditionalAndUnconditional(t *testing.T) {
	d := &labelledRows{}
	for i := 0; i < 30; i++ {
		c := i % 3
		d.rows = append(d.rows, []int{c, c})
		d.labels = append(d.labels, c)
	}
	m, err := graph.New(graph.Config{Arch: "mlp", L: 2, V: 3, Embed: 8, Hidden: 32, Layers: 1, Act: "relu", DType: "float64", InitSeed: 3, Classes: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 400, Batch: 32, LR: 1e-2, ValSamples: 1, Seed: 4, Loss: "masked_ce", LabelDropout: 0.3})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for k := 0; k < 400; k++ {
		if _, err := tr.Step(d); err != nil {
			t.Fatal(err)
		}
	}
	probs := func(c int) []float64 { // p(x0 at position 0 | all masked, c)
		v, err := m.WithClass(c)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, 2*3)
		if err := v.X0Logits([]int{3, 3}, []float64{1}, out); err != nil {
			t.Fatal(err)
		}
		mx := math.Max(out[0], math.Max(out[1], out[2]))
		z := math.Exp(out[0]-mx) + math.Exp(out[1]-mx) + math.Exp(out[2]-mx)
		return []float64{math.Exp(out[0]-mx) / z, math.Exp(out[1]-mx) / z, math.Exp(out[2]-mx) / z}
	}
	for c := 0; c < 3; c++ {
		if p := probs(c); p[c] < 0.9 {
			t.Errorf("p(x0 = %d | class %d) = %.3f, want > 0.9 (%v)", c, c, p[c], p)
		}
	}
	for k, p := range probs(graph.NullClass) {
		if p < 0.2 || p > 0.47 {
			t.Errorf("p(x0 = %d | null class) = %.3f, want about 1/3", k, p)
		}
	}
	// Unlabelled data and dropout for an unconditional model are errors.
	if _, err := tr.Step(&d.fixedData); err == nil || !strings.Contains(err.Error(), "no labels") {
		t.Errorf("unlabelled data: error %v", err)
	}
	u, _ := graph.New(graph.Config{Arch: "mlp", L: 2, V: 3, Embed: 4, Hidden: 8, Layers: 1, Act: "relu", DType: "float64", InitSeed: 3})
	if _, err := NewTrainer(u, diffusion.Linear(), TrainConfig{Steps: 1, Batch: 1, LR: 0.1, ValSamples: 1, LabelDropout: 0.1}); err == nil {
		t.Error("label dropout for an unconditional model: no error")
	}
}
