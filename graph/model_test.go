package graph

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
)

func testConfigs(dtype string) []Config {
	mlp := Config{Arch: "mlp", L: 3, V: 4, Embed: 8, Hidden: 16, Layers: 2, TimeDim: 4, Act: "gelu", DType: dtype, InitSeed: 5}
	tf := Config{Arch: "transformer", L: 3, V: 4, Embed: 8, Hidden: 16, Layers: 2, Heads: 2, TimeDim: 4, Act: "gelu", DType: dtype, InitSeed: 5}
	return []Config{mlp, tf}
}

func randTokens(rng *rand.Rand, n, V int) []int {
	x := make([]int, n)
	for i := range x {
		x[i] = rng.IntN(V + 1)
	}
	return x
}

// Each sequence's logits must depend only on that sequence: running a batch
// of 5 equals running each sequence alone (catches cross-talk from wrong
// reshapes in attention or the per-sequence time embedding).
func TestBatchRowsAreIndependent(t *testing.T) {
	for _, cfg := range testConfigs("float64") {
		m, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 1))
		const B = 5
		xt := randTokens(rng, B*cfg.L, cfg.V)
		ts := []float64{0.1, 0.5, 0.9, 1, 0}
		all := make([]float64, B*cfg.L*cfg.V)
		if err := m.X0Logits(xt, ts, all); err != nil {
			t.Fatal(err)
		}
		one := make([]float64, cfg.L*cfg.V)
		for b := 0; b < B; b++ {
			if err := m.X0Logits(xt[b*cfg.L:(b+1)*cfg.L], ts[b:b+1], one); err != nil {
				t.Fatal(err)
			}
			for i, v := range one {
				if w := all[b*cfg.L*cfg.V+i]; math.Abs(v-w) > 1e-12 {
					t.Fatalf("%s: row %d logit %d: alone %v, in batch %v", cfg.Arch, b, i, v, w)
				}
			}
		}
	}
}

// A compiled program is built once per batch size and re-run with new inputs;
// re-running must give exactly the numbers of a fresh model.
func TestRerunWithNewInputsMatchesFreshModel(t *testing.T) {
	for _, cfg := range testConfigs("float32") {
		m, _ := New(cfg)
		rng := rand.New(rand.NewPCG(2, 2))
		const B = 4
		ts := []float64{0.2, 0.4, 0.6, 0.8}
		var last []float64
		var lastX []int
		for it := 0; it < 4; it++ {
			lastX = randTokens(rng, B*cfg.L, cfg.V)
			last = make([]float64, B*cfg.L*cfg.V)
			if err := m.X0Logits(lastX, ts, last); err != nil {
				t.Fatal(err)
			}
		}
		if len(m.fwd) != 1 {
			t.Fatalf("%s: %d programs compiled for one batch size", cfg.Arch, len(m.fwd))
		}
		fresh, _ := New(cfg)
		want := make([]float64, len(last))
		if err := fresh.X0Logits(lastX, ts, want); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if want[i] != last[i] {
				t.Fatalf("%s: logit %d after re-runs %v, fresh model %v", cfg.Arch, i, last[i], want[i])
			}
		}
	}
}

func TestInitialisationIsSeeded(t *testing.T) {
	cfg := testConfigs("float32")[1]
	a, _ := New(cfg)
	b, _ := New(cfg)
	cfg.InitSeed++
	c, _ := New(cfg)
	xt := []int{0, 4, 2}
	la, lb, lc := make([]float64, 12), make([]float64, 12), make([]float64, 12)
	a.X0Logits(xt, []float64{0.5}, la)
	b.X0Logits(xt, []float64{0.5}, lb)
	c.X0Logits(xt, []float64{0.5}, lc)
	differ := false
	for i := range la {
		if la[i] != lb[i] {
			t.Fatalf("same seed, logit %d differs: %v vs %v", i, la[i], lb[i])
		}
		differ = differ || la[i] != lc[i]
	}
	if !differ {
		t.Fatal("different seeds gave identical logits")
	}
}

// InputGrad's dx must match central finite differences of Σ logits ⊙ cot
// with respect to the soft one-hot input (float64 models).
func TestInputGradMatchesFiniteDifferences(t *testing.T) {
	for _, cfg := range testConfigs("float64") {
		m, _ := New(cfg)
		rng := rand.New(rand.NewPCG(3, 3))
		const B = 2
		K := cfg.L * (cfg.V + 1)
		x := make([]float64, B*K)
		for i := range x {
			x[i] = rng.Float64()
		}
		ts := []float64{0.3, 0.7}
		cot := make([]float64, B*cfg.L*cfg.V)
		for i := range cot {
			cot[i] = rng.NormFloat64()
		}
		logits := make([]float64, len(cot))
		dx := make([]float64, len(x))
		if err := m.InputGrad(x, ts, cot, logits, dx); err != nil {
			t.Fatal(err)
		}
		ref := make([]float64, len(cot))
		if err := m.SoftLogits(x, ts, ref); err != nil {
			t.Fatal(err)
		}
		for i := range ref {
			if math.Abs(ref[i]-logits[i]) > 1e-12 {
				t.Fatalf("%s: InputGrad logits differ from SoftLogits at %d", cfg.Arch, i)
			}
		}
		f := func() float64 {
			if err := m.SoftLogits(x, ts, ref); err != nil {
				t.Fatal(err)
			}
			s := 0.0
			for i := range ref {
				s += ref[i] * cot[i]
			}
			return s
		}
		fd := testutil.Checker{H: 1e-6, Tol: 1e-6, ScaleByEstimate: true}
		fd.All(t, cfg.Arch+": dx", f, x, dx)
	}
}

