package experiments

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
)

// CheckpointPath is where train writes the denoiser and sample reads it.
func (c *Config) CheckpointPath() string {
	if c.Checkpoint != "" {
		return c.Checkpoint
	}
	return filepath.Join(c.Out, "denoiser.ckpt")
}

// TrainReport summarises a training run.
type TrainReport struct {
	Config      string  `json:"config"`
	Steps       int     `json:"steps"`
	Seconds     float64 `json:"seconds"`
	StepsPerSec float64 `json:"steps_per_sec"`
	ValELBO     float64 `json:"val_neg_elbo_nats_per_token"`
	ValELBOErr  float64 `json:"val_neg_elbo_stderr"`
	ValBits     float64 `json:"val_neg_elbo_bits_per_token"` // ValELBO / ln 2 (bits per pixel for images)
	// CondELBO (class-conditional denoisers only) is the held-out −ELBO of
	// p(x | c) with each row's own class, in nats/token, and its bits; the
	// Val fields above are then the unconditional p(x) (null class).
	CondELBO    float64             `json:"val_cond_neg_elbo_nats_per_token,omitempty"`
	CondELBOErr float64             `json:"val_cond_neg_elbo_stderr,omitempty"`
	CondBits    float64             `json:"val_cond_neg_elbo_bits_per_token,omitempty"`
	Entropy     float64             `json:"data_entropy_nats_per_token"`
	Params      int                 `json:"params"`
	BLAS        string              `json:"blas"`
	Curve       []objectives.Record `json:"-"`
}

