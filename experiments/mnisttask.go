package experiments

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
	"github.com/ddsmc/ddsmc/smc"
)

// taskReward returns the reward of cfg's task as an smc.Reward and, for the
// gradient look-ahead, one differentiable copy per worker (workers share
// nothing mutable). GMM tasks have an additive table reward; mnist has
// r(x) = log p_clf(y = reward.target | x) of the main classifier.
func taskReward(cfg Config, task *Task, workers int) (smc.Reward, []objectives.RewardGraph, error) {
	graphs := make([]objectives.RewardGraph, workers)
	if task.GMM != nil {
		terms, err := task.GMM.RewardTerms()
		if err != nil {
			return nil, nil, err
		}
		for w := range graphs {
			graphs[w] = objectives.LinearReward{Terms: terms[:]}
		}
		return smc.TableReward(terms[:]), graphs, nil
	}
	if task.Side == 0 {
		return nil, nil, fmt.Errorf("experiments: task %s has no reward", task.Name)
	}
	path, _ := cfg.ClassifierPaths()
	var first smc.Reward
	for w := range graphs {
		clf, err := loadTaskClassifier(path, cfg.Data.Size, "reward.classifier")
		if err != nil {
			return nil, nil, err
		}
		r, err := clf.Reward(cfg.Reward.Target)
		if err != nil {
			return nil, nil, err
		}
		graphs[w] = r
		if w == 0 {
			first = r
		}
	}
	return first, graphs, nil
}

// loadTaskClassifier loads a classifier checkpoint for size×size images,
// with a hint to train one when it is missing.
func loadTaskClassifier(path string, size int, key string) (*objectives.Classifier, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("experiments: %s: no classifier checkpoint at %s: run `ddsmc train-classifiers -size %d` (it writes %s) or set the path", key, path, size, DefaultClassifierDir(size))
	}
	c, err := objectives.LoadClassifier(path, size, size)
	if err != nil {
		return nil, fmt.Errorf("experiments: %s: %w", key, err)
	}
	return c, nil
}

// imageEval computes the image-task metrics of issue 6 / paper §6(a2) for a
// set of output samples: reward and accuracy under the main classifier,
// the same under the held-out classifier, and diversity as the effective
// rank of the held-out classifier's embeddings.
type imageEval struct {
	target    int
	main, val *objectives.Classifier
}

// newImageEval loads both classifiers of cfg.
func newImageEval(cfg Config) (*imageEval, error) {
	mp, vp := cfg.ClassifierPaths()
	main, err := loadTaskClassifier(mp, cfg.Data.Size, "reward.classifier")
	if err != nil {
		return nil, err
	}
	val, err := loadTaskClassifier(vp, cfg.Data.Size, "reward.val_classifier")
	if err != nil {
		return nil, err
	}
	if cfg.Reward.Target < 0 || cfg.Reward.Target >= main.Cfg.Classes || cfg.Reward.Target >= val.Cfg.Classes {
		return nil, fmt.Errorf("experiments: reward.target = %d is not a class of the classifiers", cfg.Reward.Target)
	}
	return &imageEval{target: cfg.Reward.Target, main: main, val: val}, nil
}

// ImageMetricNames lists the metrics imageEval.metrics adds, in order:
// reward_mean and reward_max (log p_main(target|x)), reward_val (the held-out
// classifier's), acc and acc_val (fraction with p(target|x) > 0.5),
// diversity (effective rank of the held-out embeddings), success_any and
// success_all (1 if at least one / every output is correct under the main
// classifier; their means over runs are success@1 and success@all) and
// outputs.
var ImageMetricNames = []string{"reward_mean", "reward_max", "reward_val", "acc", "acc_val", "diversity", "success_any", "success_all", "outputs"}

// metrics evaluates n = len(samples)/L images and returns the metrics and
// each image's reward under the main and the held-out classifier. With logw
// (normalised log weights, one per image) the means are weighted;
// accuracy-based success counts only images of positive weight.
func (e *imageEval) metrics(samples []int, L int, logw []float64) (m map[string]float64, rm, rv []float64, err error) {
	n := len(samples) / L
	if n == 0 || len(samples) != n*L {
		return nil, nil, nil, fmt.Errorf("experiments: %d sample tokens is not a positive multiple of %d pixels", len(samples), L)
	}
	if logw != nil && len(logw) != n {
		return nil, nil, nil, fmt.Errorf("experiments: %d weights for %d samples", len(logw), n)
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(n)
		if logw != nil {
			w[i] = math.Exp(logw[i])
		}
	}
	m = map[string]float64{"outputs": float64(n)}
	for _, k := range ImageMetricNames { // every metric present, even when 0
		if k != "outputs" {
			m[k] = 0
		}
	}
	lp := func(c *objectives.Classifier) ([]float64, error) {
		r, err := c.Reward(e.target)
		if err != nil {
			return nil, err
		}
		out := make([]float64, n)
		return out, r.Reward(samples, out)
	}
	if rm, err = lp(e.main); err != nil {
		return nil, nil, nil, err
	}
	if rv, err = lp(e.val); err != nil {
		return nil, nil, nil, err
	}
	half := math.Log(0.5)
	anyOK, allOK := 0.0, 1.0
	m["reward_max"] = math.Inf(-1)
	for i := range n {
		m["reward_mean"] += w[i] * rm[i]
		m["reward_val"] += w[i] * rv[i]
		m["reward_max"] = math.Max(m["reward_max"], rm[i])
		if rm[i] > half {
			m["acc"] += w[i]
			if w[i] > 0 {
				anyOK = 1
			}
		} else if w[i] > 0 {
			allOK = 0
		}
		if rv[i] > half {
			m["acc_val"] += w[i]
		}
	}
	m["success_any"], m["success_all"] = anyOK, allOK
	f, dim, err := e.val.Features(samples)
	if err != nil {
		return nil, nil, nil, err
	}
	if m["diversity"], err = EffectiveRank(f, n, dim); err != nil {
		return nil, nil, nil, err
	}
	return m, rm, rv, nil
}

