// Package imdb is the language task of issue 12 (paper §6(b) at CPU
// scale): 32-token windows of IMDB movie reviews (Maas et al. 2011, from
// a pinned Go module) over a 4,000-word vocabulary plus UNK, steered
// toward positive sentiment with the reward r(x) = log p(pos | x) of a
// bag-of-words logistic regression (or, with [reward] kind = "boe", of a
// bag-of-embeddings MLP of the same accuracy whose gradient depends on
// x), and judged by held-out models: VADER,
// the Naive Bayes model of the data module, an interpolated Kneser–Ney
// trigram for fluency, and dist-1/2/3 (domains.md §1).
//
// It registers the task "imdb". Its options:
//
//	[data]
//	vocab_size = 4000     # K most frequent train-split tokens (+ UNK)
//	window = 32           # L, tokens per window
//	dir = ""              # artefacts (default runs/imdb_k<K>)
//	prompts = []          # the prompts of the experiment, checked against the vocabulary
//	                      # (a run is conditioned on one with [smc] prompt = "…")
//	allow_unk = false     # let a prompt word outside the vocabulary become UNK
//	[reward]
//	kind = "lr"           # the steering reward: "lr" (logistic regression) or "boe" (bag-of-embeddings MLP)
//	classifier = ""       # the LR, default <dir>/reward_lr_l<L>.txt (always trained: it is also the Pos% judge)
//	boe_classifier = ""   # the BoE MLP (kind = "boe"), default <dir>/reward_boe_l<L>.txt
//
// `ddsmc prepare imdb` tokenises the reviews, builds the vocabulary and the
// corpus cache and trains the reward classifier, and the BoE MLP when
// kind = "boe" (Missing lists them).
package imdb

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
	"github.com/ddsmc/ddsmc/smc"
)

func init() { task.Register("imdb", open) }

// Options are the task-owned keys of an IMDB config.
type Options struct {
	Data struct {
		VocabSize int      `toml:"vocab_size" json:"vocab_size"`
		Window    int      `toml:"window" json:"window"`
		Dir       string   `toml:"dir" json:"dir"`
		Prompts   []string `toml:"prompts" json:"prompts"`
		AllowUNK  bool     `toml:"allow_unk" json:"allow_unk"`
	} `toml:"data" json:"data"`
	Reward struct {
		// Kind and BoEClassifier are omitted from the JSON when unset, so
		// that an LR config records the same options as before they existed.
		Kind          string `toml:"kind" json:"kind,omitempty"` // "lr" (also when empty) or "boe"
		Classifier    string `toml:"classifier" json:"classifier"`
		BoEClassifier string `toml:"boe_classifier" json:"boe_classifier,omitempty"`
	} `toml:"reward" json:"reward"`
}

// Default sizes: every train-split window, and 2,000 test windows (one
// per review) for the in-training −ELBO.
const (
	DefaultTrainSize = 298840
	DefaultValSize   = 2000
)

// Task is the IMDB language task, with the task.Labelled, task.Preparer,
// task.SampleReporter and task.Prompted capabilities.
type Task struct {
	spec task.Spec
	o    Options

	mu     sync.Mutex
	vocab  *Vocab
	corpus *Corpus
	splits map[string]*windowSet
	kn     *KN3
}

var (
	_ task.Labelled       = (*Task)(nil)
	_ task.Preparer       = (*Task)(nil)
	_ task.SampleReporter = (*Task)(nil)
	_ task.Prompted       = (*Task)(nil)
)

