package imdb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"sort"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
)

// LRConfig configures the training of the reward's logistic regression.
type LRConfig struct {
	L        int       // window length
	Epochs   int       // passes over the training windows
	Batch    int       // windows per Adam step
	LR       float64   // peak Adam learning rate (cosine decay to 0)
	L2       []float64 // candidate L2 penalties λ (on the weights, not the bias); the best on the validation split wins
	ValShare float64   // share of train-split reviews held out to choose λ
	Seed     uint64
}

// DefaultLRConfig is the recipe of domains.md §1.4 at L = 32.
func DefaultLRConfig() LRConfig {
	return LRConfig{L: 32, Epochs: 8, Batch: 256, LR: 0.01, L2: []float64{0, 1e-6, 1e-5, 1e-4}, ValShare: 0.1, Seed: 1}
}

// LR is a trained bag-of-words logistic regression with its provenance
// and held-out scores, as saved by Save.
type LR struct {
	VocabHash string    `json:"vocab_hash"` // the vocabulary it was trained on
	L         int       `json:"l"`
	W         []float64 `json:"w"` // one weight per token id (K words + UNK)
	Bias      float64   `json:"bias"`
	L2        float64   `json:"l2"`      // the chosen λ
	ValAcc    float64   `json:"val_acc"` // on the held-out train-split reviews, at the chosen λ
	TestAcc   float64   `json:"test_acc"`
	TestAUC   float64   `json:"test_auc"`
	TestN     int       `json:"test_windows"`
	Config    LRConfig  `json:"config"`
}

// Reward returns the LR as an smc.Reward and RewardGraph.
func (m *LR) Reward() (*objectives.LogRegReward, error) {
	return objectives.NewLogRegReward(m.L, m.W, m.Bias)
}

// Logit is z(x) for one window.
func (m *LR) Logit(x []int) float64 {
	z := m.Bias
	for _, v := range x {
		z += m.W[v]
	}
	return z
}

// windowSet is a set of labelled windows.
type windowSet struct {
	L      int
	tokens []int
	labels []float64
	doc    []int
}

func (s *windowSet) n() int { return len(s.labels) }

func (s *windowSet) row(i int) []int { return s.tokens[i*s.L : (i+1)*s.L] }

// labelled returns the sentence-start windows of docs with their labels.
func labelled(docs []Doc, L int) *windowSet {
	toks, doc := Windows(docs, L)
	s := &windowSet{L: L, tokens: toks, doc: doc, labels: make([]float64, len(doc))}
	for i, d := range doc {
		s.labels[i] = float64(docs[d].Label)
	}
	return s
}

// subset keeps the windows whose doc passes keep.
func (s *windowSet) subset(keep func(doc int) bool) *windowSet {
	out := &windowSet{L: s.L}
	for i, d := range s.doc {
		if keep(d) {
			out.tokens = append(out.tokens, s.row(i)...)
			out.labels = append(out.labels, s.labels[i])
			out.doc = append(out.doc, d)
		}
	}
	return out
}

// perDoc keeps up to k windows of each doc, drawn without replacement with
// rng (the test windows of §1.4: up to 4 per review).
func (s *windowSet) perDoc(rng *rand.Rand, k int) *windowSet {
	byDoc := map[int][]int{}
	var order []int
	for i, d := range s.doc {
		if _, ok := byDoc[d]; !ok {
			order = append(order, d)
		}
		byDoc[d] = append(byDoc[d], i)
	}
	out := &windowSet{L: s.L}
	for _, d := range order {
		idx := byDoc[d]
		rng.Shuffle(len(idx), func(a, b int) { idx[a], idx[b] = idx[b], idx[a] })
		for _, i := range idx[:min(k, len(idx))] {
			out.tokens = append(out.tokens, s.row(i)...)
			out.labels = append(out.labels, s.labels[i])
			out.doc = append(out.doc, d)
		}
	}
	return out
}

// fitLR trains z = b + Σ w[x_l] by Adam on the mean logistic loss plus
// λ‖w‖², with a cosine learning-rate decay, from zero weights.
func fitLR(tr *windowSet, V int, cfg LRConfig, l2 float64) (w []float64, b float64) {
	return fitRows(tr.n(), tr.row, tr.labels, V, cfg, l2)
}

