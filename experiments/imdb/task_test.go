package imdb

import (
	"bytes"
	"encoding/csv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
)

func openTask(t *testing.T, text string) (*Task, error) {
	t.Helper()
	dec, err := task.NewTOML([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	spec := &task.Spec{Name: "imdb", TrainSize: 1, ValSize: 1, Seed: 1}
	tk, err := task.Open(spec, dec)
	if err != nil {
		return nil, err
	}
	return tk.(*Task), nil
}

// TestOpenDefaultsAndBadOptions: the defaults give L = 32, V = 4001 and
// the artefact paths; bad sizes and over-long prompts name their key.
func TestOpenDefaultsAndBadOptions(t *testing.T) {
	dir := t.TempDir()
	tk, err := openTask(t, "[data]\ndir = '"+dir+"'\n")
	if err != nil {
		t.Fatal(err)
	}
	if L, V := tk.Shape(); L != 32 || V != 4001 || tk.spec.TrainSize != DefaultTrainSize || tk.spec.ValSize != DefaultValSize {
		t.Fatalf("shape %d×%d, sizes %d/%d", L, V, tk.spec.TrainSize, tk.spec.ValSize)
	}
	if m := tk.Missing(); len(m) != 3 || m[2] != filepath.Join(dir, "reward_lr_l32.txt") {
		t.Fatalf("Missing = %v", m)
	}
	if _, err := tk.Data("train"); err == nil || !strings.Contains(err.Error(), "no vocabulary") {
		t.Errorf("Data before prepare: %v", err)
	}
	if _, _, err := tk.Reward(1); err == nil {
		t.Error("Reward before prepare: want an error")
	}
	for _, c := range []struct{ toml, want string }{
		{"[data]\nvocab_size = 1\n", "data.vocab_size = 1"},
		{"[data]\nwindow = 1\n", "data.window = 1"},
		{"[data]\nwindow = 4\nprompts = ['the movie was really great']\n", "data.prompts[0]"},
		{"[data]\nprompts = ['']\n", "data.prompts[0]"},
		{"[data]\nvocab_size = 'many'\n", "vocab_size"},
	} {
		if _, err := openTask(t, c.toml); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error naming %s", c.toml, err, c.want)
		}
	}
}

// TestPromptsNameTheUnknownWord: a prompt word outside the vocabulary is
// an error naming it, unless allow_unk, which maps it to UNK.
func TestPromptsNameTheUnknownWord(t *testing.T) {
	_, v := smallCorpus(t, 8)
	if got, err := EncodePrompts(v, []string{"A good film"}, 4, false); err != nil || len(got[0]) != 3 || got[0][1] != v.ID("good") {
		t.Fatalf("EncodePrompts: %v, %v", got, err)
	}
	if _, err := EncodePrompts(v, []string{"a good film", "the zebra film"}, 4, false); err == nil || !strings.Contains(err.Error(), `the word "zebra" is not in the vocabulary`) || !strings.Contains(err.Error(), "prompt 1") {
		t.Errorf("unknown word: %v", err)
	}
	if got, err := EncodePrompts(v, []string{"the zebra"}, 4, true); err != nil || got[0][1] != v.UNK() {
		t.Errorf("allow_unk: %v, %v", got, err)
	}
	if _, err := EncodePrompts(v, []string{"a good film . really"}, 4, false); err == nil || !strings.Contains(err.Error(), "5 tokens, want 1..4") {
		t.Errorf("too long: %v", err)
	}
	// The task checks its prompts against the saved vocabulary when it opens.
	dir := t.TempDir()
	if err := v.Save(filepath.Join(dir, "vocab.tsv")); err != nil {
		t.Fatal(err)
	}
	if _, err := openTask(t, "[data]\nvocab_size = 8\ndir = '"+dir+"'\nprompts = ['the zebra']\n"); err == nil || !strings.Contains(err.Error(), `"zebra"`) {
		t.Errorf("open with an unknown prompt word: %v", err)
	}
	tk, err := openTask(t, "[data]\nvocab_size = 8\nwindow = 4\ndir = '"+dir+"'\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := tk.Clamp("A good film"); err != nil || len(got) != 4 || got[0] != v.ID("a") || got[2] != v.ID("film") || got[3] != -1 {
		t.Errorf("Clamp: %v, %v", got, err)
	}
	if _, err := tk.Clamp("the zebra"); err == nil || !strings.Contains(err.Error(), `"zebra"`) {
		t.Errorf("Clamp of an unknown word: %v", err)
	}
	if _, err := tk.Clamp("a good film . really"); err == nil || !strings.Contains(err.Error(), "5 tokens, want 1..4") {
		t.Errorf("Clamp of a prompt longer than L: %v", err)
	}
	if _, err := openTask(t, "[data]\nvocab_size = 9\ndir = '"+dir+"'\nprompts = ['the']\n"); err == nil || !strings.Contains(err.Error(), "has 8 words, but data.vocab_size = 9") {
		t.Errorf("vocabulary of another size: %v", err)
	}
}

var realLR struct {
	once sync.Once
	lr   *LR
	log  string
	err  error
}

// realLRModel trains the reward classifier on the real corpus once per
// test binary, with the λ that the default grid chooses (1e-5).
func realLRModel(t *testing.T) (*LR, string) {
	c, v := realCorpus(t)
	realLR.once.Do(func() {
		cfg := DefaultLRConfig()
		cfg.L2 = []float64{1e-5}
		var log bytes.Buffer
		realLR.lr, realLR.err = TrainLR(c, v, cfg, &log)
		realLR.log = log.String()
	})
	if realLR.err != nil {
		t.Fatal(realLR.err)
	}
	return realLR.lr, realLR.log
}

// preparedDir writes the real artefacts (corpus, vocabulary, and an LR
// with the default λ) into a temporary directory.
func preparedDir(t *testing.T) string {
	c, v := realCorpus(t)
	realLRModel(t)
	dir := t.TempDir()
	for _, err := range []error{v.Save(filepath.Join(dir, "vocab.tsv")), c.Save(filepath.Join(dir, "corpus.bin")), realLR.lr.Save(filepath.Join(dir, "reward_lr_l32.txt"))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

type shapeOnly struct{ L, V int }

func (s shapeOnly) Shape() (int, int)                      { return s.L, s.V }
func (s shapeOnly) X0Logits(_ []int, _, _ []float64) error { return nil }

// TestTaskOnTheRealCorpus: splits, labels, reward, evaluator, figure and
// the prepared-nothing-to-do path on the real artefacts.
func TestTaskOnTheRealCorpus(t *testing.T) {
	dir := preparedDir(t)
	dec, _ := task.NewTOML([]byte("[data]\ndir = '" + dir + "'\nprompts = ['this movie', 'the film']\n"))
	tk0, err := task.Open(&task.Spec{Name: "imdb", Seed: 1}, dec)
	if err != nil {
		t.Fatal(err)
	}
	tk := tk0.(*Task)
	if m := tk.Missing(); len(m) != 0 {
		t.Fatalf("Missing = %v", m)
	}
	tr, err := tk.Data("train")
	if err != nil || tr.Len() != 298840 {
		t.Fatalf("train: %v, %d rows", err, tr.Len())
	}
	val, _ := tk.Data("val")
	labels, _ := tk.Labels("train")
	pos := 0
	for _, y := range labels {
		pos += y
	}
	if val.Len() != DefaultValSize || len(labels) != tr.Len() || math.Abs(float64(pos)/float64(len(labels))-0.5) > 0.03 {
		t.Fatalf("val %d rows; %d labels, %d positive", val.Len(), len(labels), pos)
	}
	if p, err := tk.Prompts(); err != nil || len(p) != 2 || len(p[0]) != 2 {
		t.Fatalf("prompts %v, %v", p, err)
	}
	r, graphs, err := tk.Reward(2)
	if err != nil || len(graphs) != 2 {
		t.Fatal(err)
	}
	out := make([]float64, 1)
	if err := r.Reward(val.Row(0), out); err != nil || math.Abs(out[0]-logSig(realLR.lr.Logit(val.Row(0)))) > 1e-12 {
		t.Fatalf("reward %v, %v", out, err)
	}
	if _, err := tk.Evaluator(task.Model{Denoiser: shapeOnly{32, 8001}}); err == nil || !strings.Contains(err.Error(), "V = 8001") {
		t.Errorf("a model of another vocabulary size: %v", err)
	}
	ev, err := tk.Evaluator(task.Model{Denoiser: shapeOnly{32, 4001}})
	if err != nil {
		t.Fatal(err)
	}
	runDir := t.TempDir()
	n := 500
	m, err := ev.Evaluate(rand.New(rand.NewPCG(1, 1)), task.Outputs{L: 32, Samples: val.Tokens[:n*32], Dir: runDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("metrics of %d real test windows: %v", n, m)
	for _, k := range tk.Metrics() {
		if _, ok := m[k.Key]; !ok {
			t.Errorf("metric %s missing", k.Key)
		}
	}
	// Real windows: Pos 49%, Pos@0.9 6%, VADER ≥ 0.5 33%, KN-3 80, UNK 10%.
	if math.Abs(m["pos"]-0.49) > 0.07 || m["pos90"] > 0.12 || math.Abs(m["vader_pos50"]-0.334) > 0.07 || math.Abs(m["kn3_ppl"]-80) > 10 || math.Abs(m["unk"]-0.1) > 0.02 {
		t.Errorf("metrics of real windows far from domains.md: %v", m)
	}
	f, err := os.Open(filepath.Join(runDir, SampleScoresFile))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(rows) != n+1 || rows[0][6] != "text" || len(strings.Fields(rows[1][6])) != 32 {
		t.Fatalf("sample scores: %v, %d rows", err, len(rows))
	}
	lw := []float64{math.Inf(-1), 0} // a zero-weight output does not count
	m2, err := ev.Evaluate(nil, task.Outputs{L: 32, Samples: val.Tokens[:64], LogW: lw})
	if err != nil || m2["pos"] != b2f(realLR.lr.Logit(val.Row(1)) > 0) {
		t.Errorf("weighted metrics: %v, %v", m2, err)
	}
	if _, err := ev.Evaluate(nil, task.Outputs{L: 16, Samples: val.Tokens[:32]}); err == nil {
		t.Error("outputs of another length: want an error")
	}
	png := filepath.Join(runDir, "samples.png")
	if err := tk.Render(png, []task.Panel{{Title: "real", Out: task.Outputs{L: 32, Samples: val.Tokens[:8*32]}, Metrics: m}}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if err := tk.Prepare(false, &log); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "LR λ") || strings.Contains(log.String(), "tokenising") {
		t.Errorf("Prepare with nothing missing redid work:\n%s", log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "prepare_summary.json")); err != nil {
		t.Error(err)
	}
}

func logSig(z float64) float64 { return -math.Log1p(math.Exp(-z)) }
