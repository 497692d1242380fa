package objectives

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// opCheck evaluates cost = Σ f(inputs) ⊙ R in float64 for random inputs
// and compares G.Grad with respect to every input against central finite
// differences.
func opCheck(t *testing.T, shapes [][]int, f func(in G.Nodes) *G.Node, init func(i int, v []float64)) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, 6))
	eval := func(vals [][]float64, wantGrad bool) (float64, [][]float64) {
		g := G.NewGraph()
		var in G.Nodes
		for i, s := range shapes {
			n := G.NewMatrix(g, tensor.Float64, G.WithShape(s...), G.WithName(string(rune('a'+i))),
				G.WithValue(tensor.New(tensor.WithShape(s...), tensor.WithBacking(append([]float64(nil), vals[i]...)))))
			in = append(in, n)
		}
		y := f(in)
		rv := make([]float64, y.Shape().TotalSize())
		r2 := rand.New(rand.NewPCG(9, 9))
		for i := range rv {
			rv[i] = r2.NormFloat64()
		}
		r := G.NewMatrix(g, tensor.Float64, G.WithShape(y.Shape()...), G.WithName("R"),
			G.WithValue(tensor.New(tensor.WithShape(y.Shape()...), tensor.WithBacking(rv))))
		cost := G.Must(G.Sum(G.Must(G.HadamardProd(y, r))))
		var grads G.Nodes
		if wantGrad {
			var err error
			if grads, err = G.Grad(cost, in...); err != nil {
				t.Fatal(err)
			}
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		var gs [][]float64
		for _, gn := range grads {
			gs = append(gs, append([]float64(nil), gn.Value().Data().([]float64)...))
		}
		return cost.Value().Data().(float64), gs
	}
	vals := make([][]float64, len(shapes))
	for i, s := range shapes {
		vals[i] = make([]float64, s[0]*s[1])
		for j := range vals[i] {
			vals[i][j] = rng.NormFloat64()
		}
		if init != nil {
			init(i, vals[i])
		}
	}
	_, grads := eval(vals, true)
	const h = 1e-6
	for i := range vals {
		for j := range vals[i] {
			old := vals[i][j]
			vals[i][j] = old + h
			cp, _ := eval(vals, false)
			vals[i][j] = old - h
			cm, _ := eval(vals, false)
			vals[i][j] = old
			fd := (cp - cm) / (2 * h)
			if d := math.Abs(fd - grads[i][j]); d > 1e-6*math.Max(1, math.Abs(fd)) {
				t.Fatalf("input %d entry %d: symbolic %v, finite difference %v", i, j, grads[i][j], fd)
			}
		}
	}
}

// TestCarryGrad checks carry(x, S) = γ⊙S + x[:, :V] with K = 3 tiles,
// soft x (so that γ varies).
func TestCarryGrad(t *testing.T) {
	const N, V, K = 4, 5, 3
	opCheck(t, [][]int{{N, V + 1}, {K * N, V}}, func(in G.Nodes) *G.Node {
		return G.Must(G.ApplyOp(newCarry(), in[0], in[1]))
	}, nil)
}

// TestCarryForward checks carry on exact one-hots: a masked row passes S
// through, an unmasked one gives its one-hot token.
func TestCarryForward(t *testing.T) {
	const N, V = 2, 3
	x := []float64{0, 0, 0, 1, 0, 1, 0, 0} // row 0 masked, row 1 token 1
	s := []float64{.2, .3, .5, .6, .3, .1}
	out := make([]float64, len(s))
	carryFwd(x, s, out, N, V)
	want := []float64{.2, .3, .5, 0, 1, 0}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("carry = %v, want %v", out, want)
		}
	}
}

// TestGumbelSoftGrad checks the relaxed Gumbel-softmax's Jacobian
// (τ = 0.7), including a row with a huge spread (−1e4 logits).
func TestGumbelSoftGrad(t *testing.T) {
	opCheck(t, [][]int{{5, 6}}, func(in G.Nodes) *G.Node {
		return G.Must(G.ApplyOp(newGumbelST(0.7, false), in[0]))
	}, func(_ int, v []float64) { v[6] = -1e4 })
}

// TestGumbelHard checks the straight-through op: its forward value is the
// exact one-hot of the argmax (first on ties) and its gradient is the soft
// one's.
func TestGumbelHard(t *testing.T) {
	z := []float64{1, 3, 3, 0, -1e4, 2, 100, 0, 0}
	out := make([]float64, len(z))
	gumbelFwd(z, out, 3, 0.5, true)
	want := []float64{0, 1, 0, 0, 0, 1, 1, 0, 0}
	for i := range want {
		if out[i] != want[i] {
			t.Fatalf("hard sample = %v, want %v", out, want)
		}
	}
	soft := func(hard bool) []float64 {
		g := G.NewGraph()
		zn := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 3), G.WithName("z"),
			G.WithValue(tensor.New(tensor.WithShape(3, 3), tensor.WithBacking(append([]float64(nil), z...)))))
		w := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 3), G.WithName("w"),
			G.WithValue(tensor.New(tensor.WithShape(3, 3), tensor.WithBacking([]float64{1, -2, 3, .5, .1, -1, 2, 2, -3}))))
		cost := G.Must(G.Sum(G.Must(G.HadamardProd(G.Must(G.ApplyOp(newGumbelST(0.5, hard), zn)), w))))
		gr, err := G.Grad(cost, zn)
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return append([]float64(nil), gr[0].Value().Data().([]float64)...)
	}
	h, s := soft(true), soft(false)
	for i := range h {
		if h[i] != s[i] || math.IsNaN(h[i]) {
			t.Fatalf("straight-through gradient %v, soft gradient %v", h, s)
		}
	}
}

// TestNoisyTile checks noisyTile's value (K = 3 tiles of ℓ plus the noise,
// exactly) and its gradient with respect to ℓ against finite differences.
func TestNoisyTile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	nv := make([]float64, 3*3*4)
	for i := range nv {
		nv[i] = rng.NormFloat64()
	}
	withNoise := func(in G.Nodes) *G.Node {
		noise := G.NewMatrix(in[0].Graph(), tensor.Float64, G.WithShape(9, 4), G.WithName("noise"),
			G.WithValue(tensor.New(tensor.WithShape(9, 4), tensor.WithBacking(append([]float64(nil), nv...)))))
		return G.Must(G.ApplyOp(newNoisyTile(), in[0], noise))
	}
	opCheck(t, [][]int{{3, 4}}, withNoise, nil)

	g := G.NewGraph()
	lv := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	l := G.NewMatrix(g, tensor.Float64, G.WithShape(3, 4), G.WithName("l"), G.WithValue(tensor.New(tensor.WithShape(3, 4), tensor.WithBacking(lv))))
	z := withNoise(G.Nodes{l})
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := z.Value().Data().([]float64)
	for i, v := range got {
		if want := lv[i%12] + nv[i]; v != want {
			t.Fatalf("z[%d] = %v, want %v", i, v, want)
		}
	}
	if _, err := G.ApplyOp(newNoisyTile(), l, G.NewMatrix(g, tensor.Float64, G.WithShape(5, 4), G.WithName("bad"))); err == nil {
		t.Fatal("noise of 5 rows for 3 rows of logits: no error")
	}
}
