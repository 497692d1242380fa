package experiments

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

// SMCConfig is the [smc] table: one SMC run (or baseline) on the task's
// reward-tilted target π(x0) ∝ p_θ(x0)·exp(r(x0)/α).
type SMCConfig struct {
	// Method is "smc" (as configured below), or a baseline that fixes the
	// proposal, twist, trigger and default selection: "bon" (best-of-N:
	// N base samples, the best reward kept), "prop-grad" (gradient
	// guidance without weights or resampling; all particles kept) or
	// "plain" (N unguided samples).
	Method    string  `toml:"method"`
	Proposal  string  `toml:"proposal"`  // "reverse", "lop", "grad" or "learned" (the amortised q_φ)
	Twist     string  `toml:"twist"`     // "none", "mc", "exact" or "grad"
	Phi       int     `toml:"phi"`       // look-ahead samples φ (mc and grad twists)
	Tau       float64 `toml:"tau"`       // Gumbel-softmax temperature τ (grad twist)
	Alpha     float64 `toml:"alpha"`     // KL weight α
	Particles int     `toml:"particles"` // N

	Lambda       string    `toml:"lambda"`        // "constant", "linear", "exp", "time" or "list"
	LambdaK      int       `toml:"lambda_k"`      // linear ramp length in steps
	LambdaGamma  float64   `toml:"lambda_gamma"`  // exp ramp rate
	LambdaValues []float64 `toml:"lambda_values"` // λ_0..λ_T for "list"

	Resampler string  `toml:"resampler"` // multinomial, stratified, systematic, residual, partial
	Trigger   string  `toml:"trigger"`   // ess, every, always, never
	Kappa     float64 `toml:"kappa"`     // ESS threshold fraction
	Every     int     `toml:"every"`     // resampling frequency f
	Final     string  `toml:"final"`     // resample, weighted, all, argmax-reward, argmax-weight, multinomial

	Tilt   string  `toml:"tilt"`   // gradient tilt space: "transition" or "x0"
	Centre bool    `toml:"centre"` // centre the gradient per position
	Clip   float64 `toml:"clip"`   // clip gradient entries to [−clip, clip] (0 = off)

	MaxEnum int    `toml:"max_enum"` // enumeration limit of lop and exact (0 = 65536)
	Workers int    `toml:"workers"`  // goroutines (results do not depend on it)
	Batch   int    `toml:"batch"`    // sequences per denoiser call
	Seed    uint64 `toml:"seed"`     // run seed
	Dir     string `toml:"dir"`      // output directory of the run (default <out>/smc)

	ProposalCkpt string `toml:"proposal_ckpt"` // q_φ checkpoint for proposal = "learned" (default <out>/proposal.ckpt)
}

// OutDir returns where RunSMC writes: smc.dir, or <out>/smc.
func (c *Config) OutDir() string {
	if c.SMC.Dir != "" {
		return c.SMC.Dir
	}
	return filepath.Join(c.Out, "smc")
}

// DefaultSMC is the paper's synthetic setting (§6(a1)): α = 1, N = 2000,
// reverse proposal with a φ = 10 Monte Carlo look-ahead, λ ≡ 1, systematic
// resampling when ESS < N/2, checked every step, final weighted resample.
func DefaultSMC() SMCConfig {
	return SMCConfig{Method: "smc", Proposal: "reverse", Twist: "mc", Phi: 10, Tau: 1, Alpha: 1, Particles: 2000,
		Lambda: "constant", LambdaK: 30, LambdaGamma: 0.05, Resampler: "systematic", Trigger: "ess", Kappa: 0.5,
		Every: 1, Final: "resample", Tilt: "transition", Workers: 2, Batch: 256, Seed: 4}
}

// applyMethod fixes the settings a baseline method implies. defined
// reports whether the user set a key in the [smc] table; the final
// selection is only defaulted, never overridden.
func (c *SMCConfig) applyMethod(defined func(key string) bool) error {
	set := func(key string, dst *string, v string) error {
		if defined(key) && *dst != v {
			return fmt.Errorf("smc.%s = %q conflicts with smc.method = %q (which uses %q)", key, *dst, c.Method, v)
		}
		*dst = v
		return nil
	}
	var prop, twist, final string
	switch c.Method {
	case "smc":
		return nil
	case "bon":
		prop, twist, final = "reverse", "none", "argmax-reward"
	case "prop-grad":
		prop, twist, final = "grad", "grad", "all"
	case "plain":
		prop, twist, final = "reverse", "none", "all"
	case "prop-amot":
		prop, twist, final = "learned", "none", "all"
	default:
		return fmt.Errorf("smc.method = %q: want smc, bon, prop-grad, prop-amot or plain", c.Method)
	}
	if err := set("proposal", &c.Proposal, prop); err != nil {
		return err
	}
	if err := set("twist", &c.Twist, twist); err != nil {
		return err
	}
	if err := set("trigger", &c.Trigger, "never"); err != nil {
		return err
	}
	if !defined("final") {
		c.Final = final
	}
	return nil
}

