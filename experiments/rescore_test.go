package experiments

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/mnist"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
)

// RescoreSweep recomputes the output and task metrics of a finished sweep
// from the saved samples, keeping the engine's statistics, and refuses a
// directory of another sweep.
func TestRescoreSweep(t *testing.T) {
	tmp := t.TempDir()
	clf := func(name string, seed uint64) string {
		c, err := objectives.NewClassifier(objectives.ClassifierConfig{H: 14, W: 14, Hidden: []int{3}, Act: "relu", Seed: seed, Classes: 10})
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(tmp, name)
		if err := c.Save(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := filepath.Join(tmp, "base.toml")
	text := "name = \"m\"\nout = \"" + filepath.Join(tmp, "m") + "\"\n[data]\nname = \"mnist\"\nsize = 14\n[model]\nhidden = 8\nlayers = 1\nembed = 2\n[reward]\ntarget = 3\nclassifier = \"" +
		clf("main.ckpt", 1) + "\"\nval_classifier = \"" + clf("val.ckpt", 2) + "\"\n"
	if err := os.WriteFile(base, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := ParseSweep("s", []byte("name = \"s\"\nbase = \""+base+"\"\nrepeats = 2\n[sweep]\nparticles = [2, 4]\n"))
	if err != nil {
		t.Fatal(err)
	}
	// An untrained denoiser of the right shape: rescoring does not run it.
	mc := sc.base.Model
	mc.L, mc.V = 196, 2
	m, err := graph.New(mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(sc.base.CheckpointPath(), nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "sweep")
	fp, _ := sc.Fingerprint()
	pts, _ := sc.Points()
	if err := writeJSON(filepath.Join(dir, "sweep.json"), sweepMeta{Name: "s", Data: "mnist", Fingerprint: fp, Columns: sc.Columns(), Points: pts, Repeats: 2}); err != nil {
		t.Fatal(err)
	}
	// Three of the four runs finished, with a stale metric and no accuracy.
	x := make([]int, 2*196)
	for i := range x {
		x[i] = (i / 7) % 2
	}
	for _, pr := range [][2]int{{0, 0}, {0, 1}, {1, 0}} {
		rec := Record{Point: pr[0], Repeat: pr[1], Setting: pts[pr[0]].Settings, Metrics: map[string]float64{"ess_min": 0.25, "reward_mean": 99}}
		if err := writeRun(runDir(dir, pr[0], pr[1]), rec, x, 196, nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := RescoreSweep(sc, dir, nil)
	if err != nil || n != 3 {
		t.Fatalf("rescored %d runs, err %v; want 3", n, err)
	}
	ev, err := sc.base.Task.Evaluator(task.Model{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := ev.Evaluate(rand.New(rand.NewPCG(0, 7)), task.Outputs{L: 196, Samples: x})
	if err != nil {
		t.Fatal(err)
	}
	r, _, _ := sc.base.Task.Reward(1)
	rw := make([]float64, 2)
	if err := r.Reward(x, rw); err != nil {
		t.Fatal(err)
	}
	want["reward_mean"], want["reward_max"], want["outputs"] = rw[0]/2+rw[1]/2, math.Max(rw[0], rw[1]), 2
	rec, err := ReadRecord(runDir(dir, 1, 0))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(mnist.MetricNames, "reward_mean", "reward_max", "outputs") {
		if rec.Metrics[k] != want[k] {
			t.Errorf("%s = %v after rescoring, want %v", k, rec.Metrics[k], want[k])
		}
	}
	if rec.Metrics["ess_min"] != 0.25 {
		t.Errorf("rescoring changed ess_min to %v", rec.Metrics["ess_min"])
	}
	if _, err := os.Stat(filepath.Join(runDir(dir, 1, 0), mnist.SampleRewardsFile)); err != nil {
		t.Errorf("no per-sample rewards after rescoring: %v", err)
	}
	res, err := ReadResults(dir, sc.Columns())
	if err != nil || len(res.Rows) != 3 {
		t.Fatalf("results.csv: %v, %v; want 3 rows", res, err)
	}
	// The table holds the common columns and the task's, no other domain's.
	for _, h := range res.Header {
		if h == "emd" || h == "tv_exact" {
			t.Errorf("an mnist results.csv has the GMM column %s", h)
		}
	}
	other, err := ParseSweep("o", []byte("name = \"o\"\nbase = \""+base+"\"\n[sweep]\nparticles = [8]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RescoreSweep(other, dir, nil); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Errorf("rescoring another sweep's directory: %v", err)
	}
}
