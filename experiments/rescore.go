package experiments

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ddsmc/ddsmc/smc"
)

// RescoreSweep recomputes the image-task metrics of every finished run of
// the sweep in dir from the run's saved samples.csv, keeping the SMC
// statistics (ESS, resamples, log Ẑ, wall time), and rewrites each
// record.json, sample_rewards.csv and results.csv (all atomically). It
// serves a corrected metric or another evaluation classifier without
// re-running SMC. The sweep config must be the one dir was run with (its
// fingerprint is checked); runs whose outputs carry weights
// (final = "weighted") cannot be rescored from their samples and are an
// error. It returns the number of runs rescored.
func RescoreSweep(sc *SweepConfig, dir string, log io.Writer) (int, error) {
	if log == nil {
		log = io.Discard
	}
	fp, err := sc.Fingerprint()
	if err != nil {
		return 0, err
	}
	meta, err := readSweepMeta(dir)
	if err != nil {
		return 0, err
	}
	if meta.Fingerprint != fp {
		return 0, fmt.Errorf("experiments: %s holds sweep %q (fingerprint %.12s), not %q (%.12s)", dir, meta.Name, meta.Fingerprint, sc.Name, fp)
	}
	cfg := sc.base
	task, err := loadReference(cfg.Data)
	if err != nil {
		return 0, err
	}
	if task.Side == 0 {
		return 0, fmt.Errorf("experiments: sweep %s is on %s, which has no image metrics to rescore", sc.Name, task.Name)
	}
	ev, err := newImageEval(cfg)
	if err != nil {
		return 0, err
	}
	pts, err := sc.Points()
	if err != nil {
		return 0, err
	}
	records := map[[2]int]RunRecord{}
	for _, pt := range pts {
		for r := range sc.Repeats {
			d := runDir(dir, pt.Index, r)
			rec, err := readRecord(d)
			if errors.Is(err, fs.ErrNotExist) {
				continue // not run yet
			}
			if err != nil {
				return 0, err
			}
			if pt.SMC.Final == string(smc.FinalWeighted) {
				return 0, fmt.Errorf("experiments: run %s has weighted outputs (final = \"weighted\"), whose weights are not saved: it cannot be rescored", d)
			}
			x, L, err := readTokenRows(filepath.Join(d, "samples.csv"))
			if err != nil {
				return 0, err
			}
			if L != task.L {
				return 0, fmt.Errorf("experiments: %s/samples.csv has %d tokens per row, want %d", d, L, task.L)
			}
			m, rm, rv, err := ev.metrics(x, L, nil)
			if err != nil {
				return 0, fmt.Errorf("experiments: rescoring %s: %w", d, err)
			}
			for k, v := range m {
				rec.Metrics[k] = v
			}
			if err := writeSampleRewards(filepath.Join(d, "sample_rewards.csv"), rm, rv); err != nil {
				return 0, err
			}
			if err := writeJSON(filepath.Join(d, "record.json"), rec); err != nil {
				return 0, err
			}
			records[[2]int{rec.Point, rec.Repeat}] = rec
		}
	}
	if err := writeResults(filepath.Join(dir, "results.csv"), sc.Columns(), records); err != nil {
		return 0, err
	}
	fmt.Fprintf(log, "rescored %d runs of %s; results in %s\n", len(records), sc.Name, filepath.Join(dir, "results.csv"))
	return len(records), nil
}

// readSweepMeta reads dir/sweep.json.
func readSweepMeta(dir string) (sweepMeta, error) {
	var meta sweepMeta
	b, err := os.ReadFile(filepath.Join(dir, "sweep.json"))
	if err != nil {
		return meta, fmt.Errorf("experiments: %s is not a sweep directory: %w", dir, err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, fmt.Errorf("experiments: %s/sweep.json: %w", dir, err)
	}
	return meta, nil
}
