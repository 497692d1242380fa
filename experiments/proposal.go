package experiments

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
	"github.com/ddsmc/ddsmc/smc"
)

// ProposalConfig is the [proposal] table: training an amortised proposal
// q_φ (a full fine-tune of the base denoiser) with the log-variance loss of
// paper.md §4.2, on the reward-tilted target with the [smc] table's α.
type ProposalConfig struct {
	Epochs          int     `toml:"epochs"`            // at most this many epochs
	BatchesPerEpoch int     `toml:"batches_per_epoch"` // optimiser steps per epoch
	Batch           int     `toml:"batch"`             // trajectories per optimiser step
	LR              float64 `toml:"lr"`                // Adam learning rate (q_φ and F_ψ; no weight decay)
	Clip            float64 `toml:"clip"`              // global-norm gradient clipping (0 = off)
	Phi             int     `toml:"phi"`               // look-ahead samples M of the rollouts' twist
	Lambda          string  `toml:"lambda"`            // tempering of the rollouts' twist: constant (paper), linear, exp, time
	LambdaK         int     `toml:"lambda_k"`          // linear ramp length
	LambdaGamma     float64 `toml:"lambda_gamma"`      // exp ramp rate
	Policy          string  `toml:"policy"`            // "on" (q_φ), "off" (p_θ) or "mixed"
	OnFraction      float64 `toml:"on_fraction"`       // fraction of on-policy trajectories for "mixed"
	KL              string  `toml:"kl"`                // "none", "forward" or "backward" (to p_θ's x0 predictions)
	KLWeight        float64 `toml:"kl_weight"`         // weight of the KL term
	Entropy         float64 `toml:"entropy"`           // entropy bonus weight
	Truncate        int     `toml:"truncate"`          // backpropagate the last K steps only (0 = all)
	Patience        int     `toml:"patience"`          // epochs without a lower validation Σ_t Var(log w_t) before stopping
	ValSamples      int     `toml:"val_samples"`       // q_φ samples for the validation reward
	Seed            uint64  `toml:"seed"`
	LoRARank        int     `toml:"lora_rank"`  // > 0: train only rank-r adapters on every Linear (LoRA); 0 = full fine-tune
	LoRAAlpha       float64 `toml:"lora_alpha"` // adapter scale alpha/rank (0 = scale 1)
}

// DefaultProposal is the paper's toy setting (§4.5): Adam 1e-3, batch 128,
// ≤ 100 epochs × 20 batches, patience 5, M = 10, on-policy, no KL.
func DefaultProposal() ProposalConfig {
	return ProposalConfig{Epochs: 100, BatchesPerEpoch: 20, Batch: 128, LR: 1e-3, Phi: 10, Lambda: "constant", LambdaK: 30, LambdaGamma: 0.05, Policy: "on",
		OnFraction: 0.9, KL: "none", Patience: 5, ValSamples: 1000, Seed: 6}
}

