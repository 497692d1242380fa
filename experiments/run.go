package experiments

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/smc"
)

// Env is what every run of one experiment shares: the config, its task,
// the trained denoiser, the task's evaluator (judges, exact references)
// and the plain reward that scores outputs.
type Env struct {
	Cfg   Config
	Model *graph.Model
	Eval  task.Evaluator
	// ModelSHA is the SHA-256 of the denoiser checkpoint, taken when it
	// was loaded.
	ModelSHA string

	mu     sync.Mutex
	reward smc.Reward
}

// OpenEnv loads the config's trained denoiser (training it first with
// autoTrain when the checkpoint is missing), checks that the task is
// prepared, and builds the task's evaluator.
func OpenEnv(cfg Config, autoTrain bool, log io.Writer) (*Env, error) {
	if p, ok := cfg.Task.(task.Preparer); ok {
		if miss := p.Missing(); len(miss) > 0 {
			return nil, fmt.Errorf("experiments: task %s is not prepared (missing %v): run `ddsmc prepare %s`", cfg.Task.Name(), miss, cfg.Source)
		}
	}
	if !exists(cfg.CheckpointPath()) && autoTrain {
		fmt.Fprintf(log, "no checkpoint at %s: training the base denoiser first (auto_train)\n", cfg.CheckpointPath())
		if _, err := TrainDenoiser(cfg, log); err != nil {
			return nil, err
		}
	}
	sha, err := fileSHA256(cfg.CheckpointPath())
	if err != nil && exists(cfg.CheckpointPath()) {
		return nil, err
	}
	m, _, err := loadDenoiser(cfg)
	if err != nil {
		return nil, err
	}
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, err
	}
	ev, err := cfg.Task.Evaluator(task.Model{Denoiser: m, Kernel: k, Grid: grid, Batch: 256})
	if err != nil {
		return nil, notPrepared(cfg, err)
	}
	r, _, err := cfg.Task.Reward(1)
	if err != nil {
		return nil, notPrepared(cfg, err)
	}
	return &Env{Cfg: cfg, Model: m, Eval: ev, reward: r, ModelSHA: sha}, nil
}

// RunSpec is one run to perform: its [smc] setting, seed and directory,
// and (in sweeps) its point, repeat and settings.
type RunSpec struct {
	// Title, if set, draws the outputs with the task's renderer into
	// samples.png, titled with it.
	Title    string
	SMC      SMCConfig
	Seed     uint64
	Dir      string
	Point    int
	Repeat   int
	Settings map[string]string
}

// SamplerCache is one worker's sampler for its current point, reused
// across that point's repeats. Building a sampler builds Gorgonia graphs
// (model clones, look-ahead programs), and Gorgonia v0.9.18 keeps about a
// run's worth of tensors alive for every graph that has run: a sampler per
// run exhausted 24 GB over a 600-run image sweep. Reuse keeps the results:
// a Sampler's runs share nothing but the base's logit cache, whose entries
// are the denoiser's deterministic outputs.
type SamplerCache struct {
	point int
	r     int // runs per batch it was built for
	s     *smc.Sampler
	shas  map[string]string // checkpoints the sampler loaded
}

// NewSamplerCache returns an empty cache.
func NewSamplerCache() *SamplerCache { return &SamplerCache{point: -1} }

// Result is a finished run: its record and outputs.
type Result struct {
	Record  Record
	Outputs task.Outputs
	SMC     *smc.Result // nil for draws from an exact target
}

