package mnist

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
)

// Render draws one run's outputs as a captioned grid and several runs as
// one row each.
func TestRenderOneAndManyPanels(t *testing.T) {
	tk, err := openTOML(t, "[data]\nsize = 14\n")
	if err != nil {
		t.Fatal(err)
	}
	x := make([]int, 3*196)
	for i := range x {
		x[i] = (i / 5) % 2
	}
	dir := t.TempDir()
	if err := writeSampleRewards(filepath.Join(dir, SampleRewardsFile), []float64{-1, -2, -3}, []float64{-1, -2, -3}); err != nil {
		t.Fatal(err)
	}
	p := task.Panel{Title: "SMC", Out: task.Outputs{L: 196, Samples: x, Dir: dir}, Metrics: map[string]float64{"acc": 0.5}}
	for name, panels := range map[string][]task.Panel{"one.png": {p}, "many.png": {p, p}} {
		path := filepath.Join(dir, name)
		if err := tk.Render(path, panels); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// Prepare trains nothing when the classifiers exist.
func TestPrepareKeepsExistingClassifiers(t *testing.T) {
	dir := t.TempDir()
	tk, err := openTOML(t, "[data]\nsize = 14\n[reward]\nclassifier = \""+filepath.Join(dir, "a")+"\"\nval_classifier = \""+filepath.Join(dir, "b")+"\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(tk.Missing()) != 2 {
		t.Fatalf("Missing() = %v, want both", tk.Missing())
	}
	for _, f := range []string{"a", "b"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if m := tk.Missing(); len(m) != 0 {
		t.Fatalf("Missing() = %v", m)
	}
	if err := tk.Prepare(false, os.Stderr); err != nil {
		t.Fatal(err)
	}
}
