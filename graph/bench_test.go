package graph

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
)

// Benchmark presets. mlp and tf-s match the presets of the Gorgonia
// assessment (/work/shared/gorgonia.md) so the numbers are comparable; gmm is
// the MLP the project trains on the GMM grids.
//
// Differences from the assessment's presets: our MLP has no time input
// (TimeDim=0) and its embedding is a linear projection of the (V+1)-wide
// one-hot; tf-s uses 16 sinusoidal time features and GELU.
var benchPresets = []struct {
	name string
	cfg  Config
}{
	{"mlp", Config{Arch: "mlp", L: 32, V: 30, Embed: 32, Hidden: 512, Layers: 2, TimeDim: 0, Act: "relu", DType: "float32", InitSeed: 1}},
	{"tf-s", Config{Arch: "transformer", L: 32, V: 30, Embed: 64, Hidden: 256, Layers: 2, Heads: 4, TimeDim: 16, Act: "gelu", DType: "float32", InitSeed: 1}},
	{"gmm", Config{Arch: "mlp", L: 2, V: 64, Embed: 64, Hidden: 256, Layers: 3, TimeDim: 0, Act: "relu", DType: "float32", InitSeed: 1}},
}

var benchBatches = []int{64, 256}

// benchBatch returns B random noisy sequences (about half the tokens
// masked) and their times.
func benchBatch(cfg Config, B int) (xt []int, t []float64) {
	rng := rand.New(rand.NewPCG(42, uint64(B)))
	xt = make([]int, B*cfg.L)
	for i := range xt {
		if rng.IntN(2) == 0 {
			xt[i] = cfg.V // MASK
		} else {
			xt[i] = rng.IntN(cfg.V)
		}
	}
	t = make([]float64, B)
	for i := range t {
		t[i] = 0.05 + 0.9*rng.Float64()
	}
	return xt, t
}

// logBLAS names the BLAS in use; benchmark logs are always printed.
func logBLAS(b *testing.B) {
	b.Helper()
	if b.N > 1 {
		return // once per sub-benchmark, not once per b.N round
	}
	b.Logf("BLAS: %s (gorgonia.WhichBLAS() = %T)", BLAS(), G.WhichBLAS())
}

func reportSeqPerSec(b *testing.B, B int) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(B*b.N)/s, "seq/s")
	}
}

// BenchmarkForward times X0Logits: one-hot packing, the compiled (pruned)
// forward program and the copy of the logits out.
func BenchmarkForward(b *testing.B) {
	for _, p := range benchPresets {
		for _, B := range benchBatches {
			b.Run(fmt.Sprintf("%s/B=%d", p.name, B), func(b *testing.B) {
				m, err := New(p.cfg)
				if err != nil {
					b.Fatal(err)
				}
				xt, t := benchBatch(p.cfg, B)
				out := make([]float64, B*p.cfg.L*p.cfg.V)
				if err := m.X0Logits(xt, t, out); err != nil { // builds and compiles
					b.Fatal(err)
				}
				logBLAS(b)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := m.X0Logits(xt, t, out); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				reportSeqPerSec(b, B)
			})
		}
	}
}

// BenchmarkForwardInputGrad times InputGrad: forward plus the
// vector-Jacobian product with respect to the soft one-hot input. It runs
// the full, unpruned tape (which also computes the unused parameter
// gradients).
func BenchmarkForwardInputGrad(b *testing.B) {
	for _, p := range benchPresets {
		for _, B := range benchBatches {
			b.Run(fmt.Sprintf("%s/B=%d", p.name, B), func(b *testing.B) {
				m, err := New(p.cfg)
				if err != nil {
					b.Fatal(err)
				}
				L, V := p.cfg.L, p.cfg.V
				xt, t := benchBatch(p.cfg, B)
				x := make([]float64, B*L*(V+1))
				for i, v := range xt {
					x[i*(V+1)+v] = 1
				}
				rng := rand.New(rand.NewPCG(7, uint64(B)))
				cot := make([]float64, B*L*V)
				for i := range cot {
					cot[i] = rng.NormFloat64()
				}
				logits, dx := make([]float64, B*L*V), make([]float64, len(x))
				if err := m.InputGrad(x, t, cot, logits, dx); err != nil { // builds and compiles
					b.Fatal(err)
				}
				logBLAS(b)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := m.InputGrad(x, t, cot, logits, dx); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				reportSeqPerSec(b, B)
			})
		}
	}
}
