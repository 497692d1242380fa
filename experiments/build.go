package experiments

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

// loadModel reads a denoiser checkpoint and checks its shape against the
// task's; what names the checkpoint's role in messages. Only regular files
// are read (a FIFO would block forever).
func loadModel(path, what string, tk task.Task, hint string) (*graph.Model, map[string]string, error) {
	if err := regularFile(path, what, hint); err != nil {
		return nil, nil, err
	}
	m, meta, err := graph.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if L, V, L0, V0 := shapes(m, tk); L != L0 || V != V0 {
		return nil, nil, fmt.Errorf("experiments: %s %s is for L=%d, V=%d but task %s has L=%d, V=%d", what, path, L, V, tk.Name(), L0, V0)
	}
	if got, ok := meta[metaFingerprint]; ok {
		if f, isF := tk.(task.Fingerprinted); isF {
			want, err := f.Fingerprint()
			if err != nil {
				return nil, nil, err
			}
			if got != want {
				return nil, nil, fmt.Errorf("experiments: %s %s was trained with another encoding of task %s (%.24s…, the task's is %.24s…): its tokens would mean other words; retrain it, or restore the data it was trained on", what, path, tk.Name(), got, want)
			}
		}
	}
	return m, meta, nil
}

// metaFingerprint is the checkpoint metadata key of the task's
// fingerprint (task.Fingerprinted).
const metaFingerprint = "task_fingerprint"

// taskFingerprint returns the task's fingerprint ("" if it has none).
func taskFingerprint(tk task.Task) (string, error) {
	f, ok := tk.(task.Fingerprinted)
	if !ok {
		return "", nil
	}
	return f.Fingerprint()
}

// regularFile checks that path is a regular file.
func regularFile(path, what, hint string) error {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("experiments: no %s at %s: %s", what, path, hint)
	case err != nil:
		return fmt.Errorf("experiments: %s: %w", what, err)
	case !st.Mode().IsRegular():
		return fmt.Errorf("experiments: %s %s is not a regular file (%s)", what, path, st.Mode().Type())
	}
	return nil
}

// loadDenoiser reads the trained checkpoint of cfg and checks that it is
// the config's model: trained on the config's task, with the config's
// [model] architecture (a mismatch names both).
func loadDenoiser(cfg Config) (*graph.Model, map[string]string, error) {
	path := cfg.CheckpointPath()
	m, meta, err := loadModel(path, "trained denoiser", cfg.Task, "run `ddsmc train "+cfg.Source+"` first")
	if err != nil {
		return nil, nil, err
	}
	if d, ok := meta["data"]; ok && d != cfg.Data.Name {
		return nil, nil, fmt.Errorf("experiments: checkpoint %s was trained on task %s, but the config's data.name is %s: use the config it was trained with, or another out", path, d, cfg.Data.Name)
	}
	if diff := modelDiff(cfg.Model, m.Cfg); diff != "" {
		return nil, nil, fmt.Errorf("experiments: checkpoint %s does not match the config's [model]: %s (the config must describe the checkpoint; retrain, or fix [model])", path, diff)
	}
	return m, meta, nil
}

// modelDiff lists the architecture keys on which a config's [model] and a
// checkpoint's differ ("" if none); the initialisation seed is not
// compared (it does not describe a trained model).
func modelDiff(want, got graph.Config) string {
	var d []string
	add := func(key string, a, b any) {
		if a != b {
			d = append(d, fmt.Sprintf("model.%s = %v in the config, %v in the checkpoint", key, a, b))
		}
	}
	add("arch", want.Arch, got.Arch)
	add("embed", want.Embed, got.Embed)
	add("hidden", want.Hidden, got.Hidden)
	add("layers", want.Layers, got.Layers)
	if want.Arch == "transformer" {
		add("heads", want.Heads, got.Heads)
	}
	add("time_dim", want.TimeDim, got.TimeDim)
	add("activation", want.Act, got.Act)
	add("dtype", want.DType, got.DType)
	add("lora_rank", want.LoRARank, got.LoRARank)
	return strings.Join(d, "; ")
}

// fileSHA256 returns the hex SHA-256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("experiments: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("experiments: %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
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
// trained denoiser m: one model clone per worker, the target (tilted or
// product), the task's reward, the twist (with, for the gradient twist,
// the Gorgonia look-ahead), the proposal and the resampler.
func BuildSampler(cfg Config, m *graph.Model) (*smc.Sampler, smc.Target, error) {
	s, tg, _, err := buildSampler(cfg, m, 1)
	return s, tg, err
}

// buildSampler is BuildSampler for runs batched runs at a time
// (Sampler.RunMany) that also returns the SHA-256 of every further
// checkpoint it loaded (path → hash).
func buildSampler(cfg Config, m *graph.Model, runs int) (*smc.Sampler, smc.Target, map[string]string, error) {
	models := map[string]string{}
	s, tg, err := buildInto(cfg, m, max(runs, 1), models)
	return s, tg, models, err
}

