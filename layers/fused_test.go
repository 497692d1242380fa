package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/internal/par"
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

// TestGradMatMulSiLU checks the fused matrix product and SiLU backward
// passes against finite differences in float64, with x entering both
// operands of the product (so both of its backward products reach x).
func TestGradMatMulSiLU(t *testing.T) {
	t.Run("matMul", func(t *testing.T) {
		gradCheck(t, []int{4, 3}, func(c *Ctx, x *G.Node) (*G.Node, error) {
			w, err := c.Param("w", []int{3, 5}, InitNormal)
			if err != nil {
				return nil, err
			}
			h, err := MatMul(x, w) // [4, 5]
			if err != nil {
				return nil, err
			}
			return MatMul(G.Must(G.Transpose(x, 1, 0)), h) // [3, 5]: xᵀ·(x·w)
		})
	})
	t.Run("silu", func(t *testing.T) {
		gradCheck(t, []int{5, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) {
			w, err := c.Param("w", []int{4, 4}, InitNormal)
			if err != nil {
				return nil, err
			}
			h, err := MatMul(x, w)
			if err != nil {
				return nil, err
			}
			return SiLUOp(h)
		})
	})
}

// TestMatMulSiLUMatchGorgonia checks the fused forward values against
// Gorgonia's: the product bit for bit (the same BLAS, all four transpose
// combinations of the op against G.Mul of transposed inputs, the
// transposed ones to float32 rounding), SiLU to a few
// float32 ulps of x·Sigmoid(x); and a second run with new inputs (the op's
// reused buffer holds the new values).
func TestMatMulSiLUMatchGorgonia(t *testing.T) {
	g := G.NewGraph()
	av := []float32{-1, 2, 0.5, 3.5, -0.25, 7, 1.5, -2}                      // [2, 4]
	bv := []float32{0.1, -0.2, 0.3, 1, 2, -3, 0.5, 4, 0.75, -1.25, 6, 0.125} // [4, 3]
	a := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 4), G.WithName("a"), G.WithValue(tensor.New(tensor.WithShape(2, 4), tensor.WithBacking(av))))
	b := G.NewMatrix(g, tensor.Float32, G.WithShape(4, 3), G.WithName("b"), G.WithValue(tensor.New(tensor.WithShape(4, 3), tensor.WithBacking(bv))))
	aT := G.Must(G.Transpose(a, 1, 0)) // [4, 2]
	bT := G.Must(G.Transpose(b, 1, 0)) // [3, 4]
	fm, err := MatMul(a, b)
	if err != nil {
		t.Fatal(err)
	}
	fnt := G.Must(G.ApplyOp(newMatMul(false, true), a, bT)) // a·(bᵀ)ᵀ = a·b
	ftn := G.Must(G.ApplyOp(newMatMul(true, false), aT, b)) // (aᵀ)ᵀ·b
	ftt := G.Must(G.ApplyOp(newMatMul(true, true), aT, bT)) // = a·b
	fs, err := SiLUOp(fm)
	if err != nil {
		t.Fatal(err)
	}
	want := G.Must(G.Mul(a, b))
	var wantV, wantSV G.Value // read when computed: Gorgonia may overwrite want in place
	G.Read(want, &wantV)
	G.Read(G.Must(G.HadamardProd(want, G.Must(G.Sigmoid(want)))), &wantSV)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for run := 0; run < 2; run++ {
		if run == 1 {
			for i := range av {
				av[i] = -1.5 * av[i]
			}
		}
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		w := wantV.Data().([]float32)
		for i, n := range []*G.Node{fm, fnt, ftn, ftt} {
			got := n.Value().Data().([]float32)
			for j := range w {
				// the plain product bit for bit; the transposed ones (the
				// backward products) pack differently: to float32 rounding
				if i == 0 && math.Float32bits(got[j]) != math.Float32bits(w[j]) ||
					math.Abs(float64(got[j]-w[j])) > 1e-6*math.Max(1, math.Abs(float64(w[j]))) {
					t.Fatalf("run %d, product %d (%s): fused %v, G.Mul %v", run, i, n.Op(), got, w)
				}
			}
		}
		ws, gs := wantSV.Data().([]float32), fs.Value().Data().([]float32)
		for j := range ws {
			if d := math.Abs(float64(gs[j] - ws[j])); d > 4e-7*math.Max(1, math.Abs(float64(ws[j]))) {
				t.Fatalf("run %d: silu %v, Gorgonia %v", run, gs, ws)
			}
		}
	}
	if _, err := MatMul(a, a); err == nil {
		t.Fatal("MatMul of [2,4]·[2,4]: no error")
	}
}

