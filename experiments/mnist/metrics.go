package mnist

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"strconv"
	"sync"

	"gonum.org/v1/gonum/mat"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

// imageEval computes the image-task metrics of issue 6 / paper §6(a2) for a
// set of output samples: reward and accuracy under the main classifier,
// the same under the held-out classifier, and diversity as the effective
// rank of the held-out classifier's embeddings.
type imageEval struct {
	target    int
	main, val *objectives.Classifier
	// ref holds the held-out classifier's features of the held-out images
	// of the target class (refN rows of dim), for the FID analogue; nil
	// when the evaluator was built without data.
	ref        []float64
	refN, refD int
	// allRef is the same for the held-out images of every class: the
	// reference of outputs conditioned on different classes (a pooled
	// classifier-free guidance run); built on first use by allRefFn.
	allRef    []float64
	allRefN   int
	allRefFn  func() ([]float64, int, error)
	allRefErr error
	allRefOne sync.Once
}

// MetricNames lists the metrics imageEval.metrics returns, in order:
// reward_val (the held-out classifier's log p(target|x)), acc and acc_val
// (fraction with p(target|x) > 0.5 under the main and the held-out
// classifier), diversity (effective rank of the held-out embeddings),
// success_any and success_all (1 if at least one / every output is correct
// under the main classifier; their means over runs are success@1 and
// success@all), fid (the Fréchet distance between the held-out
// classifier's features of the outputs and of the held-out images of the
// target class; NaN below two outputs) and is (the inception score with
// the held-out classifier).
var MetricNames = []string{"reward_val", "acc", "acc_val", "diversity", "success_any", "success_all", "fid", "is"}

// metrics evaluates n = len(samples)/L images and returns the metrics and
// each image's reward under the main and the held-out classifier. With logw
// (normalised log weights, one per image) the means are weighted;
// accuracy-based success counts only images of positive weight.
//
// classes, when not nil, gives each image its own class (a class-
// conditional run's label): rewards and accuracies are then each image's
// log p(class|x), and the FID analogue compares with the held-out images
// of all classes.
func (e *imageEval) metrics(samples []int, L int, logw []float64, classes []int) (m map[string]float64, rm, rv []float64, err error) {
	n := len(samples) / L
	if n == 0 || len(samples) != n*L {
		return nil, nil, nil, fmt.Errorf("mnist: %d sample tokens is not a positive multiple of %d pixels", len(samples), L)
	}
	if logw != nil && len(logw) != n {
		return nil, nil, nil, fmt.Errorf("mnist: %d weights for %d samples", len(logw), n)
	}
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(n)
		if logw != nil {
			w[i] = math.Exp(logw[i])
		}
	}
	m = map[string]float64{}
	for _, k := range MetricNames { // every metric present, even when 0
		m[k] = 0
	}
	if classes != nil && len(classes) != n {
		return nil, nil, nil, fmt.Errorf("mnist: %d classes for %d samples", len(classes), n)
	}
	lp := func(c *objectives.Classifier) ([]float64, error) {
		out := make([]float64, n)
		if classes == nil {
			r, err := c.Reward(e.target)
			if err != nil {
				return nil, err
			}
			return out, r.Reward(samples, out)
		}
		C := c.Cfg.Classes
		z := make([]float64, n*C)
		if err := c.Logits(samples, z); err != nil {
			return nil, err
		}
		for i, y := range classes {
			if y < 0 || y >= C {
				return nil, fmt.Errorf("mnist: output %d has class %d, outside the classifier's 0..%d", i, y, C-1)
			}
			row := z[i*C : (i+1)*C]
			out[i] = row[y] - smc.LogSumExp(row)
		}
		return out, nil
	}
	if rm, err = lp(e.main); err != nil {
		return nil, nil, nil, err
	}
	if rv, err = lp(e.val); err != nil {
		return nil, nil, nil, err
	}
	half := math.Log(0.5)
	anyOK, allOK := 0.0, 1.0
	for i := range n {
		m["reward_val"] += w[i] * rv[i]
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
	m["fid"], m["is"] = math.NaN(), math.NaN()
	ref, refN := e.ref, e.refN
	if classes != nil {
		if ref, refN, err = e.allClassRef(); err != nil {
			return nil, nil, nil, err
		}
	}
	if ref != nil && n >= 2 && (classes != nil || dim == e.refD) {
		if m["fid"], err = FrechetDistance(f, n, ref, refN, dim); err != nil {
			return nil, nil, nil, err
		}
	}
	C := e.val.Cfg.Classes
	z := make([]float64, n*C)
	if err := e.val.Logits(samples, z); err != nil {
		return nil, nil, nil, err
	}
	for i := range n {
		row := z[i*C : (i+1)*C]
		lse := smc.LogSumExp(row)
		for c := range row {
			row[c] = math.Exp(row[c] - lse)
		}
	}
	if m["is"], err = InceptionScore(z, n, C); err != nil {
		return nil, nil, nil, err
	}
	return m, rm, rv, nil
}

// allClassRef returns the held-out features of every class's images
// (nil when the evaluator has no data).
func (e *imageEval) allClassRef() ([]float64, int, error) {
	e.allRefOne.Do(func() {
		if e.allRefFn != nil {
			e.allRef, e.allRefN, e.allRefErr = e.allRefFn()
		}
	})
	return e.allRef, e.allRefN, e.allRefErr
}

// EffectiveRank returns the effective rank (Roy & Vetterli 2007) of the
// n×d matrix a (row-major): exp of the Shannon entropy of its normalised
// singular values. It is 1 for a rank-one matrix (e.g. n identical rows)
// and min(n, d) when all singular values are equal. An all-zero matrix has
// effective rank 0.
func EffectiveRank(a []float64, n, d int) (float64, error) {
	if n <= 0 || d <= 0 || len(a) != n*d {
		return 0, fmt.Errorf("mnist: effective rank of a %d×%d matrix given %d values", n, d, len(a))
	}
	for i, v := range a {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return 0, fmt.Errorf("mnist: effective rank: non-finite entry %v at row %d, column %d", v, i/d, i%d)
		}
	}
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(n, d, append([]float64(nil), a...)), mat.SVDNone) {
		return 0, fmt.Errorf("mnist: effective rank: SVD did not converge")
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
		return nil, fmt.Errorf("mnist: %s: unreadable sample rewards", path)
	}
	out := make([]float64, 0, len(rows)-1)
	for _, r := range rows[1:] {
		v, err := strconv.ParseFloat(r[0], 64)
		if err != nil {
			return nil, fmt.Errorf("mnist: %s: bad reward %q", path, r[0])
		}
		out = append(out, v)
	}
	return out, nil
}
