package imdb

import (
	"fmt"
	"math"
	"sync"

	"github.com/cdipaolo/sentiment"
	"github.com/jonreiter/govader"
)

// VADER is the held-out lexicon-and-rules judge of §1.5 (govader, the MIT
// VADER lexicon of Hutto & Gilbert 2014). It is safe for concurrent use.
type VADER struct {
	mu sync.Mutex
	a  *govader.SentimentIntensityAnalyzer
}

// NewVADER loads the VADER lexicon (compiled into the govader module).
func NewVADER() *VADER { return &VADER{a: govader.NewSentimentIntensityAnalyzer()} }

// Compound is VADER's compound score in [−1, 1] of a text.
func (j *VADER) Compound(text string) float64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.a.PolarityScores(text).Compound
}

// NB is the Naive Bayes sentiment model that ships in the data module
// (cdipaolo/sentiment). It was trained on the IMDB train split, so it may
// only judge test or generated text. It is safe for concurrent use.
type NB struct {
	mu sync.Mutex
	m  sentiment.Models
}

// NewNB restores the bundled model (about 0.2 s).
func NewNB() (*NB, error) {
	m, err := sentiment.Restore()
	if err != nil {
		return nil, fmt.Errorf("imdb: restoring the Naive Bayes judge: %w", err)
	}
	if m["en"] == nil {
		return nil, fmt.Errorf("imdb: the Naive Bayes judge has no English model")
	}
	return &NB{m: m}, nil
}

// Positive reports whether the model's class of text is positive.
func (j *NB) Positive(text string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.m["en"].Predict(text) == 1
}

// KN3 is an interpolated Kneser–Ney trigram model over token ids (domains.md
// §1.6): absolute discount D at every order, continuation counts below the
// top order, and a uniform floor under the unigram level, so every token
// of 0..V−1 has positive probability. Each sequence is scored from the
// context BOS BOS (BOS = V, never predicted). Read-only once built, so
// safe for concurrent use.
type KN3 struct {
	V int
	D float64

	c3                map[uint64]uint32 // c(u v w)
	ctx3, types3      map[uint64]uint32 // Σ_w c(u v w), #{w: c(u v w) > 0}, keyed by (u v)
	n2                map[uint64]uint32 // N1+(• v w), keyed by (v w)
	ctx2, types2      []uint32          // Σ_w N1+(• v w), #{w: N1+(• v w) > 0}, by v
	n1                []uint32          // N1+(• w), by w
	bigramTypes, uniT uint32            // Σ_w N1+(• w), #{w: N1+(• w) > 0}
}

const knBits = 16

func key2(a, b int) uint64    { return uint64(a)<<knBits | uint64(b) }
func key3(a, b, c int) uint64 { return uint64(a)<<(2*knBits) | uint64(b)<<knBits | uint64(c) }

// BuildKN3 counts the trigrams of the streams (token ids in 0..V−1, each
// stream padded on the left with BOS BOS) with discount d (0 < d < 1).
func BuildKN3(streams [][]uint16, V int, d float64) (*KN3, error) {
	if V <= 0 || V+1 >= 1<<knBits {
		return nil, fmt.Errorf("imdb: KN-3 vocabulary size %d out of range", V)
	}
	if !(d > 0 && d < 1) {
		return nil, fmt.Errorf("imdb: KN-3 discount %v, want 0 < d < 1", d)
	}
	m := &KN3{V: V, D: d, c3: map[uint64]uint32{}, ctx3: map[uint64]uint32{}, types3: map[uint64]uint32{}, n2: map[uint64]uint32{},
		ctx2: make([]uint32, V+1), types2: make([]uint32, V+1), n1: make([]uint32, V+1)}
	bos := V
	for _, s := range streams {
		u, v := bos, bos
		for i, t := range s {
			w := int(t)
			if w >= V {
				return nil, fmt.Errorf("imdb: KN-3 training token %d at position %d outside 0..%d", w, i, V-1)
			}
			k := key3(u, v, w)
			if m.c3[k] == 0 {
				// a new trigram type: one more continuation of (v w)
				m.types3[key2(u, v)]++
				k2 := key2(v, w)
				if m.n2[k2] == 0 {
					m.types2[v]++
					m.n1[w]++
					m.bigramTypes++
				}
				m.n2[k2]++
				m.ctx2[v]++
			}
			m.c3[k]++
			m.ctx3[key2(u, v)]++
			u, v = v, w
		}
	}
	for _, n := range m.n1 {
		if n > 0 {
			m.uniT++
		}
	}
	if m.bigramTypes == 0 {
		return nil, fmt.Errorf("imdb: KN-3 trained on no tokens")
	}
	return m, nil
}

