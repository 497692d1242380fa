package dna

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
)

// testDataDir is the cached data directory shared by the tests (the
// repository's runs/dna/data): prepared once with apt-get if absent; the
// tests that need it skip when it cannot be prepared.
var (
	testDirOnce sync.Once
	testDirErr  error
)

func realDataDir(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "..", DefaultDataDir))
	testDirOnce.Do(func() {
		var log bytes.Buffer
		if err := Prepare(dir, false, &log); err != nil {
			testDirErr = err
		}
	})
	if testDirErr != nil {
		t.Skipf("the DNA sources are absent and could not be prepared (%v); run `ddsmc prepare dna` in the repository root", testDirErr)
	}
	return dir
}

var (
	corpusOnce sync.Once
	corpus     *Corpus
	corpusErr  error
)

func realCorpus(t *testing.T) *Corpus {
	t.Helper()
	dir := realDataDir(t)
	corpusOnce.Do(func() { corpus, corpusErr = LoadCorpus(dir, 100, "chr2L") })
	if corpusErr != nil {
		t.Fatal(corpusErr)
	}
	return corpus
}

// TestCorpusStatistics checks the derived data set against the counts of
// domains.md §2.2 (26,454 records, 26,426 N-free 100-bp windows, 17,215
// unique; 3,145 on chr2L) and the background composition.
func TestCorpusStatistics(t *testing.T) {
	c := realCorpus(t)
	if c.Records != 26454 || c.Short != 2 {
		t.Errorf("records %d (short %d), want 26454 (2)", c.Records, c.Short)
	}
	tot := 0
	for _, n := range c.BaseCounts {
		tot += n
	}
	if tot != 52904706 || c.BaseCounts[4] != 29132 {
		t.Errorf("%d bases with %d N, want 52904706 with 29132", tot, c.BaseCounts[4])
	}
	if c.NFreeProx != 26426 || len(c.ProxChrom) != 17215 {
		t.Errorf("N-free windows %d, unique %d; want 26426 and 17215", c.NFreeProx, len(c.ProxChrom))
	}
	if len(c.TestRows) != 3145 || len(c.TrainRows) != DefaultTrainSize {
		t.Errorf("split test %d / train %d, want 3145 / %d", len(c.TestRows), len(c.TrainRows), DefaultTrainSize)
	}
	// domains.md counts 17,266 unique distal windows; we get one fewer
	// (the two 353-bp records have no −2000 window here).
	if n := len(c.DistChrom); n < 17260 || n > 17270 {
		t.Errorf("unique distal windows %d, want about 17266", n)
	}
	comp := Composition(c.All())
	for b, want := range Background {
		// Background holds the composition to 4 decimals.
		if math.Abs(comp[b]-want) > 5e-5 {
			t.Errorf("composition of %c = %.5f, want %.4f", Bases[b], comp[b], want)
		}
	}
	// No window of the test chromosome leaks into training.
	seen := map[string]bool{}
	for _, i := range c.TestRows {
		seen[Encode(c.Proximal[i*100:(i+1)*100])] = true
	}
	for _, i := range c.TrainRows {
		if seen[Encode(c.Proximal[i*100:(i+1)*100])] {
			t.Fatalf("train row %d is also a test window", i)
		}
	}
}

