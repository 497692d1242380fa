package imdb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// Doc is one tokenised review: its vocabulary ids and the offsets at which
// its sentences start.
type Doc struct {
	ID     int
	Label  int // 1 = positive
	Rating int
	Tokens []uint16
	Starts []uint32 // sentence start offsets into Tokens, increasing, Starts[0] = 0
}

// Stats are the corpus statistics of domains.md §1.3.
type Stats struct {
	Reviews        [2]int     `json:"reviews"`         // train, test
	Tokens         [2]int     `json:"tokens"`          // train, test
	WordTokens     int        `json:"word_tokens"`     // tokens that are words (start with a letter or digit), both splits
	Sentences      int        `json:"sentences"`       // both splits
	Types          [3]int     `json:"types"`           // distinct tokens: train, test, both
	K              int        `json:"k"`               // vocabulary size
	Coverage       [2]float64 `json:"coverage"`        // fraction of train, test tokens in the vocabulary
	KthCount       int        `json:"kth_count"`       // train count of the K-th word
	ShortestReview int        `json:"shortest_review"` // tokens
	LongestReview  int        `json:"longest_review"`
}

// Corpus is both splits tokenised over one vocabulary.
type Corpus struct {
	VocabHash string
	Manifest  string // ManifestHash of the reviews
	Train     []Doc
	Test      []Doc
	Stats     Stats
}

// Split returns the docs of "train" or "test".
func (c *Corpus) Split(split string) ([]Doc, error) {
	switch split {
	case "train":
		return c.Train, nil
	case "test":
		return c.Test, nil
	}
	return nil, fmt.Errorf("imdb: unknown split %q, want \"train\" or \"test\"", split)
}

// tokenised is a review as ids into a shared table of token types.
type tokenised struct {
	types  []int32
	starts []uint32
}

// tokeniseAll tokenises reviews on all cores, interning the token types.
func tokeniseAll(rs []Review, table map[string]int32, names *[]string) []tokenised {
	out := make([]tokenised, len(rs))
	sents := make([][][]string, len(rs))
	var wg sync.WaitGroup
	workers := max(1, runtime.GOMAXPROCS(0))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(rs); i += workers {
				sents[i] = Tokenize(rs[i].Text)
			}
		}()
	}
	wg.Wait()
	for i, ss := range sents {
		var t tokenised
		for _, s := range ss {
			t.starts = append(t.starts, uint32(len(t.types)))
			for _, tok := range s {
				id, ok := table[tok]
				if !ok {
					id = int32(len(*names))
					table[tok] = id
					*names = append(*names, tok)
				}
				t.types = append(t.types, id)
			}
		}
		out[i] = t
	}
	return out
}

