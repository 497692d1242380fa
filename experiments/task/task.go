// Package task is the contract between the experiment runner and a domain
// (a data set with its reward and its own metrics).
//
// The runner in package experiments programs against Task and never looks
// behind it: it trains denoisers on Data, steers them toward Reward, records
// the common metrics of every run (reward, ESS, resamples, log Ẑ, wall time)
// and adds the ones the task's Evaluator computes, and draws outputs with the
// task's Render. Optional capabilities are discovered by type assertion, not
// by name: Exact (an enumerable target, for TV and log-Z errors and the
// "target" method), Labelled (class labels, for conditioning), Preparer
// (artefacts made before training or steering, such as reward classifiers)
// and SampleReporter (a task's own report of unguided samples).
//
// A domain lives in its own package and registers a Factory under its name
// in an init function; cmd/ddsmc imports the domain packages (one list), so
// that adding a domain is one folder, one import line and its configs:
//
//	func init() { task.Register("gmm1", open) }
//
// A config's [data] name selects the factory; the factory decodes the keys
// it owns (anywhere in the config, e.g. [reward] or extra [data] keys) with
// the Decoder it is given, so an unknown key is still an error naming it.
package task

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

// Task is one domain: its shape, data, reward, metrics and renderer.
// Opening a task is cheap; the heavy parts (data files, classifiers, exact
// references) are loaded by the methods that need them.
type Task interface {
	// Name is the task's registered name (the config's [data] name).
	Name() string
	// Shape is the sequence length L and vocabulary size V (without MASK).
	Shape() (L, V int)
	// Data returns the "train" or "val" split as clean token rows.
	Data(split string) (*Dataset, error)
	// Reward returns the reward r(x0) as an smc.Reward and, for the
	// gradient look-ahead, one differentiable copy per worker (workers
	// share nothing mutable).
	Reward(workers int) (smc.Reward, []objectives.RewardGraph, error)
	// Metrics lists the task's own result columns, in order, after the
	// runner's common ones (CommonMetrics).
	Metrics() []Metric
	// Evaluator returns what scores the outputs of runs on model m (held-out
	// judges, exact references). It is called once per sweep or run.
	Evaluator(m Model) (Evaluator, error)
	// Render draws the outputs of one or more runs (a panel each) to path
	// (PNG or SVG by extension): scatters, image grids, text, sequences.
	Render(path string, panels []Panel) error
}

// Model is what an Evaluator may use of the trained denoiser: the model,
// its reverse kernel and time grid, and the batch size for enumeration.
type Model struct {
	Denoiser diffusion.Denoiser
	Kernel   diffusion.Kernel
	Grid     diffusion.Grid
	Batch    int
}

// Evaluator scores one run's outputs. Evaluate returns the task's metrics
// (the keys of Task.Metrics; NaN where one does not apply to this run).
// It may write side files (e.g. per-sample judge scores) into out.Dir.
// It must be safe for concurrent use by the runs of a sweep.
type Evaluator interface {
	Evaluate(rng *rand.Rand, out Outputs) (map[string]float64, error)
}

// Outputs are one run's results as a task sees them.
type Outputs struct {
	// L is the sequence length; Samples holds the selected outputs as rows.
	L       int
	Samples []int
	// LogW are the outputs' normalised log-weights (nil: uniform).
	LogW []float64
	// X and XLogW are the final weighted particles (nil for runs without
	// weights, such as draws from an exact target).
	X     []int
	XLogW []float64
	// LogZ is the run's log Ẑ (NaN if none); Alpha the target's α.
	LogZ, Alpha float64
	// Dir is the run's directory, for side files ("" writes none).
	Dir string
	// Classes, when not nil, is the class each output was conditioned on
	// (a class-conditional model's smc.class; one per output), so that a
	// task's metrics can score each output against its own class.
	Classes []int
}

// Panel is one run drawn by Render: a title (the runner's label of the
// run), its outputs and its recorded metrics.
type Panel struct {
	Title   string
	Out     Outputs
	Metrics map[string]float64
}

// Metric is a results column: its key, an axis label, and whether the
// runner plots it against the swept settings and puts it in summary tables.
type Metric struct {
	Key, Label    string
	Plot, Summary bool
}