// TrainDenoiser trains the config's denoiser on its data, checkpointing to
// CheckpointPath and writing the training curve to train_curve.csv and a
// summary to train_summary.json in cfg.Out. Progress goes to log.
func TrainDenoiser(cfg Config, log io.Writer) (*TrainReport, error) {
	train, err := cfg.Task.Data("train")
	if err != nil {
		return nil, err
	}
	val, err := cfg.Task.Data("val")
	if err != nil {
		return nil, err
	}
	mc := cfg.Model
	mc.L, mc.V = cfg.Task.Shape()
	m, err := graph.New(mc)
	if err != nil {
		return nil, err
	}
	var trainData objectives.Data = train
	var valLabels []int
	if mc.Classes > 0 {
		var trainLabels []int
		if trainLabels, valLabels, err = classLabels(cfg.Task, mc.Classes); err != nil {
			return nil, err
		}
		if len(trainLabels) != train.Len() || len(valLabels) != val.Len() {
			return nil, fmt.Errorf("experiments: task %s has %d/%d labels for %d/%d train/val rows", cfg.Task.Name(), len(trainLabels), len(valLabels), train.Len(), val.Len())
		}
		trainData = labelledData{train, trainLabels}
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
		cfg.Name, mc.Arch, m.Store.NumParams(), train.Len(), val.Len(), mc.L, mc.V, graph.BLAS())
	var lastVal, lastErr float64 = math.NaN(), math.NaN()
	validate := func() (float64, error) {
		v, se, err := objectives.ValidationELBO(m, sched, val, cfg.Train.ValSamples, 1000, cfg.Data.Seed+99)
		lastVal, lastErr = v, se
		return v, err
	}
	fingerprint, err := taskFingerprint(cfg.Task)
	if err != nil {
		return nil, err
	}
	ckpt := func(step int) error {
		meta := map[string]string{
			"step": strconv.Itoa(step), "data": cfg.Data.Name, "run": cfg.Name,
			"val_neg_elbo": strconv.FormatFloat(lastVal, 'g', 6, 64),
		}
		if fingerprint != "" {
			meta[metaFingerprint] = fingerprint
		}
		return m.Save(cfg.CheckpointPath(), meta)
	}
	start := time.Now()
	curve, err := objectives.Train(tr, trainData, objectives.Hooks{Progress: log, Validate: validate, Checkpoint: ckpt})
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	entropy := math.NaN()
	if e, ok := cfg.Task.(task.Entropic); ok {
		entropy = e.Entropy()
	}
	rep := &TrainReport{Config: cfg.Name, Steps: tr.Steps(), Seconds: secs, StepsPerSec: float64(tr.Steps()) / secs,
		ValELBO: lastVal, ValELBOErr: lastErr, ValBits: lastVal / math.Ln2, Entropy: entropy, Params: m.Store.NumParams(), BLAS: graph.BLAS(), Curve: curve}
	if mc.Classes > 0 {
		if rep.CondELBO, rep.CondELBOErr, err = conditionalELBO(m, sched, val, valLabels, cfg); err != nil {
			return nil, err
		}
		rep.CondBits = rep.CondELBO / math.Ln2
		fmt.Fprintf(log, "held-out -ELBO: conditional p(x | c) %.4f ± %.4f nats/token = %.4f bits/token; unconditional p(x) %.4f bits/token\n",
			rep.CondELBO, rep.CondELBOErr, rep.CondBits, rep.ValBits)
	}
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

// SampleDenoiser loads the trained denoiser of a config, draws
// cfg.Sample.N unguided samples with the T-step reverse chain, writes them
// to samples.csv, and reports them: with the task's own report
// (task.SampleReporter; e.g. TV to the exact data pmf, or the test-set
// ELBO and a labelled grid), else with the task's evaluator and renderer.
// The report is written to sample_summary.json and returned.
func SampleDenoiser(cfg Config, log io.Writer) (any, error) {
	m, meta, err := loadDenoiser(cfg)
	if err != nil {
		return nil, err
	}
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, err
	}
	L, _ := cfg.Task.Shape()
	if m.Cfg.Classes > 0 {
		return sampleConditional(cfg, m, log)
	}
	rng := rand.New(rand.NewPCG(cfg.Sample.Seed, 3))
	start := time.Now()
	x, err := diffusion.Sample(rng, k, m, grid, cfg.Sample.N, cfg.Sample.Batch)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	fmt.Fprintf(log, "sampled %d sequences with T=%d in %.1fs\n", cfg.Sample.N, grid.Steps(), secs)
	path := filepath.Join(cfg.Out, "samples.csv")
	if err := writeSamples(path, x, L); err != nil {
		return nil, err
	}
	var rep any
	if sr, ok := cfg.Task.(task.SampleReporter); ok {
		sched, err := diffusion.ParseSchedule(cfg.Diffusion.Schedule, cfg.Diffusion.Eps)
		if err != nil {
			return nil, err
		}
		run := task.SampleRun{Name: cfg.Name, Dir: cfg.Out, Model: task.Model{Denoiser: m, Kernel: k, Grid: grid, Batch: cfg.Sample.Batch},
			ELBO: func(d *task.Dataset, batch int) (float64, float64, error) {
				return objectives.ValidationELBO(m, sched, d, cfg.Train.ValSamples, batch, cfg.Data.Seed+99)
			},
			Seed: cfg.Sample.Seed, Seconds: secs, Exact: cfg.Sample.Exact, Step: meta["step"]}
		if rep, err = sr.ReportSamples(run, x, log); err != nil {
			return nil, err
		}
	} else {
		ev, err := cfg.Task.Evaluator(task.Model{Denoiser: m, Kernel: k, Grid: grid, Batch: cfg.Sample.Batch})
		if err != nil {
			return nil, notPrepared(cfg, err)
		}
		out := task.Outputs{L: L, Samples: x, LogZ: math.NaN(), Alpha: cfg.SMC.Alpha, Dir: cfg.Out}
		mt, err := ev.Evaluate(rand.New(rand.NewPCG(cfg.Sample.Seed, 7)), out)
		if err != nil {
			return nil, err
		}
		if err := cfg.Task.Render(filepath.Join(cfg.Out, "samples.png"), []task.Panel{{Title: cfg.Name + ": unguided samples", Out: out, Metrics: mt}}); err != nil {
			return nil, err
		}
		rep = map[string]any{"config": cfg.Name, "n": cfg.Sample.N, "steps": grid.Steps(), "seconds": secs, "samples": path, "metrics": mt}
	}
	fmt.Fprintf(log, "wrote %s and sample_summary.json\n", path)
	return rep, writeJSON(filepath.Join(cfg.Out, "sample_summary.json"), rep)
}