func open(spec *task.Spec, dec task.Decoder) (task.Task, error) {
	var o Options
	o.Data.VocabSize, o.Data.Window = 4000, 32
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	if !dec.Defined("data", "train_size") {
		spec.TrainSize = DefaultTrainSize
	}
	if !dec.Defined("data", "val_size") {
		spec.ValSize = DefaultValSize
	}
	switch {
	case o.Data.VocabSize < 2 || o.Data.VocabSize > 60000:
		return nil, fmt.Errorf("data.vocab_size = %d: want 2..60000", o.Data.VocabSize)
	case o.Data.Window < 2 || o.Data.Window > 512:
		return nil, fmt.Errorf("data.window = %d: want 2..512", o.Data.Window)
	}
	if o.Data.Dir == "" {
		o.Data.Dir = filepath.Join("runs", fmt.Sprintf("imdb_k%d", o.Data.VocabSize))
	}
	if o.Reward.Classifier == "" {
		o.Reward.Classifier = filepath.Join(o.Data.Dir, fmt.Sprintf("reward_lr_l%d.txt", o.Data.Window))
	}
	switch o.Reward.Kind {
	case "", "lr":
	case "boe":
		if o.Reward.BoEClassifier == "" {
			o.Reward.BoEClassifier = filepath.Join(o.Data.Dir, fmt.Sprintf("reward_boe_l%d.txt", o.Data.Window))
		}
	default:
		return nil, fmt.Errorf("reward.kind = %q: want \"lr\" or \"boe\"", o.Reward.Kind)
	}
	t := &Task{spec: *spec, o: o, splits: map[string]*windowSet{}}
	for i, p := range o.Data.Prompts {
		if n := len(flatTokens(p)); n == 0 || n > o.Data.Window {
			return nil, fmt.Errorf("data.prompts[%d] = %q: %d tokens, want 1..%d (data.window)", i, p, n, o.Data.Window)
		}
	}
	// The words of the prompts are checked as soon as a vocabulary exists.
	if _, err := os.Stat(t.VocabPath()); err == nil {
		if _, err := t.Prompts(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// flatTokens tokenises a text as the data are, without sentence structure.
func flatTokens(s string) []string {
	var out []string
	for _, sent := range Tokenize(s) {
		out = append(out, sent...)
	}
	return out
}

// Name is "imdb".
func (t *Task) Name() string { return t.spec.Name }

// Shape is L = data.window tokens over V = data.vocab_size words + UNK.
func (t *Task) Shape() (L, V int) { return t.o.Data.Window, t.o.Data.VocabSize + 1 }

// VocabPath, CorpusPath and ClassifierPath are the task's artefacts.
func (t *Task) VocabPath() string { return filepath.Join(t.o.Data.Dir, "vocab.tsv") }

// CorpusPath is the tokenised corpus cache.
func (t *Task) CorpusPath() string { return filepath.Join(t.o.Data.Dir, "corpus.bin") }

// ClassifierPath is the reward classifier.
func (t *Task) ClassifierPath() string { return t.o.Reward.Classifier }

// BoEClassifierPath is the bag-of-embeddings MLP reward classifier, used
// (and prepared) when [reward] kind = "boe".
func (t *Task) BoEClassifierPath() string {
	if t.o.Reward.BoEClassifier != "" {
		return t.o.Reward.BoEClassifier
	}
	return filepath.Join(t.o.Data.Dir, fmt.Sprintf("reward_boe_l%d.txt", t.o.Data.Window))
}

// Vocab loads the vocabulary once and checks its size against
// data.vocab_size.
func (t *Task) Vocab() (*Vocab, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.vocabLocked()
}

func (t *Task) vocabLocked() (*Vocab, error) {
	if t.vocab != nil {
		return t.vocab, nil
	}
	v, err := LoadVocab(t.VocabPath())
	if err != nil {
		return nil, err
	}
	if v.K() != t.o.Data.VocabSize {
		return nil, fmt.Errorf("imdb: vocabulary %s has %d words, but data.vocab_size = %d", t.VocabPath(), v.K(), t.o.Data.VocabSize)
	}
	t.vocab = v
	return v, nil
}

// Fingerprint implements task.Fingerprinted: the vocabulary's SHA-256.
func (t *Task) Fingerprint() (string, error) {
	v, err := t.Vocab()
	if err != nil {
		return "", err
	}
	return "vocab sha256:" + v.Hash(), nil
}

// Corpus loads the corpus cache once.
func (t *Task) Corpus() (*Corpus, *Vocab, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.corpusLocked()
}

func (t *Task) corpusLocked() (*Corpus, *Vocab, error) {
	v, err := t.vocabLocked()
	if err != nil {
		return nil, nil, err
	}
	if t.corpus == nil {
		c, err := LoadCorpus(t.CorpusPath(), v.Hash())
		if err != nil {
			return nil, nil, err
		}
		if c.Manifest != ManifestSHA256 {
			return nil, nil, fmt.Errorf("imdb: corpus cache %s was built from other review files (manifest %.12s…): run `ddsmc prepare -force`", t.CorpusPath(), c.Manifest)
		}
		t.corpus = c
	}
	return t.corpus, v, nil
}

// Prompts returns the configured prompts as token ids. A word outside the
// vocabulary is an error naming it, unless data.allow_unk is set.
func (t *Task) Prompts() ([][]int, error) {
	v, err := t.Vocab()
	if err != nil {
		return nil, err
	}
	return EncodePrompts(v, t.o.Data.Prompts, t.o.Data.Window, t.o.Data.AllowUNK)
}

// Clamp implements task.Prompted: the prompt's tokens fix the first
// positions of the window and the rest are free (−1). A prompt longer
// than L, or with a word outside the vocabulary (unless data.allow_unk),
// is an error naming it.
func (t *Task) Clamp(prompt string) ([]int, error) {
	v, err := t.Vocab()
	if err != nil {
		return nil, err
	}
	ids, err := EncodePrompts(v, []string{prompt}, t.o.Data.Window, t.o.Data.AllowUNK)
	if err != nil {
		return nil, err
	}
	pattern := make([]int, t.o.Data.Window)
	for i := range pattern {
		pattern[i] = -1
	}
	copy(pattern, ids[0])
	return pattern, nil
}

// EncodePrompts tokenises prompts and maps them to ids: each must have
// 1..L tokens, and each word must be in the vocabulary unless allowUNK.
func EncodePrompts(v *Vocab, prompts []string, L int, allowUNK bool) ([][]int, error) {
	out := make([][]int, len(prompts))
	for i, p := range prompts {
		toks := flatTokens(p)
		if len(toks) == 0 || len(toks) > L {
			return nil, fmt.Errorf("imdb: prompt %d (%q) has %d tokens, want 1..%d", i, p, len(toks), L)
		}
		for _, w := range toks {
			id, ok := v.Lookup(w)
			if !ok && !allowUNK {
				return nil, fmt.Errorf("imdb: prompt %d (%q): the word %q is not in the vocabulary (set data.allow_unk = true to map it to %s)", i, p, w, UNKWord)
			}
			if !ok {
				id = v.UNK()
			}
			out[i] = append(out[i], id)
		}
	}
	return out, nil
}

// split builds a task split once: "train" is train_size of the train-split
// windows (all by default) in a seeded order; "val" is val_size test-split
// windows, one per review, in a seeded order.
func (t *Task) split(split string) (*windowSet, error) {
	if split != "train" && split != "val" {
		return nil, fmt.Errorf("imdb: unknown split %q, want train or val", split)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.splits[split]; ok {
		return s, nil
	}
	c, _, err := t.corpusLocked()
	if err != nil {
		return nil, err
	}
	L := t.o.Data.Window
	var all *windowSet
	n := t.spec.TrainSize
	if split == "train" {
		all = labelled(c.Train, L)
	} else {
		all = labelled(c.Test, L).perDoc(rand.New(rand.NewPCG(t.spec.Seed, 0x7a1)), 1)
		n = t.spec.ValSize
	}
	if n > all.n() {
		return nil, fmt.Errorf("imdb: data.%s_size = %d, but the %s split has %d windows of %d tokens", split, n, split, all.n(), L)
	}
	perm := rand.New(rand.NewPCG(t.spec.Seed, map[string]uint64{"train": 0x7, "val": 0x8}[split])).Perm(all.n())
	s := &windowSet{L: L, tokens: make([]int, 0, n*L), labels: make([]float64, 0, n), doc: make([]int, 0, n)}
	for _, i := range perm[:n] {
		s.tokens = append(s.tokens, all.row(i)...)
		s.labels = append(s.labels, all.labels[i])
		s.doc = append(s.doc, all.doc[i])
	}
	t.splits[split] = s
	return s, nil
}

// Data returns a split's windows as token rows.
func (t *Task) Data(split string) (*task.Dataset, error) {
	s, err := t.split(split)
	if err != nil {
		return nil, err
	}
	L, V := t.Shape()
	return &task.Dataset{L: L, V: V, Tokens: s.tokens}, nil
}

// Classes is 2 (0 = negative, 1 = positive review).
func (t *Task) Classes() int { return 2 }

// Labels returns the labels of the reviews of a split's windows.
func (t *Task) Labels(split string) ([]int, error) {
	s, err := t.split(split)
	if err != nil {
		return nil, err
	}
	out := make([]int, s.n())
	for i, y := range s.labels {
		out[i] = int(y)
	}
	return out, nil
}

// classifier loads the reward classifier for the task's vocabulary.
func (t *Task) classifier() (*LR, *Vocab, error) {
	v, err := t.Vocab()
	if err != nil {
		return nil, nil, err
	}
	m, err := LoadLR(t.ClassifierPath(), v, t.o.Data.Window)
	if err != nil {
		return nil, nil, err
	}
	return m, v, nil
}

// Reward is the steering reward, one (read-only) copy per worker: with
// [reward] kind = "lr", r(x) = log σ(b + Σ_l w[x_l]) of the reward
// classifier; with kind = "boe", r(x) = log σ(z(x)) of the
// bag-of-embeddings MLP (BoE). The judges (Judges, Evaluator) score with
// the LR in either case, so Pos% and Pos@0.9% stay the LR's p(pos).
func (t *Task) Reward(workers int) (smc.Reward, []objectives.RewardGraph, error) {
	var mk func() (steeringReward, error)
	if t.o.Reward.Kind == "boe" {
		v, err := t.Vocab()
		if err != nil {
			return nil, nil, err
		}
		m, err := LoadBoE(t.BoEClassifierPath(), v, t.o.Data.Window)
		if err != nil {
			return nil, nil, err
		}
		mk = func() (steeringReward, error) { return m.Reward() }
	} else {
		m, _, err := t.classifier()
		if err != nil {
			return nil, nil, err
		}
		mk = func() (steeringReward, error) { return m.Reward() }
	}
	graphs := make([]objectives.RewardGraph, workers)
	var first smc.Reward
	for w := range max(workers, 1) {
		r, err := mk()
		if err != nil {
			return nil, nil, err
		}
		if w < workers {
			graphs[w] = r
		}
		if w == 0 {
			first = r
		}
	}
	return first, graphs, nil
}

// Metrics are the columns of the paper's toxicity table, for sentiment.
func (t *Task) Metrics() []task.Metric {
	return []task.Metric{
		{Key: "pos", Label: "Pos% (reward classifier p > 0.5)", Plot: true, Summary: true},
		{Key: "pos90", Label: "Pos@0.9% (p > 0.9)", Plot: true, Summary: true},
		{Key: "vader_mean", Label: "VADER mean compound (held out)", Plot: true, Summary: true},
		{Key: "vader_pos50", Label: "VADER ≥ 0.5 rate (held out)", Plot: true, Summary: true},
		{Key: "nb_pos", Label: "Naive Bayes positive rate (held out)", Plot: true, Summary: true},
		{Key: "kn3_ppl", Label: "KN-3 perplexity (samples ≥ 1e4 dropped)", Plot: true, Summary: true},
		{Key: "kn3_dropped", Label: "share of samples with KN-3 PPL ≥ 1e4", Plot: false, Summary: true},
		{Key: "dist1", Label: "dist-1 (within the outputs)", Plot: false, Summary: true},
		{Key: "dist2", Label: "dist-2", Plot: false, Summary: true},
		{Key: "dist3", Label: "dist-3", Plot: true, Summary: true},
		{Key: "unk", Label: "UNK share of tokens", Plot: false, Summary: true},
	}
}

// KN3 returns the Kneser–Ney trigram of the train split, built once from
// the corpus cache (a few seconds).
func (t *Task) KN3() (*KN3, error) {
	c, v, err := t.Corpus()
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.kn == nil {
		streams := make([][]uint16, len(c.Train))
		for i, d := range c.Train {
			streams[i] = d.Tokens
		}
		if t.kn, err = BuildKN3(streams, v.Size(), 0.75); err != nil {
			return nil, err
		}
	}
	return t.kn, nil
}

// Judges bundles the reward classifier and the held-out judges. LR is
// the logistic regression whatever [reward] kind steers, so the Pos% and
// Pos@0.9% metrics are always the LR's p(pos) (with kind = "boe" it is a
// judge of another model family than the steering reward).
type Judges struct {
	L     int
	Vocab *Vocab
	LR    *LR
	KN    *KN3
	VADER *VADER
	NB    *NB
}

// Judges loads the classifier and the judges.
func (t *Task) Judges() (*Judges, error) {
	lr, v, err := t.classifier()
	if err != nil {
		return nil, err
	}
	kn, err := t.KN3()
	if err != nil {
		return nil, err
	}
	nb, err := NewNB()
	if err != nil {
		return nil, err
	}
	return &Judges{L: t.o.Data.Window, Vocab: v, LR: lr, KN: kn, VADER: NewVADER(), NB: nb}, nil
}

// Evaluator loads the judges; a model of another shape than the task's
// (another vocabulary size or window) is refused.
func (t *Task) Evaluator(m task.Model) (task.Evaluator, error) {
	if m.Denoiser != nil {
		L, V := m.Denoiser.Shape()
		if tl, tv := t.Shape(); L != tl || V != tv {
			return nil, fmt.Errorf("imdb: the model is for L = %d tokens over V = %d, the task's vocabulary and window give L = %d, V = %d", L, V, tl, tv)
		}
	}
	return t.Judges()
}

// Describe implements task.Describer: each output's text with its
// reward-classifier p(positive), VADER compound and KN-3 perplexity.
func (t *Task) Describe(x []int) ([]string, error) {
	j, err := t.Judges()
	if err != nil {
		return nil, err
	}
	sc, err := j.Score(x)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(sc))
	for i, s := range sc {
		out[i] = fmt.Sprintf("p(pos) %.2f  VADER %+.2f  PPL %4.0f | %s", s.PPos, s.VADER, s.PPL, s.Text)
	}
	return out, nil
}

// SampleScore is one output's scores.
type SampleScore struct {
	Weight, PPos, VADER, PPL float64
	NBPos                    bool
	Text                     string
}

// Score scores each row of x (length L).
func (j *Judges) Score(x []int) ([]SampleScore, error) {
	L := j.L
	if len(x)%L != 0 {
		return nil, fmt.Errorf("imdb: %d tokens is not a multiple of L = %d", len(x), L)
	}
	V := j.Vocab.Size()
	out := make([]SampleScore, len(x)/L)
	for i := range out {
		row := x[i*L : (i+1)*L]
		for l, v := range row {
			if v < 0 || v >= V {
				return nil, fmt.Errorf("imdb: output %d: token %d at position %d outside 0..%d", i, v, l, V-1)
			}
		}
		text := j.Vocab.Text(row)
		nll, err := j.KN.NLL(row)
		if err != nil {
			return nil, err
		}
		out[i] = SampleScore{PPos: math.Exp(objectives.LogSigmoid(j.LR.Logit(row))), VADER: j.VADER.Compound(text),
			NBPos: j.NB.Positive(text), PPL: math.Exp(nll / float64(L)), Text: text}
	}
	return out, nil
}

// Metrics computes the task's metrics of outputs x with weights w
// (uniform if nil) and returns them with the per-sample scores. Rates and
// means are weighted; the KN-3 perplexity and dist-n are over the samples.
func (j *Judges) Metrics(x []int, w []float64) (map[string]float64, []SampleScore, error) {
	sc, err := j.Score(x)
	if err != nil {
		return nil, nil, err
	}
	n := len(sc)
	m := map[string]float64{}
	unk := 0
	for _, v := range x {
		if v == j.Vocab.UNK() {
			unk++
		}
	}
	for i, s := range sc {
		wi := 1 / float64(n)
		if w != nil {
			wi = w[i]
		}
		sc[i].Weight = wi
		m["pos"] += wi * b2f(s.PPos > 0.5)
		m["pos90"] += wi * b2f(s.PPos > 0.9)
		m["vader_mean"] += wi * s.VADER
		m["vader_pos50"] += wi * b2f(s.VADER >= 0.5)
		m["nb_pos"] += wi * b2f(s.NBPos)
	}
	m["kn3_ppl"], m["kn3_dropped"], err = j.KN.Perplexity(x, j.L)
	if err != nil {
		return nil, nil, err
	}
	for k := 1; k <= 3; k++ {
		m["dist"+strconv.Itoa(k)] = DistN(x, j.L, k)
	}
	m["unk"] = float64(unk) / float64(len(x))
	return m, sc, nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// SampleScoresFile is the per-run file of each output's scores and text.
const SampleScoresFile = "sample_scores.csv"

// Evaluate implements task.Evaluator; it writes sample_scores.csv into
// out.Dir.
func (j *Judges) Evaluate(_ *rand.Rand, out task.Outputs) (map[string]float64, error) {
	if err := out.Check(); err != nil {
		return nil, err
	}
	if out.L != j.L {
		return nil, fmt.Errorf("imdb: outputs of length %d, the task's windows have %d tokens", out.L, j.L)
	}
	var w []float64
	if out.LogW != nil {
		w = out.Weights()
	}
	m, sc, err := j.Metrics(out.Samples, w)
	if err != nil {
		return nil, err
	}
	if out.Dir != "" {
		if err := WriteSampleScores(filepath.Join(out.Dir, SampleScoresFile), sc); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WriteSampleScores writes scores as CSV, atomically.
func WriteSampleScores(path string, sc []SampleScore) error {
	return atomicfile.Write(path, func(bw *bufio.Writer) error {
		w := csv.NewWriter(bw)
		w.Write([]string{"i", "weight", "p_pos", "vader", "nb_pos", "kn3_ppl", "text"})
		for i, s := range sc {
			w.Write([]string{strconv.Itoa(i), f6(s.Weight), f6(s.PPos), f6(s.VADER), strconv.FormatBool(s.NBPos), f6(s.PPL), s.Text})
		}
		w.Flush()
		return w.Error()
	})
}

func f6(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }

// Missing lists the artefacts that do not exist (the BoE classifier only
// with [reward] kind = "boe").
func (t *Task) Missing() []string {
	var out []string
	paths := []string{t.VocabPath(), t.CorpusPath(), t.ClassifierPath()}
	if t.o.Reward.Kind == "boe" {
		paths = append(paths, t.BoEClassifierPath())
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			out = append(out, p)
		}
	}
	return out
}

// PrepareSummary is what `ddsmc prepare imdb` measured, written to
// prepare_summary.json in the artefact directory.
type PrepareSummary struct {
	Module       string     `json:"module"`
	Manifest     string     `json:"manifest_sha256"`
	Vocab        string     `json:"vocab_sha256"`
	Stats        Stats      `json:"corpus"`
	TrainWindows int        `json:"train_windows"`
	TestWindows  int        `json:"test_windows"`
	LR           *LR        `json:"-"`
	LRScores     [3]float64 `json:"lr_val_acc_test_acc_test_auc"`
	LRL2         float64    `json:"lr_l2"`
	Dist         RewardDist `json:"reward_distribution_test"`
	Seconds      float64    `json:"seconds"`

	// BoEScores are the BoE MLP's validation accuracy, test accuracy and
	// AUC, with [reward] kind = "boe".
	BoEScores *[3]float64 `json:"boe_val_acc_test_acc_test_auc,omitempty"`
}

// Prepare builds what is missing (everything with force): the vocabulary
// and the corpus cache from the reviews of the pinned module, then the
// reward classifier (and the BoE MLP with [reward] kind = "boe"). A
// classifier trained for another vocabulary or window is retrained.
// Existing files are replaced atomically.
func (t *Task) Prepare(force bool, log io.Writer) error {
	start := time.Now()
	if err := os.MkdirAll(t.o.Data.Dir, 0o755); err != nil {
		return fmt.Errorf("imdb: %w", err)
	}
	_, vErr := LoadVocab(t.VocabPath())
	var c *Corpus
	var v *Vocab
	if vErr == nil && !force {
		c, v, vErr = t.Corpus()
	}
	if force || vErr != nil {
		dir, err := DataDir()
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "imdb: reading the reviews in %s\n", dir)
		train, test, err := LoadAll(dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "imdb: tokenising %d + %d reviews\n", len(train.Reviews), len(test.Reviews))
		if c, v, err = BuildCorpus(train, test, t.o.Data.VocabSize); err != nil {
			return err
		}
		if err := v.Save(t.VocabPath()); err != nil {
			return err
		}
		if err := c.Save(t.CorpusPath()); err != nil {
			return err
		}
		t.mu.Lock()
		t.vocab, t.corpus, t.splits, t.kn = v, c, map[string]*windowSet{}, nil
		t.mu.Unlock()
		fmt.Fprintf(log, "imdb: wrote %s and %s\n", t.VocabPath(), t.CorpusPath())
	}
	if _, err := t.Prompts(); err != nil {
		return err
	}
	s := c.Stats
	L := t.o.Data.Window
	tr, _ := Windows(c.Train, L)
	te, _ := Windows(c.Test, L)
	sum := &PrepareSummary{Module: Module + "@" + ModuleVersion, Manifest: c.Manifest, Vocab: v.Hash(), Stats: s, TrainWindows: len(tr) / L, TestWindows: len(te) / L}
	fmt.Fprintf(log, "imdb: %d + %d reviews, %d + %d tokens, %d sentences, %d / %d / %d types; K = %d covers %.2f%% / %.2f%% of train / test tokens; %d train and %d test windows of %d tokens\n",
		s.Reviews[0], s.Reviews[1], s.Tokens[0], s.Tokens[1], s.Sentences, s.Types[0], s.Types[1], s.Types[2], s.K, 100*s.Coverage[0], 100*s.Coverage[1], sum.TrainWindows, sum.TestWindows, L)
	lr, err := LoadLR(t.ClassifierPath(), v, L)
	if err != nil && !errors.Is(err, task.ErrNotPrepared) && !strings.Contains(err.Error(), "another vocabulary") && !strings.Contains(err.Error(), "windows of") {
		return err
	}
	if force || err != nil {
		cfg := DefaultLRConfig()
		cfg.L = L
		if lr, err = TrainLR(c, v, cfg, log); err != nil {
			return err
		}
		if err := lr.Save(t.ClassifierPath()); err != nil {
			return err
		}
		fmt.Fprintf(log, "imdb: wrote %s\n", t.ClassifierPath())
	}
	sum.LRScores, sum.LRL2 = [3]float64{lr.ValAcc, lr.TestAcc, lr.TestAUC}, lr.L2
	if t.o.Reward.Kind == "boe" {
		boe, err := LoadBoE(t.BoEClassifierPath(), v, L)
		if err != nil && !errors.Is(err, task.ErrNotPrepared) && !isStale(err) {
			return err
		}
		if force || err != nil {
			cfg := DefaultBoEConfig()
			cfg.L = L
			if boe, err = TrainBoE(c, v, cfg, log); err != nil {
				return err
			}
			if err := boe.Save(t.BoEClassifierPath()); err != nil {
				return err
			}
			fmt.Fprintf(log, "imdb: wrote %s\n", t.BoEClassifierPath())
		}
		sum.BoEScores = &[3]float64{boe.ValAcc, boe.TestAcc, boe.TestAUC}
	}
	sum.Dist = lr.Distribution(c, 1)
	d := sum.Dist
	fmt.Fprintf(log, "imdb: reward on %d real test windows (one per review): p > 0.5 %.1f%% (pos %.1f%%, neg %.1f%%), > 0.9 %.1f%%, mean r %.3f\n",
		d.N, 100*d.Above["0.5"], 100*d.AbovePos["0.5"], 100*d.AboveNeg["0.5"], 100*d.Above["0.9"], d.MeanR)
	sum.Seconds = time.Since(start).Seconds()
	return atomicfile.WriteJSON(filepath.Join(t.o.Data.Dir, "prepare_summary.json"), sum)
}

// Render draws a text figure: per panel, up to 8 outputs with their
// reward-classifier probability, under the panel's title and metrics.
func (t *Task) Render(path string, panels []task.Panel) error {
	v, err := t.Vocab()
	if err != nil {
		return err
	}
	lr, _, lrErr := t.classifier()
	var blocks []plots.TextBlock
	for _, p := range panels {
		b := plots.TextBlock{Title: p.Title}
		if m := p.Metrics; m != nil {
			if _, ok := m["pos"]; ok {
				b.Title += fmt.Sprintf(": Pos %.0f%%, Pos@0.9 %.0f%%, VADER %.2f, KN-3 PPL %.0f", 100*m["pos"], 100*m["pos90"], m["vader_mean"], m["kn3_ppl"])
			}
		}
		L := p.Out.L
		for i := 0; i < min(p.Out.N(), 8); i++ {
			row := p.Out.Samples[i*L : (i+1)*L]
			line := v.Text(row)
			if lrErr == nil && L == lr.L {
				line = fmt.Sprintf("p = %.2f   %s", math.Exp(objectives.LogSigmoid(lr.Logit(row))), line)
			}
			b.Lines = append(b.Lines, line)
		}
		blocks = append(blocks, b)
	}
	return plots.TextPanels(path, "IMDB samples (p = reward classifier's p(positive))", blocks)
}

// SampleReport summarises unguided samples from an IMDB denoiser.
type SampleReport struct {
	Config      string             `json:"config"`
	N           int                `json:"n"`
	Steps       int                `json:"steps"`
	Seconds     float64            `json:"seconds"`
	Metrics     map[string]float64 `json:"metrics"`
	Real        map[string]float64 `json:"metrics_real_test_windows"` // the same metrics on as many real test windows
	TestWindows int                `json:"test_windows"`
	TestNegELBO float64            `json:"test_neg_elbo_nats_per_token"`
	TestELBOErr float64            `json:"test_neg_elbo_stderr"`
	TestPPL     float64            `json:"test_ppl_bound"`
	Figure      string             `json:"figure"`
	Scores      string             `json:"scores"`
}

// ReportSamples is `ddsmc sample` for IMDB: the judges' metrics of the
// samples beside those of as many real test windows, the per-sample
// scores (sample_scores.csv), a text figure of the first samples, and the
// −ELBO on the val windows with its perplexity bound.
func (t *Task) ReportSamples(s task.SampleRun, x []int, log io.Writer) (any, error) {
	j, err := t.Judges()
	if err != nil {
		return nil, err
	}
	L := t.o.Data.Window
	n := len(x) / L
	rep := &SampleReport{Config: s.Name, N: n, Steps: s.Grid.Steps(), Seconds: s.Seconds,
		Figure: filepath.Join(s.Dir, "samples.png"), Scores: filepath.Join(s.Dir, SampleScoresFile)}
	var sc []SampleScore
	if rep.Metrics, sc, err = j.Metrics(x, nil); err != nil {
		return nil, err
	}
	if err := WriteSampleScores(rep.Scores, sc); err != nil {
		return nil, err
	}
	val, err := t.split("val")
	if err != nil {
		return nil, err
	}
	k := min(n, val.n())
	if rep.Real, _, err = j.Metrics(val.tokens[:k*L], nil); err != nil {
		return nil, err
	}
	out := task.Outputs{L: L, Samples: x[:min(n, 16)*L]}
	if err := t.Render(rep.Figure, []task.Panel{{Title: s.Name + ": unguided samples", Out: out, Metrics: rep.Metrics}}); err != nil {
		return nil, err
	}
	data, err := t.Data("val")
	if err != nil {
		return nil, err
	}
	rep.TestWindows = data.Len()
	if rep.TestNegELBO, rep.TestELBOErr, err = s.ELBO(data, 256); err != nil {
		return nil, err
	}
	rep.TestPPL = math.Exp(rep.TestNegELBO)
	fmt.Fprintf(log, "imdb: %d samples: Pos %.1f%%, Pos@0.9 %.1f%%, VADER %.3f (≥0.5 %.1f%%), NB %.1f%%, KN-3 PPL %.0f, dist %.3f/%.3f/%.3f; real windows: KN-3 PPL %.0f\n",
		n, 100*rep.Metrics["pos"], 100*rep.Metrics["pos90"], rep.Metrics["vader_mean"], 100*rep.Metrics["vader_pos50"], 100*rep.Metrics["nb_pos"],
		rep.Metrics["kn3_ppl"], rep.Metrics["dist1"], rep.Metrics["dist2"], rep.Metrics["dist3"], rep.Real["kn3_ppl"])
	fmt.Fprintf(log, "imdb: −ELBO on %d test windows %.4f ± %.4f nats/token (PPL bound %.1f)\n", rep.TestWindows, rep.TestNegELBO, rep.TestELBOErr, rep.TestPPL)
	return rep, nil
}
