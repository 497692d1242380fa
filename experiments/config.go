package experiments

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ddsmc/ddsmc/configs"
	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
)

// Config is the one configuration of a denoiser experiment: which data,
// which model, which diffusion process, how to train it and how to sample
// it. TOML files hold overrides of Default; an unknown key, a wrong type or
// an out-of-range value is an error naming the key.
type Config struct {
	Name      string                 `toml:"name"`      // run name
	Out       string                 `toml:"out"`       // output directory (default runs/<name>)
	Data      DataConfig             `toml:"data"`      // data set
	Model     graph.Config           `toml:"model"`     // denoiser architecture
	Diffusion DiffusionConfig        `toml:"diffusion"` // masking process and sampler
	Train     objectives.TrainConfig `toml:"train"`     // training loop
	Sample    SampleConfig           `toml:"sample"`    // unguided sampling
	SMC       SMCConfig              `toml:"smc"`       // SMC steering (ddsmc smc)
	Proposal  ProposalConfig         `toml:"proposal"`  // amortised proposal training (ddsmc train-proposal)
	Reward    RewardConfig           `toml:"reward"`    // classifier reward (image tasks)
}

// DataConfig selects a data set.
type DataConfig struct {
	Name      string `toml:"name"`       // "gmm1", "gmm2" or "mnist"
	TrainSize int    `toml:"train_size"` // training sequences drawn (mnist: the first train_size of the 60,000 training images)
	ValSize   int    `toml:"val_size"`   // held-out sequences drawn (mnist: the first val_size of the 10,000 test images)
	Seed      uint64 `toml:"seed"`       // seed of the data draw
	Size      int    `toml:"size"`       // mnist image side: 28, or 14 for the 2×2-downsampled variant
}

// RewardConfig is the [reward] table of classifier-reward tasks (mnist):
// r(x) = log p_clf(y = target | x) under the main classifier; the held-out
// classifier gives the "val" metrics. Empty paths default to
// runs/mnist<size>/clf_main.ckpt and clf_val.ckpt, where
// `ddsmc train-classifiers` writes them.
type RewardConfig struct {
	Target        int    `toml:"target"`         // target class (digit 0..9)
	Classifier    string `toml:"classifier"`     // main (reward) classifier checkpoint
	ValClassifier string `toml:"val_classifier"` // held-out classifier checkpoint
}

// ClassifierPaths returns the main and held-out classifier checkpoints.
func (c *Config) ClassifierPaths() (main, val string) {
	main, val = c.Reward.Classifier, c.Reward.ValClassifier
	dir := DefaultClassifierDir(c.Data.Size)
	if main == "" {
		main = filepath.Join(dir, "clf_main.ckpt")
	}
	if val == "" {
		val = filepath.Join(dir, "clf_val.ckpt")
	}
	return main, val
}

// DefaultClassifierDir is where `ddsmc train-classifiers -size S` writes by
// default and where [reward] looks when its paths are empty: runs/mnistS.
func DefaultClassifierDir(size int) string {
	return filepath.Join("runs", fmt.Sprintf("mnist%d", size))
}

// DiffusionConfig describes the masking schedule and the reverse sampler.
type DiffusionConfig struct {
	Schedule string  `toml:"schedule"` // "linear", "cosine" or "loglinear"
	Eps      float64 `toml:"eps"`      // ε of the log-linear schedule
	Steps    int     `toml:"steps"`    // T, reverse steps when sampling
	Grid     string  `toml:"grid"`     // time discretisation: "linear" or "cosine"
	Eta      float64 `toml:"eta"`      // ReMDM remasking η (0 = MDLM)
	Remask   string  `toml:"remask"`   // ReMDM strategy: "rescale" or "maxcap"
}

// SampleConfig controls unguided sampling.
type SampleConfig struct {
	N     int    `toml:"n"`     // number of samples
	Batch int    `toml:"batch"` // sequences per denoiser call
	Seed  uint64 `toml:"seed"`  // sampling seed
	Exact bool   `toml:"exact"` // also compute the model's exact T-step marginal (small L·V only)
}

// Default returns the built-in configuration: GMM-1 with a time-free MLP
// denoiser, linear schedule, T = 100 linear grid.
func Default() Config {
	return Config{
		Name: "gmm1",
		Data: DataConfig{Name: "gmm1", TrainSize: 100000, ValSize: 5000, Seed: 1, Size: 28},
		Model: graph.Config{Arch: "mlp", Embed: 64, Hidden: 256, Layers: 3, Heads: 4, TimeDim: 0,
			Act: "relu", DType: "float32", InitSeed: 1},
		Diffusion: DiffusionConfig{Schedule: "linear", Eps: 1e-3, Steps: 100, Grid: "linear", Remask: "rescale"},
		Train: objectives.TrainConfig{Steps: 6000, Batch: 256, LR: 1e-3, ValEvery: 1000, ValSamples: 4,
			CheckpointEvery: 2000, Seed: 2},
		Sample:   SampleConfig{N: 100000, Batch: 1000, Seed: 3, Exact: true},
		SMC:      DefaultSMC(),
		Proposal: DefaultProposal(),
		Reward:   RewardConfig{Target: 4},
	}
}

// Load reads a TOML file of overrides on top of Default.
func Load(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("experiments: config: %w", err)
	}
	return Parse(path, b)
}