// Validate reports the first bad [proposal] value, naming its key.
func (c ProposalConfig) Validate() error {
	switch {
	case c.Epochs < 1:
		return fmt.Errorf("proposal.epochs = %d: must be >= 1", c.Epochs)
	case c.BatchesPerEpoch < 1:
		return fmt.Errorf("proposal.batches_per_epoch = %d: must be >= 1", c.BatchesPerEpoch)
	case c.Batch < 2:
		return fmt.Errorf("proposal.batch = %d: must be >= 2", c.Batch)
	case !(c.LR > 0) || math.IsInf(c.LR, 1):
		return fmt.Errorf("proposal.lr = %v: must be positive", c.LR)
	case !(c.Clip >= 0):
		return fmt.Errorf("proposal.clip = %v: must be >= 0", c.Clip)
	case c.Phi < 1:
		return fmt.Errorf("proposal.phi = %d: must be >= 1", c.Phi)
	case c.Policy != "on" && c.Policy != "off" && c.Policy != "mixed":
		return fmt.Errorf("proposal.policy = %q: want on, off or mixed", c.Policy)
	case c.Policy == "mixed" && !(c.OnFraction > 0 && c.OnFraction < 1):
		return fmt.Errorf("proposal.on_fraction = %v: must lie in (0, 1) for policy = mixed", c.OnFraction)
	case c.KL != "none" && c.KL != "forward" && c.KL != "backward":
		return fmt.Errorf("proposal.kl = %q: want none, forward or backward", c.KL)
	case !(c.KLWeight >= 0) || !(c.Entropy >= 0):
		return fmt.Errorf("proposal.kl_weight = %v, proposal.entropy = %v: must be >= 0", c.KLWeight, c.Entropy)
	case c.Truncate < 0:
		return fmt.Errorf("proposal.truncate = %d: must be >= 0", c.Truncate)
	case c.Lambda == "list" || c.Lambda == "adaptive":
		return fmt.Errorf("proposal.lambda = %q is not supported; use constant, linear, exp or time", c.Lambda)
	case c.Patience < 1:
		return fmt.Errorf("proposal.patience = %d: must be >= 1", c.Patience)
	case c.ValSamples < 1:
		return fmt.Errorf("proposal.val_samples = %d: must be >= 1", c.ValSamples)
	case c.LoRARank < 0:
		return fmt.Errorf("proposal.lora_rank = %d: must be >= 0", c.LoRARank)
	case !(c.LoRAAlpha >= 0) || math.IsInf(c.LoRAAlpha, 1):
		return fmt.Errorf("proposal.lora_alpha = %v: must be finite and >= 0", c.LoRAAlpha)
	}
	if err := (smc.Lambda{Kind: c.Lambda, K: c.LambdaK, Gamma: c.LambdaGamma}).Validate(1); err != nil {
		return fmt.Errorf("proposal.lambda: %w", err)
	}
	return nil
}

// ProposalCheckpointPath is where train-proposal writes q_φ (and F_ψ in
// its metadata).
func (c *Config) ProposalCheckpointPath() string { return filepath.Join(c.Out, "proposal.ckpt") }

// ProposalEpoch is one row of the training curve.
type ProposalEpoch struct {
	Epoch     int     `json:"epoch"`
	Loss      float64 `json:"loss"`       // mean over the epoch of Σ_t mean_b (log w_t − F_t)²
	ValReward float64 `json:"val_reward"` // mean reward of q_φ alone (Prop-amot)
	StepVar   float64 `json:"step_var"`   // Σ_t Var_b(log w_t) on a validation rollout
	Seconds   float64 `json:"seconds"`
}

// ProposalReport summarises a train-proposal run.
type ProposalReport struct {
	Config      string          `json:"config"`
	Epochs      []ProposalEpoch `json:"epochs"`
	Best        int             `json:"best_epoch"`
	BestReward  float64         `json:"best_val_reward"`   // q_φ's mean reward at the best epoch
	BestStepVar float64         `json:"best_val_step_var"` // Σ_t Var(log w_t) at the best epoch (the selection criterion)
	BaseReward  float64         `json:"base_val_reward"`   // p_θ alone, for reference
	Seconds     float64         `json:"seconds"`
	Checkpoint  string          `json:"checkpoint"`
	TargetWords string          `json:"target"`
}

// newProposalModel returns q_φ at initialisation: a copy of the base
// denoiser, with zero-initialised low-rank adapters on every Linear when
// lora_rank > 0 (so q_φ = p_θ either way).
func newProposalModel(base *graph.Model, pc ProposalConfig) (*graph.Model, error) {
	if pc.LoRARank == 0 {
		return base.Clone()
	}
	qc := base.Cfg
	qc.LoRARank, qc.LoRAAlpha = pc.LoRARank, pc.LoRAAlpha
	q, err := graph.New(qc)
	if err != nil {
		return nil, err
	}
	if err := q.LoadBase(base); err != nil {
		return nil, err
	}
	return q, nil
}

// rollouts runs one batch of trajectories of the given proposal on the
// tilted target with no resampling and returns, per step, x_t, x_s and
// c = incremental log-weight + log q_rollout (so that log w under q_φ is
// c − log q_φ).
type rolloutStep struct {
	t, s   float64
	xt, xs []int
	c      []float64
}

func rollout(rng *rand.Rand, s *smc.Sampler, grid diffusion.Grid) ([]rolloutStep, error) {
	st, _, err := s.Init(rng)
	if err != nil {
		return nil, err
	}
	T := s.Steps()
	steps := make([]rolloutStep, 0, T)
	for st.Step < T {
		i := st.Step
		xt := append([]int(nil), st.X...)
		info, err := s.Step(rng, st)
		if err != nil {
			return nil, err
		}
		c := make([]float64, len(info.Increments))
		for b := range c {
			c[b] = info.Increments[b] + info.LogQ[b]
		}
		steps = append(steps, rolloutStep{t: grid[T-i], s: grid[T-i-1], xt: xt, xs: append([]int(nil), st.X...), c: c})
	}
	return steps, nil
}