func buildInto(cfg Config, m *graph.Model, runs int, shas map[string]string) (*smc.Sampler, smc.Target, error) {
	sc := cfg.SMC
	tk := cfg.Task
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, smc.Target{}, err
	}
	if sc.Steps > 0 {
		if grid, err = diffusion.NewGrid(sc.Steps, cfg.Diffusion.Grid); err != nil {
			return nil, smc.Target{}, err
		}
	}
	if sc.Eta != nil {
		k.Eta = *sc.Eta
		if err := k.Validate(); err != nil {
			return nil, smc.Target{}, fmt.Errorf("experiments: smc.eta = %v: %w", *sc.Eta, err)
		}
	}
	if m, err = conditionOn(m, sc, cfg.CheckpointPath()); err != nil {
		return nil, smc.Target{}, err
	}
	models, dens, err := workerClones(m, sc.Workers)
	if err != nil {
		return nil, smc.Target{}, err
	}
	// Denoiser calls are padded to a fixed batch; with fewer particles than
	// smc.batch the padding would be wasted work (the gradient look-ahead
	// graph most of all), so the batch is capped at the particles of all
	// the runs batched together (N, or R·N for RunMany).
	batch := min(sc.Batch, runs*sc.Particles)
	rev, err := smc.NewReverse(k, dens, batch)
	if err != nil {
		return nil, smc.Target{}, err
	}
	if sc.NoCache {
		rev.DisableCache()
	}
	var base smc.Base = rev
	if sc.Guidance != nil { // CFG: p(x|c)^w · p(x)^(1−w) from one conditional network
		null, err := m.WithClass(graph.NullClass)
		if err != nil {
			return nil, smc.Target{}, err
		}
		_, dens2, err := workerClones(null, sc.Workers)
		if err != nil {
			return nil, smc.Target{}, err
		}
		w := *sc.Guidance
		if base, err = smc.NewProduct(k, dens, dens2, w, 1-w, batch); err != nil {
			return nil, smc.Target{}, err
		}
	} else if sc.Target == "product" {
		if shas[sc.SecondModel], err = fileSHA256(sc.SecondModel); err != nil {
			return nil, smc.Target{}, err
		}
		m2, _, err := loadModel(sc.SecondModel, "smc.second_model checkpoint", tk, "train it, or fix the path")
		if err != nil {
			return nil, smc.Target{}, err
		}
		if m2.Cfg.Classes > 0 {
			return nil, smc.Target{}, fmt.Errorf("experiments: smc.second_model %s is class-conditional (model.classes = %d): for classifier-free guidance set smc.guidance and smc.class with the one conditional checkpoint", sc.SecondModel, m2.Cfg.Classes)
		}
		_, dens2, err := workerClones(m2, sc.Workers)
		if err != nil {
			return nil, smc.Target{}, err
		}
		if base, err = smc.NewProduct(k, dens, dens2, sc.Exponents[0], sc.Exponents[1], batch); err != nil {
			return nil, smc.Target{}, err
		}
	}
	reward, rgraphs, err := tk.Reward(sc.Workers)
	if err != nil {
		return nil, smc.Target{}, notPrepared(cfg, err)
	}
	if sc.Reward == "none" {
		reward = nil // the engine's zero reward: the target is the base alone
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
		twist = smc.GradLookAhead{Pool: pool, Share: rev}
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
		if err := regularFile(path, "proposal checkpoint", "train one with ddsmc train-proposal "+cfg.Source); err != nil {
			return nil, smc.Target{}, err
		}
		if shas[path], err = fileSHA256(path); err != nil {
			return nil, smc.Target{}, err
		}
		qm, _, err := LoadProposal(path)
		if err != nil {
			return nil, smc.Target{}, fmt.Errorf("experiments: proposal = \"learned\": %w (train one with ddsmc train-proposal %s)", err, cfg.Source)
		}
		if L, V, L0, V0 := shapes(qm, tk); L != L0 || V != V0 {
			return nil, smc.Target{}, fmt.Errorf("experiments: proposal checkpoint %s is for L=%d, V=%d, not L=%d, V=%d", path, L, V, L0, V0)
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
	var clamp []int
	if sc.Prompt != "" {
		p, ok := tk.(task.Prompted)
		if !ok {
			return nil, smc.Target{}, fmt.Errorf("experiments: smc.prompt = %q: task %s takes no prompts", sc.Prompt, tk.Name())
		}
		if clamp, err = p.Clamp(sc.Prompt); err != nil {
			return nil, smc.Target{}, fmt.Errorf("experiments: smc.prompt = %q: %w", sc.Prompt, err)
		}
	}
	s, err := smc.New(target, smc.Config{
		N: sc.Particles, Grid: grid, Lambda: sc.lambda(), Twist: twist, Proposal: prop,
		Resampler: res, Trigger: sc.trigger(), Final: final, Workers: sc.Workers, RewardBatch: 1024, Clamp: clamp,
	})
	return s, target, err
}

// notPrepared adds the prepare command to a task.ErrNotPrepared error.
func notPrepared(cfg Config, err error) error {
	if errors.Is(err, task.ErrNotPrepared) {
		return fmt.Errorf("%w: run `ddsmc prepare %s` (task %s)", err, cfg.Source, cfg.Task.Name())
	}
	return err
}

// shapes returns a model's (L, V) and a task's.
func shapes(m *graph.Model, tk task.Task) (L, V, L0, V0 int) {
	L, V = m.Shape()
	L0, V0 = tk.Shape()
	return
}

// conditionOn returns m conditioned on smc.class for a class-conditional
// checkpoint, and m itself for an unconditional one; a class for an
// unconditional checkpoint, or none for a conditional one, is an error.
func conditionOn(m *graph.Model, sc SMCConfig, path string) (*graph.Model, error) {
	K := m.Cfg.Classes
	switch {
	case K == 0 && sc.Class != nil:
		return nil, fmt.Errorf("experiments: smc.class = %d needs a class-conditional checkpoint, and %s is unconditional (train one with model.classes > 0, e.g. ddsmc train mnist-cond)", *sc.Class, path)
	case K == 0:
		return m, nil
	case sc.Class == nil:
		return nil, fmt.Errorf("experiments: %s is class-conditional (model.classes = %d): set smc.class to a class 0..%d, or to -1 for its unconditional null class", path, K, K-1)
	case *sc.Class >= K:
		return nil, fmt.Errorf("experiments: smc.class = %d outside the checkpoint's classes 0..%d", *sc.Class, K-1)
	}
	return m.WithClass(*sc.Class)
}