// CommonMetrics are the columns the runner records for every task, before
// the task's own. reward_mean is the mean of the outputs' rewards, weighted
// by the outputs' weights when they carry weights (final = "weighted").
// The last five are the run's cost as the SMC engine counted it
// (smc.Cost, smc.CostColumns; NaN for draws from an exact target), the x
// axes of matched-budget figures (`ddsmc plot -x denoiser_rows`).
var CommonMetrics = []Metric{
	{"reward_mean", "mean reward of the outputs (weighted if final = weighted)", true, true},
	{"reward_max", "best reward among the outputs", true, true},
	{"ess_min", "min ESS/N", true, true},
	{"ess_mean", "mean ESS/N", false, true},
	{"resamples", "resampling events", true, true},
	{"log_z", "log Ẑ", false, false},
	{"wall_s", "wall time per run (s)", true, true},
	{"outputs", "outputs", false, false},
	{"denoiser_rows", "denoiser rows evaluated (forward)", false, false},
	{"grad_rows", "rows differentiated (gradient look-ahead)", false, false},
	{"reward_evals", "reward evaluations", false, false},
	{"proposal_rows", "learned proposal rows (q_φ)", false, false},
	{"network_rows", "network rows (denoiser + differentiated + proposal)", false, false},
}

// Exact is the capability of tasks whose targets are enumerable (toys): the
// runner's "target" method draws from the task's reference target.
type Exact interface {
	// SampleTarget draws n outputs from the task's exact reference target
	// at α (for the GMMs, the data pmf tilted by exp(r/α)).
	SampleTarget(rng *rand.Rand, alpha float64, n int) ([]int, error)
}

// Labelled is the capability of tasks with class labels (conditioning).
type Labelled interface {
	// Classes is the number of classes.
	Classes() int
	// Labels returns the class labels of the rows of Data(split).
	Labels(split string) ([]int, error)
}

// Preparer is the capability of tasks that need artefacts made before
// training or steering (reward classifiers, vocabularies, fetched data).
type Preparer interface {
	// Prepare makes the missing artefacts (all of them with force),
	// logging progress to log.
	Prepare(force bool, log io.Writer) error
	// Missing describes the artefacts that are absent (empty: none).
	Missing() []string
}

// SampleReporter is the capability of tasks that report unguided samples
// their own way (`ddsmc sample`): x holds n rows drawn from model m. The
// returned value is written to sample_summary.json.
type SampleReporter interface {
	ReportSamples(s SampleRun, x []int, log io.Writer) (any, error)
}

// SampleRun describes an unguided sampling run for a SampleReporter.
type SampleRun struct {
	Name string // config name
	Dir  string // output directory (samples.csv is already there)
	Model
	// ELBO evaluates the model's −ELBO (nats per token) on data, batch
	// rows per call: mean and standard error over rows.
	ELBO    func(data *Dataset, batch int) (mean, se float64, err error)
	Seed    uint64 // sampling seed
	Seconds float64
	Exact   bool   // also enumerate the model's exact marginal (small L·V)
	Step    string // training step of the checkpoint
}

// Fingerprinted is the capability of tasks whose token encoding is built
// from data (e.g. a vocabulary): Fingerprint identifies it. The trainer
// stamps it into every checkpoint it writes, and a checkpoint stamped with
// another fingerprint is refused, since its tokens would mean other words.
type Fingerprinted interface {
	Fingerprint() (string, error)
}

// Describer is the capability of tasks whose outputs read as text: one
// line per output (length-L rows of x), with the task's scores, for
// commands that print samples (e.g. ddsmc demo).
type Describer interface {
	Describe(x []int) ([]string, error)
}

// Prompted is the capability of tasks whose runs can be conditioned on a
// prompt: Clamp turns the config's [smc] prompt into a clamp pattern (a
// token per position, −1 for free positions; smc.Config.Clamp), e.g. a
// tokenised text prefix. A prompt it cannot express (too long, a word
// outside the vocabulary) is an error naming the problem.
type Prompted interface {
	Clamp(prompt string) ([]int, error)
}

// Entropic is the capability of tasks whose data entropy is known exactly
// (nats per token): a floor for any model's negative log-likelihood,
// reported beside the held-out −ELBO.
type Entropic interface {
	Entropy() float64
}

