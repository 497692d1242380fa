package experiments

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
)

// Task is a data set ready for training: train and held-out rows and, where
// it exists, the exact data pmf over V^L.
type Task struct {
	Name       string
	L, V       int
	Train, Val *Dataset
	PMF        []float64 // exact data distribution, indexed by diffusion.Index; nil if unknown
	GMM        *GMM      // the generator, for GMM tasks
	Side       int       // image side for image tasks (L = Side²), 0 otherwise
	ValLabels  []int     // class labels of the Val rows, for labelled image tasks
}

// LoadTask builds the data of a config. For mnist, Train is the first
// train_size official training images and Val the first val_size official
// test images (binarised; see LoadMNIST).
func LoadTask(dc DataConfig) (*Task, error) {
	t, err := loadReference(dc)
	if err != nil {
		return nil, err
	}
	if dc.Name == "mnist" {
		dir, err := MNISTDir()
		if err != nil {
			return nil, err
		}
		train, err := LoadMNIST(dir, "train", dc.Size)
		if err != nil {
			return nil, err
		}
		test, err := LoadMNIST(dir, "test", dc.Size)
		if err != nil {
			return nil, err
		}
		if dc.TrainSize > train.Len() || dc.ValSize > test.Len() {
			return nil, fmt.Errorf("experiments: mnist has %d train and %d test images; asked for %d and %d", train.Len(), test.Len(), dc.TrainSize, dc.ValSize)
		}
		t.Train = &Dataset{L: t.L, V: 2, Tokens: train.Pixels[:dc.TrainSize*t.L]}
		t.Val = &Dataset{L: t.L, V: 2, Tokens: test.Pixels[:dc.ValSize*t.L]}
		t.ValLabels = test.Labels[:dc.ValSize]
		return t, nil
	}
	if t.Train, err = t.GMM.Sample(rand.New(rand.NewPCG(dc.Seed, 1)), dc.TrainSize); err != nil {
		return nil, err
	}
	if t.Val, err = t.GMM.Sample(rand.New(rand.NewPCG(dc.Seed, 2)), dc.ValSize); err != nil {
		return nil, err
	}
	return t, nil
}

// loadReference is LoadTask without drawing the train and held-out rows:
// the shape, the generator and the exact pmf.
func loadReference(dc DataConfig) (*Task, error) {
	if dc.Name == "mnist" {
		if dc.Size != 28 && dc.Size != 14 {
			return nil, fmt.Errorf("experiments: mnist image size %d, want 28 or 14", dc.Size)
		}
		return &Task{Name: fmt.Sprintf("mnist%d", dc.Size), L: dc.Size * dc.Size, V: 2, Side: dc.Size}, nil
	}
	g, err := NewGMM(dc.Name)
	if err != nil {
		return nil, err
	}
	return &Task{Name: dc.Name, L: 2, V: g.Bins, PMF: g.PMF(), GMM: g}, nil
}

// Entropy returns the exact data entropy in nats per token (a floor for any
// model's negative log-likelihood), or NaN without an exact pmf.
func (t *Task) Entropy() float64 {
	if t.PMF == nil {
		return math.NaN()
	}
	h := 0.0
	for _, p := range t.PMF {
		if p > 0 {
			h -= p * math.Log(p)
		}
	}
	return h / float64(t.L)
}

// CheckpointPath is where train writes the denoiser and sample reads it.
func (c *Config) CheckpointPath() string { return filepath.Join(c.Out, "denoiser.ckpt") }

// TrainReport summarises a training run.
type TrainReport struct {
	Config      string              `json:"config"`
	Steps       int                 `json:"steps"`
	Seconds     float64             `json:"seconds"`
	StepsPerSec float64             `json:"steps_per_sec"`
	ValELBO     float64             `json:"val_neg_elbo_nats_per_token"`
	ValELBOErr  float64             `json:"val_neg_elbo_stderr"`
	ValBits     float64             `json:"val_neg_elbo_bits_per_token"` // ValELBO / ln 2 (bits per pixel for images)
	Entropy     float64             `json:"data_entropy_nats_per_token"`
	Params      int                 `json:"params"`
	BLAS        string              `json:"blas"`
	Curve       []objectives.Record `json:"-"`
}

