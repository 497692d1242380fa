package mnist

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/objectives"
)

func TestEffectiveRank(t *testing.T) {
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-9 }
	// n identical rows: rank one.
	if r, err := EffectiveRank([]float64{1, 2, 3, 1, 2, 3, 1, 2, 3}, 3, 3); err != nil || !near(r, 1) {
		t.Fatalf("identical rows: %v %v, want 1", r, err)
	}
	// Orthonormal rows: all singular values equal, effective rank = n.
	if r, err := EffectiveRank([]float64{0, 2, 0, 0, 0, 0, 0, 2, 2, 0, 0, 0}, 3, 4); err != nil || !near(r, 3) {
		t.Fatalf("orthogonal rows: %v %v, want 3", r, err)
	}
	// Singular values 3 and 1: exp(H(3/4, 1/4)).
	want := math.Exp(-(0.75*math.Log(0.75) + 0.25*math.Log(0.25)))
	if r, err := EffectiveRank([]float64{3, 0, 0, 1}, 2, 2); err != nil || !near(r, want) {
		t.Fatalf("diag(3,1): %v %v, want %v", r, err, want)
	}
	if r, err := EffectiveRank(make([]float64, 4), 2, 2); err != nil || r != 0 {
		t.Fatalf("zero matrix: %v %v, want 0", r, err)
	}
	for _, c := range []struct {
		a    []float64
		n, d int
		want string
	}{{[]float64{1, 2, 3}, 2, 2, "2×2"}, {nil, 0, 2, "0×2"}, {[]float64{1, math.NaN()}, 1, 2, "non-finite"}} {
		if _, err := EffectiveRank(c.a, c.n, c.d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("EffectiveRank(%v, %d, %d): error %v, want one mentioning %q", c.a, c.n, c.d, err, c.want)
		}
	}
}

