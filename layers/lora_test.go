package layers

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// runLinear builds Linear(c, "lin", x, out, bias) on a fresh context over s
// with the given LoRA config, runs it on xv [n, in] and returns the outputs
// and the context.
func runLinear(t *testing.T, s *Store, lora LoRAConfig, xv []float64, n, in, out int, bias bool) ([]float64, *Ctx) {
	t.Helper()
	c := NewCtx(s, false)
	c.LoRA = lora
	x := c.Input("x", n, in)
	if err := G.Let(x, NewDense(s.DType(), []int{n, in}, xv)); err != nil {
		t.Fatal(err)
	}
	y, err := Linear(c, "lin", x, out, bias)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(c.G)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return Float64s(y.Value(), nil), c
}

func randVals(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

// A fresh adapter (B = 0) leaves the layer's outputs bit-identical to the
// plain layer with the same W and b, in both dtypes, with and without bias,
// and for scale 1 and ≠ 1. A non-zero B then matches the reference
// x·W + b + (α/r)·(x·A)·B computed in Go.
func TestLoRAFreshIsIdentity(t *testing.T) {
	const n, in, out = 5, 7, 4
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		for _, bias := range []bool{true, false} {
			for _, lora := range []LoRAConfig{{Rank: 3}, {Rank: 2, Alpha: 5}} {
				rng := rand.New(rand.NewPCG(1, 2))
				xv := randVals(rng, n*in)
				bv := randVals(rng, out)
				mk := func() *Store {
					s, err := NewStore(dt, 42)
					if err != nil {
						t.Fatal(err)
					}
					if bias { // a non-zero bias, identical in both stores
						b, _ := s.Param("lin.b", []int{out}, InitZeros)
						if err := SetFloat64s(b, bv); err != nil {
							t.Fatal(err)
						}
					}
					return s
				}
				plain, _ := runLinear(t, mk(), LoRAConfig{}, xv, n, in, out, bias)
				ls := mk()
				got, _ := runLinear(t, ls, lora, xv, n, in, out, bias)
				for i := range plain {
					if math.Float64bits(plain[i]) != math.Float64bits(got[i]) {
						t.Fatalf("%v bias=%v %+v: output %d: LoRA %v, plain %v", dt, bias, lora, i, got[i], plain[i])
					}
				}
				// A is non-zero at init (so training B moves the function).
				if a := Float64s(ls.Get("lin.lora_A"), nil); slices.Max(a) == 0 && slices.Min(a) == 0 {
					t.Fatal("lora_A initialised to zero")
				}
				// Non-zero B: compare with the Go reference.
				B := ls.Get("lin.lora_B")
				bvals := randVals(rng, lora.Rank*out)
				if err := SetFloat64s(B, bvals); err != nil {
					t.Fatal(err)
				}
				got, _ = runLinear(t, ls, lora, xv, n, in, out, bias)
				W, A := Float64s(ls.Get("lin.W"), nil), Float64s(ls.Get("lin.lora_A"), nil)
				bb := Float64s(B, nil)
				worst := 0.0
				for i := 0; i < n; i++ {
					xa := make([]float64, lora.Rank)
					for k := range xa {
						for j := 0; j < in; j++ {
							xa[k] += xv[i*in+j] * A[j*lora.Rank+k]
						}
					}
					for o := 0; o < out; o++ {
						ref := 0.0
						for j := 0; j < in; j++ {
							ref += xv[i*in+j] * W[j*out+o]
						}
						if bias {
							ref += bv[o]
						}
						d := 0.0
						for k := range xa {
							d += xa[k] * bb[k*out+o]
						}
						ref += lora.Scale() * d
						worst = math.Max(worst, math.Abs(ref-got[i*out+o])/math.Max(1, math.Abs(ref)))
					}
				}
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				if worst > tol {
					t.Fatalf("%v bias=%v %+v: trained adapter differs from the reference by %.3g", dt, bias, lora, worst)
				}
				t.Logf("%v bias=%v %+v: fresh adapter bit-identical; trained adapter vs reference rel err %.2g", dt, bias, lora, worst)
			}
		}
	}
}

