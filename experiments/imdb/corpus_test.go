package imdb

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
)

var real struct {
	once   sync.Once
	corpus *Corpus
	vocab  *Vocab
	err    error
}

// realCorpus returns the full corpus at K = 4000, built once per test
// binary and cached across runs in the user cache directory (the cache
// is checked like any corpus cache). It skips under -short and when the
// data module cannot be found or fetched.
func realCorpus(t *testing.T) (*Corpus, *Vocab) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the full-corpus test under -short (it tokenises 50k reviews once, about 20 s, then caches)")
	}
	real.once.Do(func() {
		dir, err := DataDir()
		if err != nil {
			real.err = err
			return
		}
		cache := ""
		if d, err := os.UserCacheDir(); err == nil {
			cache = filepath.Join(d, "ddsmc", "imdb-test-k4000")
			if v, err := LoadVocab(filepath.Join(cache, "vocab.tsv")); err == nil {
				if c, err := LoadCorpus(filepath.Join(cache, "corpus.bin"), v.Hash()); err == nil && c.Manifest == ManifestSHA256 {
					real.corpus, real.vocab = c, v
					return
				}
			}
		}
		tr, te, err := LoadAll(dir)
		if err != nil {
			real.err = err
			return
		}
		real.corpus, real.vocab, real.err = BuildCorpus(tr, te, 4000)
		if real.err == nil && cache != "" && os.MkdirAll(cache, 0o755) == nil {
			_ = real.vocab.Save(filepath.Join(cache, "vocab.tsv"))
			_ = real.corpus.Save(filepath.Join(cache, "corpus.bin"))
		}
	})
	if real.err != nil {
		if errors.Is(real.err, errNoData) || strings.Contains(real.err.Error(), "cannot find") || strings.Contains(real.err.Error(), "download") {
			t.Skipf("the IMDB data module %s@%s cannot be found or fetched here: %v", Module, ModuleVersion, real.err)
		}
		t.Fatal(real.err)
	}
	return real.corpus, real.vocab
}

var errNoData = errors.New("no data")

// TestCorpusStatisticsMatchDomainsMd: the counts of domains.md §1.3,
// measured there with another implementation of the same rules, are
// reproduced exactly.
func TestCorpusStatisticsMatchDomainsMd(t *testing.T) {
	c, v := realCorpus(t)
	s := c.Stats
	exact := []struct {
		name      string
		got, want int
	}{
		{"train reviews", s.Reviews[0], 25000},
		{"test reviews", s.Reviews[1], 25000},
		{"train tokens", s.Tokens[0], 6699815},
		{"test tokens", s.Tokens[1], 6548843},
		{"word tokens", s.WordTokens, 11545300},
		{"sentences", s.Sentences, 671783},
		{"train types", s.Types[0], 81436},
		{"test types", s.Types[1], 80353},
		{"types", s.Types[2], 112168},
		{"count of the 4000th word", s.KthCount, 110},
		{"shortest review", s.ShortestReview, 8},
		{"longest review", s.LongestReview, 2739},
	}
	for _, e := range exact {
		if e.got != e.want {
			t.Errorf("%s = %d, want %d", e.name, e.got, e.want)
		}
	}
	if math.Round(s.Coverage[0]*1000) != 899 || math.Round(s.Coverage[1]*1000) != 897 {
		t.Errorf("coverage at K=4k: train %.4f, test %.4f; want 0.899, 0.897", s.Coverage[0], s.Coverage[1])
	}
	for _, w := range []struct{ L, train, all int }{{16, 320217, 635255}, {32, 298840, 592640}, {48, 278208, 551198}, {64, 258002, 510569}} {
		a, _ := Windows(c.Train, w.L)
		b, _ := Windows(c.Test, w.L)
		if len(a)/w.L != w.train || (len(a)+len(b))/w.L != w.all {
			t.Errorf("L=%d sentence-start windows: train %d, all %d; want %d, %d", w.L, len(a)/w.L, (len(a)+len(b))/w.L, w.train, w.all)
		}
	}
	top := "the . , and a of to is in it i this that \" - was as for with movie but film ) ("
	if got := strings.Join(v.Words[:24], " "); got != top {
		t.Errorf("top tokens %q, want %q", got, top)
	}
	if c.Manifest != ManifestSHA256 || c.VocabHash != v.Hash() {
		t.Errorf("corpus identity: manifest %s, vocab %s", c.Manifest, c.VocabHash)
	}
}