// TrainDenoiser trains the config's denoiser on its data, checkpointing to
// CheckpointPath and writing the training curve to train_curve.csv and a
// summary to train_summary.json in cfg.Out. Progress goes to log.
func TrainDenoiser(cfg Config, log io.Writer) (*TrainReport, error) {
	task, err := LoadTask(cfg.Data)
	if err != nil {
		return nil, err
	}
	mc := cfg.Model
	mc.L, mc.V = task.L, task.V
	m, err := graph.New(mc)
	if err != nil {
		return nil, err
	}
	sched, err := diffusion.ParseSchedule(cfg.Diffusion.Schedule, cfg.Diffusion.Eps)
	if err != nil {
		return nil, err
	}
	tr, err := objectives.NewTrainer(m, sched, cfg.Train)
	if err != nil {
		return nil, err
	}
	defer tr.Close()
	fmt.Fprintf(log, "train %s: %s denoiser, %d parameters, %d train / %d held-out sequences (L=%d, V=%d), BLAS: %s\n",
		cfg.Name, mc.Arch, m.Store.NumParams(), task.Train.Len(), task.Val.Len(), task.L, task.V, graph.BLAS())
	var lastVal, lastErr float64 = math.NaN(), math.NaN()
	validate := func() (float64, error) {
		v, se, err := objectives.ValidationELBO(m, sched, task.Val, cfg.Train.ValSamples, 1000, cfg.Data.Seed+99)
		lastVal, lastErr = v, se
		return v, err
	}
	ckpt := func(step int) error {
		return m.Save(cfg.CheckpointPath(), map[string]string{
			"step": strconv.Itoa(step), "data": cfg.Data.Name, "run": cfg.Name,
			"val_neg_elbo": strconv.FormatFloat(lastVal, 'g', 6, 64),
		})
	}
	start := time.Now()
	curve, err := objectives.Train(tr, task.Train, objectives.Hooks{Progress: log, Validate: validate, Checkpoint: ckpt})
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	rep := &TrainReport{Config: cfg.Name, Steps: tr.Steps(), Seconds: secs, StepsPerSec: float64(tr.Steps()) / secs,
		ValELBO: lastVal, ValELBOErr: lastErr, ValBits: lastVal / math.Ln2, Entropy: task.Entropy(), Params: m.Store.NumParams(), BLAS: graph.BLAS(), Curve: curve}
	if err := writeCurve(filepath.Join(cfg.Out, "train_curve.csv"), curve); err != nil {
		return nil, err
	}
	if err := plotCurve(filepath.Join(cfg.Out, "train_curve.png"), curve, cfg.Name); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(cfg.Out, "train_summary.json"), rep); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "trained %d steps in %.1fs (%.1f steps/s); held-out -ELBO %.4f ± %.4f nats/token = %.4f bits/token (data entropy %.4f); checkpoint %s\n",
		rep.Steps, secs, rep.StepsPerSec, rep.ValELBO, rep.ValELBOErr, rep.ValBits, rep.Entropy, cfg.CheckpointPath())
	return rep, nil
}

// SampleReport summarises unguided sampling from a trained denoiser.
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
	SamplesPath   string  `json:"samples"`
	CheckpointRun string  `json:"checkpoint_step"`
}

// SampleDenoiser loads the trained denoiser of a config, draws cfg.Sample.N
// unguided samples with the T-step reverse chain, writes them to
// samples.csv and compares them with the exact data distribution; pmf.png shows the data
// pmf, the model's exact marginal and the sample histogram side by side.
// Image tasks go through sampleImages instead (its report is written to
// sample_summary.json; the returned SampleReport is then nil).
func SampleDenoiser(cfg Config, log io.Writer) (*SampleReport, error) {
	task, err := loadReference(cfg.Data)
	if err != nil {
		return nil, err
	}
	m, meta, err := loadDenoiserMeta(cfg, task)
	if err != nil {
		return nil, err
	}
	if task.GMM == nil {
		_, err := sampleImages(cfg, m, log)
		return nil, err
	}
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Sample.Seed, 3))
	start := time.Now()
	x, err := diffusion.Sample(rng, k, m, grid, cfg.Sample.N, cfg.Sample.Batch)
	if err != nil {
		return nil, err
	}
	rep := &SampleReport{Config: cfg.Name, N: cfg.Sample.N, Steps: grid.Steps(), Seconds: time.Since(start).Seconds(),
		SamplesPath: filepath.Join(cfg.Out, "samples.csv"), CheckpointRun: meta["step"], TVExact: math.NaN(), ExactReward: math.NaN()}
	fmt.Fprintf(log, "sampled %d sequences with T=%d in %.1fs\n", rep.N, rep.Steps, rep.Seconds)
	if err := writeSamples(rep.SamplesPath, x, task.L); err != nil {
		return nil, err
	}
	emp, err := diffusion.EmpiricalPMF(x, task.L, task.V)
	if err != nil {
		return nil, err
	}
	if rep.TVSamples, err = diffusion.TotalVariation(emp, task.PMF); err != nil {
		return nil, err
	}
	// The noise floor: the same number of exact draws from the data pmf.
	ref, err := task.GMM.Sample(rand.New(rand.NewPCG(cfg.Sample.Seed, 4)), cfg.Sample.N)
	if err != nil {
		return nil, err
	}
	refPMF, _ := diffusion.EmpiricalPMF(ref.Tokens, task.L, task.V)
	rep.TVNoiseFloor, _ = diffusion.TotalVariation(refPMF, task.PMF)
	reward := task.GMM.RewardTable()
	rep.MeanReward, rep.DataReward = dot(emp, reward), dot(task.PMF, reward)
	panels := []plots.Panel{{Title: "data (exact pmf)", PMF: task.PMF}}
	if cfg.Sample.Exact {
		exact, err := diffusion.ExactMarginal(k, m, grid, cfg.Sample.Batch)
		if err != nil {
			return nil, err
		}
		rep.TVExact, _ = diffusion.TotalVariation(exact, task.PMF)
		rep.ExactReward = dot(exact, reward)
		panels = append(panels, plots.Panel{Title: fmt.Sprintf("model, exact T=%d marginal", grid.Steps()), PMF: exact})
	}
	panels = append(panels, plots.Panel{Title: fmt.Sprintf("model, %d samples", rep.N), PMF: emp})
	if err := plots.GridHeatmaps(filepath.Join(cfg.Out, "pmf.png"), panels); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(cfg.Out, "sample_summary.json"), rep); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "TV(samples, data) = %.4f  (noise floor with %d exact data draws: %.4f)\n", rep.TVSamples, rep.N, rep.TVNoiseFloor)
	if !math.IsNaN(rep.TVExact) {
		fmt.Fprintf(log, "TV(exact model marginal, data) = %.4f  (exact enumeration of the T=%d chain)\n", rep.TVExact, rep.Steps)
	}
	fmt.Fprintf(log, "mean reward: samples %.3f, data %.3f\nwrote %s\n", rep.MeanReward, rep.DataReward, rep.SamplesPath)
	return rep, nil
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		if a[i] != 0 {
			s += a[i] * b[i]
		}
	}
	return s
}