// sampleConditional is SampleDenoiser for a class-conditional denoiser:
// sample.n samples split evenly over the classes (and as many from the
// null class), each class's panel scored by the task's evaluator with the
// class as its outputs' label, drawn in one figure.
func sampleConditional(cfg Config, m *graph.Model, log io.Writer) (any, error) {
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, err
	}
	L, _ := cfg.Task.Shape()
	K := m.Cfg.Classes
	per := max(1, cfg.Sample.N/K)
	ev, err := cfg.Task.Evaluator(task.Model{Denoiser: m, Kernel: k, Grid: grid, Batch: cfg.Sample.Batch})
	if err != nil {
		return nil, notPrepared(cfg, err)
	}
	start := time.Now()
	var all []int
	var panels []task.Panel
	type classReport struct {
		Class   int                `json:"class"`
		Metrics map[string]float64 `json:"metrics"`
	}
	var reps []classReport
	for c := -1; c < K; c++ {
		v, err := m.WithClass(c)
		if err != nil {
			return nil, err
		}
		rng := rand.New(rand.NewPCG(cfg.Sample.Seed, uint64(4+c)))
		x, err := diffusion.Sample(rng, k, v, grid, per, cfg.Sample.Batch)
		if err != nil {
			return nil, err
		}
		out := task.Outputs{L: L, Samples: x, LogZ: math.NaN(), Alpha: cfg.SMC.Alpha}
		title := "null class (unconditional)"
		if c >= 0 {
			all = append(all, x...)
			out.Classes = make([]int, per)
			for i := range out.Classes {
				out.Classes[i] = c
			}
			title = fmt.Sprintf("class %d", c)
		}
		mt, err := ev.Evaluate(rand.New(rand.NewPCG(cfg.Sample.Seed, 7)), out)
		if err != nil {
			return nil, err
		}
		panels = append(panels, task.Panel{Title: title, Out: out, Metrics: mt})
		reps = append(reps, classReport{Class: c, Metrics: mt})
		fmt.Fprintf(log, "%s: %d samples; acc %.3f, acc_val %.3f\n", title, per, mt["acc"], mt["acc_val"])
	}
	secs := time.Since(start).Seconds()
	path := filepath.Join(cfg.Out, "samples.csv")
	if err := writeSamples(path, all, L); err != nil {
		return nil, err
	}
	if err := cfg.Task.Render(filepath.Join(cfg.Out, "samples.png"), panels); err != nil {
		return nil, err
	}
	rep := map[string]any{"config": cfg.Name, "per_class": per, "steps": grid.Steps(), "seconds": secs, "samples": path, "classes": reps}
	fmt.Fprintf(log, "sampled %d per class (+ null) with T=%d in %.1fs; wrote %s, samples.png and sample_summary.json\n", per, grid.Steps(), secs, path)
	return rep, writeJSON(filepath.Join(cfg.Out, "sample_summary.json"), rep)
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

// labelledData gives a class-conditional trainer each row's label.
type labelledData struct {
	*task.Dataset
	labels []int
}

// Label implements objectives.LabelledData.
func (d labelledData) Label(i int) int { return d.labels[i] }

// classLabels returns the train and val labels of a task for a
// class-conditional denoiser with the given number of classes.
func classLabels(tk task.Task, classes int) (train, val []int, err error) {
	lt, ok := tk.(task.Labelled)
	if !ok {
		return nil, nil, fmt.Errorf("experiments: model.classes = %d but task %s has no class labels", classes, tk.Name())
	}
	if lt.Classes() != classes {
		return nil, nil, fmt.Errorf("experiments: model.classes = %d but task %s has %d classes", classes, tk.Name(), lt.Classes())
	}
	if train, err = lt.Labels("train"); err != nil {
		return nil, nil, err
	}
	if val, err = lt.Labels("val"); err != nil {
		return nil, nil, err
	}
	return train, val, nil
}

// conditionalELBO is the held-out −ELBO of a class-conditional model with
// each row conditioned on its own class: the per-class ELBOs of the
// class's rows, weighted by their counts (standard errors combined).
func conditionalELBO(m *graph.Model, sched diffusion.Schedule, val *task.Dataset, labels []int, cfg Config) (mean, stderr float64, err error) {
	var sum, varSum float64
	n := 0
	for c := 0; c < m.Cfg.Classes; c++ {
		var rows []int
		for i, y := range labels {
			if y == c {
				rows = append(rows, val.Row(i)...)
			}
		}
		if len(rows) == 0 {
			continue
		}
		d, err := task.NewDataset(val.L, val.V, rows)
		if err != nil {
			return 0, 0, err
		}
		v, err := m.WithClass(c)
		if err != nil {
			return 0, 0, err
		}
		e, se, err := objectives.ValidationELBO(v, sched, d, cfg.Train.ValSamples, 1000, cfg.Data.Seed+99)
		if err != nil {
			return 0, 0, err
		}
		k := d.Len()
		sum += float64(k) * e
		varSum += float64(k*k) * se * se
		n += k
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("experiments: no labelled held-out rows for the conditional ELBO")
	}
	return sum / float64(n), math.Sqrt(varSum) / float64(n), nil
}