// Validate reports the first bad [smc] value, naming its key.
func (c *SMCConfig) Validate() error {
	switch {
	case c.Proposal != "reverse" && c.Proposal != "lop" && c.Proposal != "grad" && c.Proposal != "learned":
		return fmt.Errorf("smc.proposal = %q: want reverse, lop, grad or learned", c.Proposal)
	case c.Twist != "none" && c.Twist != "mc" && c.Twist != "exact" && c.Twist != "grad":
		return fmt.Errorf("smc.twist = %q: want none, mc, exact or grad", c.Twist)
	case c.Phi < 1:
		return fmt.Errorf("smc.phi = %d: must be >= 1", c.Phi)
	case !(c.Tau > 0) || math.IsInf(c.Tau, 1):
		return fmt.Errorf("smc.tau = %v: must be positive", c.Tau)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 1):
		return fmt.Errorf("smc.alpha = %v: must be positive", c.Alpha)
	case c.Particles < 1:
		return fmt.Errorf("smc.particles = %d: must be >= 1", c.Particles)
	case c.Workers < 1:
		return fmt.Errorf("smc.workers = %d: must be >= 1", c.Workers)
	case c.Batch < 1:
		return fmt.Errorf("smc.batch = %d: must be >= 1", c.Batch)
	case c.MaxEnum < 0:
		return fmt.Errorf("smc.max_enum = %d: must be >= 0", c.MaxEnum)
	case c.Proposal == "grad" && c.Twist != "grad":
		return fmt.Errorf("smc.proposal = \"grad\" needs smc.twist = \"grad\" (the gradient comes from the differentiable look-ahead), got %q", c.Twist)
	case c.Proposal == "lop" && c.Twist != "exact":
		return fmt.Errorf("smc.proposal = \"lop\" needs smc.twist = \"exact\" (a deterministic look-ahead), got %q", c.Twist)
	}
	if _, err := smc.ParseResampler(c.Resampler); err != nil {
		return fmt.Errorf("smc.resampler: %w", err)
	}
	if err := c.trigger().Validate(); err != nil {
		return fmt.Errorf("smc.trigger/kappa/every: %w", err)
	}
	if c.Final != "all" {
		if err := smc.Final(c.Final).Validate(); err != nil {
			return fmt.Errorf("smc.final: %w", err)
		}
	}
	if c.Lambda != "list" { // a list's length is checked against T by Config.Validate
		if err := c.lambda().Validate(1); err != nil {
			return fmt.Errorf("smc.lambda: %w", err)
		}
	}
	g := smc.GradProposal{Space: c.Tilt, Centre: c.Centre, Clip: c.Clip}
	if err := g.Validate(); err != nil {
		return fmt.Errorf("smc.tilt/clip: %w", err)
	}
	return nil
}

func (c *SMCConfig) trigger() smc.Trigger {
	return smc.Trigger{Kind: c.Trigger, Kappa: c.Kappa, Every: c.Every}
}

func (c *SMCConfig) lambda() smc.Lambda {
	return smc.Lambda{Kind: c.Lambda, K: c.LambdaK, Gamma: c.LambdaGamma, Values: c.LambdaValues}
}

