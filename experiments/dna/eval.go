package dna

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
)

// Judges returns the task's held-out metrics, built once.
func (t *Task) Judges() (*Judges, error) {
	t.jonce.Do(func() {
		if t.jerr = t.load(); t.jerr != nil {
			return
		}
		r, err := NewReward(t.pwm, t.o.Data.Window)
		if err != nil {
			t.jerr = err
			return
		}
		t.judges, t.jerr = BuildJudges(t.corpus, t.motifs, t.pwm, r.Reward)
	})
	return t.judges, t.jerr
}

// Metrics are the held-out columns (domains.md §2.4), means or shares
// over a run's outputs.
func (t *Task) Metrics() []task.Metric {
	return []task.Metric{
		{Key: "trl_sites", Label: "Trl sites at p<1e-4 per sequence", Plot: true, Summary: true},
		{Key: "trl_hit", Label: "share with ≥ 1 Trl site (p<1e-4)", Plot: false, Summary: false},
		{Key: "gaga", Label: "GAGAG/CTCTC sites per sequence", Plot: false, Summary: false},
		{Key: "gaga3", Label: "share with ≥ 3 GAGAG/CTCTC", Plot: true, Summary: true},
		{Key: "promoter", Label: "promoter-like share (6-mer LR p > 0.5)", Plot: true, Summary: true},
		{Key: "kmer3", Label: "3-mer Pearson r with the top 1% (pooled outputs of the run)", Plot: false, Summary: false},
		{Key: "motif_rho", Label: "126-motif Spearman ρ with the top 1% (outputs of the run)", Plot: false, Summary: false},
		{Key: "markov5", Label: "Markov-5 bits per base", Plot: true, Summary: true},
		{Key: "elbo_bits", Label: "base-model −ELBO, bits per base", Plot: true, Summary: true},
		{Key: "gc", Label: "GC content", Plot: false, Summary: false},
		{Key: "unique", Label: "share of distinct outputs", Plot: false, Summary: false},
	}
}

// ELBOSamples is the number of (t, mask) draws per sequence of the −ELBO
// metric.
const ELBOSamples = 16

// Evaluator builds the judges and scores runs; the −ELBO of the outputs
// uses the run's denoiser and schedule (m.Denoiser may be nil: NaN).
func (t *Task) Evaluator(m task.Model) (task.Evaluator, error) {
	j, err := t.Judges()
	if err != nil {
		return nil, err
	}
	if m.Denoiser != nil {
		if L, V := m.Denoiser.Shape(); L != t.o.Data.Window || V != 4 {
			return nil, fmt.Errorf("dna: the denoiser is for sequences of length %d over %d letters, the task has %d over 4 (data.window)", L, V, t.o.Data.Window)
		}
	}
	return &evaluator{j: j, m: m}, nil
}

type evaluator struct {
	j *Judges
	m task.Model
}

// SampleMetricsFile is the per-run file of each output's held-out metrics.
const SampleMetricsFile = "sample_metrics.csv"

// Evaluate scores one run's outputs (each output counts equally).
func (e *evaluator) Evaluate(_ *rand.Rand, out task.Outputs) (map[string]float64, error) {
	if err := out.Check(); err != nil {
		return nil, err
	}
	if out.L != e.j.W {
		return nil, fmt.Errorf("dna: outputs of length %d, the task's windows have %d", out.L, e.j.W)
	}
	d, err := task.NewDataset(out.L, 4, out.Samples)
	if err != nil {
		return nil, fmt.Errorf("dna: outputs: %w", err)
	}
	s := e.j.Set(d)
	elbo := math.NaN()
	if e.m.Denoiser != nil {
		if elbo, err = SeqELBOBits(e.m.Denoiser, e.m.Kernel.Schedule, d); err != nil {
			return nil, err
		}
	}
	if out.Dir != "" {
		if err := e.writeSampleMetrics(filepath.Join(out.Dir, SampleMetricsFile), d); err != nil {
			return nil, err
		}
	}
	return map[string]float64{
		"trl_sites": s.TrlSites, "trl_hit": s.TrlHit, "gaga": s.GAGA, "gaga3": s.GAGA3,
		"promoter": s.Promoter, "kmer3": s.Kmer3, "motif_rho": s.MotifRho, "markov5": s.Markov,
		"elbo_bits": elbo, "gc": s.GC, "unique": s.Unique,
	}, nil
}

// SeqELBOBits is the model's mean −ELBO of the rows of d in bits per base
// (ELBOSamples stratified (t, mask) draws per row, fixed seed).
func SeqELBOBits(den diffusion.Denoiser, s diffusion.Schedule, d *task.Dataset) (float64, error) {
	batch := min(256, ELBOSamples*d.Len())
	v, _, err := objectives.ValidationELBO(den, s, d, ELBOSamples, batch, 99)
	if err != nil {
		return math.NaN(), err
	}
	return v / math.Ln2, nil
}

func (e *evaluator) writeSampleMetrics(path string, d *task.Dataset) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		fmt.Fprintln(w, "trl_sites,gaga,promoter_p,markov5,gc")
		for i := 0; i < d.Len(); i++ {
			m := e.j.Sequence(d.Row(i))
			fmt.Fprintf(w, "%d,%d,%.4f,%.4f,%.3f\n", m.TrlSites, m.GAGA, m.Promoter, m.Markov, m.GC)
		}
		return nil
	})
}

