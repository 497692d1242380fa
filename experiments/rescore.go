package experiments

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"path/filepath"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/smc"
)

// RescoreSweep recomputes the output metrics (reward_mean, reward_max,
// outputs) and the task's metrics of every finished run of the sweep in
// dir from the run's saved samples.csv, keeping the engine's statistics
// (ESS, resamples, log Ẑ, wall time), and rewrites each record.json, the
// task's side files and results.csv (all atomically). It serves a
// corrected metric or another judge without re-running SMC. A task metric
// that needs what samples.csv does not hold (the final weighted particles,
// e.g. tv_weighted) keeps its recorded value. The sweep config must be the
// one dir was run with (its fingerprint is checked); runs whose outputs
// carry weights (final = "weighted") cannot be rescored from their samples
// and are an error. It returns the number of runs rescored.
func RescoreSweep(sc *SweepConfig, dir string, log io.Writer) (int, error) {
	if log == nil {
		log = io.Discard
	}
	env, pts, err := openFinished(sc, dir, log)
	if err != nil {
		return 0, err
	}
	L, _ := sc.base.Task.Shape()
	records := map[[2]int]Record{}
	for _, pt := range pts {
		for r := range sc.Repeats {
			d := runDir(dir, pt.Index, r)
			rec, x, err := readRunOutputs(d, pt, L, "rescored")
			if errors.Is(err, fs.ErrNotExist) {
				continue // not run yet
			}
			if err != nil {
				return 0, err
			}
			logZ, ok := rec.Metrics["log_z"]
			if !ok {
				logZ = math.NaN()
			}
			out := task.Outputs{L: L, Samples: x, Alpha: pt.SMC.Alpha, LogZ: logZ, Dir: d, Classes: outputClasses(pt.SMC, len(x)/L)}
			m := map[string]float64{}
			if err := env.outputMetrics(out, nil, m); err != nil {
				return 0, fmt.Errorf("experiments: rescoring %s: %w", d, err)
			}
			tm, err := env.Eval.Evaluate(rand.New(rand.NewPCG(rec.Seed, 7)), out)
			if err != nil {
				return 0, fmt.Errorf("experiments: rescoring %s: %w", d, err)
			}
			for k, v := range tm {
				if old, had := rec.Metrics[k]; math.IsNaN(v) && had && !math.IsNaN(old) {
					continue // not recomputable from the samples alone
				}
				m[k] = v
			}
			for k, v := range m {
				rec.Metrics[k] = v
			}
			if err := writeJSON(filepath.Join(d, "record.json"), rec); err != nil {
				return 0, err
			}
			records[[2]int{rec.Point, rec.Repeat}] = rec
		}
	}
	if err := writeResults(filepath.Join(dir, "results.csv"), sc.Columns(), resultColumns(sc.base.Task), records); err != nil {
		return 0, err
	}
	fmt.Fprintf(log, "rescored %d runs of %s; results in %s\n", len(records), sc.Name, filepath.Join(dir, "results.csv"))
	return len(records), nil
}

// readRunOutputs reads a finished run's record and output samples (an
// error wrapping fs.ErrNotExist if it has not finished). Runs with weighted
// outputs are refused: their weights are not saved, so they cannot be
// what (rescored, pooled) from their samples.
func readRunOutputs(d string, pt Point, L int, what string) (Record, []int, error) {
	rec, err := ReadRecord(d)
	if err != nil {
		return rec, nil, err
	}
	if pt.SMC.Final == string(smc.FinalWeighted) {
		return rec, nil, fmt.Errorf("experiments: run %s has weighted outputs (final = \"weighted\"), whose weights are not saved: it cannot be %s", d, what)
	}
	x, l, err := readSamples(filepath.Join(d, "samples.csv"))
	if err != nil {
		return rec, nil, err
	}
	if l != L {
		return rec, nil, fmt.Errorf("experiments: %s/samples.csv has %d tokens per row, want %d", d, l, L)
	}
	return rec, x, nil
}

// openFinished checks that dir holds sweep sc and opens its environment
// and points, for work on the finished runs (rescoring, pooling).
func openFinished(sc *SweepConfig, dir string, log io.Writer) (*Env, []Point, error) {
	if err := checkSweepDir(sc, dir); err != nil {
		return nil, nil, err
	}
	env, err := OpenEnv(sc.base, false, log)
	if err != nil {
		return nil, nil, err
	}
	pts, err := sc.Points()
	return env, pts, err
}
