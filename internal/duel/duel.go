// Package duel holds the throughput workloads of `ddsmc bench`: the
// masked-diffusion SMC runs that ../shared/peer/torch_smc.py performs in
// PyTorch (random-weight, time-conditioned MLP denoiser, linear reward,
// MC or straight-through Gumbel look-ahead, reverse or first-order
// gradient proposal, systematic resampling when ESS < N/2), built with the
// public API, plus a transformer workload with a large vocabulary.
// It measures throughput, not quality.
package duel

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

// Shape is a denoiser and problem shape.
type Shape struct {
	Name   string
	Model  graph.Config
	N, T   int // defaults of the shape
	Hidden int // MLP width reported to match the peer's "hidden"
}

// Shapes returns the named workload shapes: "gmm" (L = 2, V = 64, MLP
// 2 × 256, N = 256), "mnist" (L = 784, V = 2, MLP 2 × 1024, N = 64) and
// "transformer" (2 pre-LN blocks, d = 64, L = 32, V = 4000, N = 16), all
// with T = 100 and 16 sinusoidal time features. The MLP token embeddings
// (64 and 3) make the first layer's FLOPs match the peer's one-hot input.
func Shapes() []Shape {
	return []Shape{
		{Name: "gmm", N: 256, T: 100, Hidden: 256, Model: graph.Config{Arch: "mlp", L: 2, V: 64, Embed: 64, Hidden: 256, Layers: 2, TimeDim: 16, Act: "relu", DType: "float32", InitSeed: 1}},
		{Name: "mnist", N: 64, T: 100, Hidden: 1024, Model: graph.Config{Arch: "mlp", L: 784, V: 2, Embed: 3, Hidden: 1024, Layers: 2, TimeDim: 16, Act: "relu", DType: "float32", InitSeed: 1}},
		{Name: "transformer", N: 16, T: 100, Hidden: 256, Model: graph.Config{Arch: "transformer", L: 32, V: 4000, Embed: 64, Hidden: 256, Layers: 2, Heads: 4, TimeDim: 16, Act: "gelu", DType: "float32", InitSeed: 1}},
	}
}

// ShapeByName returns the shape called name.
func ShapeByName(name string) (Shape, error) {
	for _, s := range Shapes() {
		if s.Name == name {
			return s, nil
		}
	}
	return Shape{}, fmt.Errorf("duel: unknown shape %q (want gmm, mnist or transformer)", name)
}

// Workload is one benchmark: a shape, a proposal and the run settings.
type Workload struct {
	Shape    Shape
	Proposal string // "reverse" or "grad"
	N, T     int    // 0 = the shape's defaults
	Phi      int    // look-ahead samples (0 = 1)
	Workers  int    // goroutines (0 = 1)
	Repeats  int    // timed runs after one warm-up (0 = 3)
	Runs     int    // R independent runs batched per timed repeat (0 = 1; > 1 uses Sampler.RunMany)
	Seed     uint64
}

