package mnist

import (
	"fmt"
	"io"
	"math"
	"path/filepath"
	"time"

	"github.com/ddsmc/ddsmc/experiments/task"
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

// ReportSamples is `ddsmc sample` for MNIST: a captioned grid samples.png
// of the unguided samples x (main-classifier label and probability, when
// the classifier exists), and the −ELBO of the T-step chain's
// continuous-time bound on the full official test split, in bits per
// pixel.
func (t *Task) ReportSamples(s task.SampleRun, x []int, log io.Writer) (any, error) {
	test, err := t.official("test") // the training split is not needed
	if err != nil {
		return nil, err
	}
	val := test.Dataset()
	L, _ := t.Shape()
	n := len(x) / L
	side := t.Side()
	rep := &ImageSampleReport{Config: s.Name, N: n, Steps: s.Grid.Steps(), Seconds: s.Seconds, TestImages: val.Len(),
		SamplesPath: filepath.Join(s.Dir, "samples.csv"), Grid: filepath.Join(s.Dir, "samples.png"), MeanMaxProb: math.NaN(), TargetReward: math.NaN()}
	rep.InkFraction, rep.DataInk = meanInt(x), meanInt(val.Tokens)
	captions := make([]string, n)
	if clf, err := objectives.LoadClassifier(t.o.Reward.Classifier, side, side); err == nil {
		C := clf.Cfg.Classes
		z := make([]float64, n*C)
		if err := clf.Logits(x, z); err != nil {
			return nil, err
		}
		rep.ClassFreq = make([]float64, C)
		rep.MeanMaxProb, rep.TargetReward = 0, 0
		lp := make([]float64, C)
		for i := range n {
			zi := z[i*C : (i+1)*C]
			lse := smc.LogSumExp(zi)
			for c, v := range zi {
				lp[c] = v - lse
			}
			best := 0
			for c := range lp {
				if lp[c] > lp[best] {
					best = c
				}
			}
			rep.ClassFreq[best] += 1 / float64(n)
			rep.MeanMaxProb += math.Exp(lp[best]) / float64(n)
			rep.TargetReward += lp[t.o.Reward.Target] / float64(n)
			captions[i] = fmt.Sprintf("%d (p=%.2f)", best, math.Exp(lp[best]))
		}
	} else {
		fmt.Fprintf(log, "no classifier (%v): samples are not labelled\n", err)
	}
	if err := plots.ImageGrid(rep.Grid, tokensAsImages(x, L), side, side, 8, captions,
		fmt.Sprintf("%s: %d unguided samples (T=%d); caption = main classifier's label", s.Name, n, rep.Steps)); err != nil {
		return nil, err
	}
	t0 := time.Now()
	rep.TestNegELBO, rep.TestELBOErr, err = s.ELBO(val, 500)
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
	fmt.Fprintf(log, "ink fraction: samples %.3f, test images %.3f\nwrote %s\n", rep.InkFraction, rep.DataInk, rep.Grid)
	return rep, nil
}
