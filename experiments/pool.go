package experiments

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// PoolConfig is a sweep's [pool] table: which runs' outputs are evaluated
// together.
//
//	[pool]
//	over = ["class"]       # swept keys pooled over (a point's repeats are always pooled)
//	average = ["prompt"]   # then the pooled rows are averaged over these
//
// Pooling over nothing (over = []) evaluates each point's repeats together,
// e.g. dist-n over all samples of one prompt; over = ["class"] evaluates
// the outputs of every class together, e.g. a Fréchet distance to the
// images of all classes. average then gives the mean and standard error of
// the pooled rows over the listed keys (e.g. over the prompts).
type PoolConfig struct {
	Over    []string `toml:"over"`
	Average []string `toml:"average"`
	// Split > 1 pools each group's repeats in Split contiguous chunks
	// (repeats 0..R/Split−1, …), each a row with its "chunk" column, so
	// that average = ["chunk"] gives the spread of a pooled metric over
	// independent seeds. 0 or 1 = one chunk.
	Split int `toml:"split"`
}

// check validates the pool keys against the sweep's columns.
func (pc *PoolConfig) check(cols []string, repeats int) error {
	if pc.Split < 0 || pc.Split > repeats {
		return fmt.Errorf("pool.split = %d: want 1..repeats (%d), or 0 for one chunk", pc.Split, repeats)
	}
	if pc.Split > 1 {
		cols = append(slices.Clip(cols), chunkKey)
	}
	seen := map[string]string{}
	for _, list := range []struct {
		name string
		keys []string
	}{{"pool.over", pc.Over}, {"pool.average", pc.Average}} {
		for _, k := range list.keys {
			if !slices.Contains(cols, k) {
				return fmt.Errorf("%s: %q is not a swept key (swept: %s)", list.name, k, strings.Join(cols, ", "))
			}
			if prev, ok := seen[k]; ok {
				return fmt.Errorf("%s: %q is listed twice (also in %s)", list.name, k, prev)
			}
			seen[k] = list.name
		}
	}
	return nil
}

// chunkKey is the pooled tables' column of a repeat chunk (pool.split).
const chunkKey = "chunk"

// PooledFile and PooledMeanFile are the pooled tables PoolSweep writes.
const (
	PooledFile     = "pooled.csv"
	PooledMeanFile = "pooled_mean.csv"
)

// pooledRow is one group of runs evaluated together.
type pooledRow struct {
	settings map[string]string
	runs     int
	metrics  map[string]float64
}