// SMCReport summarises one SMC run.
type SMCReport struct {
	Config      string  `json:"config"`
	Method      string  `json:"method"`
	Proposal    string  `json:"proposal"`
	Twist       string  `json:"twist"`
	Resampler   string  `json:"resampler"`
	N           int     `json:"particles"`
	Steps       int     `json:"steps"`
	Alpha       float64 `json:"alpha"`
	Seed        uint64  `json:"seed"`
	Outputs     int     `json:"outputs"`
	RewardMean  float64 `json:"reward_mean"` // over the selected outputs
	RewardStd   float64 `json:"reward_std"`
	RewardMin   float64 `json:"reward_min"`
	RewardMax   float64 `json:"reward_max"`
	RewardW     float64 `json:"reward_weighted_mean"` // Σ W_i r_i over the final particles
	ESSMin      float64 `json:"ess_min"`              // min over steps of ESS/N
	ESSMean     float64 `json:"ess_mean"`
	Resamples   int     `json:"resamples"`
	LogZ        float64 `json:"log_z"`
	Unique      int     `json:"unique_outputs"` // distinct output sequences
	WallSeconds float64 `json:"wall_s"`
	BLAS        string  `json:"blas"`
	Workers     int     `json:"workers"`
	// Exact references (GMM tasks: L = 2, so the model's tilted target is
	// enumerable over 65² states).
	ExactLogZ     float64 `json:"exact_log_z"`
	LogZError     float64 `json:"log_z_error"`          // log Ẑ − log Z
	TVExact       float64 `json:"tv_to_exact_target"`   // TV(outputs, exact model target)
	TVExactW      float64 `json:"tv_weighted_to_exact"` // TV(weighted final particles, exact model target)
	ExactReward   float64 `json:"exact_target_reward"`  // E_π r under the exact model target
	ModelReward   float64 `json:"exact_model_reward"`   // E_{p_θ} r (pre-trained)
	DataTiltedRew float64 `json:"data_tilted_reward"`   // E r under the paper's target (data · exp(r/α))
	SamplesPath   string  `json:"samples"`
	TracePath     string  `json:"trace"`
	// Image holds the image-task metrics (ImageMetricNames) of the outputs.
	Image map[string]float64 `json:"image_metrics,omitempty"`
}

// SMCRun is a finished run with its report.
type SMCRun struct {
	Report *SMCReport
	Result *smc.Result
}

// loadDenoiser reads the trained checkpoint of cfg and checks its shape.
func loadDenoiser(cfg Config, task *Task) (*graph.Model, error) {
	m, _, err := loadDenoiserMeta(cfg, task)
	return m, err
}

// loadDenoiserMeta is loadDenoiser that also returns the checkpoint's
// metadata.
func loadDenoiserMeta(cfg Config, task *Task) (*graph.Model, map[string]string, error) {
	m, meta, err := graph.Load(cfg.CheckpointPath())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("experiments: no trained denoiser at %s: run `ddsmc train` on this config first", cfg.CheckpointPath())
		}
		return nil, nil, err
	}
	if L, V := m.Shape(); L != task.L || V != task.V {
		return nil, nil, fmt.Errorf("experiments: checkpoint %s is for L=%d, V=%d but data %s has L=%d, V=%d",
			cfg.CheckpointPath(), L, V, cfg.Data.Name, task.L, task.V)
	}
	return m, meta, nil
}

// workerClones returns n copies of m for n workers (m itself first), as
// models and as denoisers.
func workerClones(m *graph.Model, n int) ([]*graph.Model, []diffusion.Denoiser, error) {
	models := make([]*graph.Model, n)
	dens := make([]diffusion.Denoiser, n)
	for w := range n {
		c := m
		if w > 0 {
			var err error
			if c, err = m.Clone(); err != nil {
				return nil, nil, err
			}
		}
		models[w], dens[w] = c, c
	}
	return models, dens, nil
}