// TrainProposal trains the amortised proposal of cfg ([proposal] table,
// α from [smc]) starting from the trained base denoiser, writing
// proposal.ckpt (the best epoch's q_φ with F_ψ in its metadata, written
// atomically), proposal_curve.csv, proposal_curve.png and
// proposal_summary.json to cfg.Out.
func TrainProposal(cfg Config, log io.Writer) (*ProposalReport, error) {
	pc := cfg.Proposal
	if err := pc.Validate(); err != nil {
		return nil, err
	}
	lambda := smc.Lambda{Kind: pc.Lambda, K: pc.LambdaK, Gamma: pc.LambdaGamma}
	base, _, err := loadDenoiser(cfg)
	if err != nil {
		return nil, err
	}
	q, err := newProposalModel(base, pc)
	if err != nil {
		return nil, err
	}
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, err
	}
	T := grid.Steps()
	var ref *graph.Model
	if pc.KL != "none" {
		ref = base
	}
	loss, err := objectives.NewLogVarLoss(q, ref, k, objectives.LogVarConfig{Batch: pc.Batch, Steps: T, LR: pc.LR, Clip: pc.Clip,
		KL: pc.KL, KLWeight: pc.KLWeight, EntropyWeight: pc.Entropy, Trainable: q.Trainable()})
	if err != nil {
		return nil, err
	}
	defer loss.Close()
	reward, _, err := cfg.Task.Reward(1)
	if err != nil {
		return nil, notPrepared(cfg, err)
	}
	// Denoiser calls are padded to the pools' batch: no sampler here has
	// more than pc.Batch particles, so a larger batch is wasted work (a
	// batch of 256 for 8 rollouts made the IMDB transformer's rollouts 32×
	// slower). Rows do not depend on their batch, so results are unchanged.
	poolBatch := min(256, pc.Batch)
	pBase, err := smc.NewReverse(k, []diffusion.Denoiser{base}, poolBatch)
	if err != nil {
		return nil, err
	}
	target := smc.Target{Base: pBase, Reward: reward, Alpha: cfg.SMC.Alpha}
	sampler := func(n int, prop smc.Proposal, tw smc.Twist) (*smc.Sampler, error) {
		return smc.New(target, smc.Config{N: n, Grid: grid, Lambda: lambda, Twist: tw,
			Proposal: prop, Trigger: smc.Trigger{Kind: "never"}, Final: smc.FinalWeighted, Workers: 1})
	}
	learned, err := smc.NewLearned(k, []diffusion.Denoiser{q}, poolBatch)
	if err != nil {
		return nil, err
	}
	nOn := pc.Batch
	switch pc.Policy {
	case "off":
		nOn = 0
	case "mixed":
		nOn = max(1, min(pc.Batch-1, int(math.Round(pc.OnFraction*float64(pc.Batch)))))
	}
	var onS, offS *smc.Sampler
	if nOn > 0 {
		if onS, err = sampler(nOn, learned, smc.LookAhead{Phi: pc.Phi}); err != nil {
			return nil, err
		}
	}
	if nOn < pc.Batch {
		if offS, err = sampler(pc.Batch-nOn, smc.ReverseProposal{}, smc.LookAhead{Phi: pc.Phi}); err != nil {
			return nil, err
		}
	}
	valQ, err := sampler(pc.ValSamples, learned, smc.NoTwist{})
	if err != nil {
		return nil, err
	}
	valP, err := sampler(pc.ValSamples, smc.ReverseProposal{}, smc.NoTwist{})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(pc.Seed, 8))
	meanReward := func(s *smc.Sampler, seed uint64) (float64, error) {
		res, err := s.Run(rand.New(rand.NewPCG(seed, 9)))
		if err != nil {
			return 0, err
		}
		m := 0.0
		for _, r := range res.Reward {
			m += r / float64(len(res.Reward))
		}
		return m, nil
	}
	rep := &ProposalReport{Config: cfg.Name, Checkpoint: cfg.ProposalCheckpointPath(), Best: -1, BestReward: math.NaN(), BestStepVar: math.Inf(1),
		TargetWords: fmt.Sprintf("p_theta(x0)·exp(r(x0)/%g)", cfg.SMC.Alpha)}
	if rep.BaseReward, err = meanReward(valP, pc.Seed); err != nil {
		return nil, err
	}
	mode := "full fine-tune"
	if pc.LoRARank > 0 {
		mode = fmt.Sprintf("rank-%d LoRA adapters", pc.LoRARank)
	}
	fmt.Fprintf(log, "train-proposal %s: q_phi = %s of %s (%d parameters), T=%d, batch %d (%s policy), phi=%d, alpha=%g, lr %g; p_theta mean reward %.4f\n",
		cfg.Name, mode, cfg.CheckpointPath(), q.Store.NumParams(), T, pc.Batch, pc.Policy, pc.Phi, cfg.SMC.Alpha, pc.LR, rep.BaseReward)
	start := time.Now()
	since := 0
	tty := isTerminal(log) // per-batch progress redraws in place on a terminal only
	for epoch := 1; epoch <= pc.Epochs && since < pc.Patience; epoch++ {
		epStart := time.Now()
		sum := 0.0
		for b := 0; b < pc.BatchesPerEpoch; b++ {
			var on, off []rolloutStep
			if onS != nil {
				if on, err = rollout(rng, onS, grid); err != nil {
					return nil, err
				}
			}
			if offS != nil {
				if off, err = rollout(rng, offS, grid); err != nil {
					return nil, err
				}
			}
			if epoch == 1 && b == 0 {
				// Start F_ψ at the per-step mean log-weight of the first batch.
				if err := initF(loss, on, off, T, pc.Batch); err != nil {
					return nil, err
				}
			}
			total := 0.0
			for i := range T {
				if pc.Truncate > 0 && i < T-pc.Truncate {
					continue
				}
				xt, xs, c, t, s := combine(on, off, i)
				l, _, err := loss.Accumulate(xt, xs, t, s, i, c)
				if err != nil {
					return nil, fmt.Errorf("experiments: epoch %d batch %d: %w", epoch, b+1, err)
				}
				total += l
			}
			if err := loss.Apply(); err != nil {
				return nil, err
			}
			sum += total / float64(pc.BatchesPerEpoch)
			if tty {
				fmt.Fprintf(log, "\repoch %d batch %d/%d loss %.4f", epoch, b+1, pc.BatchesPerEpoch, total)
			}
		}
		// Validation: q_φ alone, and the per-step log-weight variance of an on-policy rollout.
		vr, err := meanReward(valQ, pc.Seed+uint64(epoch))
		if err != nil {
			return nil, err
		}
		// The per-step variance of log w on a fresh rollout batch of the training policy.
		vrng := rand.New(rand.NewPCG(pc.Seed, uint64(1000+epoch)))
		var von, voff []rolloutStep
		if onS != nil {
			if von, err = rollout(vrng, onS, grid); err != nil {
				return nil, err
			}
		}
		if offS != nil {
			if voff, err = rollout(vrng, offS, grid); err != nil {
				return nil, err
			}
		}
		w, err := stepLogW(loss, von, voff, T, pc.Batch)
		if err != nil {
			return nil, err
		}
		stepVar := 0.0
		for _, wi := range w {
			m, m2 := 0.0, 0.0
			for _, v := range wi {
				m += v / float64(len(wi))
				m2 += v * v / float64(len(wi))
			}
			stepVar += m2 - m*m
		}
		ep := ProposalEpoch{Epoch: epoch, Loss: sum, ValReward: vr, StepVar: stepVar, Seconds: time.Since(epStart).Seconds()}
		rep.Epochs = append(rep.Epochs, ep)
		// The checkpoint and early stopping follow the objective itself, the
		// per-step log-weight variance on fresh rollouts (not the reward: a
		// proposal that over-tilts toward high reward is not closer to π).
		better := stepVar < rep.BestStepVar
		if better {
			rep.Best, rep.BestReward, rep.BestStepVar, since = epoch, vr, stepVar, 0
			fb, _ := json.Marshal(loss.F())
			if err := q.Save(cfg.ProposalCheckpointPath(), map[string]string{"f_psi": string(fb), "epoch": strconv.Itoa(epoch),
				"val_reward": strconv.FormatFloat(vr, 'g', 6, 64), "base": cfg.CheckpointPath(), "alpha": strconv.FormatFloat(cfg.SMC.Alpha, 'g', -1, 64)}); err != nil {
				return nil, err
			}
		} else {
			since++
		}
		if tty {
			fmt.Fprint(log, "\r")
		}
		fmt.Fprintf(log, "epoch %d: loss %.4f, q_phi mean reward %.4f, sum_t Var(log w_t) %.4f, %.1fs%s\n",
			epoch, sum, vr, stepVar, ep.Seconds, map[bool]string{true: " (best; checkpoint saved)", false: ""}[better])
		if err := writeProposalCurve(cfg.Out, rep.Epochs, cfg.Name); err != nil {
			return nil, err
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if err := writeJSON(filepath.Join(cfg.Out, "proposal_summary.json"), rep); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "trained %d epochs in %.0fs; best epoch %d (lowest sum_t Var(log w_t) = %.4f): q_phi mean reward %.4f (p_theta %.4f); %s\n",
		len(rep.Epochs), rep.Seconds, rep.Best, rep.BestStepVar, rep.BestReward, rep.BaseReward, rep.Checkpoint)
	return rep, nil
}

