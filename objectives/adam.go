package objectives

import (
	"math"

	G "gorgonia.org/gorgonia"
)

// The trainers of this package use two Adams, which compute the same update
// with different rounding, and each keeps its own so that outputs stay
// unchanged:
//   - newSolver, Gorgonia's G.AdamSolver, for the trainers whose
//     parameters live in a Gorgonia graph (Trainer, TrainClassifier). It
//     works in the parameters' dtype (float32 for float32 models),
//     multiplies by the reciprocal bias corrections and clips gradients
//     per element.
//   - adam, in Go on float64 buffers, for LogVarLoss.Apply, which clips by
//     global norm before the step and keeps float64 moments for float32
//     models.

// newSolver returns Gorgonia's Adam with learning rate lr (β = 0.9/0.999,
// ε = 1e-8, its defaults) and, if clip > 0, each gradient entry clamped to
// [−clip, clip].
func newSolver(lr, clip float64) *G.AdamSolver {
	opts := []G.SolverOpt{G.WithLearnRate(lr)}
	if clip > 0 {
		opts = append(opts, G.WithClip(clip))
	}
	return G.NewAdamSolver(opts...)
}

// Adam constants of adam (torch's defaults; no weight decay).
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// adam is Adam (Kingma & Ba 2015, Algorithm 1) on float64 buffers: torch's
// Adam, not AdamW, with β₁ = 0.9, β₂ = 0.999, ε = 1e-8, bias correction and
// no weight decay. It owns the first and second moments of a fixed list of
// parameter buffers; each optimiser step is one call of step followed by
// one update per buffer.
type adam struct {
	lr     float64
	t      int         // steps taken
	c1, c2 float64     // bias corrections 1 − β₁ᵗ, 1 − β₂ᵗ of step t
	m, v   [][]float64 // moments, one pair per buffer
}

// newAdam returns an Adam with learning rate lr for buffers of the given
// sizes, with zero moments.
func newAdam(lr float64, sizes ...int) *adam {
	a := &adam{lr: lr, m: make([][]float64, len(sizes)), v: make([][]float64, len(sizes))}
	for k, n := range sizes {
		a.m[k], a.v[k] = make([]float64, n), make([]float64, n)
	}
	return a
}

// step starts optimiser step t+1: it advances t and sets the bias
// corrections used by the following updates.
func (a *adam) step() {
	a.t++
	a.c1 = 1 - math.Pow(adamBeta1, float64(a.t))
	a.c2 = 1 - math.Pow(adamBeta2, float64(a.t))
}

// update applies the current step to buffer k, the parameters w, with the
// gradient scale·g:
//
//	m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  w ← w − lr·(m/c₁)/(√(v/c₂) + ε).
func (a *adam) update(k int, w, g []float64, scale float64) {
	m, v := a.m[k], a.v[k]
	for j := range w {
		gj := g[j] * scale
		m[j] = adamBeta1*m[j] + (1-adamBeta1)*gj
		v[j] = adamBeta2*v[j] + (1-adamBeta2)*gj*gj
		w[j] -= a.lr * (m[j] / a.c1) / (math.Sqrt(v[j]/a.c2) + adamEps)
	}
}
