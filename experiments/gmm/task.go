// Package gmm is the synthetic 2-D grid task of the paper, §6(a1): the
// mixtures GMM-1 and GMM-2 discretised to a 64×64 grid (L = 2 tokens over
// V = 64), their exact data pmf and rewards, the exact earth mover's
// distance, and the exact references of a trained model (its enumerated
// marginal and tilted target), which give TV and log-Z errors.
//
// It registers the tasks "gmm1" and "gmm2". Its one option is
//
//	[eval]
//	emd_samples = 500   # points per side of the EMD (the paper's 500)
package gmm

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
	"github.com/ddsmc/ddsmc/smc"
)

func init() {
	task.Register("gmm1", open)
	task.Register("gmm2", open)
}

// Options are the task-owned keys of a GMM config.
type Options struct {
	Eval struct {
		EMDSamples int `toml:"emd_samples" json:"emd_samples"`
	} `toml:"eval" json:"eval"`
}

// Task is GMM-1 or GMM-2 as a task.Task, with the task.Exact and
// task.SampleReporter capabilities.
type Task struct {
	spec task.Spec
	opts struct{ EMDSamples int }
	g    *GMM
	pmf  []float64
}

var (
	_ task.Exact          = (*Task)(nil)
	_ task.SampleReporter = (*Task)(nil)
)

func open(spec *task.Spec, dec task.Decoder) (task.Task, error) {
	var o Options
	o.Eval.EMDSamples = 500
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	if o.Eval.EMDSamples < 1 {
		return nil, fmt.Errorf("eval.emd_samples = %d: must be >= 1", o.Eval.EMDSamples)
	}
	g, err := NewGMM(spec.Name)
	if err != nil {
		return nil, err
	}
	t := &Task{spec: *spec, g: g, pmf: g.PMF()}
	t.opts.EMDSamples = o.Eval.EMDSamples
	return t, nil
}

// Name is "gmm1" or "gmm2".
func (t *Task) Name() string { return t.spec.Name }

// Shape is L = 2 coordinates over V = 64 bins.
func (t *Task) Shape() (L, V int) { return 2, t.g.Bins }

// Mixture returns the task's generator.
func (t *Task) Mixture() *GMM { return t.g }

// PMF returns the exact data pmf over the grid, indexed x0·V + x1.
func (t *Task) PMF() []float64 { return t.pmf }

// Data draws the "train" (train_size rows) or "val" (val_size rows) split
// from the mixture with the data seed.
func (t *Task) Data(split string) (*task.Dataset, error) {
	switch split {
	case "train":
		return t.g.Sample(rand.New(rand.NewPCG(t.spec.Seed, 1)), t.spec.TrainSize)
	case "val":
		return t.g.Sample(rand.New(rand.NewPCG(t.spec.Seed, 2)), t.spec.ValSize)
	}
	return nil, fmt.Errorf("gmm: unknown split %q, want train or val", split)
}

// Reward is the paper's additive reward (RewardTerms) as a table reward
// and, per worker, a linear differentiable reward.
func (t *Task) Reward(workers int) (smc.Reward, []objectives.RewardGraph, error) {
	terms, err := t.g.RewardTerms()
	if err != nil {
		return nil, nil, err
	}
	graphs := make([]objectives.RewardGraph, workers)
	for w := range graphs {
		graphs[w] = objectives.LinearReward{Terms: terms[:]}
	}
	return smc.TableReward(terms[:]), graphs, nil
}

// Metrics are the GMM columns: diversity (unique grid points), the EMDs to
// the paper's target and to the model's exact target, TV distances and the
// log-Z error against the exactly enumerated model target.
func (t *Task) Metrics() []task.Metric {
	return []task.Metric{
		{Key: "diversity", Label: "unique grid points", Plot: true, Summary: true},
		{Key: "emd", Label: "EMD to target (grid units)", Plot: true, Summary: true},
		{Key: "emd_model", Label: "EMD to the model's exact target"},
		{Key: "tv_exact", Label: "TV(outputs, exact model target)", Plot: true, Summary: true},
		{Key: "tv_weighted", Label: "TV(weighted particles, exact model target)"},
		{Key: "exact_log_z", Label: "exact log Z"},
		{Key: "log_z_error", Label: "log Ẑ − log Z", Plot: true, Summary: true},
		{Key: "exact_target_reward", Label: "E_π r under the exact model target"},
		{Key: "exact_model_reward", Label: "E r under the model"},
		{Key: "data_tilted_reward", Label: "E r under the paper's target"},
	}
}

// Evaluator enumerates the model's exact marginal once.
func (t *Task) Evaluator(m task.Model) (task.Evaluator, error) { return newReference(t, m) }

// SampleTarget draws n points from the paper's target, the data pmf tilted
// by exp(r/α).
func (t *Task) SampleTarget(rng *rand.Rand, alpha float64, n int) ([]int, error) {
	tp, err := t.g.TiltedPMF(alpha)
	if err != nil {
		return nil, err
	}
	pts, err := SamplePMF(rng, tp, t.g.Bins, t.g.Bins, n)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, 2*n)
	for _, p := range pts {
		out = append(out, p[0], p[1])
	}
	return out, nil
}

