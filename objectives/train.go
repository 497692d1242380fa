package objectives

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/layers"
)

// TrainConfig holds the knobs of the MDLM training loop.
type TrainConfig struct {
	Steps           int     `toml:"steps"`            // optimiser steps
	Batch           int     `toml:"batch"`            // sequences per step
	LR              float64 `toml:"lr"`               // Adam learning rate
	Clip            float64 `toml:"clip"`             // element-wise gradient clip; 0 = none
	ValEvery        int     `toml:"val_every"`        // validate every this many steps; 0 = only at the end
	ValSamples      int     `toml:"val_samples"`      // (t, mask) draws per held-out row for the ELBO
	CheckpointEvery int     `toml:"checkpoint_every"` // checkpoint every this many steps; 0 = only at the end
	Seed            uint64  `toml:"seed"`             // seed of data order, times and masks
	// Loss is "elbo" (the schedule-weighted MDLM bound, the default) or
	// "masked_ce" (the mean cross-entropy over the masked tokens of a
	// batch: the recipe that trained usable language and DNA models on
	// CPU, domains.md §1.7; still an estimator of p(x0 | x_t), so the SMC
	// maths is unchanged; validation always reports the ELBO).
	Loss string `toml:"loss"`
	// Warmup is the number of steps of linear learning-rate warm-up
	// (0 = none): step k < Warmup moves the parameters by (k+1)/Warmup of
	// Adam's update.
	Warmup int `toml:"warmup"`
	// Decay is the learning-rate decay after the warm-up: "" or "none"
	// (constant), or "cosine" (half a cosine from lr down to MinLR·lr at
	// step Steps). Like the warm-up it scales each step's Adam update.
	Decay string `toml:"decay"`
	// LabelDropout is the probability of showing a class-conditional
	// model the null class instead of a row's label (classifier-free
	// guidance training; typically 0.1–0.2). It must be 0 for an
	// unconditional model.
	LabelDropout float64 `toml:"label_dropout"`
	// MinLR is the final fraction of lr under decay = "cosine" (default 0.1).
	MinLR float64 `toml:"min_lr"`
}

// lrFactor is the fraction of Adam's update step k (0-based) takes: the
// linear warm-up, then the decay.
func (c TrainConfig) lrFactor(k int) float64 {
	if c.Warmup > 0 && k < c.Warmup {
		return float64(k+1) / float64(c.Warmup)
	}
	if c.Decay != "cosine" || c.Steps <= c.Warmup {
		return 1
	}
	floor := c.MinLR
	if floor == 0 {
		floor = 0.1
	}
	p := float64(k-c.Warmup) / float64(c.Steps-c.Warmup)
	if p > 1 {
		p = 1
	}
	return floor + (1-floor)*0.5*(1+math.Cos(math.Pi*p))
}

// Validate reports the first out-of-range field, naming it.
func (c TrainConfig) Validate() error {
	switch {
	case c.Steps <= 0:
		return fmt.Errorf("objectives: train.steps = %d: must be positive", c.Steps)
	case c.Batch <= 0:
		return fmt.Errorf("objectives: train.batch = %d: must be positive", c.Batch)
	case !(c.LR > 0 && c.LR < 1):
		return fmt.Errorf("objectives: train.lr = %v: must be in (0, 1)", c.LR)
	case c.Clip < 0 || math.IsNaN(c.Clip):
		return fmt.Errorf("objectives: train.clip = %v: must be ≥ 0", c.Clip)
	case c.ValEvery < 0:
		return fmt.Errorf("objectives: train.val_every = %d: must be ≥ 0", c.ValEvery)
	case c.ValSamples <= 0:
		return fmt.Errorf("objectives: train.val_samples = %d: must be positive", c.ValSamples)
	case c.Loss != "" && c.Loss != "elbo" && c.Loss != "masked_ce":
		return fmt.Errorf("objectives: train.loss = %q: want elbo or masked_ce", c.Loss)
	case c.Warmup < 0:
		return fmt.Errorf("objectives: train.warmup = %d: must be >= 0", c.Warmup)
	case c.Decay != "" && c.Decay != "none" && c.Decay != "cosine":
		return fmt.Errorf("objectives: train.decay = %q: want none or cosine", c.Decay)
	case !(c.MinLR >= 0 && c.MinLR <= 1):
		return fmt.Errorf("objectives: train.min_lr = %v: must be in [0, 1] (a fraction of train.lr; 0 = the default 0.1)", c.MinLR)
	case !(c.LabelDropout >= 0 && c.LabelDropout < 1):
		return fmt.Errorf("objectives: train.label_dropout = %v: must be in [0, 1)", c.LabelDropout)
	case c.CheckpointEvery < 0:
		return fmt.Errorf("objectives: train.checkpoint_every = %d: must be ≥ 0", c.CheckpointEvery)
	}
	return nil
}

// Record is one point of the training curve.
type Record struct {
	Step     int     // optimiser steps taken
	Loss     float64 // training loss, mean over the steps since the last record (nats/token)
	ValELBO  float64 // held-out negative ELBO in nats/token (NaN if not validated here)
	Elapsed  float64 // seconds since training started
	StepsPer float64 // optimiser steps per second since the last record
}

// Trainer runs Adam on the MDLM loss of a model.
type Trainer struct {
	Cfg   TrainConfig
	Loss  *MDLMLoss
	vm    G.VM
	adam  *G.AdamSolver
	rng   *rand.Rand
	steps int
}