// The image metrics on a hand-checkable case: two tiny classifiers whose
// output layer reads only pixel 0, so that p(target) is known per image.
func TestImageMetrics(t *testing.T) {
	mk := func(seed uint64) *objectives.Classifier {
		c, err := objectives.NewClassifier(objectives.ClassifierConfig{H: 1, W: 2, Act: "relu", DType: "float64", Seed: seed, Classes: 2})
		if err != nil {
			t.Fatal(err)
		}
		// Linear classifier: logit_1 − logit_0 = 4 if pixel 0 is on, −4 if off.
		w := []float64{2, -2, -2, 2, 0, 0, 0, 0} // rows: pixel0=0, pixel0=1, pixel1=0, pixel1=1
		if err := setParam(c, "classifier.0.W", w); err != nil {
			t.Fatal(err)
		}
		return c
	}
	e := &imageEval{target: 1, main: mk(1), val: mk(2)}
	x := []int{1, 0, 1, 1, 0, 1, 0, 0} // 4 images; pixel 0 on in the first two
	m, rm, rv, err := e.metrics(x, 2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hi, lo := -math.Log1p(math.Exp(-4)), -math.Log1p(math.Exp(4))
	for i, want := range []float64{hi, hi, lo, lo} {
		if math.Abs(rm[i]-want) > 1e-12 || math.Abs(rv[i]-want) > 1e-12 {
			t.Fatalf("image %d: rewards %v, %v, want %v", i, rm[i], rv[i], want)
		}
	}
	checks := map[string]float64{"acc": 0.5, "acc_val": 0.5, "success_any": 1, "success_all": 0, "reward_val": (hi + lo) / 2}
	for k, want := range checks {
		if math.Abs(m[k]-want) > 1e-12 {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	// Weights on the two correct images only: everything correct.
	m, _, _, err = e.metrics(x, 2, []float64{math.Log(0.5), math.Log(0.5), math.Inf(-1), math.Inf(-1)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m["acc"] != 1 || m["success_all"] != 1 || math.Abs(m["reward_val"]-hi) > 1e-12 {
		t.Errorf("weighted metrics %v: want acc 1, success_all 1, reward %v", m, hi)
	}
	// No correct image: the accuracies are present and 0, not missing.
	m, _, _, err = e.metrics([]int{0, 0, 0, 1}, 2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range MetricNames {
		if _, ok := m[k]; !ok {
			t.Errorf("metric %s missing", k)
		}
	}
	if m["acc"] != 0 || m["acc_val"] != 0 || m["success_any"] != 0 || m["success_all"] != 0 {
		t.Errorf("all-wrong metrics %v: want zero accuracies and successes", m)
	}
	if _, _, _, err := e.metrics(x[:3], 2, nil, nil); err == nil {
		t.Error("3 tokens of 2-pixel images: no error")
	}
	// Per-image classes (a class-conditional run): each image is scored
	// against its own class, so images 0 and 1 (class 1, pixel on) and
	// image 3 (class 0, pixel off) are correct, image 2 (class 1) is not.
	m, rm, _, err = e.metrics(x, 2, nil, []int{1, 1, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{hi, hi, lo, hi} {
		if math.Abs(rm[i]-want) > 1e-12 {
			t.Fatalf("per-class image %d: reward %v, want %v", i, rm[i], want)
		}
	}
	if math.Abs(m["acc"]-0.75) > 1e-12 {
		t.Errorf("per-class accuracy %v, want 0.75", m["acc"])
	}
	if _, _, _, err := e.metrics(x, 2, nil, []int{1, 1, 2, 0}); err == nil {
		t.Error("class 2 of a 2-class classifier: no error")
	}
	if _, _, _, err := e.metrics(x, 2, nil, []int{1}); err == nil {
		t.Error("1 class for 4 images: no error")
	}
}

func TestMNISTOptionErrorsNameTheKey(t *testing.T) {
	for _, c := range []struct{ toml, want string }{
		{"[data]\nsize = 20\n", "data.size = 20"},
		{"[data]\ntrain_size = 70000\n", "data.train_size = 70000"},
		{"[data]\nval_size = 20000\n", "data.val_size = 20000"},
		{"[reward]\ntarget = 10\n", "reward.target = 10"},
		{"[reward]\nclassifier_epochs = 0\n", "reward.classifier_epochs = 0"},
	} {
		if _, err := openTOML(t, c.toml); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.toml, err, c.want)
		}
	}
	tk, err := openTOML(t, "[data]\nsize = 14\n")
	if err != nil {
		t.Fatal(err)
	}
	main, val := tk.ClassifierPaths()
	if main != filepath.Join("runs", "mnist14", "clf_main.ckpt") || val != filepath.Join("runs", "mnist14", "clf_val.ckpt") {
		t.Errorf("default classifier paths %s, %s", main, val)
	}
	// A missing classifier is task.ErrNotPrepared (the runner names the
	// prepare command), and Missing lists it.
	tk.o.Reward.Classifier = filepath.Join(t.TempDir(), "none.ckpt")
	if _, err := tk.Evaluator(task.Model{}); !errors.Is(err, task.ErrNotPrepared) || !strings.Contains(err.Error(), "none.ckpt") {
		t.Errorf("missing classifier: %v", err)
	}
	if m := tk.Missing(); len(m) == 0 || m[0] != tk.o.Reward.Classifier {
		t.Errorf("Missing() = %v", m)
	}
}

// openTOML opens the mnist task from config text (train/val sizes at the
// runner's defaults).
func openTOML(t *testing.T, text string) (*Task, error) {
	t.Helper()
	dec, err := task.NewTOML([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	spec := &task.Spec{Name: "mnist", TrainSize: 100000, ValSize: 5000}
	if dec.Defined("data", "train_size") {
		spec.TrainSize = 70000
	}
	if dec.Defined("data", "val_size") {
		spec.ValSize = 20000
	}
	tk, err := task.Open(spec, dec)
	if err != nil {
		return nil, err
	}
	return tk.(*Task), nil
}

func setParam(c *objectives.Classifier, name string, v []float64) error {
	return layers.SetFloat64s(c.Store.Get(name), v)
}
