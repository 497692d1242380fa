package objectives

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
)

// The presets of graph/bench_test.go (mlp and tf-s as in
// /work/shared/gorgonia.md, gmm as trained by the project), with the batch
// sizes benchmarked for each.
var trainBenchPresets = []struct {
	name    string
	cfg     graph.Config
	batches []int
}{
	{"mlp", graph.Config{Arch: "mlp", L: 32, V: 30, Embed: 32, Hidden: 512, Layers: 2, TimeDim: 0, Act: "relu", DType: "float32", InitSeed: 1}, []int{64}},
	{"tf-s", graph.Config{Arch: "transformer", L: 32, V: 30, Embed: 64, Hidden: 256, Layers: 2, Heads: 4, TimeDim: 16, Act: "gelu", DType: "float32", InitSeed: 1}, []int{64}},
	{"gmm", graph.Config{Arch: "mlp", L: 2, V: 64, Embed: 64, Hidden: 256, Layers: 3, TimeDim: 0, Act: "relu", DType: "float32", InitSeed: 1}, []int{64, 256}},
}

// BenchmarkTrainStep times one Trainer.Step: batch sampling and forward
// masking in Go, forward and backward over all parameters, and Adam.
func BenchmarkTrainStep(b *testing.B) {
	for _, p := range trainBenchPresets {
		for _, B := range p.batches {
			b.Run(fmt.Sprintf("%s/B=%d", p.name, B), func(b *testing.B) {
				m, err := graph.New(p.cfg)
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(11, uint64(B)))
				data := rows{L: p.cfg.L, toks: make([]int, 4096*p.cfg.L)}
				for i := range data.toks {
					data.toks[i] = rng.IntN(p.cfg.V)
				}
				tr, err := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 1 << 30, Batch: B, LR: 1e-4, ValSamples: 1, Seed: 5})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				if _, err := tr.Step(data); err != nil { // warm-up
					b.Fatal(err)
				}
				if b.N == 1 { // benchmark logs are always printed; once per sub-benchmark
					b.Logf("BLAS: %s (gorgonia.WhichBLAS() = %T)", graph.BLAS(), G.WhichBLAS())
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if _, err := tr.Step(data); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				if s := b.Elapsed().Seconds(); s > 0 {
					b.ReportMetric(float64(B*b.N)/s, "seq/s")
				}
			})
		}
	}
}
