package dna

import (
	"fmt"
	"path/filepath"
	"sort"

	"github.com/ddsmc/ddsmc/experiments/task"
)

// Corpus is the derived data set: the unique N-free windows of W bp just
// upstream of each TSS (proximal, −W..−1 in transcript orientation) and,
// as a control, the unique N-free windows at the far end of the 2-kb
// records (distal, −2000..−2001+W), each with its chromosome.
type Corpus struct {
	W                    int
	Proximal, Distal     []int // rows of W tokens, flat
	ProxChrom, DistChrom []string
	Records              int // FASTA records read
	Short                int // records shorter than 2000 bp
	NFreeProx, NFreeDist int // N-free windows before deduplication
	BaseCounts           [5]int
	ChromCounts          map[string]int // unique proximal windows per chromosome
	TestChrom            string
	TrainRows, TestRows  []int // row indices into Proximal
	DistTrain, DistTest  []int // row indices into Distal
}

// BuildCorpus derives the corpus from the FASTA records: it keeps the
// last w bases of every record (proximal) and the first w bases of every
// 2000-bp record (distal), drops windows with an N, deduplicates each set
// by sequence (alternative transcripts share TSSs; the first occurrence's
// chromosome is kept) and splits both by chromosome: testChrom is the
// test split, every other chromosome the training split.
func BuildCorpus(recs []Record, w int, testChrom string) (*Corpus, error) {
	if w <= 0 || w > 1000 {
		return nil, fmt.Errorf("dna: window %d bp: want 1..1000", w)
	}
	c := &Corpus{W: w, Records: len(recs), ChromCounts: map[string]int{}, TestChrom: testChrom}
	seenP, seenD := map[string]bool{}, map[string]bool{}
	add := func(seen map[string]bool, rows *[]int, chroms *[]string, s []int8, chrom string) {
		key := string(int8sAsBytes(s))
		if seen[key] {
			return
		}
		seen[key] = true
		for _, v := range s {
			*rows = append(*rows, int(v))
		}
		*chroms = append(*chroms, chrom)
	}
	for _, r := range recs {
		for _, v := range r.Seq {
			c.BaseCounts[v]++
		}
		if len(r.Seq) < 2000 {
			c.Short++
		}
		if len(r.Seq) >= w {
			p := r.Seq[len(r.Seq)-w:]
			if !hasN(p) {
				c.NFreeProx++
				add(seenP, &c.Proximal, &c.ProxChrom, p, r.Chrom)
			}
		}
		if len(r.Seq) >= 2000 {
			d := r.Seq[:w]
			if !hasN(d) {
				c.NFreeDist++
				add(seenD, &c.Distal, &c.DistChrom, d, r.Chrom)
			}
		}
	}
	for i, ch := range c.ProxChrom {
		c.ChromCounts[ch]++
		if ch == testChrom {
			c.TestRows = append(c.TestRows, i)
		} else {
			c.TrainRows = append(c.TrainRows, i)
		}
	}
	for i, ch := range c.DistChrom {
		if ch == testChrom {
			c.DistTest = append(c.DistTest, i)
		} else {
			c.DistTrain = append(c.DistTrain, i)
		}
	}
	if len(c.TestRows) == 0 {
		return nil, fmt.Errorf("dna: data.test_chrom = %q: no windows on that chromosome (have %v)", testChrom, c.Chromosomes())
	}
	if len(c.TrainRows) == 0 {
		return nil, fmt.Errorf("dna: data.test_chrom = %q leaves no training windows", testChrom)
	}
	return c, nil
}

func int8sAsBytes(s []int8) []byte {
	b := make([]byte, len(s))
	for i, v := range s {
		b[i] = byte(v)
	}
	return b
}

// Chromosomes lists the chromosomes of the proximal windows, sorted.
func (c *Corpus) Chromosomes() []string {
	var out []string
	for k := range c.ChromCounts {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// gather returns the rows idx of a flat row set as a Dataset.
func gather(flat []int, w int, idx []int) *task.Dataset {
	d := &task.Dataset{L: w, V: 4, Tokens: make([]int, 0, len(idx)*w)}
	for _, i := range idx {
		d.Tokens = append(d.Tokens, flat[i*w:(i+1)*w]...)
	}
	return d
}

// Split returns the proximal windows of a split: "train" (every
// chromosome but the test one) or "test" (the test chromosome).
func (c *Corpus) Split(split string) (*task.Dataset, error) {
	switch split {
	case "train":
		return gather(c.Proximal, c.W, c.TrainRows), nil
	case "test", "val":
		return gather(c.Proximal, c.W, c.TestRows), nil
	}
	return nil, fmt.Errorf("dna: unknown split %q, want train or test", split)
}

// DistalSplit returns the distal control windows of a split.
func (c *Corpus) DistalSplit(split string) (*task.Dataset, error) {
	switch split {
	case "train":
		return gather(c.Distal, c.W, c.DistTrain), nil
	case "test", "val":
		return gather(c.Distal, c.W, c.DistTest), nil
	}
	return nil, fmt.Errorf("dna: unknown split %q, want train or test", split)
}

// All returns every unique proximal window.
func (c *Corpus) All() *task.Dataset {
	return &task.Dataset{L: c.W, V: 4, Tokens: c.Proximal}
}

// Composition returns the base frequencies (A, C, G, T) of a data set.
func Composition(d *task.Dataset) [4]float64 {
	var n [4]float64
	for _, v := range d.Tokens {
		n[v]++
	}
	tot := float64(len(d.Tokens))
	for i := range n {
		n[i] /= tot
	}
	return n
}

// LoadCorpus reads and verifies the FASTA in dir and builds the corpus.
func LoadCorpus(dir string, w int, testChrom string) (*Corpus, error) {
	for _, s := range Sources {
		if s.Name == FastaFile {
			if err := VerifySource(dir, s); err != nil {
				return nil, err
			}
		}
	}
	recs, err := ReadFASTAFile(filepath.Join(dir, FastaFile))
	if err != nil {
		return nil, err
	}
	return BuildCorpus(recs, w, testChrom)
}
