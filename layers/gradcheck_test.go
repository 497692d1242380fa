package layers

import (
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/internal/testutil"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gradCheck builds f on a float64 input x of the given shape, forms the
// scalar cost Σ f(x) ⊙ R for a fixed random R, and compares the symbolic
// gradient with respect to x and to every parameter against central finite
// differences. It fails on a relative error above tol.
func gradCheck(t *testing.T, shape []int, f func(c *Ctx, x *G.Node) (*G.Node, error)) {
	t.Helper()
	const h, tol = 1e-6, 1e-6
	rng := rand.New(rand.NewPCG(11, 12))
	s, err := NewStore(tensor.Float64, 7)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCtx(s, true)
	x := c.Input("x", shape...)
	n := 1
	for _, d := range shape {
		n *= d
	}
	xv := make([]float64, n)
	for i := range xv {
		xv[i] = rng.NormFloat64()
	}
	if err := G.Let(x, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(xv))); err != nil {
		t.Fatal(err)
	}
	y, err := f(c, x)
	if err != nil {
		t.Fatal(err)
	}
	rv := make([]float64, y.Shape().TotalSize())
	for i := range rv {
		rv[i] = rng.NormFloat64()
	}
	r := G.NewTensor(c.G, tensor.Float64, y.Dims(), G.WithShape(y.Shape()...), G.WithName("R"),
		G.WithValue(tensor.New(tensor.WithShape(y.Shape()...), tensor.WithBacking(rv))))
	cost := G.Must(G.Sum(G.Must(G.HadamardProd(y, r))))
	wrt := append(G.Nodes{x}, c.Learnables()...)
	grads, err := G.Grad(cost, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	var costV G.Value
	G.Read(cost, &costV)
	gv := make([]G.Value, len(grads))
	for i, g := range grads {
		G.Read(g, &gv[i])
	}
	m := G.NewTapeMachine(c.G)
	defer m.Close()
	run := func() float64 {
		m.Reset()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return costV.Data().(float64)
	}
	run()
	analytic := make([][]float64, len(grads))
	for i := range gv {
		analytic[i] = Float64s(gv[i], nil)
	}
	data := [][]float64{xv}
	for _, p := range c.Learnables() {
		data = append(data, p.Value().Data().([]float64))
	}
	fd := testutil.Checker{H: h, Tol: tol}
	for i, d := range data {
		fd.All(t, "d cost/d "+wrt[i].Name(), run, d, analytic[i])
	}
	t.Logf("%d tensors checked, worst relative error %.2g", len(data), fd.Worst)
}

func TestGradLinear(t *testing.T) {
	gradCheck(t, []int{3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) { return Linear(c, "lin", x, 5, true) })
}

func TestGradInputProjection(t *testing.T) {
	gradCheck(t, []int{4, 5}, func(c *Ctx, x *G.Node) (*G.Node, error) { return InputProjection(c, "in", x, 3) })
}

func TestGradLayerNorm(t *testing.T) {
	gradCheck(t, []int{3, 6}, func(c *Ctx, x *G.Node) (*G.Node, error) {
		// Perturb γ and β away from 1 and 0 so their gradients are exercised.
		y, err := LayerNorm(c, "ln", x)
		for i, p := range c.Learnables() {
			d := p.Value().Data().([]float64)
			for j := range d {
				d[j] += 0.1*float64(j) - 0.2*float64(i)
			}
		}
		return y, err
	})
}

func TestGradLogSoftmax(t *testing.T) {
	gradCheck(t, []int{4, 5}, func(c *Ctx, x *G.Node) (*G.Node, error) { return LogSoftmax(x) })
}

func TestGradSoftmax(t *testing.T) {
	gradCheck(t, []int{4, 5}, func(c *Ctx, x *G.Node) (*G.Node, error) { return Softmax(x) })
}

func TestGradActivations(t *testing.T) {
	for _, a := range []Activation{ReLU, GeLU, SiLU} {
		t.Run(string(a), func(t *testing.T) {
			gradCheck(t, []int{3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) { return a.Apply(c, x) })
		})
	}
}

func TestGradMLP(t *testing.T) {
	gradCheck(t, []int{3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) { return MLP(c, "mlp", x, []int{6, 5, 2}, GeLU) })
}

func TestGradAttention(t *testing.T) {
	gradCheck(t, []int{2 * 3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) { return MultiHeadAttention(c, "att", x, 2, 3, 2) })
}

func TestGradTransformerBlock(t *testing.T) {
	gradCheck(t, []int{2 * 3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) {
		return TransformerBlock(c, "blk", x, 2, 3, 2, 8, GeLU)
	})
}

func TestGradTimeConditioning(t *testing.T) {
	// x holds B=2 sequences of L=3 tokens with D=4; the time features are a
	// second input, so only the per-sequence add and the embedding MLP are
	// differentiated here through x and the parameters.
	gradCheck(t, []int{2 * 3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) {
		fv := make([]float64, 2*6)
		if err := TimeFeatures([]float64{0.3, 0.9}, 6, fv); err != nil {
			return nil, err
		}
		f := G.NewMatrix(c.G, tensor.Float64, G.WithShape(2, 6), G.WithName("tf"),
			G.WithValue(tensor.New(tensor.WithShape(2, 6), tensor.WithBacking(fv))))
		e, err := TimeEmbedding(c, "temb", f, 4)
		if err != nil {
			return nil, err
		}
		y, err := AddPerSequence(x, e, 2, 3)
		if err != nil {
			return nil, err
		}
		return AddPositional(c, "pos", y, 2, 3)
	})
}