// PoolSweep evaluates the sweep's [pool] groups: for each setting of the
// swept keys not in pool.over, the outputs of all its finished runs (every
// repeat, every value of the pooled keys) are concatenated, each output
// keeping its run's class (task.Outputs.Classes), and scored once with the
// task's evaluator and the output reward statistics. It writes pooled.csv
// (one row per group: the kept settings, runs, then the metrics) and, with
// pool.average, pooled_mean.csv (the pooled rows' mean and standard error
// over the averaged keys). Runs with weighted outputs (final = "weighted")
// cannot be pooled. It returns the number of groups.
func PoolSweep(sc *SweepConfig, dir string, log io.Writer) (int, error) {
	if sc.Pool == nil {
		return 0, fmt.Errorf("experiments: sweep %s has no [pool] table", sc.Name)
	}
	if log == nil {
		log = io.Discard
	}
	env, pts, err := openFinished(sc, dir, log)
	if err != nil {
		return 0, err
	}
	L, _ := sc.base.Task.Shape()
	var kept []string
	for _, c := range sc.Columns() {
		if !slices.Contains(sc.Pool.Over, c) {
			kept = append(kept, c)
		}
	}
	split := max(1, sc.Pool.Split)
	if split > 1 {
		kept = append(kept, chunkKey)
	}
	type group struct {
		settings map[string]string
		out      task.Outputs
		runs     int
		alpha    float64
		labelled int // outputs with a class
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, pt := range pts {
		for r := range sc.Repeats {
			gs := map[string]string{}
			for _, c := range kept {
				v, ok := pt.Settings[c]
				if !ok {
					v = "-"
				}
				gs[c] = v
			}
			if split > 1 {
				gs[chunkKey] = strconv.Itoa(r * split / sc.Repeats)
			}
			key := describe(gs)
			g := byKey[key]
			if g == nil {
				g = &group{settings: gs, out: task.Outputs{L: L, LogZ: math.NaN()}, alpha: pt.SMC.Alpha}
				byKey[key] = g
				groups = append(groups, g)
			}
			_, x, err := readRunOutputs(runDir(dir, pt.Index, r), pt, L, "pooled")
			if errors.Is(err, fs.ErrNotExist) {
				continue // not run yet
			}
			if err != nil {
				return 0, err
			}
			n := len(x) / L
			g.out.Samples = append(g.out.Samples, x...)
			cls := outputClasses(pt.SMC, n)
			if cls == nil {
				cls = make([]int, n)
				for i := range cls {
					cls[i] = -1
				}
			} else {
				g.labelled += n
			}
			g.out.Classes = append(g.out.Classes, cls...)
			g.runs++
		}
	}
	var rows []pooledRow
	for i, g := range groups {
		if g.runs == 0 {
			continue
		}
		switch {
		case g.labelled == 0:
			g.out.Classes = nil
		case g.labelled != g.out.N():
			return 0, fmt.Errorf("experiments: pool group %s mixes runs with and without smc.class", describe(g.settings))
		}
		g.out.Alpha = g.alpha
		m := map[string]float64{}
		if err := env.outputMetrics(g.out, nil, m); err != nil {
			return 0, fmt.Errorf("experiments: pooling %s: %w", describe(g.settings), err)
		}
		tm, err := env.Eval.Evaluate(rand.New(rand.NewPCG(sc.Seed, uint64(i))), g.out)
		if err != nil {
			return 0, fmt.Errorf("experiments: pooling %s: %w", describe(g.settings), err)
		}
		for k, v := range tm {
			m[k] = v
		}
		rows = append(rows, pooledRow{settings: g.settings, runs: g.runs, metrics: m})
	}
	metrics := []string{"reward_mean", "reward_max", "outputs"}
	for _, mt := range sc.base.Task.Metrics() {
		metrics = append(metrics, mt.Key)
	}
	if err := writePooled(filepath.Join(dir, PooledFile), kept, metrics, rows, false); err != nil {
		return 0, err
	}
	fmt.Fprintf(log, "pooled %d groups of %s into %s\n", len(rows), sc.Name, filepath.Join(dir, PooledFile))
	if len(sc.Pool.Average) > 0 {
		var keep2 []string
		for _, c := range kept {
			if !slices.Contains(sc.Pool.Average, c) {
				keep2 = append(keep2, c)
			}
		}
		means := averageRows(rows, keep2, metrics)
		if err := writePooled(filepath.Join(dir, PooledMeanFile), keep2, metrics, means, true); err != nil {
			return 0, err
		}
		fmt.Fprintf(log, "averaged them over %s into %s\n", strings.Join(sc.Pool.Average, ", "), filepath.Join(dir, PooledMeanFile))
	}
	return len(rows), nil
}

// outputClasses returns the class of each of n outputs of a run with
// smc setting sc (nil when the run is not class-conditioned).
func outputClasses(sc SMCConfig, n int) []int {
	if sc.Class == nil || *sc.Class < 0 {
		return nil
	}
	cls := make([]int, n)
	for i := range cls {
		cls[i] = *sc.Class
	}
	return cls
}

// averageRows groups pooled rows by the keys keep and returns, per group,
// each metric's mean over the rows (NaNs skipped) in metrics[k] and its
// standard error in metrics[k+"_se"]; runs sums.
func averageRows(rows []pooledRow, keep, metrics []string) []pooledRow {
	var out []pooledRow
	idx := map[string]int{}
	members := map[string][]pooledRow{}
	for _, r := range rows {
		s := map[string]string{}
		for _, k := range keep {
			s[k] = r.settings[k]
		}
		key := describe(s)
		if _, ok := idx[key]; !ok {
			idx[key] = len(out)
			out = append(out, pooledRow{settings: s, metrics: map[string]float64{}})
		}
		members[key] = append(members[key], r)
	}
	for key, i := range idx {
		g := members[key]
		for _, r := range g {
			out[i].runs += r.runs
		}
		for _, k := range metrics {
			var xs []float64
			for _, r := range g {
				if v, ok := r.metrics[k]; ok && !math.IsNaN(v) {
					xs = append(xs, v)
				}
			}
			out[i].metrics[k], out[i].metrics[k+"_se"] = MeanSE(xs)
		}
	}
	return out
}

// writePooled writes pooled rows as CSV: the settings, runs, the metrics
// (with withSE, each followed by its standard error).
func writePooled(path string, cols, metrics []string, rows []pooledRow, withSE bool) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		cw := csv.NewWriter(w)
		head := append(append([]string(nil), cols...), "runs")
		for _, m := range metrics {
			head = append(head, m)
			if withSE {
				head = append(head, m+"_se")
			}
		}
		if err := cw.Write(head); err != nil {
			return err
		}
		num := func(v float64, ok bool) string {
			if !ok || math.IsNaN(v) {
				return "NaN"
			}
			return strconv.FormatFloat(v, 'g', 8, 64)
		}
		for _, r := range rows {
			row := []string{}
			for _, c := range cols {
				row = append(row, r.settings[c])
			}
			row = append(row, strconv.Itoa(r.runs))
			for _, m := range metrics {
				v, ok := r.metrics[m]
				row = append(row, num(v, ok))
				if withSE {
					v, ok := r.metrics[m+"_se"]
					row = append(row, num(v, ok))
				}
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}

// checkSweepDir refuses a directory that holds another sweep.
func checkSweepDir(sc *SweepConfig, dir string) error {
	fp, err := sc.Fingerprint()
	if err != nil {
		return err
	}
	meta, err := readSweepMeta(dir)
	if err != nil {
		return err
	}
	if meta.Fingerprint != fp {
		return fmt.Errorf("experiments: %s holds sweep %q (fingerprint %.12s), not %q (%.12s)", dir, meta.Name, meta.Fingerprint, sc.Name, fp)
	}
	return nil
}

// DescribeSweep returns, for a sweep whose task reads as text
// (task.Describer), each point's settings followed by up to perPoint of
// its outputs (from the lowest repeats), one line each, as the task
// describes them. For other tasks it returns "" and no error.
func DescribeSweep(sc *SweepConfig, dir string, perPoint int) (string, error) {
	d, ok := sc.base.Task.(task.Describer)
	if !ok {
		return "", nil
	}
	if err := checkSweepDir(sc, dir); err != nil {
		return "", err
	}
	pts, err := sc.Points()
	if err != nil {
		return "", err
	}
	L, _ := sc.base.Task.Shape()
	var b strings.Builder
	for _, pt := range pts {
		var x []int
		for r := 0; r < sc.Repeats && len(x) < perPoint*L; r++ {
			_, xr, err := readRunOutputs(runDir(dir, pt.Index, r), pt, L, "described")
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", err
			}
			x = append(x, xr...)
		}
		if len(x) == 0 {
			continue
		}
		x = x[:min(len(x), perPoint*L)]
		lines, err := d.Describe(x)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s:\n", describe(pt.Settings))
		for _, l := range lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String(), nil
}

// PrepareBase prepares the sweep's task (task.Preparer) if any of its
// artefacts is missing, so that a demo runs on a fresh clone.
func PrepareBase(sc *SweepConfig, log io.Writer) error {
	p, ok := sc.base.Task.(task.Preparer)
	if !ok || len(p.Missing()) == 0 {
		return nil
	}
	fmt.Fprintf(log, "preparing task %s (missing %v)\n", sc.base.Task.Name(), p.Missing())
	return p.Prepare(false, log)
}
