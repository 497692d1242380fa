// Package dna is the DNA task, the CPU-scale analogue of the paper's
// enhancer design (§6(c)): a masked-diffusion model of the 100 bp just
// upstream of Drosophila (dm3) transcription start sites, steered toward
// GAGA-factor sites with the reward r(x) = log Σ over positions and both
// strands of exp(PWM log-odds) of the Trl matrix JASPAR MA0205.1, in nats
// (domains.md §2). The sources ship in two Debian packages; `ddsmc prepare
// dna` fetches them with apt-get download and dpkg-deb -x and checks their
// SHA-256. The windows are N-free and deduplicated (alternative
// transcripts share TSSs) and split by chromosome: test = chr2L.
//
// Held-out metrics (none used for steering): Trl sites at p < 1e-4 under a
// hard max-score scanner and the share of sequences with ≥ 3 GAGAG/CTCTC
// sites (Pred-Activity analogues); the share judged promoter by a 6-mer
// logistic regression of proximal against distal windows trained off the
// test chromosome (ATAC analogue); 3-mer Pearson and 126-motif Spearman
// correlations with the top 1% of real windows by reward; the base
// model's −ELBO and an independent order-5 Markov model's bits per base.
//
// It registers the task "dna". Its options:
//
//	[data]
//	dir = "runs/dna/data"   # where prepare puts the sources
//	window = 100            # bp upstream of the TSS
//	test_chrom = "chr2L"    # the test (val) chromosome
//	[reward]
//	motif = "MA0205.1"      # JASPAR id of the reward matrix
package dna

