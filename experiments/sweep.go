package experiments

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/smc"
)

// SweepConfig is a sweep file: a base experiment (the denoiser and its
// task), fixed [smc] settings, named variants (bundles of [smc] settings,
// e.g. one per method) and a [sweep] table of lists whose Cartesian
// product is run Repeats times with seeds Seed, Seed+1, … (the same seeds
// for every point, so methods are compared on common random numbers).
type SweepConfig struct {
	Name      string                    `toml:"name"`
	Base      string                    `toml:"base"`       // built-in config name or TOML path of the denoiser experiment
	AutoTrain bool                      `toml:"auto_train"` // train the base denoiser if its checkpoint is missing
	Repeats   int                       `toml:"repeats"`    // R seeded repeats per point
	Workers   int                       `toml:"workers"`    // runs in parallel
	Seed      uint64                    `toml:"seed"`       // seed of repeat 0
	SMC       map[string]any            `toml:"smc"`        // fixed [smc] settings
	Variants  map[string]map[string]any `toml:"variants"`   // named bundles of [smc] settings
	// Sweep is the [sweep] table of lists ([smc] keys or "variant"), or an
	// array of such tables ([[sweep]]) whose products are concatenated,
	// for ablations whose lists differ by method.
	Sweep any `toml:"sweep"`
	// Pool, when set, also evaluates the task's metrics on the union of
	// the outputs of groups of runs (pooled.csv; see PoolSweep): for
	// metrics that need many samples, such as a Fréchet distance over all
	// classes or dist-n over a prompt's runs.
	Pool *PoolConfig `toml:"pool"`

	base   Config   // the resolved base experiment
	blocks [][]axis // each block's swept settings, "variant" first, then sorted
	cols   []string // union of the blocks' keys, "variant" first
}

// axis is one swept setting and its values.
type axis struct {
	Key    string
	Values []any
}

// Point is one setting of the swept values with its resolved [smc] table.
type Point struct {
	Index    int               `json:"index"`
	Settings map[string]string `json:"settings"` // swept key → value, as written in results.csv
	SMC      SMCConfig         `json:"smc"`
}

// LoadSweep reads and validates a sweep file (a path, or the name of a
// built-in sweep config).
func LoadSweep(arg string) (*SweepConfig, error) {
	b, err := ConfigText(arg)
	if err != nil {
		return nil, err
	}
	return ParseSweep(arg, b)
}

// ParseSweep decodes a sweep file strictly and resolves every point, so
// an unknown setting, an empty list or a bad value is reported before
// anything runs.
func ParseSweep(name string, b []byte) (*SweepConfig, error) {
	if err := checkNesting(b); err != nil {
		return nil, fmt.Errorf("experiments: sweep %s: %w", name, err)
	}
	sc := &SweepConfig{AutoTrain: true, Repeats: 1, Workers: 2, Seed: 1}
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(sc)
	if err != nil {
		return nil, fmt.Errorf("experiments: sweep %s: %w", name, err)
	}
	var raw map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("experiments: sweep %s: %w", name, err)
	}
	unknown, err := strictKeys(raw, "", reflect.TypeFor[SweepConfig]())
	if err != nil {
		return nil, fmt.Errorf("experiments: sweep %s: %w", name, err)
	}
	if err := sc.checkTables(); err != nil {
		return nil, fmt.Errorf("experiments: sweep %s: %w", name, err)
	}
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "sweep" {
			continue // decoded into an interface value; checked by resolve
		}
		if !slices.Contains(unknown, k.String()) {
			unknown = append(unknown, k.String())
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("experiments: sweep %s: unknown key %s", name, strings.Join(unknown, ", "))
	}
	if err := sc.resolve(); err != nil {
		return nil, fmt.Errorf("experiments: sweep %s: %w", name, err)
	}
	return sc, nil
}