// TestLoadReviewsRefusesIncompleteOrBadFolders names the folder or file.
func TestLoadReviewsRefusesIncompleteOrBadFolders(t *testing.T) {
	dir := t.TempDir()
	for _, cl := range []string{"pos", "neg"} {
		if err := os.MkdirAll(filepath.Join(dir, "train", cl), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, text string) {
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("train/neg/1_3.txt", "Bad.")
	if _, err := LoadReviews(dir, "train"); err == nil || !strings.Contains(err.Error(), "has 1 review files, want 12500") || !strings.Contains(err.Error(), filepath.Join("train", "neg")) {
		t.Errorf("incomplete folder: %v", err)
	}
	write("train/neg/2_8.txt", "Good.")
	if _, err := LoadReviews(dir, "train"); err == nil || !strings.Contains(err.Error(), "2_8.txt: rating 8 does not fit the class neg") {
		t.Errorf("wrong rating: %v", err)
	}
	os.Remove(filepath.Join(dir, "train/neg/2_8.txt"))
	write("train/neg/x.txt", "Good.")
	if _, err := LoadReviews(dir, "train"); err == nil || !strings.Contains(err.Error(), "x.txt: name is not ID_RATING.txt") {
		t.Errorf("bad name: %v", err)
	}
	if _, err := LoadReviews(dir, "test"); err == nil || !strings.Contains(err.Error(), "cannot read the review folder") {
		t.Errorf("missing split: %v", err)
	}
	if _, err := LoadReviews(dir, "dev"); err == nil || !strings.Contains(err.Error(), `unknown split "dev"`) {
		t.Errorf("unknown split: %v", err)
	}
}

// TestManifestHashSeesEveryFile: changing a file's content, or dropping
// one, changes the hash that LoadAll checks.
func TestManifestHashSeesEveryFile(t *testing.T) {
	a := &Reviews{Manifest: []string{"train/neg/1_3.txt aa", "train/pos/2_9.txt bb"}}
	b := &Reviews{Manifest: []string{"train/pos/2_9.txt bb", "train/neg/1_3.txt aa"}}
	c := &Reviews{Manifest: []string{"train/neg/1_3.txt ab", "train/pos/2_9.txt bb"}}
	d := &Reviews{Manifest: []string{"train/neg/1_3.txt aa"}}
	if ManifestHash(a) != ManifestHash(b) {
		t.Error("the hash depends on the order of the files")
	}
	if ManifestHash(a) == ManifestHash(c) || ManifestHash(a) == ManifestHash(d) {
		t.Error("the hash misses a changed or dropped file")
	}
}

// smallCorpus builds a corpus from a few invented reviews.
func smallCorpus(t *testing.T, k int) (*Corpus, *Vocab) {
	t.Helper()
	tr := &Reviews{Split: "train", Reviews: []Review{
		{ID: 1, Rating: 2, Label: 0, Text: "A bad film. Really bad! The worst."},
		{ID: 2, Rating: 9, Label: 1, Text: "A good film. Really good!<br />The best film."},
	}}
	te := &Reviews{Split: "test", Reviews: []Review{{ID: 3, Rating: 8, Label: 1, Text: "A fine film. Good."}}}
	c, v, err := BuildCorpus(tr, te, k)
	if err != nil {
		t.Fatal(err)
	}
	return c, v
}

// TestVocabIsDeterministicAndRoundTrips: ties break by byte order; the
// file round-trips; edits, truncation and a missing file are named errors.
func TestVocabIsDeterministicAndRoundTrips(t *testing.T) {
	v, err := BuildVocab(map[string]int{"b": 2, "a": 2, "c": 5, "d": 1}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Words, " "); got != "c a b" {
		t.Fatalf("words %q, want \"c a b\" (count, then byte order)", got)
	}
	if v.ID("d") != 3 || v.UNK() != 3 || v.Size() != 4 || v.Word(3) != UNKWord || v.Text([]int{0, 3, 1}) != "c <unk> a" {
		t.Fatalf("ids: d→%d, UNK %d, size %d, text %q", v.ID("d"), v.UNK(), v.Size(), v.Text([]int{0, 3, 1}))
	}
	path := filepath.Join(t.TempDir(), "vocab.tsv")
	if err := v.Save(path); err != nil {
		t.Fatal(err)
	}
	w, err := LoadVocab(path)
	if err != nil || w.Hash() != v.Hash() || w.ID("b") != 2 || w.Counts[0] != 5 {
		t.Fatalf("round trip: %v, %+v", err, w)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), "a\t2", "z\t2", 1)), 0o644)
	if _, err := LoadVocab(path); err == nil || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), path) {
		t.Errorf("edited file: %v", err)
	}
	os.WriteFile(path, b[:len(b)/2], 0o644)
	if _, err := LoadVocab(path); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("truncated file: %v", err)
	}
	if _, err := LoadVocab(filepath.Join(t.TempDir(), "none.tsv")); !errors.Is(err, task.ErrNotPrepared) {
		t.Errorf("missing file: %v, want ErrNotPrepared", err)
	}
	if _, err := BuildVocab(map[string]int{"a": 1}, 2); err == nil {
		t.Error("K above the number of types: want an error")
	}
}