// BuildSampler assembles the SMC sampler that cfg.SMC describes around a
// trained denoiser m: one model clone per worker, the task's reward, and
// (for the gradient proposal) the Gorgonia look-ahead.
func BuildSampler(cfg Config, task *Task, m *graph.Model) (*smc.Sampler, smc.Target, error) {
	sc := cfg.SMC
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, smc.Target{}, err
	}
	models, dens, err := workerClones(m, sc.Workers)
	if err != nil {
		return nil, smc.Target{}, err
	}
	// Denoiser calls are padded to a fixed batch; with fewer particles than
	// smc.batch the padding would be wasted work (the gradient look-ahead
	// graph most of all), so the batch is capped at N.
	batch := min(sc.Batch, sc.Particles)
	base, err := smc.NewReverse(k, dens, batch)
	if err != nil {
		return nil, smc.Target{}, err
	}
	reward, rgraphs, err := taskReward(cfg, task, sc.Workers)
	if err != nil {
		return nil, smc.Target{}, err
	}
	target := smc.Target{Base: base, Reward: reward, Alpha: sc.Alpha}
	var twist smc.Twist
	switch sc.Twist {
	case "none":
		twist = smc.NoTwist{}
	case "mc":
		twist = smc.LookAhead{Phi: sc.Phi}
	case "exact":
		twist = smc.ExactLookAhead{MaxEnum: sc.MaxEnum}
	case "grad":
		pool := make([]smc.LookAheadGrad, sc.Workers)
		for w := range pool {
			la, err := objectives.NewLookAhead(models[w], rgraphs[w],
				objectives.LookAheadConfig{Batch: batch, Phi: sc.Phi, Tau: sc.Tau})
			if err != nil {
				return nil, smc.Target{}, err
			}
			pool[w] = la
		}
		// The look-ahead graphs run clones of the base's denoiser: their
		// logits fill the base's cache instead of a second forward pass.
		twist = smc.GradLookAhead{Pool: pool, Share: base}
	}
	var prop smc.Proposal
	switch sc.Proposal {
	case "reverse":
		prop = smc.ReverseProposal{}
	case "lop":
		prop = smc.LOP{MaxEnum: sc.MaxEnum}
	case "grad":
		prop = smc.GradProposal{Space: sc.Tilt, Centre: sc.Centre, Clip: sc.Clip}
	case "learned":
		path := sc.ProposalCkpt
		if path == "" {
			path = cfg.ProposalCheckpointPath()
		}
		qm, _, err := LoadProposal(path)
		if err != nil {
			return nil, smc.Target{}, fmt.Errorf("experiments: proposal = \"learned\": %w (train one with ddsmc train-proposal)", err)
		}
		if L, V := qm.Shape(); L != task.L || V != task.V {
			return nil, smc.Target{}, fmt.Errorf("experiments: proposal checkpoint %s is for L=%d, V=%d, not L=%d, V=%d", path, L, V, task.L, task.V)
		}
		_, qs, err := workerClones(qm, sc.Workers)
		if err != nil {
			return nil, smc.Target{}, err
		}
		if prop, err = smc.NewLearned(k, qs, batch); err != nil {
			return nil, smc.Target{}, err
		}
	}
	res, err := smc.ParseResampler(sc.Resampler)
	if err != nil {
		return nil, smc.Target{}, err
	}
	final := smc.Final(sc.Final)
	if sc.Final == "all" {
		final = smc.FinalWeighted // weights are dropped when reporting
	}
	s, err := smc.New(target, smc.Config{
		N: sc.Particles, Grid: grid, Lambda: sc.lambda(), Twist: twist, Proposal: prop,
		Resampler: res, Trigger: sc.trigger(), Final: final, Workers: sc.Workers, RewardBatch: 1024,
	})
	return s, target, err
}

// RunSMC runs the config's [smc] setting on its trained denoiser and
// writes smc_samples.csv, smc_summary.json, smc_trace.csv and
// smc_trace.jsonl to cfg.OutDir(). For the GMM tasks it also compares with the
// exactly enumerated model target.
func RunSMC(cfg Config, log io.Writer) (*SMCRun, error) {
	task, err := loadReference(cfg.Data)
	if err != nil {
		return nil, err
	}
	m, err := loadDenoiser(cfg, task)
	if err != nil {
		return nil, err
	}
	s, _, err := BuildSampler(cfg, task, m)
	if err != nil {
		return nil, err
	}
	sc := cfg.SMC
	fmt.Fprintf(log, "smc %s: method %s, proposal %s, twist %s, N=%d, T=%d, alpha=%v, %s resampling (%s), %d workers, BLAS %s\n",
		cfg.Name, sc.Method, sc.Proposal, sc.Twist, sc.Particles, s.Steps(), sc.Alpha, sc.Resampler, sc.Trigger, sc.Workers, graph.BLAS())
	res, err := s.Run(rand.New(rand.NewPCG(sc.Seed, 5)))
	if err != nil {
		return nil, err
	}
	rep := summarise(cfg, res, s.Steps())
	if err := exactReferences(cfg, task, m, res, rep); err != nil {
		return nil, err
	}
	samples := res.Samples
	if err := writeSamples(rep.SamplesPath, samples, task.L); err != nil {
		return nil, err
	}
	if task.Side > 0 {
		if err := imageReport(cfg, task, res, rep, log); err != nil {
			return nil, err
		}
	}
	if err := smc.WriteTraceCSV(rep.TracePath, res.Trace); err != nil {
		return nil, err
	}
	if err := smc.WriteTraceJSONL(strings.TrimSuffix(rep.TracePath, ".csv")+".jsonl", res.Trace); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(cfg.OutDir(), "smc_summary.json"), rep); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "done in %.1fs: reward mean %.4f (max %.4f) over %d outputs; ESS/N min %.3f mean %.3f; %d resamples; log Ẑ %.4f\n",
		rep.WallSeconds, rep.RewardMean, rep.RewardMax, rep.Outputs, rep.ESSMin, rep.ESSMean, rep.Resamples, rep.LogZ)
	if !math.IsNaN(rep.ExactLogZ) {
		fmt.Fprintf(log, "exact model target: log Z %.4f (error %+.4f), E_π r %.4f; TV(outputs, π) %.4f, TV(weighted particles, π) %.4f\n",
			rep.ExactLogZ, rep.LogZError, rep.ExactReward, rep.TVExact, rep.TVExactW)
	}
	fmt.Fprintf(log, "wrote %s, %s and smc_summary.json\n", rep.SamplesPath, rep.TracePath)
	return &SMCRun{Report: rep, Result: res}, nil
}

