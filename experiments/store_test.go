package experiments

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// A record reads back exactly, non-finite metrics included; results.csv
// reads back into typed rows with "-" for settings not swept in a block.
func TestStoreRoundTrips(t *testing.T) {
	dir := t.TempDir()
	rec := Record{Point: 3, Repeat: 1, Seed: 9, Setting: map[string]string{"particles": "8"},
		Metrics: map[string]float64{"reward_mean": -1.25, "emd": math.NaN(), "x": math.Inf(1)}, Run: &RunInfo{Task: "gmm1", N: 8}}
	d := runDir(dir, 3, 1)
	if err := writeRun(d, rec, []int{1, 2, 3, 4}, 2, nil); err != nil {
		t.Fatal(err)
	}
	got, err := ReadRecord(d)
	if err != nil {
		t.Fatal(err)
	}
	if got.Point != 3 || got.Seed != 9 || got.Metrics["reward_mean"] != -1.25 || !math.IsNaN(got.Metrics["emd"]) || !math.IsInf(got.Metrics["x"], 1) || got.Run.Task != "gmm1" {
		t.Fatalf("record %+v", got)
	}
	x, L, err := readSamples(filepath.Join(d, "samples.csv"))
	if err != nil || L != 2 || len(x) != 4 || x[3] != 4 {
		t.Fatalf("samples %v, L %d, %v", x, L, err)
	}
	other := Record{Point: 0, Repeat: 0, Seed: 8, Setting: map[string]string{"variant": "A"}, Metrics: map[string]float64{"reward_mean": 2}}
	recs := map[[2]int]Record{{3, 1}: rec, {0, 0}: other}
	if err := writeResults(filepath.Join(dir, "results.csv"), []string{"variant", "particles"}, []string{"reward_mean", "emd"}, recs); err != nil {
		t.Fatal(err)
	}
	res, err := ReadResults(dir, []string{"variant", "particles"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 2 || res.Rows[0].Point != 0 || res.Rows[1].Settings["variant"] != "-" || res.Rows[1].Settings["particles"] != "8" {
		t.Fatalf("rows %+v", res.Rows)
	}
	if res.Rows[1].Metrics["reward_mean"] != -1.25 || !math.IsNaN(res.Rows[1].Metrics["emd"]) {
		t.Fatalf("metrics %+v", res.Rows[1].Metrics)
	}
	if _, err := ReadResults(dir, []string{"alpha"}); err == nil {
		t.Fatal("a missing settings column: no error")
	}
	if err := os.WriteFile(filepath.Join(dir, "results.csv"), []byte("run\nbad\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadResults(dir, nil); err == nil {
		t.Fatal("a bad run id: no error")
	}
}