// TestCorpusCacheRoundTripAndChecks: windows start at sentence starts;
// the cache round-trips and refuses corruption and another vocabulary.
func TestCorpusCacheRoundTripAndChecks(t *testing.T) {
	c, v := smallCorpus(t, 8)
	if got := v.Text(intsOf(c.Train[1].Tokens)); got != "a good film . really good ! the <unk> film ." {
		t.Fatalf("encoded review: %q", got)
	}
	if want := []uint32{0, 4, 7}; !equalU32(c.Train[1].Starts, want) {
		t.Fatalf("starts %v, want %v", c.Train[1].Starts, want)
	}
	toks, doc := Windows(c.Train, 4)
	// review 0 has 10 tokens with starts 0, 4, 7 (the last leaves 3 < L);
	// review 1 has 11 with starts 0, 4, 7: all three fit.
	if len(toks) != 5*4 || len(doc) != 5 || doc[1] != 0 || doc[2] != 1 {
		t.Fatalf("windows: %d tokens, docs %v", len(toks), doc)
	}
	if got := v.Text(toks[4:8]); got != "really bad ! the" {
		t.Fatalf("second window %q", got)
	}
	path := filepath.Join(t.TempDir(), "corpus.bin")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	d, err := LoadCorpus(path, v.Hash())
	if err != nil || len(d.Train) != 2 || d.Stats != c.Stats || v.Text(intsOf(d.Test[0].Tokens)) != v.Text(intsOf(c.Test[0].Tokens)) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := LoadCorpus(path, strings.Repeat("0", 64)); err == nil || !strings.Contains(err.Error(), "was built for vocabulary") {
		t.Errorf("another vocabulary: %v", err)
	}
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o644)
	if _, err := LoadCorpus(path, v.Hash()); err == nil || !strings.Contains(err.Error(), "fails its checksum") || !strings.Contains(err.Error(), path) {
		t.Errorf("corrupt cache: %v", err)
	}
	if _, err := LoadCorpus(path+".none", v.Hash()); !errors.Is(err, task.ErrNotPrepared) {
		t.Errorf("missing cache: %v", err)
	}
}

func intsOf(u []uint16) []int {
	out := make([]int, len(u))
	for i, x := range u {
		out[i] = int(x)
	}
	return out
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLoadAllRefusesAnEditedReview: one changed byte in one of the 50,000
// review files fails the manifest check, naming the directory.
func TestLoadAllRefusesAnEditedReview(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: reads the 50,000 reviews")
	}
	real, err := DataDir()
	if err != nil {
		t.Skipf("the IMDB data module %s@%s cannot be found or fetched here: %v", Module, ModuleVersion, err)
	}
	dir := t.TempDir()
	for _, p := range []string{"train", filepath.Join("test", "pos")} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.Symlink(filepath.Join(real, p), filepath.Join(dir, p)); err != nil {
			t.Skipf("cannot symlink: %v", err)
		}
	}
	neg := filepath.Join(dir, "test", "neg")
	os.MkdirAll(neg, 0o755)
	ents, err := os.ReadDir(filepath.Join(real, "test", "neg"))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range ents {
		b, err := os.ReadFile(filepath.Join(real, "test", "neg", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if i == 100 {
			b[0] ^= 0x20 // change the case of the first letter
		}
		if err := os.WriteFile(filepath.Join(neg, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := LoadAll(dir); err == nil || !strings.Contains(err.Error(), "fail their checksum") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("an edited review: %v", err)
	}
	t.Setenv(DirEnv, dir)
	if d, err := DataDir(); err != nil || d != dir {
		t.Fatalf("DataDir with %s set: %q, %v", DirEnv, d, err)
	}
}
