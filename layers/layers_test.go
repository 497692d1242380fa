package layers

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/internal/logsumexp"
)

// run evaluates y with x bound to vals and returns y's values as float64.
func run(t *testing.T, c *Ctx, x, y *G.Node, shape []int, vals []float64) []float64 {
	t.Helper()
	if err := G.Let(x, NewDense(c.Store.DType(), shape, vals)); err != nil {
		t.Fatal(err)
	}
	var out G.Value
	G.Read(y, &out)
	m := G.NewTapeMachine(c.G)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return Float64s(out, nil)
}

func refLogSoftmax(row []float64) []float64 {
	out := make([]float64, len(row))
	logsumexp.LogSoftmax(row, out)
	return out
}

// Gorgonia's own last-axis LogSoftMax returns -Inf/NaN on these rows (its
// row maximum starts from the tensor's first element); ours must not.
func TestLogSoftmaxStableOnRowsThatBreakGorgonia(t *testing.T) {
	rows := []float64{0, 1, 2, 100, 0, 0, -1e4, 1, 2, 100, -1, -2, -200, -201, -199, 0, 0, 0}
	for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
		s, _ := NewStore(dt, 1)
		c := NewCtx(s, false)
		x := c.Input("x", 6, 3)
		y, err := LogSoftmax(x)
		if err != nil {
			t.Fatal(err)
		}
		got := run(t, c, x, y, []int{6, 3}, rows)
		for r := 0; r < 6; r++ {
			want := refLogSoftmax(rows[3*r : 3*r+3])
			for k := 0; k < 3; k++ {
				g := got[3*r+k]
				if math.IsNaN(g) || math.IsInf(g, 0) || math.Abs(g-want[k]) > 1e-4*math.Max(1, math.Abs(want[k])) {
					t.Fatalf("%v row %d col %d: got %v, want %v", dt, r, k, g, want[k])
				}
			}
		}
	}
}

func TestAttentionMatchesNaiveReference(t *testing.T) {
	const B, L, D, H = 2, 3, 4, 2
	s, _ := NewStore(tensor.Float64, 3)
	c := NewCtx(s, false)
	x := c.Input("x", B*L, D)
	y, err := MultiHeadAttention(c, "att", x, B, L, H)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	xv := make([]float64, B*L*D)
	for i := range xv {
		xv[i] = rng.NormFloat64()
	}
	got := run(t, c, x, y, []int{B * L, D}, xv)
	w := func(n string) []float64 { return s.Get(n).Data().([]float64) }
	lin := func(p string, in []float64) []float64 { // [B·L, D] · W + b
		W, b := w("att."+p+".W"), w("att."+p+".b")
		out := make([]float64, B*L*D)
		for r := 0; r < B*L; r++ {
			for j := 0; j < D; j++ {
				a := b[j]
				for k := 0; k < D; k++ {
					a += in[r*D+k] * W[k*D+j]
				}
				out[r*D+j] = a
			}
		}
		return out
	}
	q, k, v := lin("q", xv), lin("k", xv), lin("v", xv)
	dh := D / H
	o := make([]float64, B*L*D)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			for i := 0; i < L; i++ {
				sc := make([]float64, L)
				for j := 0; j < L; j++ {
					for e := 0; e < dh; e++ {
						sc[j] += q[(b*L+i)*D+h*dh+e] * k[(b*L+j)*D+h*dh+e]
					}
					sc[j] /= math.Sqrt(float64(dh))
				}
				p := refLogSoftmax(sc)
				for j := 0; j < L; j++ {
					for e := 0; e < dh; e++ {
						o[(b*L+i)*D+h*dh+e] += math.Exp(p[j]) * v[(b*L+j)*D+h*dh+e]
					}
				}
			}
		}
	}
	want := lin("o", o)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Fatalf("attention output %d: got %v, want %v", i, got[i], want[i])
		}
	}
}

func TestStoreInitIsDeterministicAndOrderFree(t *testing.T) {
	a, _ := NewStore(tensor.Float32, 42)
	b, _ := NewStore(tensor.Float32, 42)
	d, _ := NewStore(tensor.Float32, 43)
	a.Param("w1", []int{3, 4}, InitNormal)
	a.Param("w2", []int{4, 2}, InitNormal)
	b.Param("w2", []int{4, 2}, InitNormal)
	b.Param("w1", []int{3, 4}, InitNormal)
	d.Param("w1", []int{3, 4}, InitNormal)
	x, y, z := a.Get("w1").Data().([]float32), b.Get("w1").Data().([]float32), d.Get("w1").Data().([]float32)
	same := true
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("same seed, different creation order: w1[%d] %v vs %v", i, x[i], y[i])
		}
		same = same && x[i] == z[i]
	}
	if same {
		t.Fatal("different seeds gave identical initialisation")
	}
	if _, err := a.Param("w1", []int{4, 3}, InitNormal); err == nil || !strings.Contains(err.Error(), "w1") {
		t.Fatalf("re-requesting a parameter with another shape: err = %v", err)
	}
	if a.NumParams() != 12+8 {
		t.Fatalf("NumParams = %d, want 20", a.NumParams())
	}
}