// BuildCorpus tokenises both splits, builds the vocabulary of the k most
// frequent train-split tokens (BuildVocab) and encodes every review over
// it, with the statistics of §1.3.
func BuildCorpus(train, test *Reviews, k int) (*Corpus, *Vocab, error) {
	table := map[string]int32{}
	var names []string
	tt := [2][]tokenised{tokeniseAll(train.Reviews, table, &names), tokeniseAll(test.Reviews, table, &names)}
	counts := [2][]int{make([]int, len(names)), make([]int, len(names))}
	st := Stats{K: k, ShortestReview: int(^uint(0) >> 1)}
	for s := range tt {
		st.Reviews[s] = len(tt[s])
		for _, d := range tt[s] {
			st.Tokens[s] += len(d.types)
			st.Sentences += len(d.starts)
			st.ShortestReview = min(st.ShortestReview, len(d.types))
			st.LongestReview = max(st.LongestReview, len(d.types))
			for _, id := range d.types {
				counts[s][id]++
			}
		}
	}
	trainCounts := map[string]int{}
	for id, n := range counts[0] {
		if n > 0 {
			trainCounts[names[id]] = n
		}
		if n > 0 {
			st.Types[0]++
		}
		if counts[1][id] > 0 {
			st.Types[1]++
		}
		if n > 0 || counts[1][id] > 0 {
			st.Types[2]++
		}
		if r := []rune(names[id])[0]; isWordRune(r) {
			st.WordTokens += n + counts[1][id]
		}
	}
	v, err := BuildVocab(trainCounts, k)
	if err != nil {
		return nil, nil, err
	}
	st.KthCount = v.Counts[k-1]
	if v.Size() > 1<<16 {
		return nil, nil, fmt.Errorf("imdb: vocabulary size %d does not fit 16-bit token ids", v.Size())
	}
	toVocab := make([]uint16, len(names))
	for id, w := range names {
		toVocab[id] = uint16(v.ID(w))
	}
	c := &Corpus{VocabHash: v.Hash(), Manifest: ManifestHash(train, test)}
	for s, rs := range []*Reviews{train, test} {
		docs := make([]Doc, len(rs.Reviews))
		covered := 0
		for i, r := range rs.Reviews {
			d := Doc{ID: r.ID, Label: r.Label, Rating: r.Rating, Tokens: make([]uint16, len(tt[s][i].types)), Starts: tt[s][i].starts}
			for j, id := range tt[s][i].types {
				d.Tokens[j] = toVocab[id]
				if int(d.Tokens[j]) != v.UNK() {
					covered++
				}
			}
			docs[i] = d
		}
		st.Coverage[s] = float64(covered) / float64(max(st.Tokens[s], 1))
		if s == 0 {
			c.Train = docs
		} else {
			c.Test = docs
		}
	}
	c.Stats = st
	return c, v, nil
}

// Windows returns the L-token windows that start at a sentence start with
// at least L tokens left in the review, row after row, and the index of
// each window's doc (so its review and label).
func Windows(docs []Doc, L int) (tokens []int, doc []int) {
	for i, d := range docs {
		for _, s := range d.Starts {
			if int(s)+L > len(d.Tokens) {
				break
			}
			for _, t := range d.Tokens[s : int(s)+L] {
				tokens = append(tokens, int(t))
			}
			doc = append(doc, i)
		}
	}
	return tokens, doc
}

// corpusMagic starts a corpus cache file.
const corpusMagic = "DDSMCIMDBCORPUS1"

// Save writes the corpus cache atomically: the magic, a gob of the corpus
// and the SHA-256 of both.
func (c *Corpus) Save(path string) error {
	var buf bytes.Buffer
	buf.WriteString(corpusMagic)
	if err := gob.NewEncoder(&buf).Encode(c); err != nil {
		return fmt.Errorf("imdb: encoding the corpus: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		_, err := w.Write(sum[:])
		return err
	})
}

// LoadCorpus reads a corpus cache written by Save and checks it was built
// on the vocabulary with hash vocabHash. A missing file is
// task.ErrNotPrepared; a corrupt one fails its checksum, naming the file.
func LoadCorpus(path, vocabHash string) (*Corpus, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("imdb: no corpus cache at %s (run `ddsmc prepare` on this config): %w", path, task.ErrNotPrepared)
	}
	if err != nil {
		return nil, fmt.Errorf("imdb: corpus cache: %w", err)
	}
	if len(b) < len(corpusMagic)+sha256.Size || string(b[:len(corpusMagic)]) != corpusMagic {
		return nil, fmt.Errorf("imdb: corpus cache %s is corrupt or not a corpus cache (bad magic)", path)
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("imdb: corpus cache %s fails its checksum (truncated or corrupt; run `ddsmc prepare -force`)", path)
	}
	var c Corpus
	if err := gob.NewDecoder(bytes.NewReader(body[len(corpusMagic):])).Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("imdb: corpus cache %s: %w", path, err)
	}
	if c.VocabHash != vocabHash {
		return nil, fmt.Errorf("imdb: corpus cache %s was built for vocabulary %.12s…, not this one (%.12s…): run `ddsmc prepare -force`", path, c.VocabHash, vocabHash)
	}
	return &c, nil
}