// TestSiLURepeatedRows checks that rows repeating the previous row (which
// reuse its values) give exactly the entry-by-entry SiLU, and that a row
// differing only in the sign of a zero is recomputed.
func TestSiLURepeatedRows(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	xv := []float32{0.5, -2, 3, 0.5, -2, 3, 0.5, -2, 3, 0, 1, 2, negZero, 1, 2, 7, 8, 9}
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(6, 3), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(6, 3), tensor.WithBacking(xv))))
	y, err := SiLUOp(x)
	if err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, len(xv))
	silu(xv, want)
	got := y.Value().Data().([]float32)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("entry %d: %v, want %v", i, got[i], want[i])
		}
	}
}

// TestElementwiseOpsSplitOverCores checks the fused element-wise ops on a
// matrix large enough to be split over goroutines (onRows) against their
// serial loops, bit for bit.
func TestElementwiseOpsSplitOverCores(t *testing.T) {
	const r, c = 301, 256 // 77k entries, an odd number of rows
	if r*c < par.MinWork {
		t.Fatalf("%d entries do not reach the parallel threshold %d", r*c, par.MinWork)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	xv, gv, bv := make([]float32, r*c), make([]float32, r*c), make([]float32, c)
	for i := range xv {
		xv[i], gv[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	for i := range bv {
		bv[i] = float32(rng.NormFloat64())
	}
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(r, c), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(r, c), tensor.WithBacking(xv))))
	gr := G.NewMatrix(g, tensor.Float32, G.WithShape(r, c), G.WithName("g"), G.WithValue(tensor.New(tensor.WithShape(r, c), tensor.WithBacking(gv))))
	b := G.NewVector(g, tensor.Float32, G.WithShape(c), G.WithName("b"), G.WithValue(tensor.New(tensor.WithShape(c), tensor.WithBacking(bv))))
	fr, err := ReLUOp(x)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := AddBias(x, b)
	if err != nil {
		t.Fatal(err)
	}
	back := &pointwiseBackOp{fusedBase: fusedBase{name: "reluBack"}, f32: reluBack[float32], f64: reluBack[float64]}
	fg := G.Must(G.ApplyOp(back, x, gr))
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	wr, wb, wg := make([]float32, r*c), make([]float32, r*c), make([]float32, r*c)
	relu(xv, wr)
	addBias(xv, bv, wb)
	reluBack(xv, gv, wg)
	for k, p := range []struct {
		n    *G.Node
		want []float32
	}{{fr, wr}, {fb, wb}, {fg, wg}} {
		got := p.n.Value().Data().([]float32)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(p.want[i]) {
				t.Fatalf("op %d (%s), entry %d: %v, serial %v", k, p.n.Op(), i, got[i], p.want[i])
			}
		}
	}
}

// TestSameBits checks the row comparison of the repeated-row reuse: equal
// bits only (±0 differ, one NaN equals itself), both dtypes.
func TestSameBits(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		a, b []float64
		want bool
	}{{nil, nil, true}, {[]float64{1, 2}, []float64{1, 2}, true}, {[]float64{0}, []float64{math.Copysign(0, -1)}, false},
		{[]float64{nan}, []float64{nan}, true}, {[]float64{1, 2}, []float64{1, 3}, false}, {[]float64{1}, []float64{1, 1}, false}} {
		if got := sameBits(c.a, c.b); got != c.want {
			t.Errorf("sameBits(%v, %v) = %v", c.a, c.b, got)
		}
		a32, b32 := make([]float32, len(c.a)), make([]float32, len(c.b))
		for i, v := range c.a {
			a32[i] = float32(v)
		}
		for i, v := range c.b {
			b32[i] = float32(v)
		}
		if got := sameBits(a32, b32); got != c.want {
			t.Errorf("float32 sameBits(%v, %v) = %v", a32, b32, got)
		}
	}
}