func TestOneHotAndSoftInputsAgree(t *testing.T) {
	cfg := testConfigs("float32")[0]
	m, _ := New(cfg)
	xt := []int{1, 4, 0, 3, 3, 4}
	soft := make([]float64, len(xt)*(cfg.V+1))
	for i, v := range xt {
		soft[i*(cfg.V+1)+v] = 1
	}
	a, b := make([]float64, 2*cfg.L*cfg.V), make([]float64, 2*cfg.L*cfg.V)
	if err := m.X0Logits(xt, []float64{0.5, 1}, a); err != nil {
		t.Fatal(err)
	}
	if err := m.SoftLogits(soft, []float64{0.5, 1}, b); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("logit %d: one-hot %v, soft %v", i, a[i], b[i])
		}
	}
}

func TestBadInputsAreErrors(t *testing.T) {
	cfg := testConfigs("float32")[0]
	m, _ := New(cfg)
	out := make([]float64, cfg.L*cfg.V)
	cases := map[string]func() error{
		"token":  func() error { return m.X0Logits([]int{0, 5, 1}, []float64{0.5}, out) },
		"length": func() error { return m.X0Logits([]int{0, 1}, []float64{0.5}, out) },
		"time":   func() error { return m.X0Logits([]int{0, 1, 2}, []float64{1.5}, out) },
		"nan":    func() error { return m.X0Logits([]int{0, 1, 2}, []float64{math.NaN()}, out) },
		"out":    func() error { return m.X0Logits([]int{0, 1, 2}, []float64{0.5}, out[:3]) },
		"empty":  func() error { return m.X0Logits(nil, nil, nil) },
	}
	for name, f := range cases {
		if err := f(); err == nil || !strings.HasPrefix(err.Error(), "graph: ") {
			t.Errorf("%s: err = %v, want a graph: error", name, err)
		}
	}
	bad := cfg
	bad.Heads, bad.Arch = 3, "transformer"
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "model.heads") {
		t.Errorf("heads not dividing embed: err = %v", err)
	}
	bad = cfg
	bad.Arch = "rnn"
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "model.arch") {
		t.Errorf("unknown arch: err = %v", err)
	}
}

// Clones own their parameters and programs, so they run concurrently and
// agree with the original (run with -race to check for data races).
func TestClonesRunConcurrently(t *testing.T) {
	cfg := testConfigs("float32")[1]
	m, _ := New(cfg)
	xt := []int{0, 4, 2, 1, 1, 4}
	ts := []float64{0.3, 0.6}
	want := make([]float64, 2*cfg.L*cfg.V)
	if err := m.X0Logits(xt, ts, want); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := 0; w < 4; w++ {
		c, err := m.Clone()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := make([]float64, len(want))
			for it := 0; it < 5; it++ {
				if err := c.X0Logits(xt, ts, got); err != nil {
					errs <- err.Error()
					return
				}
				for i := range got {
					if got[i] != want[i] {
						errs <- "clone disagrees with the original"
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

// The pruned forward program (CompileFunction) must give exactly the
// logits of an unpruned TapeMachine that reads them with G.Read: pruning
// once corrupted outputs in the gradient program, so this is checked.
func TestPrunedForwardMatchesFullTape(t *testing.T) {
	for _, cfg := range testConfigs("float64") {
		m, _ := New(cfg)
		rng := rand.New(rand.NewPCG(4, 4))
		const B = 3
		xt := randTokens(rng, B*cfg.L, cfg.V)
		ts := []float64{0.1, 0.6, 1}
		got := make([]float64, B*cfg.L*cfg.V)
		if err := m.X0Logits(xt, ts, got); err != nil {
			t.Fatal(err)
		}
		ctx := layers.NewCtx(m.Store, false)
		net, err := Build(cfg, ctx, B)
		if err != nil {
			t.Fatal(err)
		}
		in := NewInputs(cfg, B)
		if err := in.SetTokens(xt, ts); err != nil {
			t.Fatal(err)
		}
		if err := in.Bind(net); err != nil {
			t.Fatal(err)
		}
		var v G.Value
		G.Read(net.Flat, &v)
		vm := G.NewTapeMachine(ctx.G)
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		want := layers.Float64s(v, nil)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: logit %d pruned %v, full tape %v", cfg.Arch, i, got[i], want[i])
			}
		}
	}
}

// TestViewSharesWeightsAndAgrees checks that a View computes the model's
// logits bit for bit, concurrently with the model, and sees weight updates.
func TestViewSharesWeightsAndAgrees(t *testing.T) {
	cfg := Config{Arch: "mlp", L: 3, V: 4, Embed: 5, Hidden: 16, Layers: 2, TimeDim: 4, Act: "relu", DType: "float32", InitSeed: 2}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v := m.View()
	xt := []int{0, 4, 2, 4, 4, 1}
	tt := []float64{0.3, 0.7}
	a, b := make([]float64, 2*3*4), make([]float64, 2*3*4)
	done := make(chan error)
	go func() { done <- v.X0Logits(xt, tt, b) }()
	if err := m.X0Logits(xt, tt, a); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("view logits %v, model logits %v", b, a)
	}
	w := m.Store.Get("mlp.2.b").Data().([]float32)
	w[0] += 1
	if err := v.X0Logits(xt, tt, b); err != nil {
		t.Fatal(err)
	}
	if math.Abs(b[0]-(a[0]+1)) > 1e-6 {
		t.Fatalf("view does not see the weight update: logit %v, want %v", b[0], a[0]+1)
	}
}