// TestTaskData checks the task's splits and sizes.
func TestTaskData(t *testing.T) {
	dir := realDataDir(t)
	tk, err := task.Open(&task.Spec{Name: "dna"}, optionsFor(map[string]any{"data.dir": dir}))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := tk.Data("train")
	if err != nil {
		t.Fatal(err)
	}
	va, err := tk.Data("val")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len() != DefaultTrainSize || va.Len() != DefaultTestSize || tr.L != 100 || tr.V != 4 {
		t.Fatalf("train %d×%d, val %d, V %d", tr.Len(), tr.L, va.Len(), tr.V)
	}
	for _, v := range tr.Tokens {
		if v < 0 || v > 3 {
			t.Fatalf("token %d", v)
		}
	}
	// A size beyond the split is an error naming the key; a smaller one
	// takes the first rows.
	big, err := task.Open(&task.Spec{Name: "dna", TrainSize: 20000, ValSize: 100}, optionsFor(map[string]any{"data.dir": dir, "data.train_size": 1, "data.val_size": 1}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.Data("train"); err == nil || !strings.Contains(err.Error(), "data.train_size = 20000") {
		t.Fatalf("train_size 20000: %v", err)
	}
	if v, err := big.Data("val"); err != nil || v.Len() != 100 {
		t.Fatalf("val_size 100: %v", err)
	}
	if _, err := open(specFor(), optionsFor(map[string]any{"data.window": 5})); err == nil {
		t.Fatal("window 5: no error")
	}
}

// optionsFor is a task.Decoder that sets a few dotted keys.
type testDecoder map[string]any

func optionsFor(m map[string]any) testDecoder { return testDecoder(m) }

func (d testDecoder) Decode(v any) error {
	o, ok := v.(*Options)
	if !ok {
		return errors.New("testDecoder: want *Options")
	}
	for k, x := range d {
		switch k {
		case "data.dir":
			o.Data.Dir = x.(string)
		case "data.window":
			o.Data.Window = x.(int)
		case "data.test_chrom":
			o.Data.TestChrom = x.(string)
		case "reward.motif":
			o.Reward.Motif = x.(string)
		}
	}
	return nil
}

func (d testDecoder) Defined(key ...string) bool { _, ok := d[strings.Join(key, ".")]; return ok }

// TestFASTAErrors checks the named errors of bad FASTA input.
func TestFASTAErrors(t *testing.T) {
	cases := map[string]string{
		"bad character":   ">a_chr2L_1_f chr2L:1-4\nACGX\n",
		"no header":       "ACGT\n",
		"empty record":    ">a chr2L:1-2\n>b chr2L:3-4\nACGT\n",
		"no records":      "\n",
		"digit in middle": ">a chr2L:1-4\nAC1T\n",
	}
	for name, in := range cases {
		if _, err := ReadFASTA(strings.NewReader(in)); !errors.Is(err, ErrBadFASTA) {
			t.Errorf("%s: err = %v, want ErrBadFASTA", name, err)
		}
	}
	recs, err := ReadFASTA(strings.NewReader(">NM_1_up_2000_chr3R_5_r chr3R:5-8\nacgN\nTT\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := recs[0]; r.Chrom != "chr3R" || r.Strand != '-' || len(r.Seq) != 6 || r.Seq[3] != 4 {
		t.Fatalf("record %+v", r)
	}
}

// TestSourceChecksum: a corrupt source is ErrChecksum, a missing one
// task.ErrNotPrepared, and Prepare without apt-get names the commands.
func TestSourceChecksum(t *testing.T) {
	dir := t.TempDir()
	if err := VerifySource(dir, Sources[1]); !errors.Is(err, task.ErrNotPrepared) {
		t.Fatalf("missing: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, Sources[1].Name), []byte("corrupt"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := VerifySource(dir, Sources[1]); !errors.Is(err, ErrChecksum) {
		t.Fatalf("corrupt: %v", err)
	}
	if _, err := LoadMotifs(dir); !errors.Is(err, ErrChecksum) {
		t.Fatalf("LoadMotifs on a corrupt file: %v", err)
	}
	t.Setenv("PATH", t.TempDir()) // no apt-get
	err := Prepare(dir, false, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "apt-get download r-bioc-biostrings=2.66.0-1 r-bioc-pwmenrich=4.34.0-1") {
		t.Fatalf("Prepare without apt-get: %v", err)
	}
	// The corrupt file is still there, untouched: nothing was overwritten.
	if b, _ := os.ReadFile(filepath.Join(dir, Sources[1].Name)); string(b) != "corrupt" {
		t.Fatalf("file changed to %q", b)
	}
}

func specFor() *task.Spec { return &task.Spec{Name: "dna"} }