// combine concatenates step i of the on- and off-policy rollouts.
func combine(on, off []rolloutStep, i int) (xt, xs []int, c []float64, t, s float64) {
	for _, part := range [][]rolloutStep{on, off} {
		if part != nil {
			xt, xs, c = append(xt, part[i].xt...), append(xs, part[i].xs...), append(c, part[i].c...)
			t, s = part[i].t, part[i].s
		}
	}
	return
}

// stepLogW returns log w = c − log q_φ of every trajectory at each step.
func stepLogW(loss *objectives.LogVarLoss, on, off []rolloutStep, T, B int) ([][]float64, error) {
	out := make([][]float64, T)
	logq := make([]float64, B)
	for i := range T {
		xt, xs, c, t, s := combine(on, off, i)
		if err := loss.LogQ(xt, xs, t, s, logq); err != nil {
			return nil, err
		}
		out[i] = make([]float64, B)
		for b := range c {
			out[i][b] = c[b] - logq[b]
		}
	}
	return out, nil
}

// initF sets F_ψ[t] to the mean log-weight of step t over a rollout batch.
func initF(loss *objectives.LogVarLoss, on, off []rolloutStep, T, B int) error {
	w, err := stepLogW(loss, on, off, T, B)
	if err != nil {
		return err
	}
	f := make([]float64, T)
	for i := range T {
		for _, v := range w[i] {
			f[i] += v / float64(B)
		}
	}
	return loss.SetF(f)
}

