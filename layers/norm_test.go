package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestNormOpsMatchComposed checks the fused GELU, softmax and LayerNorm
// forward values against the same formulas composed from Gorgonia's ops
// (the definitions they replaced), in float64 to 1e-12 and in float32 to a
// few ulps, on rows that include large values (softmax stability) and a
// constant row (LayerNorm's ε). Their backward passes are checked against
// finite differences by TestGradLayerNorm, TestGradSoftmax,
// TestGradActivations and the attention and block tests.
func TestNormOpsMatchComposed(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		rng := rand.New(rand.NewPCG(21, 22))
		const n, d = 5, 7
		xv := make([]float64, n*d)
		for i := range xv {
			xv[i] = 2 * rng.NormFloat64()
		}
		xv[3] = 60 // exp overflows without the row maximum
		for j := range d {
			xv[4*d+j] = 0.5 // a constant row: x̂ = 0, σ = √ε
		}
		gv, bv := make([]float64, d), make([]float64, d)
		for j := range gv {
			gv[j], bv[j] = 1+0.3*rng.NormFloat64(), 0.2*rng.NormFloat64()
		}
		g := G.NewGraph()
		x := G.NewMatrix(g, dt, G.WithShape(n, d), G.WithName("x"), G.WithValue(NewDense(dt, []int{n, d}, xv)))
		gamma := G.NewVector(g, dt, G.WithShape(d), G.WithName("g"), G.WithValue(NewDense(dt, []int{d}, gv)))
		beta := G.NewVector(g, dt, G.WithShape(d), G.WithName("b"), G.WithValue(NewDense(dt, []int{d}, bv)))
		cst := func(v float64) *G.Node {
			if dt == tensor.Float32 {
				return G.NewConstant(float32(v))
			}
			return G.NewConstant(v)
		}
		// the composed definitions
		x3 := G.Must(G.HadamardProd(G.Must(G.Square(x)), x))
		in := G.Must(G.Add(x, G.Must(G.HadamardProd(x3, cst(0.044715)))))
		th := G.Must(G.Tanh(G.Must(G.HadamardProd(in, cst(math.Sqrt(2/math.Pi))))))
		wantGelu := G.Must(G.HadamardProd(G.Must(G.HadamardProd(x, cst(0.5))), G.Must(G.Add(th, cst(1)))))
		m := G.Must(G.Max(x, 1))
		e := G.Must(G.Exp(G.Must(G.BroadcastSub(x, m, nil, []byte{1}))))
		wantSoft := G.Must(G.BroadcastHadamardDiv(e, G.Must(G.Sum(e, 1)), nil, []byte{1}))
		mean := G.Must(G.Mean(x, 1))
		xc := G.Must(G.BroadcastSub(x, mean, nil, []byte{1}))
		v := G.Must(G.Mean(G.Must(G.Square(xc)), 1))
		sd := G.Must(G.Sqrt(G.Must(G.Add(v, cst(1e-5)))))
		ln := G.Must(G.BroadcastHadamardDiv(xc, sd, nil, []byte{1}))
		ln = G.Must(G.BroadcastHadamardProd(ln, gamma, nil, []byte{0}))
		wantLN := G.Must(G.BroadcastAdd(ln, beta, nil, []byte{0}))
		gotGelu, err := GELUOp(x)
		if err != nil {
			t.Fatal(err)
		}
		gotSoft, err := SoftmaxOp(x)
		if err != nil {
			t.Fatal(err)
		}
		gotLN, err := LayerNormOp(x, gamma, beta)
		if err != nil {
			t.Fatal(err)
		}
		pairs := [][2]*G.Node{{gotGelu, wantGelu}, {gotSoft, wantSoft}, {gotLN, wantLN}}
		vals := make([][2]G.Value, len(pairs))
		for i, p := range pairs {
			G.Read(p[0], &vals[i][0])
			G.Read(p[1], &vals[i][1])
		}
		vm := G.NewTapeMachine(g)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		vm.Close()
		tol := 1e-12
		if dt == tensor.Float32 {
			tol = 4e-6
		}
		for i, name := range []string{"gelu", "softmax", "layernorm"} {
			got, want := Float64s(vals[i][0], nil), Float64s(vals[i][1], nil)
			for j := range want {
				if math.IsNaN(got[j]) || math.Abs(got[j]-want[j]) > tol*math.Max(1, math.Abs(want[j])) {
					t.Fatalf("%v %s[%d] = %v, composed %v", dt, name, j, got[j], want[j])
				}
			}
		}
	}
}