// RunPoint performs one run and records it in r.Dir: build the sampler
// (or reuse cache's), run it, compute the common metrics (reward over the
// outputs, ESS, resamples, log Ẑ, wall time), add the task's, and write
// samples.csv, trace.csv, trace.jsonl and record.json (last: its presence
// marks the run done). The method "target" draws from the task's exact
// target instead (task.Exact). cache may be nil.
func (e *Env) RunPoint(r RunSpec, cache *SamplerCache) (*Result, error) {
	res, err := e.RunRepeats([]RunSpec{r}, cache)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// RunRepeats performs runs of one point that differ only in seed, repeat
// and directory (the repeats of a sweep point) as one batch: SMC runs go
// through smc.Sampler.RunMany, R·N particles per network call, which gives
// the same results as R separate runs with the same seeds; each run is then
// recorded as RunPoint records it. cache may be nil.
func (e *Env) RunRepeats(rs []RunSpec, cache *SamplerCache) ([]*Result, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	for _, r := range rs {
		if err := recoverDir(r.Dir); err != nil {
			return nil, err
		}
		if err := replaceableRun(r.Dir); err != nil {
			return nil, err
		}
	}
	cfg := e.Cfg
	cfg.SMC = rs[0].SMC
	cfg.SMC.Seed, cfg.SMC.Dir = rs[0].Seed, rs[0].Dir
	sc := cfg.SMC
	tk := cfg.Task
	info := RunInfo{Task: tk.Name(), Method: sc.Method, Target: sc.Target, N: sc.Particles, Alpha: sc.Alpha,
		Workers: sc.Workers, BLAS: graph.BLAS(), Model: cfg.CheckpointPath()}
	models := map[string]string{cfg.CheckpointPath(): e.ModelSHA}
	sims := make([]*smc.Result, len(rs))
	if sc.Method == "target" {
		if _, ok := tk.(task.Exact); !ok {
			return nil, fmt.Errorf("experiments: method \"target\" needs a task with an exact target; %s has none", tk.Name())
		}
	} else {
		R := len(rs)
		var s *smc.Sampler
		var shas map[string]string
		if cache != nil && cache.s != nil && cache.point == rs[0].Point && cache.r == R {
			s, shas = cache.s, cache.shas
		} else {
			m, err := e.Model.Clone()
			if err != nil {
				return nil, err
			}
			// R·N particles per network call (up to smc.batch) for R runs.
			if s, _, shas, err = buildSampler(cfg, m, R); err != nil {
				return nil, err
			}
			if cache != nil {
				cache.point, cache.r, cache.s, cache.shas = rs[0].Point, R, s, shas
			}
		}
		for p, h := range shas {
			models[p] = h
		}
		rngs := make([]*rand.Rand, R)
		for i, r := range rs {
			rngs[i] = rand.New(rand.NewPCG(r.Seed, 5))
		}
		var err error
		if R == 1 {
			sims[0], err = s.Run(rngs[0])
		} else {
			sims, err = s.RunMany(rngs)
		}
		if err != nil {
			return nil, err
		}
		info.Steps = s.Steps()
	}
	out := make([]*Result, len(rs))
	for i, r := range rs {
		ri := info
		ri.Models = models
		res, err := e.record(r, sims[i], ri)
		if err != nil {
			return nil, fmt.Errorf("%w (run %s)", err, r.Dir)
		}
		out[i] = res
	}
	return out, nil
}

// record computes one run's metrics (the engine's, the outputs' rewards,
// the task's) and writes its files, staged beside r.Dir and moved into
// place together. sr is nil for draws from the task's exact target.
func (e *Env) record(r RunSpec, sr *smc.Result, info RunInfo) (res *Result, err error) {
	stage, err := stageDir(r.Dir)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && !errors.Is(err, atomicfile.ErrCrashed) { // a kill would leave it; recoverDir removes it
			os.RemoveAll(stage)
		}
	}()
	sc := r.SMC
	tk := e.Cfg.Task
	L, _ := tk.Shape()
	nan := math.NaN()
	metrics := map[string]float64{"ess_min": nan, "ess_mean": nan, "resamples": nan, "log_z": nan, "wall_s": 0}
	for _, k := range smc.CostColumns {
		metrics[k] = nan
	}
	out := task.Outputs{L: L, Alpha: sc.Alpha, LogZ: nan, Dir: stage}
	res = &Result{SMC: sr}
	if sr == nil {
		x, err := tk.(task.Exact).SampleTarget(rand.New(rand.NewPCG(r.Seed, 6)), sc.Alpha, sc.Particles)
		if err != nil {
			return nil, err
		}
		out.Samples = x
	} else {
		out.Samples, out.X, out.XLogW, out.LogZ = sr.Samples, sr.X, sr.LogW, sr.LogZ
		if sc.Final == string(smc.FinalWeighted) {
			out.LogW = sr.SampleLogW
		}
		metrics["ess_min"], metrics["ess_mean"] = sr.ESSMin, sr.ESSMean
		metrics["resamples"], metrics["log_z"], metrics["wall_s"] = float64(sr.Resamples), sr.LogZ, sr.WallSeconds
		for k, v := range sr.Cost.Columns() {
			metrics[k] = v
		}
		info.Proposal, info.Twist, info.Resampler = sr.ProposalName, sr.TwistName, sr.ResamplerName
	}
	out.Classes = outputClasses(sc, out.N())
	var rw []float64 // the engine's rewards of the outputs (nil for target draws)
	if sr != nil {
		rw = sr.SampleReward
	}
	if err := e.outputMetrics(out, rw, metrics); err != nil {
		return nil, err
	}
	tm, err := e.Eval.Evaluate(rand.New(rand.NewPCG(r.Seed, 7)), out)
	if err != nil {
		return nil, err
	}
	for k, v := range tm {
		metrics[k] = v
	}
	rec := Record{Point: r.Point, Repeat: r.Repeat, Seed: r.Seed, Setting: r.Settings, Metrics: metrics, Run: &info}
	var trace []smc.Info
	if sr != nil {
		trace = sr.Trace
	}
	if err := writeRun(stage, rec, out.Samples, L, trace); err != nil {
		return nil, err
	}
	if r.Title != "" {
		if err := tk.Render(filepath.Join(stage, "samples.png"), []task.Panel{{Title: r.Title, Out: out, Metrics: metrics}}); err != nil {
			return nil, err
		}
	}
	if err := commitDir(stage, r.Dir); err != nil {
		return nil, err
	}
	out.Dir = r.Dir
	res.Record, res.Outputs = rec, out
	return res, nil
}