// summarise fills the run-level statistics.
func summarise(cfg Config, res *smc.Result, T int) *SMCReport {
	sc := cfg.SMC
	rep := &SMCReport{Config: cfg.Name, Method: sc.Method, Proposal: res.ProposalName, Twist: res.TwistName,
		Resampler: res.ResamplerName, N: sc.Particles, Steps: T, Alpha: sc.Alpha, Seed: sc.Seed,
		ESSMin: res.ESSMin, ESSMean: res.ESSMean, Resamples: res.Resamples, LogZ: res.LogZ,
		WallSeconds: res.WallSeconds, BLAS: graph.BLAS(), Workers: sc.Workers,
		ExactLogZ: math.NaN(), LogZError: math.NaN(), TVExact: math.NaN(), TVExactW: math.NaN(),
		ExactReward: math.NaN(), ModelReward: math.NaN(), DataTiltedRew: math.NaN(),
		SamplesPath: filepath.Join(cfg.OutDir(), "smc_samples.csv"), TracePath: filepath.Join(cfg.OutDir(), "smc_trace.csv")}
	r := res.SampleReward
	rep.Outputs = len(r)
	rep.RewardMin, rep.RewardMax = math.Inf(1), math.Inf(-1)
	for _, v := range r {
		rep.RewardMean += v / float64(len(r))
		rep.RewardMin, rep.RewardMax = math.Min(rep.RewardMin, v), math.Max(rep.RewardMax, v)
	}
	for _, v := range r {
		rep.RewardStd += (v - rep.RewardMean) * (v - rep.RewardMean) / float64(max(len(r)-1, 1))
	}
	rep.RewardStd = math.Sqrt(rep.RewardStd)
	for i, lw := range res.LogW {
		rep.RewardW += math.Exp(lw) * res.Reward[i]
	}
	L := len(res.Samples) / max(len(r), 1)
	seen := map[string]bool{}
	for i := range r {
		seen[fmt.Sprint(res.Samples[i*L:(i+1)*L])] = true
	}
	rep.Unique = len(seen)
	return rep
}

// exactReferences compares the run with the exactly enumerated model
// target π ∝ p_θ·exp(r/α) (from diffusion.ExactMarginal of the T-step
// chain) and the paper's data-tilted target.
func exactReferences(cfg Config, task *Task, m diffusion.Denoiser, res *smc.Result, rep *SMCReport) error {
	if task.GMM == nil {
		return nil
	}
	k, grid, err := cfg.Kernel()
	if err != nil {
		return err
	}
	ref, err := newGMMRef(task, k, m, grid, cfg.SMC.Batch)
	if err != nil {
		return err
	}
	t, err := ref.target(cfg.SMC.Alpha)
	if err != nil {
		return err
	}
	pi, lz, reward := t.pi, t.logZ, ref.reward
	rep.ExactLogZ, rep.LogZError = lz, res.LogZ-lz
	rep.ExactReward, rep.ModelReward = dot(pi, reward), dot(ref.pm, reward)
	var logw []float64
	if cfg.SMC.Final == string(smc.FinalWeighted) {
		logw = res.SampleLogW
	}
	emp, err := smc.WeightedPMF(res.Samples, logw, task.L, task.V)
	if err != nil {
		return err
	}
	rep.TVExact, _ = diffusion.TotalVariation(emp, pi)
	wp, err := smc.WeightedPMF(res.X, res.LogW, task.L, task.V)
	if err != nil {
		return err
	}
	rep.TVExactW, _ = diffusion.TotalVariation(wp, pi)
	rep.DataTiltedRew = dot(t.data, reward)
	return nil
}
