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
		return r.cache.total()
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
	// RunMany keeps each run's counts explicitly: many is set, index is the
	// run's place, spent its work so far (but for the rows of a caching
	// base, which the cache counts per run), and direct what was charged
	// to the run alone during the current shared call.
	many          bool
	index         int
	spent, direct Cost
}

// costSince returns the counts of st's run so far.
func (s *Sampler) costSince(st *State) Cost {
	if !st.cost.many {
		return s.usage().Sub(st.cost.start)
	}
	c := st.cost.spent
	if cb := s.cachedBase(); cb != nil && st.cost.index < len(cb.charged) {
		c.DenoiserRows = cb.charged[st.cost.index]
	}
	return c
}

// chargeRun adds the work since mark to st's run alone (RunMany's per-run
// calls: proposals, stepWeights). within marks a call made inside a shared
// one (a per-run twist in evaluateMany), which shareCost then excludes.
func (s *Sampler) chargeRun(st *State, mark Cost, within bool) {
	d := s.usage().Sub(mark)
	if s.cachedBase() != nil {
		d.DenoiserRows = 0 // counted per run by the cache
	}
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
	if s.cachedBase() != nil {
		d.DenoiserRows = 0 // counted per run by the cache
	}
	for _, st := range sts {
		d = d.Sub(st.cost.direct)
		st.cost.direct = Cost{}
	}
	d = d.div(len(sts))
	for _, st := range sts {
		st.cost.spent = st.cost.spent.add(d)
	}
}

// runCount is a logit cache's count of the rows charged to each run it
// serves: a run is charged once for every distinct state it evaluates (or
// has primed), whether the cache computed it now or kept it from an earlier
// run, plus any state it has to recompute because the cache is full. So a
// run's count is what a fresh sampler would have computed, whatever runs
// the sampler did before (the experiment runner reuses samplers across
// repeats) and whether it ran alone or batched with others (RunMany).
type runCount struct {
	seen    []map[string]struct{} // per run: states evaluated or primed
	charged []int64               // per run: rows charged
	cur     int                   // the run calls are for, or −1: row i is run i/rowsPer's
	rowsPer int
}

// begin starts the bookkeeping of R runs of n particles each.
func (c *runCount) begin(R, n int) {
	c.seen, c.charged = make([]map[string]struct{}, R), make([]int64, R)
	for r := range c.seen {
		c.seen[r] = map[string]struct{}{}
	}
	c.cur, c.rowsPer = 0, n
	if R > 1 {
		c.cur = -1
	}
}

// runOf returns the run that row i of a call belongs to.
func (c *runCount) runOf(i int) int {
	if c.cur >= 0 || c.rowsPer < 1 {
		return max(c.cur, 0)
	}
	return min(i/c.rowsPer, len(c.seen)-1)
}

// charge counts one Eval's rows: keys are the states of its rows, missed
// the distinct states the cache had to compute.
func (c *runCount) charge(keys []string, missed map[string]int) {
	if len(c.seen) == 0 {
		c.begin(1, 0)
	}
	type runState struct {
		r int
		k string
	}
	done := map[runState]bool{} // charged in this call
	for i, k := range keys {
		r := c.runOf(i)
		id := runState{r, k}
		if done[id] {
			continue
		}
		_, seen := c.seen[r][k]
		_, computed := missed[k]
		if !seen || computed { // new to the run, or seen but not kept (the cache is full)
			c.seen[r][k] = struct{}{}
			c.charged[r]++
			done[id] = true
		}
	}
}

// sawInRun marks the state of row i primed (its logits came with the
// gradient look-ahead's forward pass, counted as a gradient row).
func (c *runCount) sawInRun(i int, key string) {
	if len(c.seen) == 0 {
		c.begin(1, 0)
	}
	c.seen[c.runOf(i)][key] = struct{}{}
}

// total is the rows charged to all runs.
func (c *runCount) total() int64 {
	var s int64
	for _, n := range c.charged {
		s += n
	}
	return s
}

// cachedBase returns the sampler's base logit cache, or nil.
func (s *Sampler) cachedBase() *logitCache {
	if r, ok := s.env.Target.Base.(*Reverse); ok {
		return r.cache
	}
	return nil
}

// beginRun starts a single run's bookkeeping (Run, Init): the base's cache
// starts a fresh count, and the run's counts start at the sampler's usage.
func (s *Sampler) beginRun() costMark {
	if c := s.cachedBase(); c != nil {
		c.begin(1, s.cfg.N)
	}
	return costMark{start: s.usage()}
}

// beginMany starts the bookkeeping of RunMany's runs sts (after newState).
func (s *Sampler) beginMany(sts []*State) {
	if c := s.cachedBase(); c != nil {
		c.begin(len(sts), s.cfg.N)
	}
	for r, st := range sts {
		st.cost = costMark{many: true, index: r}
	}
}

// callsFor tells the base's cache that the next calls are run r's alone
// (r ≥ 0) or shared by all runs, row i being run i/N's (r = −1).
func (s *Sampler) callsFor(r int) {
	if c := s.cachedBase(); c != nil && len(c.seen) > 1 {
		c.cur = r
	}
}

// DisableCache turns off the reuse of x0-logits across states for
// time-independent denoisers, so that every state is evaluated each time
// it occurs (the price of a model whose states never repeat). Results are
// unchanged; only the work, and its count, grow. Logits primed at the
// current step (GradLookAhead.Share) are still reused.
func (r *Reverse) DisableCache() { r.cache = nil }
