package layers

import (
	"math"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGradFusedOps checks the fused ops' backward passes against finite
// differences in float64 (gradCheck: the input and every parameter).
func TestGradFusedOps(t *testing.T) {
	t.Run("addBias", func(t *testing.T) {
		gradCheck(t, []int{4, 3}, func(c *Ctx, x *G.Node) (*G.Node, error) {
			b, err := c.Param("b", []int{3}, InitNormal)
			if err != nil {
				return nil, err
			}
			return AddBias(x, b)
		})
	})
	t.Run("relu", func(t *testing.T) {
		gradCheck(t, []int{5, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) { return ReLUOp(x) })
	})
	t.Run("concatCols", func(t *testing.T) {
		gradCheck(t, []int{3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) {
			w, err := c.Param("w", []int{3, 2}, InitNormal)
			if err != nil {
				return nil, err
			}
			// x on both sides, so both slices of the gradient reach x.
			h := G.Must(G.Mul(x, G.Must(G.Transpose(x, 1, 0))))
			return ConcatCols(h, w)
		})
	})
}

// TestFusedOpsMatchGorgonia checks that the fused ops' forward values equal
// Gorgonia's composed ops bit for bit (float32), and that a second run of
// the same program (reusing the op's buffer) gives the new values.
func TestFusedOpsMatchGorgonia(t *testing.T) {
	g := G.NewGraph()
	xv := []float32{-1, 2, 0, 3.5, float32(math.NaN()), 7}
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(2, 3), tensor.WithBacking(xv))))
	b := G.NewVector(g, tensor.Float32, G.WithShape(3), G.WithName("b"), G.WithValue(tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{0.1, -0.2, 0.3}))))
	m := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 2), G.WithName("m"), G.WithValue(tensor.New(tensor.WithShape(2, 2), tensor.WithBacking([]float32{1, 2, 3, 4}))))
	fb, err := AddBias(x, b)
	if err != nil {
		t.Fatal(err)
	}
	fr, err := ReLUOp(x)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := ConcatCols(x, m)
	if err != nil {
		t.Fatal(err)
	}
	pairs := [][2]*G.Node{
		{fb, G.Must(G.BroadcastAdd(x, b, nil, []byte{0}))},
		{fr, G.Must(G.Rectify(x))},
		{fc, G.Must(G.Concat(1, x, m))},
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for run := 0; run < 2; run++ {
		if run == 1 {
			for i := range xv {
				xv[i] = -2 * xv[i]
			}
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		for i, p := range pairs {
			a, want := p[0].Value().Data().([]float32), p[1].Value().Data().([]float32)
			for j := range want {
				same := a[j] == want[j] || math.IsNaN(float64(a[j])) && math.IsNaN(float64(want[j]))
				if !same || (i != 1 && math.Float32bits(a[j]) != math.Float32bits(want[j])) {
					t.Fatalf("run %d, op %d: fused %v, Gorgonia %v", run, i, a, want)
				}
			}
		}
	}
}
