package imdb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// UNKWord is how the unknown-word token is written in rendered text.
const UNKWord = "<unk>"

// Vocab maps the K most frequent train-split tokens to ids 0..K−1 in order
// of decreasing count (ties by the token's byte order) and every other
// token to UNK = K. Its identity is Hash, the SHA-256 of its token list.
type Vocab struct {
	Words  []string // id → token, len K
	Counts []int    // train-split count of each word
	index  map[string]int
}

// BuildVocab takes the k most frequent tokens of counts (token → count),
// breaking ties by byte order so that the result is deterministic.
func BuildVocab(counts map[string]int, k int) (*Vocab, error) {
	if k <= 0 {
		return nil, fmt.Errorf("imdb: vocabulary size %d, want > 0", k)
	}
	if len(counts) < k {
		return nil, fmt.Errorf("imdb: vocabulary size %d exceeds the %d distinct tokens", k, len(counts))
	}
	words := make([]string, 0, len(counts))
	for w := range counts {
		words = append(words, w)
	}
	sort.Slice(words, func(i, j int) bool {
		ci, cj := counts[words[i]], counts[words[j]]
		if ci != cj {
			return ci > cj
		}
		return words[i] < words[j]
	})
	v := &Vocab{Words: words[:k:k], Counts: make([]int, k)}
	for i, w := range v.Words {
		v.Counts[i] = counts[w]
	}
	v.reindex()
	return v, nil
}

func (v *Vocab) reindex() {
	v.index = make(map[string]int, len(v.Words))
	for i, w := range v.Words {
		v.index[w] = i
	}
}

// K is the number of words; UNK = K and the model's V = K + 1.
func (v *Vocab) K() int { return len(v.Words) }

// UNK is the id of the unknown-word token.
func (v *Vocab) UNK() int { return len(v.Words) }

// Size is the token alphabet size V = K + 1 (words and UNK; no MASK).
func (v *Vocab) Size() int { return len(v.Words) + 1 }

// ID returns a token's id, UNK for a token outside the vocabulary.
func (v *Vocab) ID(tok string) int {
	if id, ok := v.index[tok]; ok {
		return id
	}
	return v.UNK()
}

// Lookup returns a token's id and whether it is in the vocabulary.
func (v *Vocab) Lookup(tok string) (int, bool) {
	id, ok := v.index[tok]
	return id, ok
}

// Word returns the text of id: the word, UNKWord for UNK, or "<?id>" for
// an id outside 0..K.
func (v *Vocab) Word(id int) string {
	switch {
	case id >= 0 && id < len(v.Words):
		return v.Words[id]
	case id == v.UNK():
		return UNKWord
	}
	return "<?" + strconv.Itoa(id) + ">"
}

// Text joins the words of ids with single spaces (the judges' input).
func (v *Vocab) Text(ids []int) string {
	var b strings.Builder
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v.Word(id))
	}
	return b.String()
}

// Hash is the SHA-256 (hex) of the word list, one word a line: the
// vocabulary's identity, recorded by every artefact built on it.
func (v *Vocab) Hash() string {
	h := sha256.New()
	for _, w := range v.Words {
		h.Write([]byte(w))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// vocabMagic is the first line of a vocabulary file.
const vocabMagic = "# ddsmc imdb vocabulary v1"

// Save writes the vocabulary atomically (a crash leaves any existing file
// intact): the magic line, "k <K>", one "word<TAB>count" line per id, and
// a last line "sha256 <hex>" of everything before it.
func (v *Vocab) Save(path string) error {
	var body bytes.Buffer
	fmt.Fprintf(&body, "%s\nk %d\n", vocabMagic, v.K())
	for i, w := range v.Words {
		if w == "" || strings.ContainsAny(w, "\t\n") {
			return fmt.Errorf("imdb: vocabulary word %d (%q) cannot be saved", i, w)
		}
		fmt.Fprintf(&body, "%s\t%d\n", w, v.Counts[i])
	}
	sum := sha256.Sum256(body.Bytes())
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		if _, err := w.Write(body.Bytes()); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "sha256 %s\n", hex.EncodeToString(sum[:]))
		return err
	})
}

// LoadVocab reads a vocabulary file written by Save. A missing file is
// task.ErrNotPrepared; a truncated, edited or corrupt one fails its
// checksum, naming the file.
func LoadVocab(path string) (*Vocab, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("imdb: no vocabulary at %s (run `ddsmc prepare` on this config): %w", path, task.ErrNotPrepared)
	}
	if err != nil {
		return nil, fmt.Errorf("imdb: vocabulary: %w", err)
	}
	bad := func(why string) error { return fmt.Errorf("imdb: vocabulary file %s is corrupt: %s", path, why) }
	i := bytes.LastIndex(bytes.TrimRight(b, "\n"), []byte("\nsha256 "))
	if i < 0 {
		return nil, bad("no checksum line")
	}
	body, tail := b[:i+1], strings.TrimSpace(string(b[i+1:]))
	sum := sha256.Sum256(body)
	if tail != "sha256 "+hex.EncodeToString(sum[:]) {
		return nil, bad("checksum mismatch (the file was truncated or edited)")
	}
	lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
	if len(lines) < 2 || lines[0] != vocabMagic {
		return nil, bad("not an imdb vocabulary (bad first line)")
	}
	k, err := strconv.Atoi(strings.TrimPrefix(lines[1], "k "))
	if err != nil || !strings.HasPrefix(lines[1], "k ") || k <= 0 || len(lines) != k+2 {
		return nil, bad(fmt.Sprintf("bad size line %q for %d words", lines[1], len(lines)-2))
	}
	v := &Vocab{Words: make([]string, k), Counts: make([]int, k)}
	for j, l := range lines[2:] {
		w, c, ok := strings.Cut(l, "\t")
		n, err := strconv.Atoi(c)
		if !ok || err != nil || w == "" {
			return nil, bad(fmt.Sprintf("line %d: %q", j+3, l))
		}
		v.Words[j], v.Counts[j] = w, n
	}
	v.reindex()
	if len(v.index) != k {
		return nil, bad("a word appears twice")
	}
	return v, nil
}
