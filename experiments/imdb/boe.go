package imdb

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"time"

	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

// BoEConfig configures the training of the bag-of-embeddings MLP reward
// classifier (the nonlinear control of domains.md §1.4).
type BoEConfig struct {
	L        int     // window length
	D        int     // embedding width
	H        int     // hidden width (tanh units)
	Gain     float64 // W1 starts as N(0, Gain²/D): above 1 the tanh units start (and stay) outside their linear range
	Epochs   int     // at most this many passes over the training windows (the cosine schedule's length)
	Patience int     // stop after this many epochs without a better validation loss
	Batch    int     // windows per Adam step
	LR       float64 // peak Adam learning rate (cosine decay to 0 over Epochs)
	L2       float64 // penalty λ on the squared weights of E, W1 and W2 (not the biases)
	ValShare float64 // share of train-split reviews held out (by review, as TrainLR) for early stopping
	Seed     uint64  // initialisation, batch order, held-out reviews and test windows
}

// DefaultBoEConfig is the recipe at L = 32: d = 32 and 64 tanh units
// (130k parameters at K = 4k), Adam at 3e-3 in batches of 256 for at
// most 8 epochs (the validation loss bottoms out after 3–4; about 20 s
// on one core), no L2 (λ = 1e-6…1e-4 did not lower the validation loss)
// and W1 initialised with gain 6. At gain 1 the trained units stay in
// tanh's linear range (under 2% saturated) and the model is an LR in
// disguise: its gradient directions on different test windows agree to
// |cos| > 0.996. At gain 6 about 40% are saturated and the directions
// spread (median |cos| ≈ 0.96, 1% below 0.82) at the same validation loss
// and accuracy (72.8% / AUC 0.808 on the test windows, the LR's 73.0% /
// 0.809); gain 10 spreads them further (median 0.92) but costs 0.3 point.
func DefaultBoEConfig() BoEConfig {
	return BoEConfig{L: 32, D: 32, H: 64, Gain: 6, Epochs: 8, Patience: 2, Batch: 256, LR: 3e-3, L2: 0, ValShare: 0.1, Seed: 1}
}

// BoE is a trained bag-of-embeddings MLP,
//
//	z(x) = tanh(((1/L) Σ_l E[x_l])·W1 + B1)·W2 + B2,   p(pos | x) = σ(z),
//
// with its provenance and held-out scores, as saved by Save.
type BoE struct {
	VocabHash string    `json:"vocab_hash"` // the vocabulary it was trained on
	L         int       `json:"l"`
	D         int       `json:"d"`
	H         int       `json:"h"`
	E         []float64 `json:"e"`  // embedding, V×D row-major (V = K words + UNK)
	W1        []float64 `json:"w1"` // D×H row-major
	B1        []float64 `json:"b1"` // H
	W2        []float64 `json:"w2"` // H
	B2        float64   `json:"b2"`
	Epoch     int       `json:"epoch"`    // the epoch kept (lowest validation loss), 1-based
	ValLoss   float64   `json:"val_loss"` // mean logistic loss on the held-out train reviews' windows, at Epoch
	ValAcc    float64   `json:"val_acc"`
	ValAUC    float64   `json:"val_auc"`
	TestAcc   float64   `json:"test_acc"`
	TestAUC   float64   `json:"test_auc"`
	TestN     int       `json:"test_windows"`
	Seconds   float64   `json:"train_seconds"`
	Config    BoEConfig `json:"config"`
}

// V is the number of tokens the model embeds.
func (m *BoE) V() int {
	if m.D <= 0 {
		return 0
	}
	return len(m.E) / m.D
}

// Reward returns the model as an smc.Reward and RewardGraph,
// r(x) = log σ(z(x)).
func (m *BoE) Reward() (*objectives.BoEReward, error) {
	return objectives.NewBoEReward(m.L, m.V(), m.D, m.H, m.E, m.W1, m.B1, m.W2, m.B2)
}

// Logit is z(x) for one window of token ids in 0..V−1 (Reward checks
// them; Logit does not).
func (m *BoE) Logit(x []int) float64 {
	return m.forward(x, make([]float64, m.D), make([]float64, m.H))
}

// forward is z(x); it leaves the pooled embedding in h and the hidden
// units tanh(h·W1 + B1) in u.
func (m *BoE) forward(x []int, h, u []float64) float64 {
	D, H := m.D, m.H
	clear(h)
	for _, t := range x {
		for j, e := range m.E[t*D : (t+1)*D] {
			h[j] += e
		}
	}
	copy(u, m.B1)
	for j := range h {
		h[j] /= float64(len(x)) // as objectives.BoEReward, bit for bit
		hj := h[j]
		for k, w := range m.W1[j*H : (j+1)*H] {
			u[k] += hj * w
		}
	}
	z := m.B2
	for k := range u {
		u[k] = math.Tanh(u[k])
		z += u[k] * m.W2[k]
	}
	return z
}