// EffectiveRank returns the effective rank (Roy & Vetterli 2007) of the
// n×d matrix a (row-major): exp of the Shannon entropy of its normalised
// singular values. It is 1 for a rank-one matrix (e.g. n identical rows)
// and min(n, d) when all singular values are equal. An all-zero matrix has
// effective rank 0.
func EffectiveRank(a []float64, n, d int) (float64, error) {
	if n <= 0 || d <= 0 || len(a) != n*d {
		return 0, fmt.Errorf("experiments: effective rank of a %d×%d matrix given %d values", n, d, len(a))
	}
	for i, v := range a {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("experiments: effective rank: non-finite entry %v at row %d, column %d", v, i/d, i%d)
		}
	}
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(n, d, append([]float64(nil), a...)), mat.SVDNone) {
		return 0, fmt.Errorf("experiments: effective rank: SVD did not converge")
	}
	s := svd.Values(nil)
	tot := 0.0
	for _, v := range s {
		tot += v
	}
	if tot == 0 {
		return 0, nil
	}
	h := 0.0
	for _, v := range s {
		if p := v / tot; p > 0 {
			h -= p * math.Log(p)
		}
	}
	return math.Exp(h), nil
}

// writeSampleRewards writes each output's main and held-out reward.
func writeSampleRewards(path string, rm, rv []float64) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		fmt.Fprintln(w, "reward,reward_val")
		for i := range rm {
			fmt.Fprintf(w, "%.6g,%.6g\n", rm[i], rv[i])
		}
		return nil
	})
}

// readSampleRewards reads the main-classifier rewards of writeSampleRewards.
func readSampleRewards(path string) ([]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 1 {
		return nil, fmt.Errorf("experiments: %s: unreadable sample rewards", path)
	}
	out := make([]float64, 0, len(rows)-1)
	for _, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[0], 64)
		if err != nil {
			return nil, fmt.Errorf("experiments: %s: bad reward %q", path, r[0])
		}
		out = append(out, v)
	}
	return out, nil
}

// readTokenRows reads a samples.csv of writeSamples back into flat tokens.
func readTokenRows(path string) (tokens []int, L int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 1 {
		return nil, 0, fmt.Errorf("experiments: %s: unreadable samples", path)
	}
	L = len(rows[0])
	for _, r := range rows[1:] {
		for _, c := range r {
			v, err := strconv.Atoi(c)
			if err != nil {
				return nil, 0, fmt.Errorf("experiments: %s: bad token %q", path, c)
			}
			tokens = append(tokens, v)
		}
	}
	return tokens, L, nil
}

// imageReport adds the image metrics of an SMC run's outputs to rep and
// draws them, captioned with their rewards, to smc_samples.png.
func imageReport(cfg Config, task *Task, res *smc.Result, rep *SMCReport, log io.Writer) error {
	ev, err := newImageEval(cfg)
	if err != nil {
		return err
	}
	var logw []float64
	if cfg.SMC.Final == string(smc.FinalWeighted) {
		logw = res.SampleLogW
	}
	m, rm, rv, err := ev.metrics(res.Samples, task.L, logw)
	if err != nil {
		return err
	}
	rep.Image = m
	dir := cfg.OutDir()
	if err := writeSampleRewards(filepath.Join(dir, "smc_sample_rewards.csv"), rm, rv); err != nil {
		return err
	}
	imgs := tokensAsImages(res.Samples, task.L)
	if len(imgs) > 64 {
		imgs = imgs[:64]
	}
	captions := make([]string, len(imgs))
	for i := range imgs {
		captions[i] = fmt.Sprintf("r = %.2f", rm[i])
	}
	title := fmt.Sprintf("%s: %s, N=%d, target %d: reward %.2f, acc %.2f, val acc %.2f", cfg.Name, cfg.SMC.Method+"/"+cfg.SMC.Proposal,
		cfg.SMC.Particles, cfg.Reward.Target, m["reward_mean"], m["acc"], m["acc_val"])
	if err := plots.ImageGrid(filepath.Join(dir, "smc_samples.png"), imgs, task.Side, task.Side, 8, captions, title); err != nil {
		return err
	}
	fmt.Fprintf(log, "image metrics: reward %.3f (val %.3f), acc %.3f (val %.3f), diversity (effective rank) %.2f, success any/all %v/%v; wrote smc_samples.png\n",
		m["reward_mean"], m["reward_val"], m["acc"], m["acc_val"], m["diversity"], m["success_any"], m["success_all"])
	return nil
}