// Finite-difference check of a LoRA Linear with respect to x, W, b, A and B,
// with B randomised (at B = 0 the gradient w.r.t. A vanishes) and scale ≠ 1.
func TestGradLoRALinear(t *testing.T) {
	for _, tc := range []struct {
		name string
		lora LoRAConfig
		bias bool
	}{
		{"scale1.5", LoRAConfig{Rank: 2, Alpha: 3}, true},
		{"scale1-nobias", LoRAConfig{Rank: 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gradCheck(t, []int{3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) {
				c.LoRA = tc.lora
				B, err := c.Store.Param("lin.lora_B", []int{tc.lora.Rank, 5}, InitZeros)
				if err != nil {
					return nil, err
				}
				d := B.Data().([]float64)
				for i := range d {
					d[i] = 0.3*math.Sin(float64(i)+1) - 0.1
				}
				return Linear(c, "lin", x, 5, tc.bias)
			})
		})
	}
}

// The parameters of a LoRA Linear are exactly W, b, lora_A and lora_B with
// the documented shapes and initialisation, and IsLoRA recognises the
// adapters only.
func TestLoRAParams(t *testing.T) {
	s, err := NewStore(tensor.Float64, 3)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCtx(s, false)
	c.LoRA = LoRAConfig{Rank: 2, Alpha: 4}
	x := c.Input("x", 6, 7)
	if _, err := Linear(c, "lin", x, 5, true); err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"lin.W": {7, 5}, "lin.b": {5}, "lin.lora_A": {7, 2}, "lin.lora_B": {2, 5}}
	if got := s.Names(); !slices.Equal(got, []string{"lin.W", "lin.b", "lin.lora_A", "lin.lora_B"}) {
		t.Fatalf("store names %v", got)
	}
	if len(c.Learnables()) != len(want) {
		t.Fatalf("%d learnables, want %d", len(c.Learnables()), len(want))
	}
	for _, p := range c.Learnables() {
		shape, ok := want[p.Name()]
		if !ok || !slices.Equal([]int(p.Shape()), shape) || !slices.Equal([]int(s.Get(p.Name()).Shape()), shape) {
			t.Fatalf("parameter %s shape %v, want %v (known %v)", p.Name(), p.Shape(), shape, ok)
		}
		if IsLoRA(p.Name()) != (p.Name() == "lin.lora_A" || p.Name() == "lin.lora_B") {
			t.Fatalf("IsLoRA(%q) = %v", p.Name(), IsLoRA(p.Name()))
		}
	}
	for _, v := range s.Get("lin.lora_B").Data().([]float64) {
		if v != 0 {
			t.Fatal("lora_B not initialised to zero")
		}
	}
	if IsLoRA("lora_A.W") || IsLoRA("x.lora_Ab") || !IsLoRA("mlp.0.lora_B") {
		t.Fatal("IsLoRA misclassifies")
	}
	// No adapters on the input projection; none at all with Rank 0.
	if _, err := InputProjection(c, "emb", x, 3); err != nil {
		t.Fatal(err)
	}
	if s.Get("emb.lora_A") != nil || s.Get("emb.E.lora_A") != nil {
		t.Fatal("input projection got an adapter")
	}
	c0 := NewCtx(s, false)
	if _, err := Linear(c0, "plain", c0.Input("x", 2, 7), 3, true); err != nil {
		t.Fatal(err)
	}
	if s.Get("plain.lora_A") != nil || s.Get("plain.lora_B") != nil {
		t.Fatal("Rank 0 created adapters")
	}
	// Invalid configs are errors, not panics.
	for _, bad := range []LoRAConfig{{Rank: -1}, {Rank: 2, Alpha: -1}, {Rank: 2, Alpha: math.NaN()}} {
		cb := NewCtx(s, false)
		cb.LoRA = bad
		if _, err := Linear(cb, "bad", cb.Input("x", 2, 7), 3, true); err == nil {
			t.Fatalf("LoRA %+v accepted", bad)
		}
	}
}

// A transformer block with adapters on every Linear (attention projections
// and FFN), with the B factors moved off zero after building.
func TestGradLoRATransformerBlock(t *testing.T) {
	gradCheck(t, []int{2 * 3, 4}, func(c *Ctx, x *G.Node) (*G.Node, error) {
		c.LoRA = LoRAConfig{Rank: 2, Alpha: 1}
		y, err := TransformerBlock(c, "blk", x, 2, 3, 2, 8, GeLU)
		nB := 0
		for i, p := range c.Learnables() {
			if IsLoRA(p.Name()) && p.Name()[len(p.Name())-1] == 'B' {
				nB++
				d := p.Value().Data().([]float64)
				for j := range d {
					d[j] = 0.2 * math.Cos(float64(3*i+j))
				}
			}
		}
		if nB != 6 { // q, k, v, o, ffn.0, ffn.1
			t.Fatalf("%d lora_B parameters, want 6", nB)
		}
		return y, err
	})
}