// steeringReward is what Task.Reward hands out per worker: the LR's or the
// BoE's reward.
type steeringReward interface {
	smc.Reward
	objectives.RewardGraph
}

// boeLayout slices theta into E (V×D), W1 (D×H), B1, W2 (H) and B2 (1).
func boeLayout(theta []float64, V, D, H int) (e, w1, b1, w2, b2 []float64) {
	at := 0
	take := func(k int) []float64 {
		s := theta[at : at+k : at+k]
		at += k
		return s
	}
	return take(V * D), take(D * H), take(H), take(H), take(1)
}

// TrainBoE trains the bag-of-embeddings MLP reward classifier in plain Go:
// mini-batch Adam with a cosine learning rate on the mean logistic loss
// (plus λ‖weights‖²) over the sentence-start windows of the train-split
// reviews not held out (the held-out reviews are TrainLR's, by review),
// keeping the epoch with the lowest validation loss (a proper score,
// since log p is the steering reward) and stopping after Patience epochs
// without improvement. It is deterministic given cfg.Seed. The kept model
// is scored as the LR is, on up to 4 windows per test review.
func TrainBoE(c *Corpus, v *Vocab, cfg BoEConfig, log io.Writer) (*BoE, error) {
	if err := sameVocab(c, v); err != nil {
		return nil, err
	}
	if cfg.L <= 0 || cfg.D <= 0 || cfg.H <= 0 || !(cfg.Gain > 0) || math.IsInf(cfg.Gain, 0) || cfg.Epochs <= 0 || cfg.Patience <= 0 || cfg.Batch <= 0 || !(cfg.LR > 0) ||
		!(cfg.L2 >= 0) || math.IsInf(cfg.L2, 0) || !(cfg.ValShare > 0 && cfg.ValShare < 1) {
		return nil, fmt.Errorf("imdb: bad BoE config %+v", cfg)
	}
	start := time.Now()
	all := labelled(c.Train, cfg.L)
	held := heldOutReviews(len(c.Train), cfg.Seed, cfg.ValShare)
	fit, val := all.subset(func(d int) bool { return !held[d] }), all.subset(func(d int) bool { return held[d] })
	if fit.n() == 0 || val.n() == 0 {
		return nil, fmt.Errorf("imdb: BoE training needs windows of %d tokens in both the fitted (%d) and held-out (%d) train reviews", cfg.L, fit.n(), val.n())
	}
	V, D, H, L := v.Size(), cfg.D, cfg.H, cfg.L

	// Initialisation: E ~ N(0, 1) (so that the pooled h has a spread of
	// about 1/√L), W1 ~ N(0, Gain²/D), W2 ~ N(0, 1/H), zero biases.
	theta := make([]float64, V*D+D*H+H+H+1)
	e, w1, _, w2, _ := boeLayout(theta, V, D, H)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0xb0e))
	for i := range e {
		e[i] = rng.NormFloat64()
	}
	for i := range w1 {
		w1[i] = cfg.Gain * rng.NormFloat64() / math.Sqrt(float64(D))
	}
	for i := range w2 {
		w2[i] = rng.NormFloat64() / math.Sqrt(float64(H))
	}
	penalised := V*D + D*H // E and W1; W2 sits after B1
	model := func(th []float64) *BoE {
		e, w1, b1, w2, b2 := boeLayout(th, V, D, H)
		return &BoE{L: L, D: D, H: H, E: e, W1: w1, B1: b1, W2: w2, B2: b2[0]}
	}
	cur := model(theta)

	grad := make([]float64, len(theta))
	ge, gw1, gb1, gw2, gb2 := boeLayout(grad, V, D, H)
	h, u, da, dh := make([]float64, D), make([]float64, H), make([]float64, H), make([]float64, D)
	n := fit.n()
	opt := newAdam(len(theta), cfg.LR, cfg.Epochs*((n+cfg.Batch-1)/cfg.Batch))
	best, bestTheta := math.Inf(1), make([]float64, len(theta))
	var bestEpoch int
	var bestAcc, bestAUC float64
	order := rand.New(rand.NewPCG(cfg.Seed, 0xb0e0))
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		perm := order.Perm(n)
		trainLoss := 0.0
		for at := 0; at < n; at += cfg.Batch {
			batch := perm[at:min(at+cfg.Batch, n)]
			clear(grad)
			inv := 1 / float64(len(batch))
			for _, i := range batch {
				x := fit.row(i)
				z := cur.forward(x, h, u)
				y := fit.labels[i]
				trainLoss += logLoss(z, y)
				dz := (sigmoid(z) - y) * inv
				gb2[0] += dz
				for k, uk := range u {
					gw2[k] += dz * uk
					da[k] = dz * cur.W2[k] * (1 - uk*uk)
					gb1[k] += da[k]
				}
				for j, hj := range h {
					row := cur.W1[j*H : (j+1)*H]
					grow := gw1[j*H : (j+1)*H]
					s := 0.0
					for k, dak := range da {
						grow[k] += hj * dak
						s += row[k] * dak
					}
					dh[j] = s / float64(L)
				}
				for _, t := range x {
					g := ge[t*D : (t+1)*D]
					for j, d := range dh {
						g[j] += d
					}
				}
			}
			if cfg.L2 > 0 {
				addL2(grad, theta, cfg.L2, 0, penalised)               // E and W1
				addL2(grad, theta, cfg.L2, penalised+H, penalised+2*H) // W2
			}
			opt.step(theta, grad)
		}
		vl := 0.0
		for i := range val.n() {
			vl += logLoss(cur.forward(val.row(i), h, u), val.labels[i])
		}
		vl /= float64(val.n())
		acc, auc := scoreLR(val, cur.Logit)
		fmt.Fprintf(log, "imdb: BoE epoch %d/%d: train loss %.4f, validation loss %.4f, accuracy %.4f, AUC %.4f (%.0f s)\n",
			epoch, cfg.Epochs, trainLoss/float64(n), vl, acc, auc, time.Since(start).Seconds())
		if vl < best {
			best, bestEpoch, bestAcc, bestAUC = vl, epoch, acc, auc
			copy(bestTheta, theta)
		} else if epoch-bestEpoch >= cfg.Patience {
			break
		}
	}
	m := model(bestTheta)
	m.VocabHash, m.Epoch, m.ValLoss, m.ValAcc, m.ValAUC, m.Config = v.Hash(), bestEpoch, best, bestAcc, bestAUC, cfg
	if math.IsInf(best, 0) || math.IsNaN(best) {
		return nil, fmt.Errorf("imdb: BoE training diverged (validation loss %v)", best)
	}
	m.TestAcc, m.TestAUC, m.TestN = scoreTest(c, cfg.L, cfg.Seed, m.Logit)
	m.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(log, "imdb: BoE (d = %d, %d tanh units) kept epoch %d: validation accuracy %.4f, AUC %.4f (%d windows of %d held-out train reviews); test accuracy %.4f, AUC %.4f on %d windows (up to 4 per test review); %.0f s\n",
		D, H, bestEpoch, bestAcc, bestAUC, val.n(), countTrue(held), m.TestAcc, m.TestAUC, m.TestN, m.Seconds)
	return m, nil
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// logLoss is −log p(y | z) = −y·log σ(z) − (1−y)·log σ(−z).
func logLoss(z, y float64) float64 {
	return -y*objectives.LogSigmoid(z) - (1-y)*objectives.LogSigmoid(-z)
}

