package experiments

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyBase writes a base experiment with a tiny, quickly trained GMM-1
// denoiser whose checkpoint lives in dir.
func tinyBase(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "base.toml")
	b := fmt.Sprintf(`name = "tinybase"
out = %q
[data]
train_size = 500
val_size = 100
[model]
hidden = 16
layers = 1
embed = 8
[diffusion]
steps = 12
[train]
steps = 20
batch = 64
val_every = 20
val_samples = 1
checkpoint_every = 20
[eval]
emd_samples = 20
`, filepath.Join(dir, "model"))
	if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// trainedTinyBase writes tinyBase's config in dir, trains its denoiser and
// returns the config's path and parsed config.
func trainedTinyBase(t *testing.T, dir string) (string, Config) {
	t.Helper()
	base := tinyBase(t, dir)
	b, _ := os.ReadFile(base)
	cfg, err := Parse(base, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TrainDenoiser(cfg, io.Discard); err != nil {
		t.Fatal(err)
	}
	return base, cfg
}

func tinySweep(base, extra string) string {
	return fmt.Sprintf(`name = "tiny"
base = %q
repeats = 2
workers = 2
seed = 5
[smc]
particles = 24
twist = "exact"
[variants.LOP]
proposal = "lop"
[variants.RP]
proposal = "reverse"
[variants.Target]
method = "target"
[variants.BoN]
method = "bon"
%s`, base, extra)
}

// TestParseSweepErrors: each bad sweep file names the problem.
func TestParseSweepErrors(t *testing.T) {
	base := tinyBase(t, t.TempDir())
	cases := []struct{ extra, want string }{
		{"[sweep]\nvariant = [\"LOP\"]\nphy = [1, 2]\n", "unknown key sweep.phy"},
		{"[sweep]\nvariants = [\"LOP\"]\n", "unknown key sweep.variants (did you mean variant?)"}, // not "variants are defined but not swept"
		{"[sweep]\nvariant = [\"LOP\"]\nParticles = [8]\n", "unknown key sweep.Particles"},        // keys are case-sensitive
		{"[sweep]\nvariant = [\"LOP\"]\nseed = [1, 2]\n", "sweep.seed: a run's seed is the sweep's seed plus its repeat"},
		{"[sweep]\nvariant = [\"LOP\"]\nphi = [2, \"ten\"]\n", `sweep.phi[1] = "ten": want an integer`},
		{"[sweep]\nvariant = [\"LOP\"]\n", ""}, // (the base case parses; see below)
		{"[sweep]\nvariant = []\n", "sweep.variant is an empty list"},
		{"[sweep]\nvariant = [\"LOP\"]\nphi = []\n", "sweep.phi is an empty list"},
		{"[sweep]\nvariant = [\"XYZ\"]\n", `unknown variant "XYZ"`},
		{"[sweep]\nphi = [1]\n", "variants are defined but not swept"},
		{"[sweep]\nvariant = [\"RP\"]\nphi = [0]\n", "smc.phi = 0"},
		{"[sweep]\nvariant = [\"RP\"]\nphi = 3\n", "sweep.phi: want a list"},
		{"colour = 1\n[sweep]\nvariant = [\"RP\"]\n", "unknown key variants.BoN.colour"}, // unswept variants are checked too
		{"phi = \"ten\"\n[sweep]\nvariant = [\"RP\"]\n", `variants.BoN.phi = "ten": want an integer`},
		{"[sweep]\nvariant = [\"LOP\"]\ntwist = [\"mc\"]\n", "lop"},
	}
	for _, c := range cases {
		_, err := ParseSweep("x.toml", []byte(tinySweep(base, c.extra)))
		if c.want == "" {
			if err != nil {
				t.Errorf("%q: %v", c.extra, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want it to mention %q", c.extra, err, c.want)
		}
	}
	top := strings.Replace(tinySweep(base, "[sweep]\nvariant = [\"RP\"]\n"), "repeats = 2", "repeats = 2\nrepeat = 3", 1)
	if _, err := ParseSweep("x.toml", []byte(top)); err == nil || !strings.Contains(err.Error(), "unknown key repeat") {
		t.Errorf("top-level typo: %v", err)
	}
	if _, err := ParseSweep("x.toml", []byte(strings.Replace(tinySweep(base, "[sweep]\nvariant = [\"RP\"]\n"), base, "nope.toml", 1))); err == nil || !strings.Contains(err.Error(), "nope.toml") {
		t.Errorf("missing base: %v", err)
	}
}

// TestSweepRunsResumesAndRefusesForeignDirs runs a tiny sweep end to end
// (auto-training the base), then checks: one results row per (point,
// repeat) with every swept setting as a column; a rerun after deleting a
// finished run recomputes only that run and reproduces its row; a dir of a
// different sweep is refused; the same seeds with one worker give the same
// rows; a missing checkpoint with auto_train = false is an error.
func TestSweepRunsResumesAndRefusesForeignDirs(t *testing.T) {
	tmp := t.TempDir()
	base := tinyBase(t, tmp)
	text := tinySweep(base, "[[sweep]]\nvariant = [\"LOP\", \"RP\", \"Target\", \"BoN\"]\n[[sweep]]\nvariant = [\"RP\"]\nparticles = [8, 16]\n")
	sc, err := ParseSweep("tiny.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "out")
	var log bytes.Buffer
	recs, err := RunSweep(sc, []byte(text), dir, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(recs) != 6*2 {
		t.Fatalf("%d records, want 12", len(recs))
	}
	res, err := ReadResults(dir, sc.Columns())
	if err != nil {
		t.Fatal(err)
	}
	header, rows := res.Header, res.Rows
	if got := strings.Join(header[:5], ","); got != "run,variant,particles,repeat,seed" {
		t.Fatalf("header starts %q", got)
	}
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 12", len(rows))
	}
	before, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	for _, f := range []string{"sweep.json", "sweep.toml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	// Simulate a crash that lost run 0001-01.
	if err := os.RemoveAll(runDir(dir, 1, 1)); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	if _, err := RunSweep(sc, []byte(text), dir, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "11 already done") || strings.Count(log.String(), "[12/12]") != 1 {
		t.Fatalf("resume did not rerun exactly one run:\n%s", log.String())
	}
	after, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	if !bytes.Equal(stripWall(before), stripWall(after)) {
		t.Fatalf("resumed results differ:\n%s\n---\n%s", before, after)
	}
	// A different sweep into the same dir is refused.
	other, err := ParseSweep("tiny.toml", []byte(strings.Replace(text, "seed = 5", "seed = 6", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunSweep(other, nil, dir, &log); err == nil || !strings.Contains(err.Error(), "different sweep") {
		t.Fatalf("foreign dir: %v", err)
	}
	// One worker gives the same rows.
	one, _ := ParseSweep("tiny.toml", []byte(strings.Replace(text, "workers = 2", "workers = 1", 1)))
	dir1 := filepath.Join(tmp, "out1")
	if _, err := RunSweep(one, nil, dir1, &log); err != nil {
		t.Fatal(err)
	}
	w1, _ := os.ReadFile(filepath.Join(dir1, "results.csv"))
	if !bytes.Equal(stripWall(before), stripWall(w1)) {
		t.Fatalf("1 and 2 workers differ:\n%s\n---\n%s", before, w1)
	}
	// The figures can be redrawn from the directory alone.
	figs, err := PlotSweep(dir)
	if err != nil || len(figs) == 0 {
		t.Fatalf("plot: %v (%d figures)", err, len(figs))
	}
	tabSE, err := SummaryTable(dir, false)
	if err != nil || !strings.Contains(tabSE, "| LOP |") {
		t.Fatalf("table: %v\n%s", err, tabSE)
	}
	// With 2 repeats the standard deviation is √2 times the standard error.
	groups := summarisePoints(readAll(t, dir))
	g := groups[0]
	if se := g.se["reward_mean"]; se > 0 && !strings.Contains(mustTable(t, dir, true), fmtNum(se*math.Sqrt2)) {
		t.Fatalf("-sd table lacks sd %s:\n%s", fmtNum(se*math.Sqrt2), mustTable(t, dir, true))
	}
	// A missing checkpoint with auto_train = false.
	noTrain := strings.Replace(text, "repeats = 2", "repeats = 2\nauto_train = false", 1)
	if err := os.RemoveAll(filepath.Join(tmp, "model")); err != nil {
		t.Fatal(err)
	}
	nt, err := ParseSweep("tiny.toml", []byte(noTrain))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunSweep(nt, nil, filepath.Join(tmp, "out2"), &log); err == nil || !strings.Contains(err.Error(), "auto_train = false") {
		t.Fatalf("missing checkpoint: %v", err)
	}
}

// stripWall drops the wall_s column, the only one that may differ between
// runs of the same sweep.
func stripWall(b []byte) []byte {
	lines := strings.Split(string(b), "\n")
	head := strings.Split(lines[0], ",")
	w := -1
	for i, h := range head {
		if h == "wall_s" {
			w = i
		}
	}
	for i, l := range lines {
		f := strings.Split(l, ",")
		if w >= 0 && w < len(f) {
			f = append(f[:w], f[w+1:]...)
		}
		lines[i] = strings.Join(f, ",")
	}
	return []byte(strings.Join(lines, "\n"))
}

func readAll(t *testing.T, dir string) *Results {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "sweep.json"))
	if err != nil {
		t.Fatal(err)
	}
	var meta sweepMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	res, err := ReadResults(dir, meta.Columns)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func mustTable(t *testing.T, dir string, sd bool) string {
	t.Helper()
	tab, err := SummaryTable(dir, sd)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// The product target p₁^1 · p₂^0 · q^0 with p₂ = p₁ is the tilted target
// itself: a run with it estimates the same evidence as the tilted run (up
// to floating-point differences in the product's log-space combination).
// Rescoring a GMM sweep reproduces its results.
func TestProductTargetAndRescoreOnGMM(t *testing.T) {
	tmp := t.TempDir()
	base := tinyBase(t, tmp)
	text := tinySweep(base, "[sweep]\nvariant = [\"LOP\", \"RP\"]\n")
	text = strings.Replace(text, "[variants.Target]\nmethod = \"target\"\n[variants.BoN]\nmethod = \"bon\"\n", "", 1)
	sc, err := ParseSweep("tiny.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "out")
	var log bytes.Buffer
	if _, err := RunSweep(sc, []byte(text), dir, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	before, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	if n, err := RescoreSweep(sc, dir, nil); err != nil || n != 4 {
		t.Fatalf("rescored %d runs: %v", n, err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	if !bytes.Equal(before, after) {
		t.Fatalf("rescoring changed the results:\n%s\n---\n%s", before, after)
	}
	cfg := sc.base
	env, err := OpenEnv(cfg, false, &log)
	if err != nil {
		t.Fatal(err)
	}
	run := func(smcCfg SMCConfig, d string) *Result {
		t.Helper()
		res, err := env.RunPoint(RunSpec{SMC: smcCfg, Seed: 3, Dir: filepath.Join(tmp, d)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	sm := sc.mustPoint(t, 1).SMC // RP
	tilted := run(sm, "tilted")
	sm.Target, sm.SecondModel, sm.Exponents = "product", cfg.CheckpointPath(), []float64{1, 0}
	prod := run(sm, "product")
	if d := math.Abs(tilted.Record.Metrics["log_z"] - prod.Record.Metrics["log_z"]); !(d < 1e-6) {
		t.Fatalf("log Ẑ: tilted %v, product [1, 0] %v", tilted.Record.Metrics["log_z"], prod.Record.Metrics["log_z"])
	}
	if prod.Record.Run.Target != "product" {
		t.Fatalf("record says target %q", prod.Record.Run.Target)
	}
}

func (sc *SweepConfig) mustPoint(t *testing.T, i int) Point {
	t.Helper()
	pts, err := sc.Points()
	if err != nil || i >= len(pts) {
		t.Fatalf("point %d of %d: %v", i, len(pts), err)
	}
	return pts[i]
}
