package smc

import "sync/atomic"

// Cost is what a run used, counted by the engine and its parts as the work
// is done (not estimated from N and T); the wall time is Result.WallSeconds. Rows are sequences: the padding of
// fixed-size network batches is not counted, and a state served from a
// time-independent denoiser's logit cache (or primed by the gradient
// look-ahead's forward pass) costs no denoiser row, unless an earlier run
// of the same sampler cached it: a run counts what a fresh sampler would
// have computed, so counts depend neither on the number of workers nor on
// the runs a sampler did before.
type Cost struct {
	// DenoiserRows are the base's denoiser rows evaluated forward (both
	// models of a Product; the locally optimal proposal's candidates
	// included). A custom Base that does not count reports 0.
	DenoiserRows int64 `json:"denoiser_rows"`
	// GradRows are the rows through the differentiable look-ahead (a
	// forward and a backward pass of the denoiser and reward each).
	GradRows int64 `json:"grad_rows"`
	// RewardEvals are reward evaluations: final particles, Monte Carlo and
	// gradient look-ahead samples, exact enumerations, LOP candidates.
	RewardEvals int64 `json:"reward_evals"`
	// ProposalRows are the learned proposal network's rows (q_φ).
	ProposalRows int64 `json:"proposal_rows"`
}

// NetworkRows is DenoiserRows + GradRows + ProposalRows: every row that
// went through a network, a differentiated row counted once (its backward
// pass costs about twice its forward one more).
func (c Cost) NetworkRows() int64 { return c.DenoiserRows + c.GradRows + c.ProposalRows }

// Sub returns c − o, field by field.
func (c Cost) Sub(o Cost) Cost {
	return Cost{DenoiserRows: c.DenoiserRows - o.DenoiserRows, GradRows: c.GradRows - o.GradRows,
		RewardEvals: c.RewardEvals - o.RewardEvals, ProposalRows: c.ProposalRows - o.ProposalRows}
}

// add returns c + o, field by field.
func (c Cost) add(o Cost) Cost {
	return Cost{DenoiserRows: c.DenoiserRows + o.DenoiserRows, GradRows: c.GradRows + o.GradRows,
		RewardEvals: c.RewardEvals + o.RewardEvals, ProposalRows: c.ProposalRows + o.ProposalRows}
}

// div returns c with every count divided by r (a per-run share).
func (c Cost) div(r int) Cost {
	if r <= 1 {
		return c
	}
	R := int64(r)
	return Cost{DenoiserRows: c.DenoiserRows / R, GradRows: c.GradRows / R, RewardEvals: c.RewardEvals / R,
		ProposalRows: c.ProposalRows / R}
}

// CostColumns are the result columns of a Cost, in order, as the
// experiment runner records them (Cost.Columns gives the values).
var CostColumns = []string{"denoiser_rows", "grad_rows", "reward_evals", "proposal_rows", "network_rows"}

// Columns returns the counts of CostColumns by name.
func (c Cost) Columns() map[string]float64 {
	return map[string]float64{"denoiser_rows": float64(c.DenoiserRows), "grad_rows": float64(c.GradRows),
		"reward_evals": float64(c.RewardEvals), "proposal_rows": float64(c.ProposalRows), "network_rows": float64(c.NetworkRows())}
}

// meter counts the work done through an Env (rewards and the gradient
// look-ahead). Atomic, so parts may count from worker goroutines.
type meter struct {
	rewards, grad atomic.Int64
}

// countRewards records n reward evaluations.
func (e *Env) countRewards(n int) { e.meter.rewards.Add(int64(n)) }

// countGrad records n rows through the differentiable look-ahead with
// φ reward evaluations each.
func (e *Env) countGrad(n, phi int) {
	e.meter.grad.Add(int64(n))
	e.meter.rewards.Add(int64(n * phi))
}

// rowCounter is implemented by the parts that own a denoiser pool.
type rowCounter interface{ forwardRows() int64 }

func (p *denoiserPool) forwardRows() int64 { return p.rows.Load() }
func (r *Reverse) forwardRows() int64 {
	if r.cache != nil {
		return r.cache.charged
	}
	return r.pool.forwardRows()
}
func (p *Product) forwardRows() int64 { return p.p1.forwardRows() + p.p2.forwardRows() }
func (q *Learned) forwardRows() int64 { return q.pool.forwardRows() }