// ConfigText returns the TOML text of a config argument: a file (any path
// that exists, contains a path separator or ends in .toml) or the name of
// a built-in config (package configs). Experiment and sweep configs alike.
func ConfigText(arg string) ([]byte, error) {
	if _, err := os.Stat(arg); err == nil || strings.ContainsAny(arg, `/\`) || strings.HasSuffix(arg, ".toml") {
		b, err := os.ReadFile(arg)
		if err != nil {
			return nil, fmt.Errorf("experiments: config: %w", err)
		}
		return b, nil
	}
	b, err := configs.Get(arg)
	if err != nil {
		return nil, fmt.Errorf("experiments: %q is neither a config file nor a built-in config: %w", arg, err)
	}
	return b, nil
}

// Parse decodes TOML overrides (name is used in error messages only).
func Parse(name string, b []byte) (Config, error) {
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&cfg)
	if err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		sort.Strings(keys)
		return Config{}, fmt.Errorf("experiments: config %s: unknown key %s", name, strings.Join(keys, ", "))
	}
	if err := cfg.SMC.applyMethod(func(key string) bool { return md.IsDefined("smc", key) }); err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	if cfg.Data.Name == "mnist" { // the GMM defaults do not fit MNIST's splits
		if !md.IsDefined("data", "train_size") {
			cfg.Data.TrainSize = 60000
		}
		if !md.IsDefined("data", "val_size") {
			cfg.Data.ValSize = 2000
		}
	}
	if !md.IsDefined("name") && md.IsDefined("data", "name") {
		cfg.Name = cfg.Data.Name
	}
	if cfg.Out == "" {
		cfg.Out = filepath.Join("runs", cfg.Name)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	return cfg, nil
}

// Validate reports the first out-of-range value, naming its key.
func (c *Config) Validate() error {
	d := c.Data
	switch {
	case c.Name == "" || strings.ContainsAny(c.Name, `/\`):
		return fmt.Errorf("name = %q: must be a non-empty file-name-safe string", c.Name)
	case d.Name != "gmm1" && d.Name != "gmm2" && d.Name != "mnist":
		return fmt.Errorf("data.name = %q: want \"gmm1\", \"gmm2\" or \"mnist\"", d.Name)
	case d.TrainSize <= 0:
		return fmt.Errorf("data.train_size = %d: must be positive", d.TrainSize)
	case d.ValSize <= 0:
		return fmt.Errorf("data.val_size = %d: must be positive", d.ValSize)
	case d.Name == "mnist" && d.Size != 28 && d.Size != 14:
		return fmt.Errorf("data.size = %d: want 28 (full MNIST) or 14 (2×2 downsampled)", d.Size)
	case d.Name == "mnist" && d.TrainSize > 60000:
		return fmt.Errorf("data.train_size = %d: MNIST has 60000 training images", d.TrainSize)
	case d.Name == "mnist" && d.ValSize > 10000:
		return fmt.Errorf("data.val_size = %d: MNIST has 10000 test images", d.ValSize)
	case c.Reward.Target < 0 || c.Reward.Target > 9:
		return fmt.Errorf("reward.target = %d: want a digit 0..9", c.Reward.Target)
	}
	f := c.Diffusion
	if _, err := diffusion.ParseSchedule(f.Schedule, f.Eps); err != nil {
		return fmt.Errorf("diffusion.schedule/eps: %w", err)
	}
	switch {
	case f.Steps <= 0:
		return fmt.Errorf("diffusion.steps = %d: must be positive", f.Steps)
	case f.Grid != "linear" && f.Grid != "cosine":
		return fmt.Errorf("diffusion.grid = %q: want \"linear\" or \"cosine\"", f.Grid)
	case !(f.Eta >= 0 && f.Eta <= 1):
		return fmt.Errorf("diffusion.eta = %v: must be in [0, 1]", f.Eta)
	}
	if _, err := diffusion.ParseRemask(f.Remask); err != nil {
		return fmt.Errorf("diffusion.remask: %w", err)
	}
	s := c.Sample
	switch {
	case s.N <= 0:
		return fmt.Errorf("sample.n = %d: must be positive", s.N)
	case s.Batch <= 0:
		return fmt.Errorf("sample.batch = %d: must be positive", s.Batch)
	}
	if err := c.Train.Validate(); err != nil {
		return err
	}
	m := c.Model
	m.L, m.V = 1, 1 // shape comes from the data; check the rest
	if err := m.Validate(); err != nil {
		return err
	}
	if math.IsNaN(f.Eps) {
		return fmt.Errorf("diffusion.eps is NaN")
	}
	if err := c.SMC.Validate(); err != nil {
		return err
	}
	if err := c.Proposal.Validate(); err != nil {
		return err
	}
	if c.SMC.Lambda == "list" {
		if err := c.SMC.lambda().Validate(f.Steps); err != nil {
			return fmt.Errorf("smc.lambda_values: %w", err)
		}
	}
	return nil
}

// Kernel returns the reverse kernel and time grid the config describes.
func (c *Config) Kernel() (diffusion.Kernel, diffusion.Grid, error) {
	s, err := diffusion.ParseSchedule(c.Diffusion.Schedule, c.Diffusion.Eps)
	if err != nil {
		return diffusion.Kernel{}, nil, err
	}
	r, err := diffusion.ParseRemask(c.Diffusion.Remask)
	if err != nil {
		return diffusion.Kernel{}, nil, err
	}
	g, err := diffusion.NewGrid(c.Diffusion.Steps, c.Diffusion.Grid)
	if err != nil {
		return diffusion.Kernel{}, nil, err
	}
	return diffusion.Kernel{Schedule: s, Eta: c.Diffusion.Eta, Remask: r}, g, nil
}