// Decoder decodes the task-owned keys of a config: Decode fills v (a
// pointer to the task's options, pre-set to their defaults) from the
// config's text, and the keys v names count as known. Defined reports
// whether a key path (e.g. "data", "size") is set in the config.
type Decoder interface {
	Decode(v any) error
	Defined(key ...string) bool
}

// Spec is the common part of a config's [data] table. A factory may change
// the sizes' defaults (when the config does not define them).
type Spec struct {
	Name      string // the task name
	TrainSize int    // training rows
	ValSize   int    // held-out rows
	Seed      uint64 // seed of the data draw
}

// Factory opens a task from its spec and task-owned options.
type Factory func(spec *Spec, dec Decoder) (Task, error)

var registry = struct {
	sync.Mutex
	m map[string]Factory
}{m: map[string]Factory{}}

// Register makes a factory available under name. It panics if the name is
// empty or taken (a programming error in a domain package's init).
func Register(name string, f Factory) {
	registry.Lock()
	defer registry.Unlock()
	if name == "" || f == nil {
		panic("task: Register with an empty name or nil factory")
	}
	if _, ok := registry.m[name]; ok {
		panic(fmt.Sprintf("task: Register called twice for %q", name))
	}
	registry.m[name] = f
}

// Names returns the registered task names, sorted.
func Names() []string {
	registry.Lock()
	defer registry.Unlock()
	out := make([]string, 0, len(registry.m))
	for k := range registry.m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Open opens the task spec.Name with the options dec decodes (nil: all
// defaults). An unknown name is an error listing the registered ones.
func Open(spec *Spec, dec Decoder) (Task, error) {
	registry.Lock()
	f, ok := registry.m[spec.Name]
	registry.Unlock()
	if !ok {
		names := Names()
		if len(names) == 0 {
			return nil, fmt.Errorf("task: unknown task %q: no tasks are registered (import a domain package, as cmd/ddsmc does)", spec.Name)
		}
		return nil, fmt.Errorf("data.name = %q: unknown task (registered: %s)", spec.Name, strings.Join(names, ", "))
	}
	if dec == nil {
		dec = NoOptions{}
	}
	return f(spec, dec)
}

// NoOptions is a Decoder of an empty config: every option keeps its default.
type NoOptions struct{}

// Decode leaves v at its defaults.
func (NoOptions) Decode(any) error { return nil }

// Defined reports false for every key.
func (NoOptions) Defined(...string) bool { return false }

// Weights returns the outputs' weights: exp(LogW), or uniform 1/n.
func (o Outputs) Weights() []float64 {
	n := o.N()
	w := make([]float64, n)
	for i := range w {
		if o.LogW != nil {
			w[i] = math.Exp(o.LogW[i])
		} else {
			w[i] = 1 / float64(n)
		}
	}
	return w
}

// N is the number of outputs.
func (o Outputs) N() int {
	if o.L <= 0 {
		return 0
	}
	return len(o.Samples) / o.L
}

// Check reports outputs whose sizes disagree.
func (o Outputs) Check() error {
	switch {
	case o.L <= 0:
		return fmt.Errorf("task: outputs with sequence length %d", o.L)
	case len(o.Samples) == 0 || len(o.Samples)%o.L != 0:
		return fmt.Errorf("task: %d output tokens is not a positive multiple of L = %d", len(o.Samples), o.L)
	case o.LogW != nil && len(o.LogW) != o.N():
		return fmt.Errorf("task: %d output weights for %d outputs", len(o.LogW), o.N())
	case o.Classes != nil && len(o.Classes) != o.N():
		return fmt.Errorf("task: %d output classes for %d outputs", len(o.Classes), o.N())
	case o.X != nil && (len(o.X)%o.L != 0 || len(o.XLogW) != len(o.X)/o.L):
		return fmt.Errorf("task: %d particle tokens with %d weights for L = %d", len(o.X), len(o.XLogW), o.L)
	}
	return nil
}

// ErrNotPrepared marks a missing artefact that a Preparer makes: the runner
// answers it with the `ddsmc prepare` command that makes it.
var ErrNotPrepared = errors.New("not prepared")