func TestShapeErrorsAreErrorsNotPanics(t *testing.T) {
	s, _ := NewStore(tensor.Float32, 1)
	c := NewCtx(s, false)
	x3 := c.Input("x3", 2, 3, 4)
	if _, err := Linear(c, "l", x3, 3, true); err == nil {
		t.Fatal("Linear on a rank-3 input: want an error")
	}
	x := c.Input("x", 5, 4)
	if _, err := MultiHeadAttention(c, "a", x, 2, 3, 2); err == nil {
		t.Fatal("attention with rows != B·L: want an error")
	}
	if _, err := MultiHeadAttention(c, "a2", x, 5, 1, 3); err == nil {
		t.Fatal("attention with width not divisible by heads: want an error")
	}
	if _, err := Activation("tanhh").Apply(c, x); err == nil || !strings.Contains(err.Error(), "tanhh") {
		t.Fatalf("unknown activation: err = %v", err)
	}
	if err := TimeFeatures([]float64{0.5}, 3, make([]float64, 3)); err == nil {
		t.Fatal("odd feature count: want an error")
	}
	if _, err := NewStore(tensor.Int, 1); err == nil {
		t.Fatal("int store: want an error")
	}
}

// Re-running a machine must neither change its result nor mutate its input:
// a broadcast add into a Reshape view used to accumulate into x each run.
func TestRerunIsRepeatableAndLeavesInputsIntact(t *testing.T) {
	for _, which := range []string{"per-sequence", "positional"} {
		s, _ := NewStore(tensor.Float64, 7)
		c := NewCtx(s, true)
		x := c.Input("x", 6, 4)
		xv := make([]float64, 24)
		for i := range xv {
			xv[i] = float64(i) * 0.1
		}
		orig := append([]float64(nil), xv...)
		if err := G.Let(x, tensor.New(tensor.WithShape(6, 4), tensor.WithBacking(xv))); err != nil {
			t.Fatal(err)
		}
		var y *G.Node
		var err error
		if which == "per-sequence" {
			v := G.NewMatrix(c.G, tensor.Float64, G.WithShape(2, 4), G.WithName("v"),
				G.WithValue(tensor.New(tensor.WithShape(2, 4), tensor.WithBacking([]float64{1, 2, 3, 4, 5, 6, 7, 8}))))
			y, err = AddPerSequence(x, v, 2, 3)
		} else {
			y, err = AddPositional(c, "pos", x, 2, 3)
		}
		if err != nil {
			t.Fatal(err)
		}
		var yv G.Value
		G.Read(G.Must(G.Sum(y)), &yv)
		m := G.NewTapeMachine(c.G)
		var first float64
		for i := 0; i < 3; i++ {
			m.Reset()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = yv.Data().(float64)
			} else if got := yv.Data().(float64); got != first {
				t.Fatalf("%s: run %d gave %v, run 0 gave %v", which, i, got, first)
			}
		}
		m.Close()
		for i := range xv {
			if xv[i] != orig[i] {
				t.Fatalf("%s: input x[%d] mutated from %v to %v", which, i, orig[i], xv[i])
			}
		}
	}
}

// TestParamOwnersFollowStores checks the registry that lets SetFloat64s
// touch a parameter's store: writing a parameter bumps its store's
// version, writing another tensor does not, and the entries of a store
// are removed once the store is collected (long sweeps build thousands).
func TestParamOwnersFollowStores(t *testing.T) {
	s, err := NewStore(tensor.Float32, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Param("w", []int{3, 4}, InitNormal)
	if err != nil {
		t.Fatal(err)
	}
	v := s.Version()
	if err := SetFloat64s(p, make([]float64, 12)); err != nil {
		t.Fatal(err)
	}
	if s.Version() == v {
		t.Fatal("SetFloat64s into a parameter did not touch its store")
	}
	v = s.Version()
	if err := SetFloat64s(NewDense(tensor.Float32, []int{12}, make([]float64, 12)), make([]float64, 12)); err != nil {
		t.Fatal(err)
	}
	if s.Version() != v {
		t.Fatal("SetFloat64s into a non-parameter touched a store")
	}
	var keys []uintptr
	for i := 0; i < 20; i++ {
		st, err := NewStore(tensor.Float32, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		q, err := st.Param("w", []int{64}, InitNormal)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, q.Uintptr())
	}
	left := len(keys)
	for try := 0; try < 200 && left > 0; try++ {
		runtime.GC()
		time.Sleep(time.Millisecond)
		left = 0
		for _, k := range keys {
			if w, ok := owners.Load(k); ok && w.(weak.Pointer[Store]).Value() == nil {
				left++
			}
		}
	}
	if left > 0 {
		t.Fatalf("%d of %d dead stores' entries remain in the owners registry", left, len(keys))
	}
	runtime.KeepAlive(s)
}
