package gmm

import (
	"math"
	"math/rand/v2"
	"sync"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/smc"
)

// reference holds the exact references of a GMM task for one trained
// model: the model's T-step marginal p_θ (enumerated once), and per α the
// model's tilted target π ∝ p_θ·exp(r/α), its log Z, and the paper's
// target (the data pmf tilted by exp(r/α)). It is the task's Evaluator and
// is safe for concurrent use.
type reference struct {
	t      *Task
	pm     []float64
	reward []float64
	mu     sync.Mutex
	byA    map[float64]*exactTarget
}

type exactTarget struct {
	pi, data []float64
	logZ     float64
}

// newReference enumerates the model's marginal (diffusion.ExactMarginal).
func newReference(t *Task, m task.Model) (*reference, error) {
	pm, err := diffusion.ExactMarginal(m.Kernel, m.Denoiser, m.Grid, m.Batch)
	if err != nil {
		return nil, err
	}
	return &reference{t: t, pm: pm, reward: t.g.RewardTable(), byA: map[float64]*exactTarget{}}, nil
}

// target returns the exact targets for α.
func (g *reference) target(alpha float64) (*exactTarget, error) {
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
	t := &exactTarget{pi: make([]float64, len(lw)), logZ: lz}
	for j := range lw {
		t.pi[j] = math.Exp(lw[j])
	}
	if t.data, err = g.t.g.TiltedPMF(alpha); err != nil {
		return nil, err
	}
	g.byA[alpha] = t
	return t, nil
}

// Evaluate computes the task metrics of one run's outputs (samples with
// optional normalised log-weights) and weighted final particles (may be
// nil for runs without weights), given the run's log Ẑ (NaN if none).
// EMDs use n = min(emd_samples, outputs) randomly chosen outputs against n
// fresh draws from each target.
func (g *reference) Evaluate(rng *rand.Rand, out task.Outputs) (map[string]float64, error) {
	if err := out.Check(); err != nil {
		return nil, err
	}
	t, err := g.target(out.Alpha)
	if err != nil {
		return nil, err
	}
	L, V := 2, g.t.g.Bins
	samples, sampleLogW := out.Samples, out.LogW
	m := map[string]float64{"exact_log_z": t.logZ, "log_z_error": out.LogZ - t.logZ, "tv_weighted": math.NaN(),
		"emd": math.NaN(), "emd_model": math.NaN(),
		"exact_target_reward": dot(t.pi, g.reward), "exact_model_reward": dot(g.pm, g.reward), "data_tilted_reward": dot(t.data, g.reward)}
	emp, err := smc.WeightedPMF(samples, sampleLogW, L, V)
	if err != nil {
		return nil, err
	}
	m["tv_exact"], _ = diffusion.TotalVariation(emp, t.pi)
	if out.X != nil {
		wp, err := smc.WeightedPMF(out.X, out.XLogW, L, V)
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
	n := min(g.t.opts.EMDSamples, len(pts))
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

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		if a[i] != 0 {
			s += a[i] * b[i]
		}
	}
	return s
}