import (
	"fmt"
	"io"
	"sync"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

func init() { task.Register("dna", open) }

// Options are the task-owned keys of a DNA config.
type Options struct {
	Data struct {
		Dir       string `toml:"dir" json:"dir"`
		Window    int    `toml:"window" json:"window"`
		TestChrom string `toml:"test_chrom" json:"test_chrom"`
	} `toml:"data" json:"data"`
	Reward struct {
		Motif string `toml:"motif" json:"motif"`
	} `toml:"reward" json:"reward"`
}

// Default split sizes of the 100-bp windows (measured: 14,070 unique
// windows off chr2L and 3,145 on it).
const (
	DefaultTrainSize = 14070
	DefaultTestSize  = 3145
)

// Task is the DNA task, with the task.Preparer and task.SampleReporter
// capabilities.
type Task struct {
	spec task.Spec
	o    Options

	once   sync.Once
	corpus *Corpus
	motifs []*Motif
	pwm    *PWM
	err    error

	jonce  sync.Once
	judges *Judges
	jerr   error
}

var (
	_ task.Preparer       = (*Task)(nil)
	_ task.SampleReporter = (*Task)(nil)
)

func open(spec *task.Spec, dec task.Decoder) (task.Task, error) {
	var o Options
	o.Data.Dir, o.Data.Window, o.Data.TestChrom = DefaultDataDir, 100, "chr2L"
	o.Reward.Motif = "MA0205.1"
	if err := dec.Decode(&o); err != nil {
		return nil, err
	}
	switch {
	case o.Data.Window < 20 || o.Data.Window > 1000:
		return nil, fmt.Errorf("data.window = %d: want 20..1000 bp", o.Data.Window)
	case o.Data.Dir == "":
		return nil, fmt.Errorf("data.dir is empty")
	case o.Data.TestChrom == "":
		return nil, fmt.Errorf("data.test_chrom is empty")
	case o.Reward.Motif == "":
		return nil, fmt.Errorf("reward.motif is empty")
	}
	if !dec.Defined("data", "train_size") {
		spec.TrainSize = DefaultTrainSize
	}
	if !dec.Defined("data", "val_size") {
		spec.ValSize = DefaultTestSize
	}
	return &Task{spec: *spec, o: o}, nil
}

// Name is "dna".
func (t *Task) Name() string { return t.spec.Name }

// Shape is L = window bases over V = 4 (A, C, G, T).
func (t *Task) Shape() (L, V int) { return t.o.Data.Window, 4 }

// DataDir is the directory of the source files.
func (t *Task) DataDir() string { return t.o.Data.Dir }

// load reads the corpus, the motifs and the reward matrix once.
func (t *Task) load() error {
	t.once.Do(func() {
		if t.corpus, t.err = LoadCorpus(t.o.Data.Dir, t.o.Data.Window, t.o.Data.TestChrom); t.err != nil {
			return
		}
		if t.motifs, t.err = LoadMotifs(t.o.Data.Dir); t.err != nil {
			return
		}
		var m *Motif
		if m, t.err = FindMotif(t.motifs, t.o.Reward.Motif); t.err != nil {
			t.err = fmt.Errorf("reward.motif: %w", t.err)
			return
		}
		t.pwm, t.err = NewPWM(m, Background, t.o.Data.Window)
	})
	return t.err
}

// Corpus returns the derived data set.
func (t *Task) Corpus() (*Corpus, error) {
	if err := t.load(); err != nil {
		return nil, err
	}
	return t.corpus, nil
}

// PWM returns the reward matrix.
func (t *Task) PWM() (*PWM, error) {
	if err := t.load(); err != nil {
		return nil, err
	}
	return t.pwm, nil
}

// Motifs returns every matrix of the JASPAR file.
func (t *Task) Motifs() ([]*Motif, error) {
	if err := t.load(); err != nil {
		return nil, err
	}
	return t.motifs, nil
}

// Data returns the training windows (every chromosome but the test one;
// the first train_size) or the "val" windows (the test chromosome; the
// first val_size).
func (t *Task) Data(split string) (*task.Dataset, error) {
	if err := t.load(); err != nil {
		return nil, err
	}
	var n int
	switch split {
	case "train":
		n = t.spec.TrainSize
	case "val":
		n = t.spec.ValSize
	default:
		return nil, fmt.Errorf("dna: unknown split %q, want train or val", split)
	}
	d, err := t.corpus.Split(split)
	if err != nil {
		return nil, err
	}
	if n > d.Len() {
		key := "data.train_size"
		if split == "val" {
			key = "data.val_size"
		}
		return nil, fmt.Errorf("dna: %s = %d: the %s split has %d windows", key, n, split, d.Len())
	}
	d.Tokens = d.Tokens[:n*d.L]
	return d, nil
}

// NewReward returns the PWM reward of p over sequences of length L, both
// strands, as an objectives.PWMReward.
func NewReward(p *PWM, L int) (*objectives.PWMReward, error) {
	conv := func(w [][4]float64) [][]float64 {
		out := make([][]float64, len(w))
		for j := range w {
			out[j] = append([]float64(nil), w[j][:]...)
		}
		return out
	}
	return objectives.NewPWMReward(L, conv(p.W), conv(p.Reverse()))
}

// Reward is the soft site count of the reward matrix (both strands), in
// nats; the workers share one immutable PWMReward.
func (t *Task) Reward(workers int) (smc.Reward, []objectives.RewardGraph, error) {
	p, err := t.PWM()
	if err != nil {
		return nil, nil, err
	}
	r, err := NewReward(p, t.o.Data.Window)
	if err != nil {
		return nil, nil, err
	}
	graphs := make([]objectives.RewardGraph, workers)
	for w := range graphs {
		graphs[w] = r
	}
	return r, graphs, nil
}

// Missing lists the source files that are absent or fail their checksum.
func (t *Task) Missing() []string {
	var out []string
	for _, s := range Sources {
		if err := VerifySource(t.o.Data.Dir, s); err != nil {
			out = append(out, err.Error())
		}
	}
	return out
}

// Prepare fetches the sources into data.dir (see the package Prepare) and
// reports the derived data set's statistics.
func (t *Task) Prepare(force bool, log io.Writer) error {
	if err := Prepare(t.o.Data.Dir, force, log); err != nil {
		return err
	}
	c, err := t.Corpus()
	if err != nil {
		return err
	}
	fmt.Fprint(log, c.Summary())
	return nil
}

// Summary is a short text report of the corpus statistics.
func (c *Corpus) Summary() string {
	tot := 0
	for _, n := range c.BaseCounts {
		tot += n
	}
	comp := Composition(c.All())
	return fmt.Sprintf("dna: %d records (%d shorter than 2000 bp), %d bp (N %.2f%%); %d-bp windows: %d N-free, %d unique (train %d, test %s %d); distal control windows: %d unique; composition A %.4f C %.4f G %.4f T %.4f\n",
		c.Records, c.Short, tot, 100*float64(c.BaseCounts[4])/float64(tot), c.W, c.NFreeProx, len(c.ProxChrom),
		len(c.TrainRows), c.TestChrom, len(c.TestRows), len(c.DistChrom), comp[0], comp[1], comp[2], comp[3])
}