// Prob is P(w | u v) (u, v in 0..V, V = BOS; w in 0..V−1).
func (m *KN3) Prob(u, v, w int) float64 {
	D := m.D
	p1 := (math.Max(float64(m.n1[w])-D, 0) + D*float64(m.uniT)/float64(m.V)) / float64(m.bigramTypes)
	p2 := p1
	if c := m.ctx2[v]; c > 0 {
		p2 = (math.Max(float64(m.n2[key2(v, w)])-D, 0) + D*float64(m.types2[v])*p1) / float64(c)
	}
	k := key2(u, v)
	c := m.ctx3[k]
	if c == 0 {
		return p2
	}
	return (math.Max(float64(m.c3[key3(u, v, w)])-D, 0) + D*float64(m.types3[k])*p2) / float64(c)
}

// NLL is −Σ_i log P(x_i | x_{i−2} x_{i−1}) of one sequence scored from
// BOS BOS, in nats.
func (m *KN3) NLL(x []int) (float64, error) {
	u, v := m.V, m.V
	s := 0.0
	for i, w := range x {
		if w < 0 || w >= m.V {
			return 0, fmt.Errorf("imdb: KN-3: token %d at position %d outside 0..%d", w, i, m.V-1)
		}
		s -= math.Log(m.Prob(u, v, w))
		u, v = v, w
	}
	return s, nil
}

// Trigrams is the number of distinct trigrams counted.
func (m *KN3) Trigrams() int { return len(m.c3) }

// PPLCap is the per-sample perplexity at and above which a sample is left
// out of the KN-3 perplexity, as the paper drops samples with PPL ≥ 1e4.
const PPLCap = 1e4

// Perplexity returns exp(total NLL / total tokens) over the rows of x
// (row length L) whose own perplexity is below PPLCap, and the share of
// rows dropped (NaN perplexity if all are).
func (m *KN3) Perplexity(x []int, L int) (ppl, dropped float64, err error) {
	n := len(x) / L
	var nll float64
	kept := 0
	for i := range n {
		s, err := m.NLL(x[i*L : (i+1)*L])
		if err != nil {
			return 0, 0, err
		}
		if math.Exp(s/float64(L)) >= PPLCap {
			continue
		}
		nll += s
		kept++
	}
	if kept == 0 {
		return math.NaN(), 1, nil
	}
	return math.Exp(nll / float64(kept*L)), float64(n-kept) / float64(n), nil
}

// DistN is dist-n of a group of rows of length L: distinct n-grams over
// all n-grams, counting the n-grams within each row (none cross rows).
func DistN(x []int, L, n int) float64 {
	seen := map[string]struct{}{}
	total := 0
	key := make([]byte, 0, 2*n)
	for r := 0; r < len(x)/L; r++ {
		row := x[r*L : (r+1)*L]
		for i := 0; i+n <= len(row); i++ {
			key = key[:0]
			for _, t := range row[i : i+n] {
				key = append(key, byte(t>>8), byte(t))
			}
			seen[string(key)] = struct{}{}
			total++
		}
	}
	if total == 0 {
		return math.NaN()
	}
	return float64(len(seen)) / float64(total)
}