// writeProposalCurve writes proposal_curve.csv and proposal_curve.png.
func writeProposalCurve(dir string, eps []ProposalEpoch, name string) error {
	err := atomicfile.Write(filepath.Join(dir, "proposal_curve.csv"), func(w *bufio.Writer) error {
		fmt.Fprintln(w, "epoch,loss,val_reward,step_var,seconds")
		for _, e := range eps {
			fmt.Fprintf(w, "%d,%.6g,%.6g,%.6g,%.2f\n", e.Epoch, e.Loss, e.ValReward, e.StepVar, e.Seconds)
		}
		return nil
	})
	if err != nil || len(eps) == 0 {
		return err
	}
	var x, l, v []float64
	for _, e := range eps {
		x, l, v = append(x, float64(e.Epoch)), append(l, e.Loss), append(v, e.StepVar)
	}
	return plots.LossCurve(filepath.Join(dir, "proposal_curve.png"), x, l, x, v,
		name+": log-variance loss (line) and Σ_t Var(log w_t) on validation rollouts (markers)")
}

// LoadProposal reads a trained q_φ checkpoint and its F_ψ.
func LoadProposal(path string) (*graph.Model, []float64, error) {
	m, meta, err := graph.Load(path)
	if err != nil {
		return nil, nil, err
	}
	var f []float64
	if s, ok := meta["f_psi"]; ok {
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			return nil, nil, fmt.Errorf("experiments: %s: bad f_psi metadata: %w", path, err)
		}
	}
	return m, f, nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