// Render draws the target pmf (tilted at the first panel's α) beside a
// scatter of each panel's outputs, titled with reward, EMD and diversity.
func (t *Task) Render(path string, panels []task.Panel) error {
	var sp []plots.ScatterPanel
	if len(panels) > 0 {
		if tp, err := t.g.TiltedPMF(panels[0].Out.Alpha); err == nil {
			sp = append(sp, plots.ScatterPanel{Title: "target pmf (data·exp(r/α))", PMF: tp})
		}
	}
	for _, p := range panels {
		pts, err := PointsFromTokens(p.Out.Samples)
		if err != nil {
			return err
		}
		sp = append(sp, plots.ScatterPanel{Title: fmt.Sprintf("%s\nreward %.2f, EMD %.2f, %d unique", p.Title,
			p.Metrics["reward_mean"], p.Metrics["emd"], int(p.Metrics["diversity"])), Points: pts})
	}
	return plots.Scatters(path, t.g.Bins, t.g.Bins, sp)
}

// SampleReport summarises unguided sampling from a GMM denoiser.
type SampleReport struct {
	Config        string  `json:"config"`
	N             int     `json:"n"`
	Steps         int     `json:"steps"`
	Seconds       float64 `json:"seconds"`
	TVSamples     float64 `json:"tv_samples_vs_data"`      // TV(empirical samples, exact data pmf)
	TVNoiseFloor  float64 `json:"tv_data_samples_vs_data"` // TV(N exact data draws, exact data pmf): sampling noise alone
	TVExact       float64 `json:"tv_exact_model_vs_data"`  // TV(exact T-step model marginal, exact data pmf); NaN if not computed
	MeanReward    float64 `json:"mean_reward_samples"`     // mean task reward of the samples
	DataReward    float64 `json:"mean_reward_data"`        // exact mean reward under the data pmf
	ExactReward   float64 `json:"mean_reward_exact_model"` // exact mean reward under the model marginal
	Entropy       float64 `json:"data_entropy_nats_per_token"`
	SamplesPath   string  `json:"samples"`
	CheckpointRun string  `json:"checkpoint_step"`
}

// ReportSamples compares unguided samples with the exact data pmf (and,
// with s.Exact, the model's exactly enumerated T-step marginal), and draws
// pmf.png: the data pmf, the model's marginal and the sample histogram.
func (t *Task) ReportSamples(s task.SampleRun, x []int, log io.Writer) (any, error) {
	L, V := t.Shape()
	rep := &SampleReport{Config: s.Name, N: len(x) / L, Steps: s.Grid.Steps(), Seconds: s.Seconds,
		SamplesPath: filepath.Join(s.Dir, "samples.csv"), CheckpointRun: s.Step, TVExact: math.NaN(), ExactReward: math.NaN(), Entropy: t.Entropy()}
	emp, err := diffusion.EmpiricalPMF(x, L, V)
	if err != nil {
		return nil, err
	}
	if rep.TVSamples, err = diffusion.TotalVariation(emp, t.pmf); err != nil {
		return nil, err
	}
	// The noise floor: the same number of exact draws from the data pmf.
	ref, err := t.g.Sample(rand.New(rand.NewPCG(s.Seed, 4)), rep.N)
	if err != nil {
		return nil, err
	}
	refPMF, _ := diffusion.EmpiricalPMF(ref.Tokens, L, V)
	rep.TVNoiseFloor, _ = diffusion.TotalVariation(refPMF, t.pmf)
	reward := t.g.RewardTable()
	rep.MeanReward, rep.DataReward = dot(emp, reward), dot(t.pmf, reward)
	panels := []plots.Panel{{Title: "data (exact pmf)", PMF: t.pmf}}
	if s.Exact {
		exact, err := diffusion.ExactMarginal(s.Kernel, s.Denoiser, s.Grid, s.Batch)
		if err != nil {
			return nil, err
		}
		rep.TVExact, _ = diffusion.TotalVariation(exact, t.pmf)
		rep.ExactReward = dot(exact, reward)
		panels = append(panels, plots.Panel{Title: fmt.Sprintf("model, exact T=%d marginal", rep.Steps), PMF: exact})
	}
	panels = append(panels, plots.Panel{Title: fmt.Sprintf("model, %d samples", rep.N), PMF: emp})
	if err := plots.GridHeatmaps(filepath.Join(s.Dir, "pmf.png"), panels); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "TV(samples, data) = %.4f  (noise floor with %d exact data draws: %.4f)\n", rep.TVSamples, rep.N, rep.TVNoiseFloor)
	if !math.IsNaN(rep.TVExact) {
		fmt.Fprintf(log, "TV(exact model marginal, data) = %.4f  (exact enumeration of the T=%d chain)\n", rep.TVExact, rep.Steps)
	}
	fmt.Fprintf(log, "mean reward: samples %.3f, data %.3f\n", rep.MeanReward, rep.DataReward)
	return rep, nil
}

// Entropy is the exact data entropy in nats per token (a floor for any
// model's negative log-likelihood).
func (t *Task) Entropy() float64 {
	h := 0.0
	for _, p := range t.pmf {
		if p > 0 {
			h -= p * math.Log(p)
		}
	}
	return h / 2
}