// fitRows is fitLR over rows of any length (row(i) and labels[i]).
func fitRows(n int, row func(int) []int, labels []float64, V int, cfg LRConfig, l2 float64) (w []float64, b float64) {
	w = make([]float64, V+1) // the last entry is the bias
	g := make([]float64, V+1)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x1a))
	opt := newAdam(len(w), cfg.LR, cfg.Epochs*((n+cfg.Batch-1)/cfg.Batch))
	for range cfg.Epochs {
		perm := rng.Perm(n)
		for at := 0; at < n; at += cfg.Batch {
			batch := perm[at:min(at+cfg.Batch, n)]
			clear(g)
			for _, i := range batch {
				x := row(i)
				z := w[V]
				for _, t := range x {
					z += w[t]
				}
				d := (1/(1+math.Exp(-z)) - labels[i]) / float64(len(batch))
				for _, t := range x {
					g[t] += d
				}
				g[V] += d
			}
			addL2(g, w, l2, 0, V)
			opt.step(w, g)
		}
	}
	return w[:V:V], w[V]
}

// adam is Adam (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) with a cosine decay of the
// learning rate from peak to 0 over steps steps: the optimiser of both
// reward classifiers.
type adam struct {
	peak        float64
	steps, done int
	m, v        []float64
}

func newAdam(n int, peak float64, steps int) *adam {
	return &adam{peak: peak, steps: steps, m: make([]float64, n), v: make([]float64, n)}
}

// step updates theta by one Adam step along the gradient g.
func (a *adam) step(theta, g []float64) {
	const b1, b2, eps = 0.9, 0.999, 1e-8
	a.done++
	lr := a.peak * 0.5 * (1 + math.Cos(math.Pi*float64(a.done-1)/float64(a.steps)))
	c1, c2 := 1-math.Pow(b1, float64(a.done)), 1-math.Pow(b2, float64(a.done))
	for j, gj := range g {
		a.m[j] = b1*a.m[j] + (1-b1)*gj
		a.v[j] = b2*a.v[j] + (1-b2)*gj*gj
		theta[j] -= lr * (a.m[j] / c1) / (math.Sqrt(a.v[j]/c2) + eps)
	}
}

// addL2 adds the gradient of λ‖theta[lo:hi]‖² to g.
func addL2(g, theta []float64, l2 float64, lo, hi int) {
	for j := lo; j < hi; j++ {
		g[j] += 2 * l2 * theta[j]
	}
}

// scoreLR returns the accuracy (z > 0 ⇔ positive) and the ROC AUC of the
// logits z on a labelled set.
func scoreLR(s *windowSet, logit func([]int) float64) (acc, auc float64) {
	z := make([]float64, s.n())
	right := 0
	for i := range z {
		z[i] = logit(s.row(i))
		if (z[i] > 0) == (s.labels[i] == 1) {
			right++
		}
	}
	return float64(right) / float64(max(s.n(), 1)), AUC(z, s.labels)
}

// scoreTest scores logit as scoreLR on up to 4 windows of length L per
// test review (drawn with seed) and returns their number.
func scoreTest(c *Corpus, L int, seed uint64, logit func([]int) float64) (acc, auc float64, n int) {
	test := labelled(c.Test, L).perDoc(rand.New(rand.NewPCG(seed, 0x7e57)), 4)
	acc, auc = scoreLR(test, logit)
	return acc, auc, test.n()
}

// heldOutReviews marks the share of n train reviews held out for
// validation with seed (the same draw for both classifiers, so that they
// are validated on the same reviews).
func heldOutReviews(n int, seed uint64, share float64) []bool {
	rng := rand.New(rand.NewPCG(seed, 0x5e1))
	held := make([]bool, n)
	for _, d := range rng.Perm(n)[:int(share*float64(n))] {
		held[d] = true
	}
	return held
}

// sameVocab checks that the corpus was built for vocabulary v.
func sameVocab(c *Corpus, v *Vocab) error {
	if c.VocabHash != v.Hash() {
		return errors.New("imdb: the corpus was built for another vocabulary")
	}
	return nil
}

// AUC is the area under the ROC curve of scores for binary labels (1 =
// positive): the Mann–Whitney probability that a random positive scores
// above a random negative, ties counting one half.
func AUC(scores, labels []float64) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var rankSum, pos float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		mid := float64(i+j+1) / 2 // mean 1-based rank of the tie group
		for _, k := range idx[i:j] {
			if labels[k] == 1 {
				rankSum += mid
				pos++
			}
		}
		i = j
	}
	neg := float64(len(idx)) - pos
	if pos == 0 || neg == 0 {
		return math.NaN()
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}