const boeMagic = "# ddsmc imdb bag-of-embeddings MLP v1\n"

// Save writes the classifier atomically in the LR's format
// (saveChecksummed): a magic line, its JSON and a last line
// "sha256 <hex>" of everything before it. A score that could not be
// measured (NaN) is written as −1.
func (m *BoE) Save(path string) error {
	c := *m
	unmeasuredAsMinusOne(&c.ValLoss, &c.ValAcc, &c.ValAUC, &c.TestAcc, &c.TestAUC)
	return saveChecksummed(path, boeMagic, "BoE reward classifier", &c)
}

// staleError is a classifier file that is intact but was trained for
// another vocabulary or window length: Prepare retrains it.
type staleError struct{ msg string }

func (e *staleError) Error() string { return e.msg }

// isStale reports whether err says the classifier must be retrained.
func isStale(err error) bool {
	var s *staleError
	return errors.As(err, &s)
}

// LoadBoE reads a classifier written by (*BoE).Save and checks that it was
// trained on vocabulary v for windows of length L. A missing file is
// task.ErrNotPrepared; a corrupt one, one with weights of the wrong sizes
// or not finite, or one trained for another vocabulary or length, is an
// error naming the file.
func LoadBoE(path string, v *Vocab, L int) (*BoE, error) {
	const what = "BoE reward classifier"
	var m BoE
	if err := loadChecksummed(path, boeMagic, what, "bag-of-embeddings classifier", &m); err != nil {
		return nil, err
	}
	switch {
	case m.VocabHash != v.Hash():
		return nil, &staleError{otherVocab(what, path, m.VocabHash, v)}
	case m.L != L:
		return nil, &staleError{otherLength(what, path, m.L, L)}
	case m.D <= 0 || len(m.E) != v.Size()*m.D:
		return nil, fmt.Errorf("imdb: BoE reward classifier %s has %d embedding entries of width %d for a vocabulary of %d tokens", path, len(m.E), m.D, v.Size())
	}
	if _, err := m.Reward(); err != nil {
		return nil, fmt.Errorf("imdb: BoE reward classifier %s: %w", path, err)
	}
	return &m, nil
}