// usage returns the sampler's cumulative counts so far (over every run it
// has done).
func (s *Sampler) usage() Cost {
	var c Cost
	if b, ok := s.env.Target.Base.(rowCounter); ok {
		c.DenoiserRows = b.forwardRows()
	}
	if q, ok := s.cfg.Proposal.(rowCounter); ok {
		c.ProposalRows = q.forwardRows()
	}
	c.GradRows = s.env.meter.grad.Load()
	c.RewardEvals = s.env.meter.rewards.Load()
	return c
}

// costMark is a run's bookkeeping of its work counts.
type costMark struct {
	start Cost // the sampler's usage when the run started (Run, Step)
	// RunMany keeps each run's counts explicitly: many is set, spent is
	// the run's work so far, and direct what was charged to the run alone
	// during the current shared call.
	many          bool
	spent, direct Cost
}

// costSince returns the counts of st's run so far.
func (s *Sampler) costSince(st *State) Cost {
	if st.cost.many {
		return st.cost.spent
	}
	return s.usage().Sub(st.cost.start)
}

// chargeRun adds the work since mark to st's run alone (RunMany's per-run
// calls: proposals, stepWeights). within marks a call made inside a shared
// one (a per-run twist in evaluateMany), which shareCost then excludes.
func (s *Sampler) chargeRun(st *State, mark Cost, within bool) {
	d := s.usage().Sub(mark)
	st.cost.spent = st.cost.spent.add(d)
	if within {
		st.cost.direct = st.cost.direct.add(d)
	}
}

// shareCost splits the work since mark of a call shared by the runs sts
// (one network batch for all), less what was charged to single runs
// within it, evenly among them: exact when the runs contribute the same
// rows, as without a logit cache.
func (s *Sampler) shareCost(sts []*State, mark Cost) {
	d := s.usage().Sub(mark)
	for _, st := range sts {
		d = d.Sub(st.cost.direct)
		st.cost.direct = Cost{}
	}
	d = d.div(len(sts))
	for _, st := range sts {
		st.cost.spent = st.cost.spent.add(d)
	}
}

// runCount is a logit cache's count of the rows charged to the current run:
// the distinct states it computed, plus the states it served from entries
// made by earlier runs of the same sampler (which a fresh sampler would
// have computed), so that a run's count does not depend on which runs the
// sampler did before (the experiment runner reuses samplers across
// repeats, in an order that depends on its workers).
type runCount struct {
	seen    map[string]struct{} // states evaluated or primed in this run
	charged int64
}

// charge counts one Eval's rows: keys are the states of its rows, missed
// the distinct states it had to compute.
func (c *runCount) charge(keys []string, missed map[string]int) {
	if c.seen == nil {
		c.seen = map[string]struct{}{}
	}
	c.charged += int64(len(missed))
	for _, k := range keys {
		if _, ok := c.seen[k]; ok {
			continue
		}
		c.seen[k] = struct{}{}
		if _, ok := missed[k]; !ok {
			c.charged++ // cached by an earlier run
		}
	}
}

// sawInRun marks a state primed in this run (its logits came with the
// gradient look-ahead's forward pass, counted as a gradient row).
func (c *runCount) sawInRun(key string) {
	if c.seen == nil {
		c.seen = map[string]struct{}{}
	}
	c.seen[key] = struct{}{}
}

// beginRun starts a run's bookkeeping: the base's cache forgets which
// states the previous run saw, and the run's counts start at the
// sampler's current usage.
func (s *Sampler) beginRun() costMark {
	if r, ok := s.env.Target.Base.(*Reverse); ok && r.cache != nil {
		r.cache.seen = nil
	}
	return costMark{start: s.usage()}
}

// DisableCache turns off the reuse of x0-logits across states for
// time-independent denoisers, so that every state is evaluated each time
// it occurs (the price of a model whose states never repeat). Results are
// unchanged; only the work, and its count, grow. Logits primed at the
// current step (GradLookAhead.Share) are still reused.
func (r *Reverse) DisableCache() { r.cache = nil }