// TrainLR trains the reward classifier of §1.4 on the corpus: λ is chosen
// by validation accuracy on a share of the train-split reviews held out
// by review, then the model is refitted on all train-split windows and
// scored on up to 4 windows per test review.
func TrainLR(c *Corpus, v *Vocab, cfg LRConfig, log io.Writer) (*LR, error) {
	if err := sameVocab(c, v); err != nil {
		return nil, err
	}
	if cfg.L <= 0 || cfg.Epochs <= 0 || cfg.Batch <= 0 || !(cfg.LR > 0) || len(cfg.L2) == 0 || !(cfg.ValShare > 0 && cfg.ValShare < 1) {
		return nil, fmt.Errorf("imdb: bad LR config %+v", cfg)
	}
	all := labelled(c.Train, cfg.L)
	held := heldOutReviews(len(c.Train), cfg.Seed, cfg.ValShare)
	fitSet, valSet := all.subset(func(d int) bool { return !held[d] }), all.subset(func(d int) bool { return held[d] })
	V := v.Size()
	best, bestAcc := cfg.L2[0], -1.0
	for _, l2 := range cfg.L2 {
		w, b := fitLR(fitSet, V, cfg, l2)
		m := &LR{W: w, Bias: b}
		acc, auc := scoreLR(valSet, m.Logit)
		fmt.Fprintf(log, "imdb: LR λ = %g: validation accuracy %.4f, AUC %.4f (%d windows of %d held-out train reviews)\n", l2, acc, auc, valSet.n(), countTrue(held))
		if acc > bestAcc {
			best, bestAcc = l2, acc
		}
	}
	w, b := fitLR(all, V, cfg, best)
	m := &LR{VocabHash: v.Hash(), L: cfg.L, W: w, Bias: b, L2: best, ValAcc: bestAcc, Config: cfg}
	m.TestAcc, m.TestAUC, m.TestN = scoreTest(c, cfg.L, cfg.Seed, m.Logit)
	fmt.Fprintf(log, "imdb: LR refitted on %d train windows with λ = %g: test accuracy %.4f, AUC %.4f on %d windows (up to 4 per test review)\n",
		all.n(), best, m.TestAcc, m.TestAUC, m.TestN)
	return m, nil
}

const lrMagic = "# ddsmc imdb logistic regression v1\n"

// Save writes the classifier atomically (saveChecksummed): a magic line,
// its JSON and a last line "sha256 <hex>" of everything before it. A
// score that could not be measured (NaN, e.g. the AUC of a one-class test
// set) is written as −1.
func (m *LR) Save(path string) error {
	c := *m
	unmeasuredAsMinusOne(&c.ValAcc, &c.TestAcc, &c.TestAUC)
	return saveChecksummed(path, lrMagic, "reward classifier", &c)
}

// LoadLR reads a classifier written by Save and checks that it was trained
// on vocabulary v for windows of length L. A missing file is
// task.ErrNotPrepared; a corrupt one, or one trained for another
// vocabulary or length, is an error naming the file.
func LoadLR(path string, v *Vocab, L int) (*LR, error) {
	const what = "reward classifier"
	var m LR
	if err := loadChecksummed(path, lrMagic, what, "classifier", &m); err != nil {
		return nil, err
	}
	switch {
	case m.VocabHash != v.Hash():
		return nil, errors.New(otherVocab(what, path, m.VocabHash, v))
	case len(m.W) != v.Size():
		return nil, fmt.Errorf("imdb: reward classifier %s has %d weights for a vocabulary of %d tokens", path, len(m.W), v.Size())
	case m.L != L:
		return nil, errors.New(otherLength(what, path, m.L, L))
	}
	return &m, nil
}

// unmeasuredAsMinusOne replaces each NaN score (one that could not be
// measured) by −1, which JSON can hold.
func unmeasuredAsMinusOne(scores ...*float64) {
	for _, f := range scores {
		if math.IsNaN(*f) {
			*f = -1
		}
	}
}

// saveChecksummed writes v atomically as the reward classifiers' file
// format: the magic line, v's JSON on one line and a last line
// "sha256 <hex>" of everything before it. what names the classifier in
// errors ("reward classifier").
func saveChecksummed(path, magic, what string, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("imdb: encoding the %s: %w", what, err)
	}
	body := append([]byte(magic), append(j, '\n')...)
	sum := sha256.Sum256(body)
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		if _, err := w.Write(body); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "sha256 %s\n", hex.EncodeToString(sum[:]))
		return err
	})
}

// loadChecksummed reads into v a file written by saveChecksummed with the
// same magic line. A missing file is task.ErrNotPrepared; one without the
// magic line or the checksum line is "corrupt or not an imdb <kind>"; one
// failing its checksum or whose JSON does not decode is an error naming
// the file. what names the classifier in errors ("reward classifier").
func loadChecksummed(path, magic, what, kind string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("imdb: no %s at %s (run `ddsmc prepare` on this config): %w", what, path, task.ErrNotPrepared)
	}
	if err != nil {
		return fmt.Errorf("imdb: %s: %w", what, err)
	}
	i := bytes.LastIndex(bytes.TrimRight(b, "\n"), []byte("\nsha256 "))
	if !bytes.HasPrefix(b, []byte(magic)) || i < 0 {
		return fmt.Errorf("imdb: %s %s is corrupt or not an imdb %s", what, path, kind)
	}
	body := b[:i+1]
	sum := sha256.Sum256(body)
	if string(bytes.TrimSpace(b[i+1:])) != "sha256 "+hex.EncodeToString(sum[:]) {
		return fmt.Errorf("imdb: %s %s fails its checksum (truncated or edited)", what, path)
	}
	if err := json.Unmarshal(body[len(magic):], v); err != nil {
		return fmt.Errorf("imdb: %s %s: %w", what, path, err)
	}
	return nil
}