// NewTrainer builds the loss graph, its gradient and an Adam solver.
func NewTrainer(m *graph.Model, s diffusion.Schedule, cfg TrainConfig) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f, err := NewMDLMLoss(m, s, cfg.Batch)
	if err != nil {
		return nil, err
	}
	f.MaskedMean = cfg.Loss == "masked_ce"
	f.LabelDropout = cfg.LabelDropout
	if cfg.LabelDropout > 0 && m.Cfg.Classes == 0 {
		return nil, fmt.Errorf("objectives: train.label_dropout = %v for an unconditional denoiser (model.classes = 0)", cfg.LabelDropout)
	}
	if _, err := G.Grad(f.Node(), f.Learnables()...); err != nil {
		return nil, fmt.Errorf("objectives: gradient of the MDLM loss: %w", err)
	}
	return &Trainer{Cfg: cfg, Loss: f,
		vm:   layers.TapeMachine(f.Graph(), G.BindDualValues(f.Learnables()...)),
		adam: newSolver(cfg.LR, cfg.Clip),
		rng:  rand.New(rand.NewPCG(cfg.Seed, 0x7472616e)),
	}, nil
}

// Steps returns the number of optimiser steps taken.
func (t *Trainer) Steps() int { return t.steps }

// Step draws a batch, runs forward and backward, and takes one Adam step.
// A non-finite loss is an error and leaves the parameters untouched.
func (t *Trainer) Step(data Data) (float64, error) {
	if err := t.Loss.SampleBatch(t.rng, data); err != nil {
		return 0, err
	}
	t.vm.Reset()
	if err := t.vm.RunAll(); err != nil {
		return 0, fmt.Errorf("objectives: step %d: %w", t.steps+1, err)
	}
	loss := t.Loss.Value()
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, fmt.Errorf("objectives: loss is %v at step %d (diverged or non-finite parameters; try a lower train.lr or train.clip)", loss, t.steps+1)
	}
	var before [][]float64
	frac := t.Cfg.lrFactor(t.steps)
	if frac != 1 {
		for _, n := range t.Loss.Learnables() {
			before = append(before, layers.Float64s(n.Value().(*tensor.Dense), nil))
		}
	}
	if err := t.adam.Step(G.NodesToValueGrads(t.Loss.Learnables())); err != nil {
		return loss, fmt.Errorf("objectives: Adam step %d: %w", t.steps+1, err)
	}
	if before != nil { // warm-up or decay: a fraction of Adam's update
		for i, n := range t.Loss.Learnables() {
			d := n.Value().(*tensor.Dense)
			after := layers.Float64s(d, nil)
			for j := range after {
				after[j] = before[i][j] + frac*(after[j]-before[i][j])
			}
			if err := layers.SetFloat64s(d, after); err != nil {
				return loss, err
			}
		}
	}
	t.Loss.Model.Store.Touch() // the weights changed in place
	t.steps++
	return loss, nil
}

// Close releases the machine.
func (t *Trainer) Close() { t.vm.Close() }

// Hooks are optional callbacks of Train.
type Hooks struct {
	Progress   io.Writer                         // progress bar destination; nil = silent
	Checkpoint func(step int) error              // called every CheckpointEvery steps and at the end
	Record     func(r Record)                    // called at every validation point
	Validate   func() (float64, error)           // held-out negative ELBO in nats/token
	Stop       func(step int, loss float64) bool // optional early stop
}

// Train runs cfg.Steps optimiser steps on data, validating every
// cfg.ValEvery steps and checkpointing every cfg.CheckpointEvery steps (and
// at the end). It returns the training curve.
func Train(tr *Trainer, data Data, h Hooks) ([]Record, error) {
	if data.Len() == 0 {
		return nil, fmt.Errorf("objectives: empty data set")
	}
	cfg := tr.Cfg
	bar := NewProgress(h.Progress, cfg.Steps)
	start := time.Now()
	last, lastStep := start, tr.steps
	var sum float64
	var n int
	var curve []Record
	record := func(force bool) error {
		if n == 0 && !force {
			return nil
		}
		now := time.Now()
		r := Record{Step: tr.steps, Loss: sum / math.Max(1, float64(n)), ValELBO: math.NaN(),
			Elapsed: now.Sub(start).Seconds(), StepsPer: float64(tr.steps-lastStep) / now.Sub(last).Seconds()}
		if h.Validate != nil {
			v, err := h.Validate()
			if err != nil {
				return err
			}
			r.ValELBO = v
		}
		curve = append(curve, r)
		bar.Record(r)
		if h.Record != nil {
			h.Record(r)
		}
		sum, n, last, lastStep = 0, 0, now, tr.steps
		return nil
	}
	for i := 0; i < cfg.Steps; i++ {
		loss, err := tr.Step(data)
		if err != nil {
			bar.Done()
			return curve, err
		}
		sum += loss
		n++
		bar.Update(tr.steps, loss)
		if cfg.ValEvery > 0 && tr.steps%cfg.ValEvery == 0 && i < cfg.Steps-1 {
			if err := record(false); err != nil {
				bar.Done()
				return curve, err
			}
		}
		if h.Checkpoint != nil && cfg.CheckpointEvery > 0 && tr.steps%cfg.CheckpointEvery == 0 && i < cfg.Steps-1 {
			if err := h.Checkpoint(tr.steps); err != nil {
				bar.Done()
				return curve, err
			}
		}
		if h.Stop != nil && h.Stop(tr.steps, loss) {
			break
		}
	}
	err := record(true)
	bar.Done()
	if err != nil {
		return curve, err
	}
	if h.Checkpoint != nil {
		if err := h.Checkpoint(tr.steps); err != nil {
			return curve, err
		}
	}
	return curve, nil
}
