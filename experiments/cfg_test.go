package experiments

import (
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
)

// cfgBase writes a 14×14 MNIST experiment with a class-conditional (or,
// with classes = 0, unconditional) untrained denoiser and two tiny
// classifiers, and returns the config path and the parsed config.
func cfgBase(t *testing.T, tmp string, classes int, smcTable string) (string, Config) {
	t.Helper()
	clf := func(name string, seed uint64) string {
		p := filepath.Join(tmp, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
		c, err := objectives.NewClassifier(objectives.ClassifierConfig{H: 14, W: 14, Hidden: []int{3}, Act: "relu", Seed: seed, Classes: 10})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Save(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	name := "c"
	if classes == 0 {
		name = "u"
	}
	path := filepath.Join(tmp, name+".toml")
	text := "name = \"" + name + "\"\nout = \"" + filepath.Join(tmp, name) + "\"\n[data]\nname = \"mnist\"\nsize = 14\nval_size = 300\n[model]\nhidden = 8\nlayers = 1\nembed = 2\nclasses = " +
		strconv.Itoa(classes) + "\n[diffusion]\nsteps = 4\n[reward]\ntarget = 3\nclassifier = \"" + clf("main.ckpt", 1) + "\"\nval_classifier = \"" + clf("val.ckpt", 2) + "\"\n" + smcTable
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	cfg, err := Parse(path, b)
	if err != nil {
		t.Fatal(err)
	}
	mc := cfg.Model
	mc.L, mc.V = 196, 2
	m, err := graph.New(mc)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(cfg.CheckpointPath(), nil); err != nil {
		t.Fatal(err)
	}
	return path, cfg
}

// fmtFloat formats as results tables do.
func fmtFloat(v float64) string {
	if math.IsNaN(v) {
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', 8, 64)
}

// [smc] target = "product" with guidance w and class c builds the CFG
// target from one conditional checkpoint: the base's look-ahead logits are
// w·ℓ(x | c) + (1 − w)·ℓ(x | null), and a run on it completes with its
// outputs labelled with the class.
func TestCFGTargetFromOneConditionalCheckpoint(t *testing.T) {
	tmp := t.TempDir()
	_, cfg := cfgBase(t, tmp, 10, "[smc]\ntarget = \"product\"\nguidance = 2.0\nclass = 7\nreward = \"none\"\nparticles = 4\nbatch = 4\ntwist = \"none\"\n")
	m, _, err := loadDenoiser(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, tg, err := BuildSampler(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	const lv = 196 * 2
	x := make([]int, 196)
	for i := range x {
		x[i] = [3]int{0, 1, 2}[i%3] // 2 = MASK
	}
	ev := make([]float64, tg.Base.Width())
	if err := tg.Base.Eval(x, 0.6, ev, 1); err != nil {
		t.Fatal(err)
	}
	want := func(c int) []float64 {
		v, err := m.WithClass(c)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, lv)
		if err := v.X0Logits(x, []float64{0.6}, out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	lc, ln := want(7), want(graph.NullClass)
	if len(ev) != 3*lv {
		t.Fatalf("product width %d, want 3·L·V = %d", len(ev), 3*lv)
	}
	for j := range lv {
		if d := math.Abs(ev[2*lv+j] - (2*lc[j] - ln[j])); d > 1e-4*(1+math.Abs(lc[j])) {
			t.Fatalf("mixed logit %d = %v, want 2·%v − %v", j, ev[2*lv+j], lc[j], ln[j])
		}
	}
	if _, err := s.Run(rand.New(rand.NewPCG(1, 2))); err != nil {
		t.Fatal(err)
	}
	env, err := OpenEnv(cfg, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := env.RunPoint(RunSpec{SMC: cfg.SMC, Seed: 3, Dir: filepath.Join(tmp, "run")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Outputs.N(); len(res.Outputs.Classes) != n || res.Outputs.Classes[0] != 7 {
		t.Fatalf("outputs' classes %v for %d outputs, want all 7", res.Outputs.Classes, n)
	}
}

// Bad CFG settings are refused naming the problem.
func TestCFGErrors(t *testing.T) {
	tmp := t.TempDir()
	_, cond := cfgBase(t, tmp, 10, "")
	_, unc := cfgBase(t, tmp, 0, "")
	for _, c := range []struct {
		name string
		cfg  Config
		edit func(*SMCConfig)
		want string
	}{
		{"conditional without a class", cond, func(s *SMCConfig) {}, "set smc.class"},
		{"class for an unconditional checkpoint", unc, func(s *SMCConfig) { c := 3; s.Class = &c }, "unconditional"},
		{"class 10 of 10", cond, func(s *SMCConfig) { c := 10; s.Class = &c }, "outside"},
		{"guidance on an unconditional checkpoint", unc, func(s *SMCConfig) {
			c, w := 3, 2.0
			s.Class, s.Guidance, s.Target = &c, &w, "product"
		}, "unconditional"},
	} {
		cfg := c.cfg
		c.edit(&cfg.SMC)
		m, _, err := loadDenoiser(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := BuildSampler(cfg, m); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
	for _, c := range []struct{ smc, want string }{
		{"target = \"product\"\nclass = 3\nguidance = 0.0", "smc.guidance = 0"},
		{"target = \"product\"\nclass = 3\nguidance = -1.0", "smc.guidance = -1"},
		{"target = \"product\"\nclass = 3\nguidance = inf", "smc.guidance = +Inf"},
		{"target = \"product\"\nclass = 3\nguidance = nan", "smc.guidance = NaN"},
		{"class = 3\nguidance = 2.0", "needs smc.target = \"product\""},
		{"target = \"product\"\nguidance = 2.0", "needs smc.class"},
		{"target = \"product\"\nclass = -1\nguidance = 2.0", "needs smc.class"},
		{"class = -3", "smc.class = -3"},
		{"reward = \"maybe\"", "smc.reward = \"maybe\""},
		{"reward = \"none\"\nproposal = \"grad\"\ntwist = \"grad\"", "needs a reward gradient"},
		{"target = \"product\"\nclass = 3\nguidance = 2.0\nsecond_model = \"x.ckpt\"\nexponents = [1.0, 0.0]", "remove smc.second_model"},
	} {
		path := filepath.Join(tmp, "bad.toml")
		b, _ := os.ReadFile(filepath.Join(tmp, "c.toml"))
		if err := os.WriteFile(path, append(b, []byte("[smc]\n"+c.smc+"\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ = os.ReadFile(path)
		if _, err := Parse(path, b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("[smc] %q: error %v, want one containing %q", c.smc, err, c.want)
		}
	}
	// A conditional checkpoint as the second model of a product target.
	cfg := unc
	cfg.SMC.Target, cfg.SMC.SecondModel, cfg.SMC.Exponents = "product", cond.CheckpointPath(), []float64{1, 0}
	m, _, _ := loadDenoiser(cfg)
	if _, _, err := BuildSampler(cfg, m); err == nil || !strings.Contains(err.Error(), "class-conditional") {
		t.Errorf("conditional second_model: error %v", err)
	}
}

// Pooling over the class evaluates the union of the runs' outputs, each
// scored against its own class: the pooled accuracy is the mean of the
// runs' (equal-sized) accuracies, and the pooled metrics equal the task's
// evaluator on the concatenated, labelled outputs.
func TestPoolSweepOverClasses(t *testing.T) {
	tmp := t.TempDir()
	base, _ := cfgBase(t, tmp, 10, "")
	sc, err := ParseSweep("s", []byte("name = \"s\"\nbase = \""+base+"\"\nrepeats = 2\n[smc]\nparticles = 4\n[sweep]\nclass = [1, 3]\n[pool]\nover = [\"class\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "sweep")
	if _, err := RunSweep(sc, nil, dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	env, err := OpenEnv(sc.base, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ReadResults(dir, sc.Columns())
	if err != nil || len(res.Rows) != 4 {
		t.Fatalf("results: %v rows, %v", len(res.Rows), err)
	}
	var all task.Outputs
	all.L = 196
	accMean := 0.0
	for _, r := range res.Rows {
		x, _, err := readSamples(filepath.Join(runDir(dir, r.Point, r.Repeat), "samples.csv"))
		if err != nil {
			t.Fatal(err)
		}
		all.Samples = append(all.Samples, x...)
		cls := []int{1, 3}[r.Point]
		for range len(x) / 196 {
			all.Classes = append(all.Classes, cls)
		}
		accMean += r.Metrics["acc"] / 4
	}
	want, err := env.Eval.Evaluate(rand.New(rand.NewPCG(0, 0)), all)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, PooledFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("pooled.csv has %d lines, want a header and one group:\n%s", len(lines), b)
	}
	head, row := strings.Split(lines[0], ","), strings.Split(lines[1], ",")
	get := func(k string) string {
		for i, h := range head {
			if h == k {
				return row[i]
			}
		}
		t.Fatalf("pooled.csv has no column %s: %v", k, head)
		return ""
	}
	if get("runs") != "4" || get("outputs") != strconv.Itoa(len(all.Classes)) {
		t.Errorf("pooled runs %s, outputs %s; want 4 and %d", get("runs"), get("outputs"), len(all.Classes))
	}
	for _, k := range []string{"acc", "fid", "is", "diversity"} {
		if got := get(k); got != fmtFloat(want[k]) {
			t.Errorf("pooled %s = %s, want %s", k, got, fmtFloat(want[k]))
		}
	}
	if math.Abs(want["acc"]-accMean) > 1e-12 {
		t.Errorf("pooled accuracy %v, want the runs' mean %v", want["acc"], accMean)
	}
	if _, err := ParseSweep("s", []byte("name = \"s\"\nbase = \""+base+"\"\n[smc]\nclass = 1\n[sweep]\nparticles = [4]\n[pool]\nover = [\"class\"]\n")); err == nil || !strings.Contains(err.Error(), "not a swept key") {
		t.Errorf("pooling over an unswept key: error %v", err)
	}
	// split = 2: each chunk of repeats is pooled on its own, and averaging
	// over the chunks gives their mean and standard error.
	sc2, err := ParseSweep("s2", []byte("name = \"s2\"\nbase = \""+base+"\"\nrepeats = 2\n[smc]\nparticles = 4\n[sweep]\nclass = [1, 3]\n[pool]\nover = [\"class\"]\nsplit = 2\naverage = [\"chunk\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	dir2 := filepath.Join(tmp, "sweep2")
	if _, err := RunSweep(sc2, nil, dir2, io.Discard); err != nil {
		t.Fatal(err)
	}
	chunks := map[int]float64{}
	for c := range 2 {
		var o task.Outputs
		o.L = 196
		for _, r := range res.Rows {
			if r.Repeat != c {
				continue
			}
			x, _, _ := readSamples(filepath.Join(runDir(dir2, r.Point, r.Repeat), "samples.csv"))
			o.Samples = append(o.Samples, x...)
			for range len(x) / 196 {
				o.Classes = append(o.Classes, []int{1, 3}[r.Point])
			}
		}
		m, err := env.Eval.Evaluate(rand.New(rand.NewPCG(0, 0)), o)
		if err != nil {
			t.Fatal(err)
		}
		chunks[c] = m["fid"]
	}
	b2, _ := os.ReadFile(filepath.Join(dir2, PooledFile))
	if n := len(strings.Split(strings.TrimSpace(string(b2)), "\n")); n != 3 {
		t.Fatalf("split pooled.csv has %d lines, want a header and two chunks:\n%s", n, b2)
	}
	b3, err := os.ReadFile(filepath.Join(dir2, PooledMeanFile))
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(strings.TrimSpace(string(b3)), "\n")
	h3, r3 := strings.Split(ls[0], ","), strings.Split(ls[1], ",")
	for i, h := range h3 {
		if h == "fid" {
			got, _ := strconv.ParseFloat(r3[i], 64)
			if want := (chunks[0] + chunks[1]) / 2; math.Abs(got-want) > 1e-6*math.Abs(want) {
				t.Errorf("mean FID over chunks %v, want %v", got, want)
			}
		}
	}
	// The pooled figure: FID against the chunk, from pooled_mean.csv's
	// source when averaged away, here from pooled.csv of the first sweep.
	if figs, err := PlotPooled(dir, "variant", "fid", "", "", nil); err == nil {
		t.Errorf("a non-numeric x: figures %v, no error", figs)
	}
	if _, err := PlotPooled(dir, "runs", "nope", "", "", nil); err == nil || !strings.Contains(err.Error(), `"nope" is not a column`) {
		t.Errorf("unknown y: error %v", err)
	}
	figs, err := PlotPooled(dir, "runs", "fid", "", "", nil)
	if err != nil || len(figs) != 1 {
		t.Fatalf("PlotPooled: %v, %v", figs, err)
	}
	if st, err := os.Stat(figs[0]); err != nil || st.Size() == 0 {
		t.Errorf("figure %s: %v", figs[0], err)
	}
	if _, err := ParseSweep("s", []byte("name = \"s\"\nbase = \""+base+"\"\nrepeats = 2\n[sweep]\nclass = [1]\n[pool]\nsplit = 3\n")); err == nil || !strings.Contains(err.Error(), "pool.split = 3") {
		t.Errorf("split 3 of 2 repeats: error %v", err)
	}
}

// [smc] steps and eta override the base's diffusion.steps and η for a run
// (a sweep varies T and the ReMDM remasking of one trained model); bad
// values are refused naming the key.
func TestSMCStepsAndEtaOverrides(t *testing.T) {
	tmp := t.TempDir()
	_, cfg := cfgBase(t, tmp, 0, "[smc]\nsteps = 3\neta = 0.25\nparticles = 4\nbatch = 4\ntwist = \"none\"\n")
	m, _, err := loadDenoiser(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, _, err := BuildSampler(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	if s.Steps() != 3 {
		t.Errorf("smc.steps = 3: the sampler has %d steps (diffusion.steps = %d)", s.Steps(), cfg.Diffusion.Steps)
	}
	res, err := s.Run(rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Trace) != 3 && len(res.Trace) != 4 {
		t.Errorf("trace of %d steps for T = 3", len(res.Trace))
	}
	for _, c := range []struct{ smc, want string }{
		{"steps = -1", "smc.steps = -1"},
		{"eta = 1.5", "smc.eta = 1.5"},
		{"eta = -0.1", "smc.eta = -0.1"},
	} {
		path := filepath.Join(tmp, "bad.toml")
		b, _ := os.ReadFile(filepath.Join(tmp, "u.toml"))
		b = []byte(strings.Split(string(b), "[smc]")[0])
		if err := os.WriteFile(path, append(b, []byte("[smc]\n"+c.smc+"\n")...), 0o644); err != nil {
			t.Fatal(err)
		}
		b, _ = os.ReadFile(path)
		if _, err := Parse(path, b); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("[smc] %s: error %v, want one containing %q", c.smc, err, c.want)
		}
	}
}