func writeSamples(path string, x []int, L int) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		for l := 0; l < L; l++ {
			if l > 0 {
				w.WriteByte(',')
			}
			fmt.Fprintf(w, "x%d", l)
		}
		w.WriteByte('\n')
		for i := 0; i < len(x); i += L {
			for l := 0; l < L; l++ {
				if l > 0 {
					w.WriteByte(',')
				}
				w.WriteString(strconv.Itoa(x[i+l]))
			}
			w.WriteByte('\n')
		}
		return nil
	})
}

// plotCurve draws the training loss and the held-out −ELBO of a curve.
func plotCurve(path string, curve []objectives.Record, name string) error {
	var step, loss, vs, val []float64
	for _, r := range curve {
		step, loss = append(step, float64(r.Step)), append(loss, r.Loss)
		if !math.IsNaN(r.ValELBO) {
			vs, val = append(vs, float64(r.Step)), append(val, r.ValELBO)
		}
	}
	if len(step) == 0 {
		return nil
	}
	return plots.LossCurve(path, step, loss, vs, val, name+": MDLM loss (nats/token) and held-out −ELBO")
}

func writeCurve(path string, curve []objectives.Record) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		fmt.Fprintln(w, "step,train_loss,val_neg_elbo,elapsed_s,steps_per_s")
		for _, r := range curve {
			fmt.Fprintf(w, "%d,%.6g,%.6g,%.3f,%.2f\n", r.Step, r.Loss, r.ValELBO, r.Elapsed, r.StepsPer)
		}
		return nil
	})
}

// writeJSON writes a report as indented JSON; fields that were not
// computed (NaN) are written as -1, since JSON has no NaN.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(sanitise(v), "", "  ")
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		_, err := w.Write(append(b, '\n'))
		return err
	})
}

func sanitise(v any) any {
	switch r := v.(type) {
	case *TrainReport:
		c := *r
		c.ValELBO, c.ValELBOErr, c.Entropy, c.ValBits = finiteOr(c.ValELBO), finiteOr(c.ValELBOErr), finiteOr(c.Entropy), finiteOr(c.ValBits)
		return c
	case *SampleReport:
		c := *r
		c.TVExact, c.ExactReward = finiteOr(c.TVExact), finiteOr(c.ExactReward)
		return c
	case *SMCReport:
		return nullNonFinite(r)
	case *ProposalReport:
		return nullNonFinite(r)
	}
	return v
}

// nullNonFinite turns a struct (or pointer to one) into a map keyed by the
// fields' JSON names in which NaN and ±Inf float64 fields are null (JSON
// has no non-finite numbers).
func nullNonFinite(v any) any {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return v
	}
	out := map[string]any{}
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fv := rv.Field(i)
		if fv.Kind() == reflect.Float64 {
			if x := fv.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
				out[name] = nil
				continue
			}
		}
		out[name] = fv.Interface()
	}
	return out
}

// finiteOr maps NaN/Inf to -1, the "not computed" marker in summaries.
func finiteOr(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return -1
	}
	return x
}
