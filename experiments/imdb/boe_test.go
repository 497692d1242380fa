package imdb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/objectives"
)

// synthCorpus is an easy synthetic sentiment corpus: n train and n test
// reviews, half positive, of 6 sentences of 4 words and a full stop. Each
// sentence holds one word of its review's class (good, great, fine, best
// or bad, awful, worst, boring) among 3 neutral ones, so every 4-token
// window carries the signal. Two words occur once (they become UNK at
// K = 19).
func synthCorpus(t *testing.T, n int, seed uint64) (*Corpus, *Vocab) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	filler := []string{"the", "film", "movie", "was", "story", "plot", "acting", "it", "a", "and"}
	words := [2][]string{{"bad", "awful", "worst", "boring"}, {"good", "great", "fine", "best"}}
	reviews := func(split string, id0 int) *Reviews {
		rs := &Reviews{Split: split}
		for i := range n {
			y := i % 2
			var b strings.Builder
			for range 6 {
				s := []string{filler[rng.IntN(len(filler))], filler[rng.IntN(len(filler))], filler[rng.IntN(len(filler))]}
				at := rng.IntN(4)
				s = append(s[:at], append([]string{words[y][rng.IntN(4)]}, s[at:]...)...)
				b.WriteString(strings.Join(s, " ") + ". ")
			}
			rs.Reviews = append(rs.Reviews, Review{ID: id0 + i, Rating: 2 + 7*y, Label: y, Text: b.String()})
		}
		return rs
	}
	tr, te := reviews("train", 1), reviews("test", 1000)
	tr.Reviews[0].Text += "Zebra. "
	tr.Reviews[1].Text += "Xylophone. "
	c, v, err := BuildCorpus(tr, te, 19)
	if err != nil {
		t.Fatal(err)
	}
	return c, v
}

func synthBoEConfig() BoEConfig {
	cfg := DefaultBoEConfig()
	cfg.L, cfg.D, cfg.H, cfg.Epochs, cfg.Patience, cfg.Batch, cfg.LR, cfg.ValShare = 4, 4, 8, 30, 30, 16, 1e-2, 0.2
	return cfg
}