// resolve validates the sweep and the base experiment.
func (sc *SweepConfig) resolve() error {
	switch {
	case sc.Name == "" || strings.ContainsAny(sc.Name, `/\`):
		return fmt.Errorf("name = %q: must be a non-empty file-name-safe string", sc.Name)
	case sc.Base == "":
		return fmt.Errorf("base: name the denoiser experiment (a built-in config name or a TOML path)")
	case sc.Repeats < 1:
		return fmt.Errorf("repeats = %d: must be >= 1", sc.Repeats)
	case sc.Workers < 1:
		return fmt.Errorf("workers = %d: must be >= 1", sc.Workers)
	}
	b, err := ConfigText(sc.Base)
	if err != nil {
		return fmt.Errorf("base = %q: %w", sc.Base, err)
	}
	if sc.base, err = Parse(sc.Base, b); err != nil {
		return err
	}
	var tables []map[string]any
	switch sw := sc.Sweep.(type) {
	case nil:
		tables = []map[string]any{{}}
	case map[string]any:
		tables = []map[string]any{sw}
	case []map[string]any:
		tables = sw
	case []any:
		for _, t := range sw {
			m, ok := t.(map[string]any)
			if !ok {
				return fmt.Errorf("sweep: want a table of lists or an array of tables, got %T", t)
			}
			tables = append(tables, m)
		}
	default:
		return fmt.Errorf("sweep: want a table of lists or an array of tables, got %T", sc.Sweep)
	}
	if len(tables) == 0 {
		return fmt.Errorf("sweep: empty array of tables")
	}
	sc.blocks, sc.cols = nil, nil
	seen := map[string]bool{}
	usesVariant := false
	for bi, t := range tables {
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var axes []axis
		for _, k := range append([]string{"variant"}, keys...) {
			raw, ok := t[k]
			if !ok || (k == "variant" && len(axes) > 0) {
				continue
			}
			vs, ok := raw.([]any)
			if !ok {
				return fmt.Errorf("sweep.%s: want a list of values, got %v", k, raw)
			}
			if len(vs) == 0 {
				return fmt.Errorf("sweep.%s is an empty list", k)
			}
			if k == "variant" {
				usesVariant = true
				for _, v := range vs {
					name, ok := v.(string)
					if !ok {
						return fmt.Errorf("sweep.variant: %v is not a variant name", v)
					}
					if _, ok := sc.Variants[name]; !ok {
						return fmt.Errorf("sweep.variant: unknown variant %q (defined: %s)", name, strings.Join(sortedNames(sc.Variants), ", "))
					}
				}
			}
			axes = append(axes, axis{k, vs})
		}
		if len(axes) == 0 && len(tables) > 1 {
			return fmt.Errorf("sweep block %d has no lists", bi+1)
		}
		sc.blocks = append(sc.blocks, axes)
		for _, a := range axes {
			if !seen[a.Key] {
				seen[a.Key] = true
				sc.cols = append(sc.cols, a.Key)
			}
		}
	}
	sort.SliceStable(sc.cols, func(i, j int) bool {
		if (sc.cols[i] == "variant") != (sc.cols[j] == "variant") {
			return sc.cols[i] == "variant"
		}
		return sc.cols[i] < sc.cols[j]
	})
	for _, name := range sortedNames(sc.Variants) { // every variant must resolve, swept or not
		merged, defined := map[string]any{}, map[string]bool{}
		for k, v := range sc.SMC {
			merged[k] = v
		}
		for k, v := range sc.Variants[name] {
			merged[k], defined[k] = v, true
		}
		if _, err := resolveSMC(merged, defined); err != nil {
			return fmt.Errorf("variants.%s: %w", name, err)
		}
	}
	if !usesVariant && len(sc.Variants) > 0 {
		return fmt.Errorf("variants are defined but not swept: add sweep.variant = [%q, ...]", sortedNames(sc.Variants)[0])
	}
	pts, err := sc.Points()
	if err != nil {
		return err
	}
	L, V := sc.base.Task.Shape()
	params := sc.base.paramsEstimate(float64(L), float64(V))
	for _, pt := range pts {
		if err := overLimit(sc.base.smcSizes(pt.SMC, float64(L), float64(V), params)); err != nil {
			return fmt.Errorf("point %s: %w", describe(pt.Settings), err)
		}
	}
	if sc.Pool != nil {
		return sc.Pool.check(sc.cols, sc.Repeats)
	}
	return nil
}

func sortedNames(m map[string]map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Points expands each block's Cartesian product (the first axis varies
// slowest), concatenates the blocks, and resolves each point's [smc] table.
func (sc *SweepConfig) Points() ([]Point, error) {
	var pts []Point
	for _, axes := range sc.blocks {
		n := 1
		for _, a := range axes {
			n *= len(a.Values)
		}
		idx := make([]int, len(axes))
		for p := range n {
			rest := p
			for i := len(axes) - 1; i >= 0; i-- {
				idx[i] = rest % len(axes[i].Values)
				rest /= len(axes[i].Values)
			}
			merged := map[string]any{}
			for k, v := range sc.SMC {
				merged[k] = v
			}
			defined := map[string]bool{}
			settings := map[string]string{}
			for i, a := range axes {
				v := a.Values[idx[i]]
				settings[a.Key] = fmt.Sprint(v)
				if a.Key == "variant" {
					for k, vv := range sc.Variants[v.(string)] {
						merged[k] = vv
						defined[k] = true
					}
				}
			}
			for i, a := range axes {
				if a.Key != "variant" {
					merged[a.Key] = a.Values[idx[i]]
					defined[a.Key] = true
				}
			}
			smcCfg, err := resolveSMC(merged, defined)
			if err != nil {
				return nil, fmt.Errorf("point %s: %w", describe(settings), err)
			}
			pts = append(pts, Point{Index: len(pts), Settings: settings, SMC: smcCfg})
		}
	}
	return pts, nil
}

// resolveSMC decodes a merged [smc] table strictly onto DefaultSMC and
// applies the method presets, which override settings not set by the
// variant or the sweep (defined).
func resolveSMC(merged map[string]any, defined map[string]bool) (SMCConfig, error) {
	c := DefaultSMC()
	method := "smc"
	if m, ok := merged["method"].(string); ok {
		method = m
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(merged); err != nil {
		return c, fmt.Errorf("smc settings: %w", err)
	}
	md, err := toml.NewDecoder(&buf).Decode(&c)
	if err != nil {
		return c, fmt.Errorf("smc settings: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = "smc." + k.String()
		}
		sort.Strings(keys)
		return c, fmt.Errorf("unknown setting %s", strings.Join(keys, ", "))
	}
	if method == "target" {
		c.Method = "smc" // validated as a plain run; RunPoint draws from the target instead
		if err := c.Validate(); err != nil {
			return c, err
		}
		c.Method = "target"
		return c, nil
	}
	if err := c.applyMethod(func(k string) bool { return defined[k] }); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Fingerprint identifies the sweep's content: an output directory holding
// another fingerprint belongs to a different sweep.
func (sc *SweepConfig) Fingerprint() (string, error) {
	pts, err := sc.Points()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(struct {
		Name    string
		Base    Config
		Repeats int
		Seed    uint64
		Points  []Point
	}{sc.Name, sc.base, sc.Repeats, sc.Seed, pts})
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:]), nil
}

// Columns returns the swept settings in column order.
func (sc *SweepConfig) Columns() []string { return append([]string(nil), sc.cols...) }

// gitCommit returns the current commit, or "unknown".
func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += "-dirty"
	}
	return c
}

// RunSweep runs every (point, repeat) of the sweep that dir does not
// already hold, through RunPoint, on local goroutines (the local
// backend), writing DIR/sweep.json and DIR/sweep.toml (the plan and the
// file as given, with the git commit and the checkpoints' SHA-256),
// DIR/runs/<point>-<repeat>/ and DIR/results.csv (the common metric
// columns and the task's), rewritten atomically after every finished run.
// It is resumable: re-running skips finished runs, so a killed sweep loses
// at most the runs in flight and never duplicates a row. A dir holding a
// different sweep is refused. raw is the sweep file's text, copied for the
// record.
func RunSweep(sc *SweepConfig, raw []byte, dir string, log io.Writer) ([]Record, error) {
	pl, err := planSweep(sc, raw, dir, true, sc.AutoTrain, log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "sweep %s: task %s, %d points × %d repeats = %d runs, %d already done, %d workers, BLAS %s\n",
		sc.Name, sc.base.Task.Name(), len(pl.pts), sc.Repeats, pl.total(), pl.total()-len(pl.todo), sc.Workers, graph.BLAS())
	start := time.Now()
	runErr := pl.runLocal(pl.todo, sc.Workers, log)
	out, err := pl.finish()
	if err = errors.Join(runErr, err); err != nil {
		return out, err
	}
	fmt.Fprintf(log, "sweep %s: %d runs in %s; results in %s\n", sc.Name, pl.total(), fmtDur(time.Since(start).Seconds()), filepath.Join(dir, "results.csv"))
	if sc.Pool != nil {
		if _, err := PoolSweep(sc, dir, log); err != nil {
			return out, err
		}
	}
	return out, nil
}

// job is one (point, repeat) of a sweep.
type job struct{ p, r int }

// sweepPlan is a planned sweep: its directory (with the plan written),
// the shared run environment, its points, the finished runs' records and
// the runs still to do.
type sweepPlan struct {
	sc      *SweepConfig
	dir     string
	env     *Env
	pts     []Point
	metrics []string
	mu      sync.Mutex
	records map[[2]int]Record
	todo    []job
}

func (pl *sweepPlan) total() int { return len(pl.pts) * pl.sc.Repeats }

// planSweep checks or writes the plan in dir, opens the run environment
// (training the base first with autoTrain) and finds the finished runs.
// With clean it first removes what killed writes left behind; that is
// only safe while no other process runs the sweep's runs.
func planSweep(sc *SweepConfig, raw []byte, dir string, clean, autoTrain bool, log io.Writer) (*sweepPlan, error) {
	fp, err := sc.Fingerprint()
	if err != nil {
		return nil, err
	}
	pts, _ := sc.Points()
	metaPath := filepath.Join(dir, "sweep.json")
	var old *sweepMeta
	if b, err := os.ReadFile(metaPath); err == nil {
		old = &sweepMeta{}
		if err := json.Unmarshal(b, old); err != nil {
			return nil, fmt.Errorf("experiments: %s is not a sweep record: %w", metaPath, err)
		}
		if old.Fingerprint != fp {
			return nil, fmt.Errorf("experiments: %s holds the results of a different sweep (%q, fingerprint %.12s; this is %q, %.12s): use another --out, or delete it", dir, old.Name, old.Fingerprint, sc.Name, fp)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err := planless(dir); err != nil {
		return nil, err
	}
	if clean {
		if err := cleanSweepDir(dir); err != nil {
			return nil, err
		}
	}
	env, err := OpenEnv(sc.base, autoTrain, log)
	if err != nil {
		if !autoTrain && !exists(sc.base.CheckpointPath()) {
			return nil, fmt.Errorf("experiments: no checkpoint at %s and auto_train = false: run `ddsmc train %s` first", sc.base.CheckpointPath(), sc.Base)
		}
		return nil, err
	}
	models, err := sc.planModels(env)
	if err != nil {
		return nil, err
	}
	if old != nil {
		for path, h := range old.Models {
			if now := models[path]; now != h {
				if now == "" {
					now = "missing or unreadable"
				}
				return nil, fmt.Errorf("experiments: checkpoint %s has changed since sweep %s was planned in %s (planned SHA-256 %.16s…, now %.16s…): resuming would mix two models in one table; restore it, or run into another -out", path, sc.Name, dir, h, now)
			}
		}
	}
	metrics := resultColumns(sc.base.Task)
	meta := sweepMeta{Name: sc.Name, Data: sc.base.Task.Name(), Fingerprint: fp, Commit: gitCommit(), Columns: sc.Columns(), Metrics: metrics,
		Points: pts, Repeats: sc.Repeats, Seed: sc.Seed, Checkpoint: sc.base.CheckpointPath(), Models: models, Created: time.Now().UTC().Format(time.RFC3339)}
	// The file as given first, then the plan, whose presence marks the
	// directory as this sweep's: a kill between the two leaves a directory
	// that planless accepts.
	tomlPath := filepath.Join(dir, "sweep.toml")
	if raw != nil && !exists(tomlPath) {
		if err := atomicfile.Write(tomlPath, func(w *bufio.Writer) error { _, err := w.Write(raw); return err }); err != nil {
			return nil, err
		}
	}
	if old == nil {
		if err := writeJSON(metaPath, meta); err != nil {
			return nil, err
		}
	}
	pl := &sweepPlan{sc: sc, dir: dir, env: env, pts: pts, metrics: metrics, records: map[[2]int]Record{}}
	pl.scan(log)
	return pl, nil
}

// scan reads the finished runs' records and lists the runs still to do; a
// record that is not its run's is run again.
func (pl *sweepPlan) scan(log io.Writer) {
	pl.todo = nil
	for _, pt := range pl.pts {
		for r := range pl.sc.Repeats {
			rec, err := ReadRecord(runDir(pl.dir, pt.Index, r))
			if err == nil {
				err = checkRecord(rec, pt, r, pl.sc.Seed+uint64(r))
				if err != nil && log != nil {
					fmt.Fprintf(log, "run %s: %v: running it again\n", runID(pt.Index, r), err)
				}
			}
			pl.mu.Lock()
			if err == nil {
				pl.records[[2]int{pt.Index, r}] = rec
			} else {
				delete(pl.records, [2]int{pt.Index, r})
				pl.todo = append(pl.todo, job{pt.Index, r})
			}
			pl.mu.Unlock()
		}
	}
}

// runOne performs one run of the plan and records it.
func (pl *sweepPlan) runOne(j job, workers int, cache *SamplerCache) (Record, error) {
	smcCfg := pl.pts[j.p].SMC
	if workers > 1 {
		smcCfg.Workers = 1 // runs are parallel already
	}
	res, err := pl.env.RunPoint(RunSpec{SMC: smcCfg, Seed: pl.sc.Seed + uint64(j.r), Dir: runDir(pl.dir, j.p, j.r),
		Point: j.p, Repeat: j.r, Settings: pl.pts[j.p].Settings}, cache)
	if err != nil {
		return Record{}, fmt.Errorf("experiments: run %d-%d (%s, repeat %d): %w", j.p, j.r, describe(pl.pts[j.p].Settings), j.r, err)
	}
	pl.mu.Lock()
	pl.records[[2]int{j.p, j.r}] = res.Record
	pl.mu.Unlock()
	return res.Record, nil
}

// runGroup performs missing repeats of one point as one batch
// (Env.RunRepeats: R·N particles per network call) and records them.
func (pl *sweepPlan) runGroup(g []job, smcWorkers int, cache *SamplerCache) ([]Record, error) {
	pt := pl.pts[g[0].p]
	smcCfg := pt.SMC
	smcCfg.Workers = smcWorkers
	specs := make([]RunSpec, len(g))
	for i, j := range g {
		specs[i] = RunSpec{SMC: smcCfg, Seed: pl.sc.Seed + uint64(j.r), Dir: runDir(pl.dir, j.p, j.r), Point: j.p, Repeat: j.r, Settings: pt.Settings}
	}
	res, err := pl.env.RunRepeats(specs, cache)
	if err != nil {
		return nil, fmt.Errorf("experiments: point %d (%s), %d repeats: %w", g[0].p, describe(pt.Settings), len(g), err)
	}
	recs := make([]Record, len(res))
	pl.mu.Lock()
	for i, r := range res {
		recs[i] = r.Record
		pl.records[[2]int{g[i].p, g[i].r}] = r.Record
	}
	pl.mu.Unlock()
	return recs, nil
}

// runLocal performs jobs on workers goroutines, a point's missing repeats
// as one batch (Sampler.RunMany), rewriting results.csv after each batch.
func (pl *sweepPlan) runLocal(todo []job, workers int, log io.Writer) error {
	var groups [][]job
	at := map[int]int{}
	for _, j := range todo {
		i, ok := at[j.p]
		if !ok {
			i = len(groups)
			at[j.p] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], j)
	}
	// Points run in parallel; with fewer points than workers, each run
	// uses the spare cores itself (results do not depend on smc.workers).
	smcWorkers := 1
	if len(groups) < workers {
		smcWorkers = max(1, workers/max(len(groups), 1))
	}
	total := pl.total()
	var mu sync.Mutex
	done := total - len(todo)
	first := done
	start := time.Now()
	errs := make(chan error, len(groups))
	ch := make(chan []job)
	var wg sync.WaitGroup
	for range min(workers, max(len(groups), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer smc.Stream()() // the points fill the cores: no helpers
			cache := NewSamplerCache()
			for g := range ch {
				recs, err := pl.runGroup(g, smcWorkers, cache)
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				werr := pl.writeResults()
				for i, rec := range recs {
					done++
					el := time.Since(start).Seconds()
					eta := el / float64(done-first) * float64(total-done)
					fmt.Fprintf(log, "[%d/%d] %-40s reward %.4f  ess_min %.3f  %.1fs  (elapsed %s, eta %s)\n", done, total,
						describe(pl.pts[g[i].p].Settings)+fmt.Sprintf(" r%d", g[i].r), rec.Metrics["reward_mean"], rec.Metrics["ess_min"],
						rec.Metrics["wall_s"], fmtDur(el), fmtDur(eta))
				}
				mu.Unlock()
				if werr != nil {
					errs <- werr
				}
			}
		}()
	}
	for _, g := range groups {
		ch <- g
	}
	close(ch)
	wg.Wait()
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	return errors.Join(all...)
}

// writeResults rewrites results.csv from the finished runs.
func (pl *sweepPlan) writeResults() error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return writeResults(filepath.Join(pl.dir, "results.csv"), pl.sc.Columns(), pl.metrics, pl.records)
}

// finish writes results.csv one last time and returns the records.
func (pl *sweepPlan) finish() ([]Record, error) {
	err := pl.writeResults()
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return sortedRecords(pl.records), err
}

func fmtDur(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return "?"
	}
	return (time.Duration(s) * time.Second).Round(time.Second).String()
}

// checkTables checks the keys and value types of the [smc], [variants.*]
// and [sweep] tables exactly, naming the table and key of any problem
// (their values are merged and decoded later, where a message could not
// point at the right table). A run's seed is the sweep's seed plus its
// repeat, so seed may not be set or swept here.
func (sc *SweepConfig) checkTables() error {
	check := func(path string, m map[string]any, lists bool) error {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := m[k]
			switch {
			case k == "seed":
				return fmt.Errorf("%s.seed: a run's seed is the sweep's seed plus its repeat; set the top-level seed (and repeats) instead", path)
			case lists && k == "variant":
				continue
			case !smcKeyKnown(k):
				hint := ""
				if lists && strings.EqualFold(strings.TrimSuffix(k, "s"), "variant") {
					hint = " (did you mean variant?)"
				}
				return fmt.Errorf("unknown key %s.%s%s", path, k, hint)
			}
			if !lists {
				if err := checkSMCValue(path+"."+k, k, v); err != nil {
					return err
				}
				continue
			}
			vs, ok := v.([]any)
			if !ok {
				return fmt.Errorf("%s.%s: want a list of values, got %v", path, k, v)
			}
			for i, x := range vs {
				if err := checkSMCValue(fmt.Sprintf("%s.%s[%d]", path, k, i), k, x); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := check("smc", sc.SMC, false); err != nil {
		return err
	}
	for _, name := range sortedNames(sc.Variants) {
		if err := check("variants."+name, sc.Variants[name], false); err != nil {
			return err
		}
	}
	switch sw := sc.Sweep.(type) {
	case map[string]any:
		return check("sweep", sw, true)
	case []map[string]any:
		for i, t := range sw {
			if err := check(fmt.Sprintf("sweep[%d]", i), t, true); err != nil {
				return err
			}
		}
	case []any:
		for i, t := range sw {
			if m, ok := t.(map[string]any); ok {
				if err := check(fmt.Sprintf("sweep[%d]", i), m, true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkSMCValue checks that a TOML value fits the type of [smc] key k.
func checkSMCValue(path, k string, v any) error {
	f, _ := fieldByTag(reflect.TypeFor[SMCConfig](), k)
	want := ""
	ft := f.Type
	if ft != nil && ft.Kind() == reflect.Pointer {
		ft = ft.Elem()
	}
	if ft == nil {
		return nil
	}
	switch ft.Kind() {
	case reflect.Int:
		if _, ok := v.(int64); !ok {
			want = "an integer"
		}
	case reflect.Uint64:
		if n, ok := v.(int64); !ok || n < 0 {
			want = "a non-negative integer"
		}
	case reflect.Float64:
		switch v.(type) {
		case float64, int64:
		default:
			want = "a number"
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			want = "a string"
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			want = "true or false"
		}
	case reflect.Slice:
		xs, ok := v.([]any)
		if !ok {
			want = "a list of numbers"
			break
		}
		for _, x := range xs {
			switch x.(type) {
			case float64, int64:
			default:
				want = "a list of numbers"
			}
		}
	}
	if want != "" {
		return fmt.Errorf("%s = %#v: want %s", path, v, want)
	}
	return nil
}

// planless accepts a directory without sweep.json only if it is empty or
// holds nothing but what a sweep killed before its plan was written leaves
// behind (sweep.toml and temporary files).
func planless(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	for _, e := range ents {
		if e.Name() != "sweep.toml" && !atomicfile.IsTemp(e.Name()) {
			return fmt.Errorf("experiments: %s is not empty and holds no sweep.json (it has %s): refusing to mix results", dir, e.Name())
		}
	}
	return nil
}

// cleanSweepDir removes what killed writes left in a sweep directory:
// temporary files of the plan and results, and of every run directory.
func cleanSweepDir(dir string) error {
	if _, err := atomicfile.CleanTemps(dir); err != nil {
		return err
	}
	return recoverRuns(filepath.Join(dir, "runs"))
}

// planModels returns the SHA-256 of the checkpoints the sweep uses: the
// denoiser, and the learned proposals and second models its points name
// (those that exist when the sweep is planned).
func (sc *SweepConfig) planModels(env *Env) (map[string]string, error) {
	models := map[string]string{sc.base.CheckpointPath(): env.ModelSHA}
	pts, _ := sc.Points()
	for _, pt := range pts {
		var paths []string
		if pt.SMC.Proposal == "learned" {
			p := pt.SMC.ProposalCkpt
			if p == "" {
				p = sc.base.ProposalCheckpointPath()
			}
			paths = append(paths, p)
		}
		if pt.SMC.Target == "product" {
			paths = append(paths, pt.SMC.SecondModel)
		}
		for _, p := range paths {
			if _, ok := models[p]; ok || !exists(p) {
				continue
			}
			h, err := fileSHA256(p)
			if err != nil {
				return nil, err
			}
			models[p] = h
		}
	}
	return models, nil
}
