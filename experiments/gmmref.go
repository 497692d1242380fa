package experiments

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/smc"
)

// gmmRef holds the exact references of a GMM task for one trained model:
// the model's T-step marginal p_θ (enumerated once), and per α the model's
// tilted target π ∝ p_θ·exp(r/α), its log Z, and the paper's target
// (the data pmf tilted by exp(r/α)). It is safe for concurrent use.
type gmmRef struct {
	task   *Task
	pm     []float64
	reward []float64
	mu     sync.Mutex
	byA    map[float64]*gmmTarget
}

type gmmTarget struct {
	pi, data []float64
	logZ     float64
}

// newGMMRef enumerates the model's marginal (diffusion.ExactMarginal).
func newGMMRef(task *Task, k diffusion.Kernel, d diffusion.Denoiser, grid diffusion.Grid, batch int) (*gmmRef, error) {
	if task.GMM == nil {
		return nil, fmt.Errorf("experiments: task %s has no exact reference", task.Name)
	}
	pm, err := diffusion.ExactMarginal(k, d, grid, batch)
	if err != nil {
		return nil, err
	}
	return &gmmRef{task: task, pm: pm, reward: task.GMM.RewardTable(), byA: map[float64]*gmmTarget{}}, nil
}

// target returns the exact targets for α.
func (g *gmmRef) target(alpha float64) (*gmmTarget, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t, ok := g.byA[alpha]; ok {
		return t, nil
	}
	lw := make([]float64, len(g.pm))
	for j := range lw {
		lw[j] = math.Log(g.pm[j]) + g.reward[j]/alpha
	}
	lz, err := smc.Normalize(lw, lw)
	if err != nil {
		return nil, err
	}
	t := &gmmTarget{pi: make([]float64, len(lw)), logZ: lz}
	for j := range lw {
		t.pi[j] = math.Exp(lw[j])
	}
	if t.data, err = g.task.GMM.TiltedPMF(alpha); err != nil {
		return nil, err
	}
	g.byA[alpha] = t
	return t, nil
}

// metrics computes the task metrics of one run's outputs (samples with
// optional normalised log-weights; nil = uniform) and weighted final
// particles (x, logw; may be nil for runs without weights), given the run's
// log Ẑ (NaN if none). EMDs use n = min(emdN, outputs) randomly chosen
// outputs against n fresh draws from each target.
func (g *gmmRef) metrics(rng *rand.Rand, alpha float64, samples []int, sampleLogW []float64, x []int, logw []float64, logZ float64, emdN int) (map[string]float64, error) {
	t, err := g.target(alpha)
	if err != nil {
		return nil, err
	}
	L, V := g.task.L, g.task.V
	m := map[string]float64{"exact_log_z": t.logZ, "log_z_error": logZ - t.logZ, "tv_weighted": math.NaN(),
		"emd": math.NaN(), "emd_model": math.NaN()}
	emp, err := smc.WeightedPMF(samples, sampleLogW, L, V)
	if err != nil {
		return nil, err
	}
	m["tv_exact"], _ = diffusion.TotalVariation(emp, t.pi)
	if x != nil {
		wp, err := smc.WeightedPMF(x, logw, L, V)
		if err != nil {
			return nil, err
		}
		m["tv_weighted"], _ = diffusion.TotalVariation(wp, t.pi)
	}
	pts, err := PointsFromTokens(samples)
	if err != nil {
		return nil, err
	}
	m["diversity"] = float64(Diversity(pts))
	m["outputs"] = float64(len(pts))
	n := min(emdN, len(pts))
	if n >= 2 {
		sub := make([][2]int, n)
		if sampleLogW == nil {
			for i, j := range rng.Perm(len(pts))[:n] {
				sub[i] = pts[j]
			}
		} else { // weighted outputs: n draws with probability ∝ w
			w := make([]float64, len(sampleLogW))
			for i, l := range sampleLogW {
				w[i] = math.Exp(l)
			}
			idx, err := SamplePMF(rng, w, 1, len(w), n)
			if err != nil {
				return nil, err
			}
			for i, p := range idx {
				sub[i] = pts[p[1]]
			}
		}
		for _, ref := range []struct {
			key string
			pmf []float64
		}{{"emd", t.data}, {"emd_model", t.pi}} {
			tp, err := SamplePMF(rng, ref.pmf, V, V, n)
			if err != nil {
				return nil, err
			}
			if m[ref.key], err = EMD(sub, tp); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