// outputMetrics adds the reward statistics of the outputs to m:
// reward_mean (weighted by the outputs' weights when they carry any),
// reward_max and outputs. rw are the outputs' rewards when the engine has
// them already (nil: computed here with the task's reward).
func (e *Env) outputMetrics(out task.Outputs, rw []float64, m map[string]float64) error {
	if err := out.Check(); err != nil {
		return err
	}
	if len(rw) != out.N() {
		rw = make([]float64, out.N())
		e.mu.Lock()
		err := e.reward.Reward(out.Samples, rw)
		e.mu.Unlock()
		if err != nil {
			return err
		}
	}
	mean, maxR := 0.0, math.Inf(-1)
	for _, r := range rw {
		mean += r / float64(len(rw))
		maxR = math.Max(maxR, r)
	}
	if out.LogW != nil {
		mean = 0
		for i, l := range out.LogW {
			mean += math.Exp(l) * rw[i]
		}
	}
	m["reward_mean"], m["reward_max"], m["outputs"] = mean, maxR, float64(len(rw))
	return nil
}

// RunSMC runs the config's [smc] setting once into cfg.OutDir() through
// RunPoint, and draws its outputs (samples.png) with the task's renderer.
func RunSMC(cfg Config, log io.Writer) (*Result, error) {
	env, err := OpenEnv(cfg, false, log)
	if err != nil {
		return nil, err
	}
	sc := cfg.SMC
	fmt.Fprintf(log, "smc %s: task %s, method %s, proposal %s, twist %s, N=%d, T=%d, alpha=%v, %s resampling (%s), %d workers, BLAS %s\n",
		cfg.Name, cfg.Task.Name(), sc.Method, sc.Proposal, sc.Twist, sc.Particles, cfg.Diffusion.Steps, sc.Alpha, sc.Resampler, sc.Trigger, sc.Workers, graph.BLAS())
	title := fmt.Sprintf("%s: %s/%s, N=%d", cfg.Name, sc.Method, sc.Proposal, sc.Particles)
	return env.RunPoint(RunSpec{SMC: sc, Seed: sc.Seed, Dir: cfg.OutDir(), Title: title}, nil)
}