// otherVocab says that the classifier what at path was trained for the
// vocabulary of hash, not v.
func otherVocab(what, path, hash string, v *Vocab) string {
	return fmt.Sprintf("imdb: %s %s was trained for another vocabulary (%.12s…, this one is %.12s…): run `ddsmc prepare -force`", what, path, hash, v.Hash())
}

// otherLength says that the classifier what at path was trained on
// windows of l tokens, not the task's L.
func otherLength(what, path string, l, L int) string {
	return fmt.Sprintf("imdb: %s %s was trained on windows of %d tokens, the task's are %d", what, path, l, L)
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// RewardDist is the distribution of the reward over real windows (the
// table of domains.md §1.4): one window per test review.
type RewardDist struct {
	N         int                `json:"n"`
	Above     map[string]float64 `json:"p_above"`     // share with p(pos) above "0.5", "0.8", "0.9", "0.95", "0.99"
	AbovePos  map[string]float64 `json:"p_above_pos"` // the same over windows of positive reviews ("0.5", "0.9")
	AboveNeg  map[string]float64 `json:"p_above_neg"` // and of negative reviews
	MeanR     float64            `json:"mean_r"`      // mean of r = log p(pos)
	Quantiles map[string]float64 `json:"r_quantiles"` // r at "0.01", "0.1", "0.5", "0.9", "0.99"
}

// Distribution scores one random window (seeded) of every test review
// that has one.
func (m *LR) Distribution(c *Corpus, seed uint64) RewardDist {
	s := labelled(c.Test, m.L).perDoc(rand.New(rand.NewPCG(seed, 0xd15)), 1)
	d := RewardDist{N: s.n(), Above: map[string]float64{}, AbovePos: map[string]float64{}, AboveNeg: map[string]float64{}, Quantiles: map[string]float64{}}
	r := make([]float64, s.n())
	npos := 0
	for i := range r {
		r[i] = objectives.LogSigmoid(m.Logit(s.row(i)))
		d.MeanR += r[i] / float64(len(r))
		if s.labels[i] == 1 {
			npos++
		}
	}
	for _, th := range []string{"0.5", "0.8", "0.9", "0.95", "0.99"} {
		var t float64
		fmt.Sscan(th, &t)
		lt := math.Log(t)
		for i, x := range r {
			if x > lt {
				d.Above[th] += 1 / float64(len(r))
				if th == "0.5" || th == "0.9" {
					if s.labels[i] == 1 {
						d.AbovePos[th] += 1 / float64(npos)
					} else {
						d.AboveNeg[th] += 1 / float64(len(r)-npos)
					}
				}
			}
		}
	}
	sorted := append([]float64(nil), r...)
	sort.Float64s(sorted)
	for _, q := range []string{"0.01", "0.1", "0.5", "0.9", "0.99"} {
		var p float64
		fmt.Sscan(q, &p)
		d.Quantiles[q] = sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
	}
	return d
}

// FullReviewLR is the trainer's sanity check of §1.4: a binary-unigram
// logistic regression on whole reviews (each vocabulary token counted once
// per review), trained on the train split with the given λ and returning
// its accuracy on the test split (domains.md: 88.2% at K = 4k).
func FullReviewLR(c *Corpus, V int, cfg LRConfig, l2 float64) (acc float64) {
	rows := func(docs []Doc) ([][]int, []float64) {
		xs := make([][]int, len(docs))
		ys := make([]float64, len(docs))
		for i, d := range docs {
			seen := map[uint16]bool{}
			for _, t := range d.Tokens {
				if !seen[t] {
					seen[t] = true
					xs[i] = append(xs[i], int(t))
				}
			}
			sort.Ints(xs[i])
			ys[i] = float64(d.Label)
		}
		return xs, ys
	}
	xs, ys := rows(c.Train)
	w, b := fitRows(len(xs), func(i int) []int { return xs[i] }, ys, V, cfg, l2)
	tx, ty := rows(c.Test)
	right := 0
	for i, x := range tx {
		z := b
		for _, t := range x {
			z += w[t]
		}
		if (z > 0) == (ty[i] == 1) {
			right++
		}
	}
	return float64(right) / float64(len(tx))
}
