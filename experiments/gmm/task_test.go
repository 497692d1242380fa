package gmm

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
)

func openTask(t *testing.T, name string) *Task {
	t.Helper()
	tk, err := task.Open(&task.Spec{Name: name, TrainSize: 300, ValSize: 100, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tk.(*Task)
}

// The task's data are seeded draws of the requested sizes, its reward is
// the mixture's, and its metrics are the GMM columns.
func TestTaskDataRewardAndMetrics(t *testing.T) {
	tk := openTask(t, "gmm2")
	if L, V := tk.Shape(); L != 2 || V != 64 {
		t.Fatalf("shape %d×%d", L, V)
	}
	tr, err := tk.Data("train")
	if err != nil || tr.Len() != 300 {
		t.Fatalf("train: %v, %v", tr, err)
	}
	tr2, _ := tk.Data("train")
	va, _ := tk.Data("val")
	if va.Len() != 100 || tr2.Tokens[0] != tr.Tokens[0] || tr2.Tokens[1] != tr.Tokens[1] {
		t.Fatal("splits are not seeded")
	}
	if _, err := tk.Data("test"); err == nil {
		t.Fatal("unknown split: no error")
	}
	r, graphs, err := tk.Reward(3)
	if err != nil || len(graphs) != 3 {
		t.Fatalf("reward: %v, %d graphs", err, len(graphs))
	}
	out := make([]float64, 2)
	if err := r.Reward([]int{32, 40, 10, 60}, out); err != nil {
		t.Fatal(err)
	}
	if out[0] != tk.g.Reward([]int{32, 40}) || out[1] != tk.g.Reward([]int{10, 60}) {
		t.Fatalf("rewards %v", out)
	}
	for _, m := range tk.Metrics() {
		if m.Key == "" || m.Label == "" {
			t.Fatalf("metric %+v", m)
		}
	}
}

// SampleTarget draws from the data pmf tilted by exp(r/α): the mean reward
// of 20,000 draws is the exact tilted mean within 5 standard errors.
func TestSampleTargetMatchesTiltedPMF(t *testing.T) {
	tk := openTask(t, "gmm1")
	x, err := tk.SampleTarget(rand.New(rand.NewPCG(3, 4)), 1, 20000)
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := tk.g.TiltedPMF(1)
	rt := tk.g.RewardTable()
	mean, m2 := dot(tp, rt), 0.0
	for i, p := range tp {
		m2 += p * (rt[i] - mean) * (rt[i] - mean)
	}
	got := 0.0
	for i := 0; i < len(x); i += 2 {
		got += tk.g.Reward(x[i:i+2]) / 20000
	}
	if se := math.Sqrt(m2 / 20000); math.Abs(got-mean) > 5*se {
		t.Fatalf("mean reward of target draws %v, exact %v (se %v)", got, mean, se)
	}
}

// The evaluator's exact references on an exact model: a denoiser that
// predicts the data pmf's conditionals is not available cheaply, so use a
// uniform one, whose T-step marginal is uniform: then the tilted target is
// ∝ exp(r) and its log Z is log mean exp(r); draws from it have a small TV.
func TestEvaluatorExactReferences(t *testing.T) {
	tk := openTask(t, "gmm1")
	grid, _ := diffusion.NewGrid(4, "linear")
	ev, err := tk.Evaluator(task.Model{Denoiser: uniform{}, Kernel: diffusion.Kernel{Schedule: diffusion.Linear()}, Grid: grid, Batch: 256})
	if err != nil {
		t.Fatal(err)
	}
	rt := tk.g.RewardTable()
	lse := math.Inf(-1)
	for _, r := range rt {
		lse = math.Max(lse, r)
	}
	s := 0.0
	for _, r := range rt {
		s += math.Exp(r - lse)
	}
	logZ := lse + math.Log(s/float64(len(rt)))
	m, err := ev.Evaluate(rand.New(rand.NewPCG(1, 7)), task.Outputs{L: 2, Samples: []int{32, 32, 31, 33}, LogZ: logZ + 0.5, Alpha: 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m["exact_log_z"]-logZ) > 1e-9 || math.Abs(m["log_z_error"]-0.5) > 1e-9 {
		t.Fatalf("exact log Z %v (want %v), error %v (want 0.5)", m["exact_log_z"], logZ, m["log_z_error"])
	}
	if m["diversity"] != 2 || !math.IsNaN(m["tv_weighted"]) {
		t.Fatalf("diversity %v, tv_weighted %v", m["diversity"], m["tv_weighted"])
	}
}

// uniform is a denoiser with equal x0-logits everywhere.
type uniform struct{}

func (uniform) Shape() (L, V int) { return 2, 64 }
func (uniform) X0Logits(_ []int, _ []float64, out []float64) error {
	clear(out)
	return nil
}

// Render draws a scatter of the outputs beside the target.
func TestRenderWritesAFigure(t *testing.T) {
	tk := openTask(t, "gmm1")
	p := filepath.Join(t.TempDir(), "s.png")
	err := tk.Render(p, []task.Panel{{Title: "x", Out: task.Outputs{L: 2, Samples: []int{1, 2, 30, 31}, Alpha: 1},
		Metrics: map[string]float64{"reward_mean": -1, "emd": 2, "diversity": 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Size() == 0 {
		t.Fatalf("figure: %v", err)
	}
}
