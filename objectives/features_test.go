package objectives

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/layers"
)

// The plain-Go features, pushed through the output layer by hand, must
// reproduce the graph's logits: that checks every hidden layer and
// activation of Features against the compiled forward pass.
func TestClassifierFeaturesReproduceGraphLogits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, act := range []string{"relu", "gelu", "silu"} {
		for _, hidden := range [][]int{{7}, {6, 5}} {
			c, err := NewClassifier(ClassifierConfig{H: 3, W: 4, Hidden: hidden, Act: act, DType: "float64", Seed: 5, Classes: 3})
			if err != nil {
				t.Fatal(err)
			}
			n := 9
			x := make([]int, n*12)
			for i := range x {
				x[i] = rng.IntN(2)
			}
			f, dim, err := c.Features(x)
			if err != nil {
				t.Fatal(err)
			}
			if dim != hidden[len(hidden)-1] || len(f) != n*dim {
				t.Fatalf("%s %v: features dim %d len %d", act, hidden, dim, len(f))
			}
			logits := make([]float64, n*3)
			if err := c.Logits(x, logits); err != nil {
				t.Fatal(err)
			}
			ls := c.Cfg.layerShapes()
			last := ls[len(ls)-1]
			w := layers.Float64s(c.Store.Get(last.name+".W"), nil)
			b := layers.Float64s(c.Store.Get(last.name+".b"), nil)
			for i := range n {
				for k := range 3 {
					z := b[k]
					for j := range dim {
						z += f[i*dim+j] * w[j*3+k]
					}
					if d := math.Abs(z - logits[i*3+k]); d > 1e-10 {
						t.Fatalf("%s %v: image %d class %d: features give logit %v, graph %v", act, hidden, i, k, z, logits[i*3+k])
					}
				}
			}
		}
	}
	c, err := NewClassifier(ClassifierConfig{H: 2, W: 2, Act: "relu", Seed: 1, Classes: 2})
	if err != nil {
		t.Fatal(err)
	}
	f, dim, err := c.Features([]int{1, 0, 0, 1})
	if err != nil || dim != 8 {
		t.Fatalf("linear classifier features: %v %d %v", f, dim, err)
	}
	want := []float64{0, 1, 1, 0, 1, 0, 0, 1}
	for i := range want {
		if f[i] != want[i] {
			t.Fatalf("linear classifier features %v, want the one-hot input %v", f, want)
		}
	}
	for _, bad := range [][]int{nil, {0, 1, 0}, {0, 1, 2, 0}} {
		if _, _, err := c.Features(bad); err == nil {
			t.Fatalf("Features(%v) accepted bad input", bad)
		}
	}
}