// SampleReport is `ddsmc sample dna`: the test −ELBO and the unguided
// samples' composition, k-mer statistics and held-out metrics beside the
// real test windows'.
type SampleReport struct {
	Config       string     `json:"config"`
	N            int        `json:"n"`
	Steps        int        `json:"steps"`
	Seconds      float64    `json:"seconds"`
	Step         string     `json:"checkpoint_step"`
	TestWindows  int        `json:"test_windows"`
	TestNegELBO  float64    `json:"test_neg_elbo_nats_per_base"`
	TestELBOErr  float64    `json:"test_neg_elbo_stderr"`
	TestBits     float64    `json:"test_neg_elbo_bits_per_base"`
	SampleComp   [4]float64 `json:"samples_composition_acgt"`
	TestComp     [4]float64 `json:"test_composition_acgt"`
	Kmer3Corr    float64    `json:"samples_vs_test_3mer_pearson"`
	Kmer6Corr    float64    `json:"samples_vs_test_6mer_pearson"`
	ShufKmer6    float64    `json:"shuffled_test_vs_test_6mer_pearson"`
	RewardMean   float64    `json:"samples_reward_mean"`
	RewardP99    float64    `json:"samples_reward_p99"`
	TestRewMean  float64    `json:"test_reward_mean"`
	TestRewP99   float64    `json:"test_reward_p99"`
	Samples      SetMetrics `json:"samples_metrics"`
	Test         SetMetrics `json:"test_metrics"`
	SamplesELBO  float64    `json:"samples_neg_elbo_bits_per_base"`
	SamplesPath  string     `json:"samples"`
	RenderedPath string     `json:"rendered"`
}

// ReportSamples writes the sample report and samples.svg (the first
// sequences with their sites marked).
func (t *Task) ReportSamples(s task.SampleRun, x []int, log io.Writer) (any, error) {
	j, err := t.Judges()
	if err != nil {
		return nil, err
	}
	L := t.o.Data.Window
	d, err := task.NewDataset(L, 4, x)
	if err != nil {
		return nil, fmt.Errorf("dna: samples: %w", err)
	}
	test, err := t.corpus.Split("test")
	if err != nil {
		return nil, err
	}
	r, err := NewReward(t.pwm, L)
	if err != nil {
		return nil, err
	}
	rep := &SampleReport{Config: s.Name, N: d.Len(), Steps: s.Grid.Steps(), Seconds: s.Seconds, Step: s.Step, TestWindows: test.Len(),
		SamplesPath: filepath.Join(s.Dir, "samples.csv"), RenderedPath: filepath.Join(s.Dir, "samples.svg")}
	rep.SampleComp, rep.TestComp = Composition(d), Composition(test)
	rep.Kmer3Corr = Pearson(KmerFreq(d, 3), KmerFreq(test, 3))
	rep.Kmer6Corr = Pearson(KmerFreq(d, 6), KmerFreq(test, 6))
	rep.ShufKmer6 = Pearson(KmerFreq(Shuffle(rand.New(rand.NewPCG(s.Seed, 5)), test), 6), KmerFreq(test, 6))
	rewards := func(d *task.Dataset) (mean, p99 float64, err error) {
		v := make([]float64, d.Len())
		if err := r.Reward(d.Tokens, v); err != nil {
			return 0, 0, err
		}
		for _, x := range v {
			mean += x / float64(len(v))
		}
		sort.Float64s(v)
		return mean, v[int(math.Round(0.99*float64(len(v)-1)))], nil
	}
	if rep.RewardMean, rep.RewardP99, err = rewards(d); err != nil {
		return nil, err
	}
	if rep.TestRewMean, rep.TestRewP99, err = rewards(test); err != nil {
		return nil, err
	}
	rep.Samples, rep.Test = j.Set(d), j.Set(test)
	if rep.TestNegELBO, rep.TestELBOErr, err = s.ELBO(test, 500); err != nil {
		return nil, err
	}
	rep.TestBits = rep.TestNegELBO / math.Ln2
	if rep.SamplesELBO, err = SeqELBOBits(s.Denoiser, s.Kernel.Schedule, d); err != nil {
		return nil, err
	}
	n := min(d.Len(), 24)
	if err := t.Render(rep.RenderedPath, []task.Panel{{Title: fmt.Sprintf("%s: %d of %d unguided samples", s.Name, n, d.Len()),
		Out: task.Outputs{L: L, Samples: x[:n*L]}}}); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "test (%s, %d windows) −ELBO %.4f ± %.4f nats/base = %.4f bits/base\n", t.o.Data.TestChrom, test.Len(), rep.TestNegELBO, rep.TestELBOErr, rep.TestBits)
	fmt.Fprintf(log, "composition ACGT: samples %.3f, test %.3f; GC %.3f vs %.3f\n", rep.SampleComp, rep.TestComp, rep.Samples.GC, rep.Test.GC)
	fmt.Fprintf(log, "k-mer Pearson r with the test windows: 3-mer %.3f, 6-mer %.3f (a shuffle of the test windows: 6-mer %.3f)\n", rep.Kmer3Corr, rep.Kmer6Corr, rep.ShufKmer6)
	fmt.Fprintf(log, "reward: samples mean %.2f, p99 %.2f; test mean %.2f, p99 %.2f\n", rep.RewardMean, rep.RewardP99, rep.TestRewMean, rep.TestRewP99)
	fmt.Fprintf(log, "Markov-5 bits/base: samples %.3f, test %.3f; samples' −ELBO %.3f bits/base\n", rep.Samples.Markov, rep.Test.Markov, rep.SamplesELBO)
	fmt.Fprintf(log, "Trl sites/seq: samples %.3f, test %.3f; ≥3 GAGAG: %.3f vs %.3f; promoter-like: %.3f vs %.3f\n",
		rep.Samples.TrlSites, rep.Test.TrlSites, rep.Samples.GAGA3, rep.Test.GAGA3, rep.Samples.Promoter, rep.Test.Promoter)
	return rep, nil
}