// Result is one workload's measurement, printed as one JSON line with the
// peer's fields plus the implementation, the BLAS and the worker count.
type Result struct {
	Impl        string  `json:"impl"`
	Workload    string  `json:"workload"`
	BLAS        string  `json:"blas"`
	Workers     int     `json:"workers"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	Arch        string  `json:"arch"`
	L           int     `json:"L"`
	V           int     `json:"V"`
	Hidden      int     `json:"hidden"`
	Layers      int     `json:"layers"`
	N           int     `json:"N"`
	T           int     `json:"T"`
	Phi         int     `json:"phi"`
	R           int     `json:"R"`
	Proposal    string  `json:"proposal"`
	MedianS     float64 `json:"median_s"`
	MinS        float64 `json:"min_s"`
	StepsPerSec float64 `json:"particle_steps_per_s"`
	Resamples   int     `json:"resamples"`
}

func (w Workload) defaults() (Workload, error) {
	if w.N == 0 {
		w.N = w.Shape.N
	}
	if w.T == 0 {
		w.T = w.Shape.T
	}
	w.Phi = max(w.Phi, 1)
	w.Workers = max(w.Workers, 1)
	if w.Repeats == 0 {
		w.Repeats = 3
	}
	w.Runs = max(w.Runs, 1)
	switch {
	case w.Proposal != "reverse" && w.Proposal != "grad":
		return w, fmt.Errorf("duel: proposal %q: want reverse or grad", w.Proposal)
	case w.N < 1 || w.T < 1 || w.Repeats < 1:
		return w, fmt.Errorf("duel: N = %d, T = %d, repeats = %d: all must be positive", w.N, w.T, w.Repeats)
	}
	return w, nil
}

// Sampler builds the workload's sampler (random weights from the shape's
// init seed, a N(0,1) linear reward from Seed).
func (w Workload) Sampler() (*smc.Sampler, error) {
	w, err := w.defaults()
	if err != nil {
		return nil, err
	}
	cfg := w.Shape.Model
	m, err := graph.New(cfg)
	if err != nil {
		return nil, err
	}
	models := []*graph.Model{m}
	for len(models) < w.Workers {
		models = append(models, m.View()) // one copy of the weights for all workers
	}
	dens := make([]diffusion.Denoiser, len(models))
	for i, mm := range models {
		dens[i] = mm
	}
	rng := rand.New(rand.NewPCG(w.Seed, 17))
	terms := make([][]float64, cfg.L)
	for l := range terms {
		terms[l] = make([]float64, cfg.V)
		for v := range terms[l] {
			terms[l][v] = rng.NormFloat64()
		}
	}
	n := w.N * w.Runs
	batch := (n + w.Workers - 1) / w.Workers // one chunk per worker
	kernel := diffusion.Kernel{Schedule: diffusion.Linear()}
	base, err := smc.NewReverse(kernel, dens, batch)
	if err != nil {
		return nil, err
	}
	target := smc.Target{Base: base, Reward: smc.TableReward(terms), Alpha: 1}
	grid, err := diffusion.NewGrid(w.T, "linear")
	if err != nil {
		return nil, err
	}
	sc := smc.Config{N: w.N, Grid: grid, Lambda: smc.Lambda{Kind: "constant"}, Workers: w.Workers,
		Trigger: smc.Trigger{Kind: "ess", Kappa: 0.5}, Final: smc.FinalWeighted, RewardBatch: max(256, batch)}
	switch w.Proposal {
	case "reverse":
		sc.Twist, sc.Proposal = smc.LookAhead{Phi: w.Phi}, smc.ReverseProposal{}
	case "grad":
		pool := make([]smc.LookAheadGrad, len(models))
		for i, mm := range models {
			la, err := objectives.NewLookAhead(mm, objectives.LinearReward{Terms: terms}, objectives.LookAheadConfig{Batch: batch, Phi: w.Phi})
			if err != nil {
				return nil, err
			}
			pool[i] = la
		}
		sc.Twist, sc.Proposal = smc.GradLookAhead{Pool: pool, Share: base}, smc.GradProposal{}
	}
	return smc.New(target, sc)
}

// Run builds the workload, runs it once to warm up and Repeats times timed,
// and reports the median.
func (w Workload) Run() (Result, error) {
	w, err := w.defaults()
	if err != nil {
		return Result{}, err
	}
	s, err := w.Sampler()
	if err != nil {
		return Result{}, err
	}
	once := func(rep int) (int, error) {
		if w.Runs == 1 {
			res, err := s.Run(rand.New(rand.NewPCG(w.Seed, uint64(rep))))
			if err != nil {
				return 0, err
			}
			return res.Resamples, nil
		}
		rngs := make([]*rand.Rand, w.Runs)
		for r := range rngs {
			rngs[r] = rand.New(rand.NewPCG(w.Seed+uint64(r), uint64(rep)))
		}
		res, err := s.RunMany(rngs)
		if err != nil {
			return 0, err
		}
		rs := 0
		for _, r := range res {
			rs += r.Resamples
		}
		return rs, nil
	}
	if _, err := once(0); err != nil {
		return Result{}, err
	}
	times := make([]float64, w.Repeats)
	rs := 0
	for i := range times {
		start := time.Now()
		r, err := once(i + 1)
		if err != nil {
			return Result{}, err
		}
		times[i] = time.Since(start).Seconds()
		rs = r
	}
	slices.Sort(times)
	med := times[len(times)/2]
	cfg := w.Shape.Model
	return Result{
		Impl: "ddsmc", Workload: w.Shape.Name, BLAS: graph.BLAS(), Workers: w.Workers, GOMAXPROCS: runtime.GOMAXPROCS(0),
		Arch: cfg.Arch, L: cfg.L, V: cfg.V, Hidden: w.Shape.Hidden, Layers: cfg.Layers,
		N: w.N, T: w.T, Phi: w.Phi, R: w.Runs, Proposal: w.Proposal,
		MedianS: round4(med), MinS: round4(times[0]),
		StepsPerSec: float64(int(float64(w.Runs*w.N*w.T)/med*10)) / 10, Resamples: rs,
	}, nil
}

func round4(x float64) float64 { return float64(int64(x*1e4+0.5)) / 1e4 }