// TestBoELearnsTheSyntheticSignal: on the easy synthetic corpus the BoE
// separates the classes on held-out and test windows, its reward is
// log σ of its logit, and training is deterministic given the seed.
func TestBoELearnsTheSyntheticSignal(t *testing.T) {
	c, v := synthCorpus(t, 60, 1)
	cfg := synthBoEConfig()
	var log bytes.Buffer
	m, err := TrainBoE(c, v, cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	t.Log(lines[len(lines)-1])
	if m.ValAcc < 0.95 || m.TestAcc < 0.95 || m.TestAUC < 0.99 || m.TestN != 60*4 || m.Epoch < 1 {
		t.Fatalf("validation accuracy %.3f, test accuracy %.3f, AUC %.3f on %d windows (epoch %d)", m.ValAcc, m.TestAcc, m.TestAUC, m.TestN, m.Epoch)
	}
	if !strings.Contains(log.String(), "validation accuracy") || !strings.Contains(log.String(), "test accuracy") {
		t.Errorf("log does not report the scores:\n%s", log.String())
	}
	good, bad, the := v.ID("good"), v.ID("bad"), v.ID("the")
	if zg, zb := m.Logit([]int{the, good, the, v.UNK()}), m.Logit([]int{the, bad, the, v.UNK()}); !(zg > 1 && zb < -1) {
		t.Fatalf("logits of a good and a bad window: %v, %v", zg, zb)
	}
	r, err := m.Reward()
	if err != nil {
		t.Fatal(err)
	}
	x := []int{the, good, the, v.UNK(), bad, bad, the, the}
	out := make([]float64, 2)
	if err := r.Reward(x, out); err != nil {
		t.Fatal(err)
	}
	for b := range out {
		if want := objectives.LogSigmoid(m.Logit(x[4*b : 4*b+4])); math.Abs(out[b]-want) > 1e-12 {
			t.Fatalf("reward %v, log σ(logit) %v", out[b], want)
		}
	}
	again, err := TrainBoE(c, v, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	again.Seconds = m.Seconds
	if !reflect.DeepEqual(again, m) {
		t.Error("two trainings with the same seed differ")
	}
	cfg.Seed = 2
	other, err := TrainBoE(c, v, cfg, io.Discard)
	if err != nil || reflect.DeepEqual(other.E, m.E) {
		t.Errorf("another seed: %v, same weights %v", err, err == nil && reflect.DeepEqual(other.E, m.E))
	}
	for _, bad := range []func(*BoEConfig){
		func(c *BoEConfig) { c.Epochs = 0 },
		func(c *BoEConfig) { c.Gain = 0 },
		func(c *BoEConfig) { c.D = 0 },
		func(c *BoEConfig) { c.LR = math.NaN() },
		func(c *BoEConfig) { c.L2 = -1 },
		func(c *BoEConfig) { c.ValShare = 1 },
	} {
		cfg := synthBoEConfig()
		bad(&cfg)
		if _, err := TrainBoE(c, v, cfg, io.Discard); err == nil || !strings.HasPrefix(err.Error(), "imdb: bad BoE config") {
			t.Errorf("config %+v: %v", cfg, err)
		}
	}
	_, other7 := smallCorpus(t, 7)
	if _, err := TrainBoE(c, other7, synthBoEConfig(), io.Discard); err == nil || !strings.Contains(err.Error(), "another vocabulary") {
		t.Errorf("corpus of another vocabulary: %v", err)
	}
	cfg = synthBoEConfig()
	cfg.L = 40 // no window that long
	if _, err := TrainBoE(c, v, cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "windows of 40 tokens") {
		t.Errorf("no windows: %v", err)
	}
}

// TestBoESaveLoad: the file round-trips exactly, and a missing, edited,
// truncated or foreign file, weights of the wrong sizes, another
// vocabulary and another window length are errors naming the problem
// (the last two are the stale kind that Prepare retrains).
func TestBoESaveLoad(t *testing.T) {
	c, v := synthCorpus(t, 40, 3)
	cfg := synthBoEConfig()
	cfg.Epochs = 3
	m, err := TrainBoE(c, v, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "boe.txt")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadBoE(path, v, 4)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip differs:\n%+v\n%+v", back, m)
	}
	if _, err := LoadBoE(filepath.Join(dir, "none.txt"), v, 4); !errors.Is(err, task.ErrNotPrepared) {
		t.Errorf("missing file: %v", err)
	}
	_, other := synthCorpus(t, 40, 4) // same words, other counts
	if other.Hash() == v.Hash() {
		t.Fatal("the two synthetic vocabularies are the same")
	}
	if _, err := LoadBoE(path, other, 4); err == nil || !isStale(err) || !strings.Contains(err.Error(), "trained for another vocabulary") || !strings.Contains(err.Error(), path) {
		t.Errorf("another vocabulary: %v", err)
	}
	if _, err := LoadBoE(path, v, 32); err == nil || !isStale(err) || !strings.Contains(err.Error(), "windows of 4 tokens") {
		t.Errorf("another length: %v", err)
	}
	b, _ := os.ReadFile(path)
	edited := filepath.Join(dir, "edited.txt")
	os.WriteFile(edited, bytes.Replace(b, []byte(`"b2":`), []byte(`"b2":1`), 1), 0o644)
	if _, err := LoadBoE(edited, v, 4); err == nil || isStale(err) || !strings.Contains(err.Error(), "fails its checksum") || !strings.Contains(err.Error(), edited) {
		t.Errorf("edited file: %v", err)
	}
	os.WriteFile(edited, b[:len(b)/2], 0o644)
	if _, err := LoadBoE(edited, v, 4); err == nil || !strings.Contains(err.Error(), edited) {
		t.Errorf("truncated file: %v", err)
	}
	lr, err := TrainLR(c, v, LRConfig{L: 4, Epochs: 1, Batch: 8, LR: 0.01, L2: []float64{0}, ValShare: 0.2, Seed: 1}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	lrPath := filepath.Join(dir, "lr.txt")
	if err := lr.Save(lrPath); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBoE(lrPath, v, 4); err == nil || !strings.Contains(err.Error(), "not an imdb bag-of-embeddings classifier") {
		t.Errorf("an LR file: %v", err)
	}
	if _, err := LoadLR(path, v, 4); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("LoadLR of a BoE file: %v", err)
	}
	short := *m
	short.W2 = short.W2[:3]
	if err := short.Save(edited); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadBoE(edited, v, 4); err == nil || !strings.Contains(err.Error(), "W2 has 3 entries") || !strings.Contains(err.Error(), edited) {
		t.Errorf("short W2: %v", err)
	}
	short = *m
	short.E = short.E[:len(short.E)-short.D]
	short.Save(edited)
	if _, err := LoadBoE(edited, v, 4); err == nil || !strings.Contains(err.Error(), "embedding entries") {
		t.Errorf("embedding for another vocabulary size: %v", err)
	}
	nan := *m
	nan.W1 = append([]float64(nil), m.W1...)
	nan.W1[0] = math.NaN()
	if err := nan.Save(edited); err == nil || !strings.HasPrefix(err.Error(), "imdb:") {
		t.Errorf("saving a NaN weight: %v", err)
	}
}

// TestRewardKindOption: [reward] kind chooses the steering reward and
// what Missing lists; an unknown kind is an error naming the key; with
// kind = "boe" Reward hands out per-worker BoE rewards read from
// boe_classifier.
func TestRewardKindOption(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		toml string
		want []string
	}{
		{"", []string{"reward_lr_l32.txt"}},
		{"[reward]\nkind = 'lr'\n", []string{"reward_lr_l32.txt"}},
		{"[reward]\nkind = 'boe'\n", []string{"reward_lr_l32.txt", "reward_boe_l32.txt"}},
		{"[data]\nwindow = 16\n[reward]\nkind = 'boe'\nboe_classifier = '" + filepath.Join(dir, "mine.txt") + "'\n", []string{"reward_lr_l16.txt", "mine.txt"}},
	} {
		tk, err := openTask(t, "[data]\ndir = '"+dir+"'\n"+strings.Replace(c.toml, "[data]\n", "", 1))
		if err != nil {
			t.Fatalf("%q: %v", c.toml, err)
		}
		m := tk.Missing()
		if len(m) != 2+len(c.want) {
			t.Fatalf("%q: Missing = %v", c.toml, m)
		}
		for i, w := range c.want {
			if filepath.Base(m[2+i]) != w || filepath.Dir(m[2+i]) != dir {
				t.Errorf("%q: Missing = %v, want %v after the vocabulary and corpus", c.toml, m, c.want)
			}
		}
	}
	// The options recorded for an LR config (e.g. in a sweep's fingerprint)
	// are those from before the option existed.
	tk, _ := openTask(t, "[data]\ndir = '"+dir+"'\n")
	if b, err := json.Marshal(tk.o); err != nil || !bytes.HasSuffix(b, []byte(`"reward":{"classifier":"`+filepath.Join(dir, "reward_lr_l32.txt")+`"}}`)) {
		t.Errorf("options of a default config record %s (%v)", b, err)
	}
	for _, bad := range []string{"[reward]\nkind = 'cnn'\n", "[reward]\nkind = 'BoE'\n"} {
		if _, err := openTask(t, bad); err == nil || !strings.Contains(err.Error(), "reward.kind") {
			t.Errorf("%q: %v, want an error naming reward.kind", bad, err)
		}
	}
	if _, err := openTask(t, "[reward]\nkind = 3\n"); err == nil || !strings.Contains(err.Error(), "kind") {
		t.Errorf("kind = 3: %v", err)
	}

	c, v := synthCorpus(t, 40, 5)
	if err := v.Save(filepath.Join(dir, "vocab.tsv")); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("[data]\ndir = '%s'\nvocab_size = 19\nwindow = 4\n[reward]\nkind = 'boe'\n", dir)
	tk, err := openTask(t, text)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tk.Reward(1); !errors.Is(err, task.ErrNotPrepared) || !strings.Contains(err.Error(), "reward_boe_l4.txt") {
		t.Errorf("Reward before the BoE is trained: %v", err)
	}
	cfg := synthBoEConfig()
	cfg.Epochs = 5
	m, err := TrainBoE(c, v, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(tk.BoEClassifierPath()); err != nil {
		t.Fatal(err)
	}
	r, graphs, err := tk.Reward(2)
	if err != nil || len(graphs) != 2 {
		t.Fatalf("Reward(2): %v, %d graphs", err, len(graphs))
	}
	g0, ok0 := graphs[0].(*objectives.BoEReward)
	g1, ok1 := graphs[1].(*objectives.BoEReward)
	if !ok0 || !ok1 || g0 == g1 || &g0.E[0] == &g1.E[0] || r.(*objectives.BoEReward) != g0 {
		t.Fatalf("graphs %T, %T: want two separate copies of the BoE reward, the first also the token reward", graphs[0], graphs[1])
	}
	x := c.Test[0].Tokens[:4]
	row := []int{int(x[0]), int(x[1]), int(x[2]), int(x[3])}
	out := make([]float64, 1)
	if err := r.Reward(row, out); err != nil || math.Abs(out[0]-objectives.LogSigmoid(m.Logit(row))) > 1e-12 {
		t.Fatalf("reward %v (%v), want log σ(%v)", out, err, m.Logit(row))
	}
	// With kind = "lr" the same directory still needs the LR.
	tk, _ = openTask(t, strings.Replace(text, "kind = 'boe'", "kind = 'lr'", 1))
	if _, _, err := tk.Reward(1); !errors.Is(err, task.ErrNotPrepared) || !strings.Contains(err.Error(), "reward_lr_l4.txt") {
		t.Errorf("kind = lr without an LR: %v", err)
	}
}

var realBoEModel struct {
	once sync.Once
	m    *BoE
	log  string
	err  error
}

// realBoE trains the BoE with the default recipe on the real corpus once
// per test binary.
func realBoE(t *testing.T) *BoE {
	c, v := realCorpus(t)
	realBoEModel.once.Do(func() {
		var log bytes.Buffer
		realBoEModel.m, realBoEModel.err = TrainBoE(c, v, DefaultBoEConfig(), &log)
		realBoEModel.log = log.String()
	})
	if realBoEModel.err != nil {
		t.Fatal(realBoEModel.err)
	}
	return realBoEModel.m
}

// gradDirection is ∂z/∂(pooled counts) = E·(W1·((1 − u²) ⊙ W2)) at window
// x: the direction of the reward's gradient with respect to the soft
// one-hot input (the same at every position, up to σ(−z)/L).
func gradDirection(m *BoE, x []int) []float64 {
	h, u := make([]float64, m.D), make([]float64, m.H)
	m.forward(x, h, u)
	c := make([]float64, m.D)
	for j := range c {
		for k, uk := range u {
			c[j] += m.W1[j*m.H+k] * (1 - uk*uk) * m.W2[k]
		}
	}
	g := make([]float64, m.V())
	for v := range g {
		for j, cj := range c {
			g[v] += m.E[v*m.D+j] * cj
		}
	}
	return g
}

// TestBoEOnTheRealCorpus: on the real corpus (L = 32, K = 4k) the default
// BoE reaches the LR's accuracy (domains.md §1.4: 73.2% / AUC 0.811 for
// the LR, 73.3% / 0.812 for a torch BoE MLP), its gradient direction
// really depends on the window (an LR's is the same everywhere), and it
// serves as the task's reward with [reward] kind = "boe".
func TestBoEOnTheRealCorpus(t *testing.T) {
	c, v := realCorpus(t)
	m := realBoE(t)
	t.Log(realBoEModel.log)
	lr, _ := realLRModel(t)
	t.Logf("BoE: validation accuracy %.4f, AUC %.4f, loss %.4f (epoch %d); test accuracy %.4f, AUC %.4f on %d windows; %.0f s. LR: validation %.4f, test %.4f / %.4f",
		m.ValAcc, m.ValAUC, m.ValLoss, m.Epoch, m.TestAcc, m.TestAUC, m.TestN, m.Seconds, lr.ValAcc, lr.TestAcc, lr.TestAUC)
	if m.TestAcc < 0.70 || m.TestAUC < 0.77 {
		t.Errorf("test accuracy %.4f, AUC %.4f; want ≥ 0.70 and ≥ 0.77", m.TestAcc, m.TestAUC)
	}
	if m.TestN != lr.TestN {
		t.Errorf("BoE scored on %d test windows, the LR on %d", m.TestN, lr.TestN)
	}
	test := labelled(c.Test, 32).perDoc(rand.New(rand.NewPCG(9, 9)), 1)
	var gs [][]float64
	for i := range 200 {
		gs = append(gs, gradDirection(m, test.row(i)))
	}
	var cs []float64
	for i := range gs {
		for j := range i {
			var ab, aa, bb float64
			for k := range gs[i] {
				ab += gs[i][k] * gs[j][k]
				aa += gs[i][k] * gs[i][k]
				bb += gs[j][k] * gs[j][k]
			}
			cs = append(cs, math.Abs(ab)/math.Sqrt(aa*bb))
		}
	}
	sort.Float64s(cs)
	q := func(p float64) float64 { return cs[int(p*float64(len(cs)-1))] }
	t.Logf("|cos| between the gradient directions of 200 test windows: quantiles 1/10/50/90%% %.3f / %.3f / %.3f / %.3f", q(0.01), q(0.1), q(0.5), q(0.9))
	if q(0.5) > 0.99 {
		t.Errorf("median |cos| %.4f between gradient directions: the BoE is practically linear", q(0.5))
	}
	n := 0
	for i := range test.n() {
		if m.Logit(test.row(i)) > math.Log(9) {
			n++
		}
	}
	t.Logf("test windows (one per review) with BoE p(pos) > 0.9: %.1f%% of %d", 100*float64(n)/float64(test.n()), test.n())

	// The task with kind = "boe" on the real artefacts.
	dir := preparedDir(t)
	if err := m.Save(filepath.Join(dir, "reward_boe_l32.txt")); err != nil {
		t.Fatal(err)
	}
	dec, _ := task.NewTOML([]byte("[data]\ndir = '" + dir + "'\n[reward]\nkind = 'boe'\n"))
	tk0, err := task.Open(&task.Spec{Name: "imdb", Seed: 1}, dec)
	if err != nil {
		t.Fatal(err)
	}
	tk := tk0.(*Task)
	if miss := tk.Missing(); len(miss) != 0 {
		t.Fatalf("Missing = %v", miss)
	}
	r, graphs, err := tk.Reward(2)
	if err != nil || len(graphs) != 2 {
		t.Fatal(err)
	}
	out := make([]float64, 1)
	if err := r.Reward(test.row(0), out); err != nil || math.Abs(out[0]-objectives.LogSigmoid(m.Logit(test.row(0)))) > 1e-12 {
		t.Fatalf("reward %v, %v", out, err)
	}
	var log bytes.Buffer
	if err := tk.Prepare(false, &log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "BoE epoch") || strings.Contains(log.String(), "LR λ") {
		t.Errorf("Prepare with nothing missing retrained:\n%s", log.String())
	}
	if _, err := LoadBoE(filepath.Join(dir, "reward_boe_l32.txt"), v, 32); err != nil {
		t.Fatal(err)
	}
}
