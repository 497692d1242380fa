package experiments

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
	"github.com/ddsmc/ddsmc/smc"
)

// ImageSampleReport summarises unguided sampling from an image denoiser:
// the test-set ELBO, and what the classifiers make of the samples.
type ImageSampleReport struct {
	Config       string    `json:"config"`
	N            int       `json:"n"`
	Steps        int       `json:"steps"`
	Seconds      float64   `json:"seconds"`
	TestImages   int       `json:"test_images"`
	TestNegELBO  float64   `json:"test_neg_elbo_nats_per_pixel"`
	TestELBOErr  float64   `json:"test_neg_elbo_stderr"`
	TestBits     float64   `json:"test_neg_elbo_bits_per_pixel"`
	ELBOSeconds  float64   `json:"elbo_seconds"`
	ClassFreq    []float64 `json:"class_frequencies"` // main classifier's argmax over the samples (nil without classifier)
	MeanMaxProb  float64   `json:"mean_max_prob"`     // mean of max_y p(y|x): how confidently the classifier reads the samples
	TargetReward float64   `json:"mean_target_reward"`
	InkFraction  float64   `json:"ink_fraction"`      // of the samples
	DataInk      float64   `json:"data_ink_fraction"` // of the test images
	Grid         string    `json:"grid"`
	SamplesPath  string    `json:"samples"`
}

// sampleImages is SampleDenoiser for image tasks: cfg.Sample.N unguided
// samples to samples.csv and a captioned grid samples.png (main-classifier
// label and probability, when the classifier exists), and the −ELBO of the
// T-step chain's continuous-time bound on the full official test split, in
// bits per pixel (cfg.Train.ValSamples draws of (t, mask) per image).
func sampleImages(cfg Config, m *graph.Model, log io.Writer) (*ImageSampleReport, error) {
	task, err := loadReference(cfg.Data)
	if err != nil {
		return nil, err
	}
	dir, err := MNISTDir()
	if err != nil {
		return nil, err
	}
	test, err := LoadMNIST(dir, "test", cfg.Data.Size) // the training split is not needed
	if err != nil {
		return nil, err
	}
	task.Val = test.Dataset()
	k, grid, err := cfg.Kernel()
	if err != nil {
		return nil, err
	}
	rep := &ImageSampleReport{Config: cfg.Name, N: cfg.Sample.N, Steps: grid.Steps(), TestImages: task.Val.Len(),
		SamplesPath: filepath.Join(cfg.Out, "samples.csv"), Grid: filepath.Join(cfg.Out, "samples.png"), MeanMaxProb: math.NaN(), TargetReward: math.NaN()}
	rng := rand.New(rand.NewPCG(cfg.Sample.Seed, 3))
	start := time.Now()
	x, err := diffusion.Sample(rng, k, m, grid, cfg.Sample.N, cfg.Sample.Batch)
	if err != nil {
		return nil, err
	}
	rep.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(log, "sampled %d images with T=%d in %.1fs\n", rep.N, rep.Steps, rep.Seconds)
	if err := writeSamples(rep.SamplesPath, x, task.L); err != nil {
		return nil, err
	}
	rep.InkFraction, rep.DataInk = meanInt(x), meanInt(task.Val.Tokens)
	captions := make([]string, rep.N)
	mp, _ := cfg.ClassifierPaths()
	if clf, err := objectives.LoadClassifier(mp, cfg.Data.Size, cfg.Data.Size); err == nil {
		C := clf.Cfg.Classes
		z := make([]float64, rep.N*C)
		if err := clf.Logits(x, z); err != nil {
			return nil, err
		}
		rep.ClassFreq = make([]float64, C)
		rep.MeanMaxProb, rep.TargetReward = 0, 0
		for i := range rep.N {
			lp := logSoftmax(z[i*C : (i+1)*C])
			best := 0
			for c := range lp {
				if lp[c] > lp[best] {
					best = c
				}
			}
			rep.ClassFreq[best] += 1 / float64(rep.N)
			rep.MeanMaxProb += math.Exp(lp[best]) / float64(rep.N)
			rep.TargetReward += lp[cfg.Reward.Target] / float64(rep.N)
			captions[i] = fmt.Sprintf("%d (p=%.2f)", best, math.Exp(lp[best]))
		}
	} else {
		fmt.Fprintf(log, "no classifier (%v): samples are not labelled\n", err)
	}
	if err := plots.ImageGrid(rep.Grid, tokensAsImages(x, task.L), task.Side, task.Side, 8, captions,
		fmt.Sprintf("%s: %d unguided samples (T=%d); caption = main classifier's label", cfg.Name, rep.N, rep.Steps)); err != nil {
		return nil, err
	}
	sched, err := diffusion.ParseSchedule(cfg.Diffusion.Schedule, cfg.Diffusion.Eps)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	rep.TestNegELBO, rep.TestELBOErr, err = objectives.ValidationELBO(m, sched, task.Val, cfg.Train.ValSamples, 500, cfg.Data.Seed+99)
	if err != nil {
		return nil, err
	}
	rep.ELBOSeconds = time.Since(t0).Seconds()
	rep.TestBits = rep.TestNegELBO / math.Ln2
	fmt.Fprintf(log, "test-set −ELBO over %d images: %.4f ± %.4f nats/pixel = %.4f bits/pixel (%.1fs)\n",
		rep.TestImages, rep.TestNegELBO, rep.TestELBOErr, rep.TestBits, rep.ELBOSeconds)
	if rep.ClassFreq != nil {
		fmt.Fprintf(log, "main classifier on the samples: class frequencies %.3f, mean max p %.3f\n", rep.ClassFreq, rep.MeanMaxProb)
	}
	fmt.Fprintf(log, "ink fraction: samples %.3f, test images %.3f\nwrote %s and %s\n", rep.InkFraction, rep.DataInk, rep.SamplesPath, rep.Grid)
	return rep, writeJSON(filepath.Join(cfg.Out, "sample_summary.json"), rep)
}

// tokensAsImages views n·L binary tokens as n float images for plotting.
func tokensAsImages(x []int, L int) [][]float64 {
	out := make([][]float64, len(x)/L)
	for i := range out {
		img := make([]float64, L)
		for j, v := range x[i*L : (i+1)*L] {
			img[j] = float64(v)
		}
		out[i] = img
	}
	return out
}

func meanInt(x []int) float64 {
	s := 0
	for _, v := range x {
		s += v
	}
	return float64(s) / float64(max(len(x), 1))
}

// logSoftmax returns the log-probabilities of logits z.
func logSoftmax(z []float64) []float64 {
	lse := smc.LogSumExp(z)
	out := make([]float64, len(z))
	for i, v := range z {
		out[i] = v - lse
	}
	return out
}
