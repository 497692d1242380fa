package experiments

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ddsmc/ddsmc/configs"
	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
)

// Config is the one configuration of a denoiser experiment: which task
// (the [data] name) with its options, which model, which diffusion
// process, how to train it, how to sample it and how to steer it. TOML
// files hold overrides of Default; an unknown key, a wrong type or an
// out-of-range value is an error naming the key. The task decodes the
// keys it owns (e.g. a [reward] table) itself.
type Config struct {
	Name string `toml:"name"` // run name
	Out  string `toml:"out"`  // output directory (default runs/<name>)
	// Checkpoint is the denoiser checkpoint that training writes and
	// every other command reads (default <out>/denoiser.ckpt); e.g. a
	// trained model shipped in the repository.
	Checkpoint string                 `toml:"checkpoint"`
	Data       DataConfig             `toml:"data"`      // task and data sizes
	Model      graph.Config           `toml:"model"`     // denoiser architecture
	Diffusion  DiffusionConfig        `toml:"diffusion"` // masking process and sampler
	Train      objectives.TrainConfig `toml:"train"`     // training loop
	Sample     SampleConfig           `toml:"sample"`    // unguided sampling
	SMC        SMCConfig              `toml:"smc"`       // SMC steering (ddsmc smc)
	Proposal   ProposalConfig         `toml:"proposal"`  // amortised proposal training (ddsmc train-proposal)

	// Task is the opened task of Data.Name; TaskOptions are the options it
	// decoded (recorded in sweep plans); Source is the config argument,
	// for messages that name a command to run.
	Task        task.Task `toml:"-" json:"-"`
	TaskOptions []any     `toml:"-" json:"task_options,omitempty"`
	Source      string    `toml:"-" json:"-"`
}

// DataConfig is the common part of the [data] table: the task name and the
// data sizes (a task may own further [data] keys, such as an image size).
type DataConfig struct {
	Name      string `toml:"name"`       // registered task name (see ddsmc tasks)
	TrainSize int    `toml:"train_size"` // training sequences (default set by the task)
	ValSize   int    `toml:"val_size"`   // held-out sequences (default set by the task)
	Seed      uint64 `toml:"seed"`       // seed of the data draw
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
		Data: DataConfig{Name: "gmm1", TrainSize: 100000, ValSize: 5000, Seed: 1},
		Model: graph.Config{Arch: "mlp", Embed: 64, Hidden: 256, Layers: 3, Heads: 4, TimeDim: 0,
			Act: "relu", DType: "float32", InitSeed: 1},
		Diffusion: DiffusionConfig{Schedule: "linear", Eps: 1e-3, Steps: 100, Grid: "linear", Remask: "rescale"},
		Train: objectives.TrainConfig{Steps: 6000, Batch: 256, LR: 1e-3, ValEvery: 1000, ValSamples: 4,
			CheckpointEvery: 2000, Seed: 2},
		Sample:   SampleConfig{N: 100000, Batch: 1000, Seed: 3, Exact: true},
		SMC:      DefaultSMC(),
		Proposal: DefaultProposal(),
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
	if st, err := os.Stat(arg); (err == nil && !st.IsDir()) || strings.ContainsAny(arg, `/\`) || strings.HasSuffix(arg, ".toml") {
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

// Parse decodes TOML overrides (name is used in messages) and opens the
// config's task, which decodes the keys it owns. A key that neither the
// runner nor the task knows is an error naming it.
func Parse(name string, b []byte) (Config, error) {
	if err := checkNesting(b); err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&cfg)
	if err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	dec, err := task.NewTOML(b)
	if err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	spec := &task.Spec{Name: cfg.Data.Name, TrainSize: cfg.Data.TrainSize, ValSize: cfg.Data.ValSize, Seed: cfg.Data.Seed}
	tk, err := task.Open(spec, dec)
	if err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&raw); err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	types := []reflect.Type{reflect.TypeFor[Config]()}
	for _, o := range dec.Options() {
		types = append(types, reflect.TypeOf(o))
	}
	unknown, err := strictKeys(raw, "", types...)
	if err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
	}
	for _, k := range md.Undecoded() {
		if !dec.Known(k.String()) && !slices.Contains(unknown, k.String()) {
			unknown = append(unknown, k.String())
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return Config{}, fmt.Errorf("experiments: config %s: unknown key %s", name, strings.Join(unknown, ", "))
	}
	cfg.Task, cfg.TaskOptions, cfg.Source = tk, dec.Options(), name
	cfg.Data.TrainSize, cfg.Data.ValSize = spec.TrainSize, spec.ValSize
	if err := cfg.SMC.applyMethod(func(key string) bool { return md.IsDefined("smc", key) }); err != nil {
		return Config{}, fmt.Errorf("experiments: config %s: %w", name, err)
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
	case d.TrainSize <= 0:
		return fmt.Errorf("data.train_size = %d: must be positive", d.TrainSize)
	case d.ValSize <= 0:
		return fmt.Errorf("data.val_size = %d: must be positive", d.ValSize)
	}
	f := c.Diffusion
	for _, e := range []struct{ key, v string }{{"diffusion.schedule", f.Schedule}, {"diffusion.remask", f.Remask}, {"diffusion.grid", f.Grid}, {"proposal.kl", c.Proposal.KL}} {
		if err := exactName(e.key, e.v); err != nil {
			return err
		}
	}
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
	if c.Task != nil {
		return c.checkSizes()
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

// exactName refuses enum values that are not exactly lower-case names
// (the parsers below would otherwise accept " SYSTEMATIC "): one rule for
// every enum key.
func exactName(key, v string) error {
	if norm := strings.ToLower(strings.TrimSpace(v)); norm != v {
		return fmt.Errorf("%s = %q: names are lower-case without spaces (did you mean %q?)", key, v, norm)
	}
	return nil
}
