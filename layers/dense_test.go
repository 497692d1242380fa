package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/internal/sgemm"
)

// TestGradDense checks the fused Dense layer's backward passes (the masked
// input-gradient product, the reluBack of the parameter gradients, the
// bias column sum) against finite differences in float64, with and
// without bias and ReLU; the layer is applied twice so the second one's
// input gradient flows into the first.
func TestGradDense(t *testing.T) {
	for _, v := range []struct{ bias, relu bool }{{true, true}, {false, true}, {true, false}} {
		t.Run(fmt.Sprintf("bias=%v,relu=%v", v.bias, v.relu), func(t *testing.T) {
			gradCheck(t, []int{5, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) {
				h := x
				for i := range 2 {
					w, err := c.Param(fmt.Sprintf("w%d", i), []int{4, 4}, InitNormal)
					if err != nil {
						return nil, err
					}
					var b *G.Node
					if v.bias {
						if b, err = c.Param(fmt.Sprintf("b%d", i), []int{4}, InitNormal); err != nil {
							return nil, err
						}
					}
					if h, err = Dense(h, w, b, c.Store, v.relu); err != nil {
						return nil, err
					}
				}
				return h, nil
			})
		})
	}
}

// TestDenseMatchesComposed checks the fused layer against MatMulParam,
// AddBias and ReLUOp composed, in float32, bit for bit: the values and the
// input gradient of a two-layer stack, at shapes with edge tiles and with
// k beyond one block of the kernel, over two runs (the second with new
// inputs, through the reused buffers and packed weights).
func TestDenseMatchesComposed(t *testing.T) {
	defer G.Use(G.WhichBLAS())
	defer func(e bool) { sgemm.Enabled = e }(sgemm.Enabled)
	for _, kernel := range []bool{sgemm.Enabled, false} {
		// the packed, fused path, and the separate passes around gonum
		sgemm.Enabled = kernel
		var impl G.BLAS = sgemm.Implementation{}
		if !kernel {
			impl = gonum.Implementation{}
		}
		G.Use(impl)
		t.Run(fmt.Sprintf("kernel=%v", kernel), func(t *testing.T) { denseMatchesComposed(t) })
	}
}

func denseMatchesComposed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sh := range [][3]int{{7, 5, 19}, {37, 300, 40}, {256, 128, 256}} {
		m, k, n := sh[0], sh[1], sh[2]
		build := func(fused bool) (*G.ExprGraph, *G.Node, *G.Node, *G.Node, []float32) {
			s, err := NewStore(tensor.Float32, 5)
			if err != nil {
				t.Fatal(err)
			}
			c := NewCtx(s, true)
			x := c.Input("x", m, k)
			h := x
			for i, width := range []int{n, n} {
				w, err := c.Param(fmt.Sprintf("w%d", i), []int{h.Shape()[1], width}, InitNormal)
				if err != nil {
					t.Fatal(err)
				}
				b, err := c.Param(fmt.Sprintf("b%d", i), []int{width}, InitNormal)
				if err != nil {
					t.Fatal(err)
				}
				if fused {
					h, err = Dense(h, w, b, s, true)
				} else {
					h, err = MatMulParam(h, w, s)
					if err == nil {
						h, err = AddBias(h, b)
					}
					if err == nil {
						h, err = ReLUOp(h)
					}
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			r := c.Input("r", m, n)
			cost := G.Must(G.Sum(G.Must(G.HadamardProd(h, r))))
			gx, err := G.Grad(cost, x)
			if err != nil {
				t.Fatal(err)
			}
			rv := make([]float32, m*n)
			for i := range rv {
				rv[i] = float32(rng.NormFloat64())
			}
			if err := G.Let(r, tensor.New(tensor.WithShape(m, n), tensor.WithBacking(rv))); err != nil {
				t.Fatal(err)
			}
			return c.G, x, h, gx[0], rv
		}
		gf, xf, hf, gxf, rv := build(true)
		gc, xc, hc, gxc, _ := build(false)
		// the same r in both
		rc := gc.ByName("r")[0]
		if err := G.Let(rc, tensor.New(tensor.WithShape(m, n), tensor.WithBacking(rv))); err != nil {
			t.Fatal(err)
		}
		var hv, gv [2]G.Value
		G.Read(hf, &hv[0])
		G.Read(gxf, &gv[0])
		G.Read(hc, &hv[1])
		G.Read(gxc, &gv[1])
		mf, mc := G.NewTapeMachine(gf), G.NewTapeMachine(gc)
		for run := range 2 {
			xv := make([]float32, m*k)
			for i := range xv {
				xv[i] = float32(rng.NormFloat64())
			}
			xv[0] = 0
			for _, p := range []struct {
				x *G.Node
				m G.VM
			}{{xf, mf}, {xc, mc}} {
				if err := G.Let(p.x, tensor.New(tensor.WithShape(m, k), tensor.WithBacking(append([]float32(nil), xv...)))); err != nil {
					t.Fatal(err)
				}
				p.m.Reset()
				if err := p.m.RunAll(); err != nil {
					t.Fatal(err)
				}
			}
			for i, pair := range [][2]G.Value{{hv[0], hv[1]}, {gv[0], gv[1]}} {
				got, want := pair[0].Data().([]float32), pair[1].Data().([]float32)
				zeros := 0
				for j := range want {
					if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
						t.Fatalf("%d×%d·%d run %d, %s[%d]: fused %v, composed %v", m, k, n, run, []string{"value", "input gradient"}[i], j, got[j], want[j])
					}
					if want[j] == 0 {
						zeros++
					}
				}
				if i == 0 && (zeros == 0 || zeros == len(want)) {
					t.Fatalf("%d×%d·%d: %d of %d outputs clamped: the test does not exercise the ReLU", m, k, n, zeros, len(want))
				}
			}
		}
		mf.Close()
		mc.Close()
	}
}
