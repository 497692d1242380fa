package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/ddsmc/ddsmc/internal/logsumexp"
)

// Remask is the ReMDM remasking strategy (paper.md §1.1, reference-code.md
// §2.1), which turns σ_max = min(1, (1 − α_s)/α_t) into the remasking
// probability σ of an unmasked token.
type Remask int

const (
	// RemaskRescale sets σ = η·σ_max ("rescale"); it needs η ∈ [0,1].
	RemaskRescale Remask = iota
	// RemaskMaxCap sets σ = min(η, σ_max) ("max_cap"); it needs η ≥ 0.
	RemaskMaxCap
)

// String returns "rescale" or "maxcap" (ParseRemask's names).
func (r Remask) String() string {
	switch r {
	case RemaskRescale:
		return "rescale"
	case RemaskMaxCap:
		return "maxcap"
	default:
		return fmt.Sprintf("Remask(%d)", int(r))
	}
}

// ParseRemask parses "rescale" or "maxcap" (also the reference code's
// spelling "max_cap"), case-insensitively.
func ParseRemask(name string) (Remask, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "rescale":
		return RemaskRescale, nil
	case "maxcap", "max_cap":
		return RemaskMaxCap, nil
	default:
		return 0, fmt.Errorf("diffusion: unknown remask strategy %q (want rescale or maxcap)", name)
	}
}

// Kernel is the SUBS reverse kernel p_θ(x_s | x_t) of masked diffusion
// (paper.md §1.1 "Reverse model") with optional ReMDM remasking of strength
// Eta; Eta = 0 is plain MDLM ancestral sampling. The kernel factorises over
// positions. Per position, with α_t = α(t), α_s = α(s) and x̂ = softmax of
// the position's x0-logits:
//
//	current token unmasked (xt < V): stay with prob 1 − σ, become MASK with prob σ;
//	current token MASK:  v < V with prob x̂[v]·(α_s − (1−σ)α_t)/(1 − α_t),
//	                     MASK  with prob (1 − α_s − σα_t)/(1 − α_t),
//
// where σ = 0 when Eta = 0, and otherwise σ = Eta·σ_max (rescale) or
// min(Eta, σ_max) (maxcap) with σ_max = min(1, (1 − α_s)/α_t), taken as 1
// when α_t = 0 and as 0 when α_s = 1 (the latter takes precedence, so a step
// to a time with α(s) = 1 always ends with no mask left).
type Kernel struct {
	// Schedule gives α(t).
	Schedule Schedule
	// Eta is the ReMDM remasking strength η (0 = MDLM).
	Eta float64
	// Remask is the ReMDM strategy; irrelevant when Eta = 0.
	Remask Remask
}

// Validate checks the kernel's fields: a non-nil schedule, a known Remask,
// and Eta ∈ [0,1] for rescale or Eta ≥ 0 (finite) for maxcap.
func (k Kernel) Validate() error {
	if k.Schedule == nil {
		return fmt.Errorf("diffusion: kernel has no schedule")
	}
	switch k.Remask {
	case RemaskRescale:
		if !(k.Eta >= 0 && k.Eta <= 1) {
			return fmt.Errorf("diffusion: rescale remasking needs eta in [0,1], got %v", k.Eta)
		}
	case RemaskMaxCap:
		if !(k.Eta >= 0) || math.IsInf(k.Eta, 1) {
			return fmt.Errorf("diffusion: maxcap remasking needs finite eta >= 0, got %v", k.Eta)
		}
	default:
		return fmt.Errorf("diffusion: unknown remask strategy %v", k.Remask)
	}
	return nil
}

// transition holds the position-independent coefficients of one reverse
// step t -> s.
type transition struct {
	sigma     float64 // remasking probability of an unmasked token
	logStay   float64 // log(1 − σ)
	logRemask float64 // log σ
	pMask     float64 // masked token: probability of staying masked
	logMask   float64 // log pMask
	logUnmask float64 // log(1 − pMask): total mass spread by x̂ over the tokens
}

// transition computes the step coefficients, validating k, t and s.
func (k Kernel) transition(t, s float64) (transition, error) {
	var tr transition
	if err := k.Validate(); err != nil {
		return tr, err
	}
	if !(s >= 0 && s < t && t <= 1) {
		return tr, fmt.Errorf("diffusion: reverse step needs 0 <= s < t <= 1, got s=%v t=%v", s, t)
	}
	at, as := k.Schedule.Alpha(t), k.Schedule.Alpha(s)
	if !(at >= 0 && at <= 1) || !(as >= 0 && as <= 1) {
		return tr, fmt.Errorf("diffusion: schedule %s gives alpha outside [0,1]: alpha(%v)=%v, alpha(%v)=%v",
			k.Schedule.Name(), t, at, s, as)
	}
	if as < at {
		return tr, fmt.Errorf("diffusion: schedule %s is increasing: alpha(%v)=%v < alpha(%v)=%v",
			k.Schedule.Name(), s, as, t, at)
	}
	// sigma is σ; sigmaAt is σ·α_t, computed in the form that is exact in
	// the limiting cases (e.g. σ = σ_max gives a mask mass of exactly 0).
	var sigma, sigmaAt float64
	if k.Eta > 0 && as < 1 {
		if at == 0 {
			sigma = math.Min(k.Eta, 1) // σ_max = 1; σ·α_t = 0
		} else {
			ratio := (1 - as) / at
			switch {
			case ratio >= 1: // σ_max = 1: both strategies give η (η ≤ 1 for rescale)
				sigma = math.Min(k.Eta, 1)
				sigmaAt = sigma * at
			case k.Remask == RemaskRescale:
				sigma = k.Eta * ratio
				sigmaAt = k.Eta * (1 - as)
			case k.Eta >= ratio: // maxcap, capped at σ_max
				sigma = ratio
				sigmaAt = 1 - as
			default: // maxcap, η below the cap
				sigma = k.Eta
				sigmaAt = k.Eta * at
			}
		}
	}
	tr.sigma = sigma
	tr.logStay = math.Log1p(-sigma)
	tr.logRemask = math.Log(sigma)
	pUnmask := 1.0
	if as < 1 {
		maskNum := math.Max((1-as)-sigmaAt, 0)
		unmaskNum := (as - at) + sigmaAt
		// maskNum + unmaskNum = 1 − α_t ≥ 1 − α_s > 0 analytically;
		// normalising by the computed sum keeps the masked-token
		// distribution summing to 1 up to rounding.
		tr.pMask = maskNum / (maskNum + unmaskNum)
		pUnmask = unmaskNum / (maskNum + unmaskNum)
	}
	tr.logMask = math.Log(tr.pMask)
	tr.logUnmask = math.Log(pUnmask)
	return tr, nil
}

// Sigma returns the ReMDM remasking probability σ of an unmasked token for
// the step t -> s (0 when Eta = 0). It validates like PositionLogProbs.
func (k Kernel) Sigma(t, s float64) (float64, error) {
	tr, err := k.transition(t, s)
	return tr.sigma, err
}

// checkLogits returns the maximum of one position's x0-logits, or an error
// if any is NaN or +Inf or all are −Inf.
func checkLogits(logits []float64) (float64, error) {
	m := math.Inf(-1)
	for v, x := range logits {
		if math.IsNaN(x) || math.IsInf(x, 1) {
			return 0, fmt.Errorf("diffusion: invalid x0-logit %v at token %d", x, v)
		}
		if x > m {
			m = x
		}
	}
	if math.IsInf(m, -1) {
		return 0, fmt.Errorf("diffusion: all %d x0-logits are -Inf", len(logits))
	}
	return m, nil
}

// logNormalizer validates one position's x0-logits and returns their
// log-sum-exp, computed stably by subtracting the maximum.
func logNormalizer(logits []float64) (float64, error) {
	m, err := checkLogits(logits)
	if err != nil {
		return 0, err
	}
	return m + math.Log(logsumexp.SumExp(logits, m)), nil
}

// fill writes the V+1 log-probs of one position into out.
func (tr *transition) fill(xt int, logits, out []float64) error {
	V := len(logits)
	if xt < V {
		if _, err := checkLogits(logits); err != nil {
			return err
		}
		for i := range out {
			out[i] = math.Inf(-1)
		}
		out[xt] = tr.logStay
		out[V] = tr.logRemask
		return nil
	}
	lse, err := logNormalizer(logits)
	if err != nil {
		return err
	}
	for v, x := range logits {
		out[v] = x - lse + tr.logUnmask
	}
	out[V] = tr.logMask
	return nil
}

// logProb returns log p(x_s = xs | x_t = xt) for one position.
func (tr *transition) logProb(xt, xs int, logits []float64) (float64, error) {
	V := len(logits)
	if xt < V {
		if _, err := checkLogits(logits); err != nil {
			return 0, err
		}
		switch xs {
		case xt:
			return tr.logStay, nil
		case V:
			return tr.logRemask, nil
		default:
			return math.Inf(-1), nil
		}
	}
	if xs == V {
		if _, err := checkLogits(logits); err != nil {
			return 0, err
		}
		return tr.logMask, nil
	}
	lse, err := logNormalizer(logits)
	if err != nil {
		return 0, err
	}
	return logits[xs] - lse + tr.logUnmask, nil
}

// PositionLogProbs writes log p(x_s^l = v | x_t) for v = 0..V (V = MASK) into
// out (length V+1) for one position whose current token is xt ∈ 0..V, given
// that position's x0-logits (length V; −Inf entries mean zero mass; NaN,
// +Inf or all −Inf is an error), for the step from t to s (0 ≤ s < t ≤ 1).
// See Kernel for the formulas (paper.md §1.1; reference-code.md §2.1). The
// logits are validated even at unmasked positions, where SUBS ignores them.
// With Eta = 0 an unmasked token is carried over exactly (log-prob 0 at xt,
// −Inf elsewhere), and when α(s) = 1 the mask entry is −Inf.
func (k Kernel) PositionLogProbs(xt int, logits []float64, t, s float64, out []float64) error {
	tr, err := k.transition(t, s)
	if err != nil {
		return err
	}
	V := len(logits)
	if V < 1 {
		return fmt.Errorf("diffusion: empty x0-logits")
	}
	if len(out) != V+1 {
		return fmt.Errorf("diffusion: out has length %d, want V+1 = %d", len(out), V+1)
	}
	if xt < 0 || xt > V {
		return fmt.Errorf("diffusion: token %d outside 0..%d", xt, V)
	}
	return tr.fill(xt, logits, out)
}

// PositionLogProbsInto is PositionLogProbs for a flat run of N positions
// (e.g. one sequence, or B sequences row-major): xt has length N with values
// in 0..V, logits has length N·V and out has length N·(V+1), with position
// n's log-probs in out[n(V+1) : (n+1)(V+1)].
func (k Kernel) PositionLogProbsInto(xt []int, logits []float64, t, s float64, out []float64) error {
	tr, err := k.transition(t, s)
	if err != nil {
		return err
	}
	V, err := vocabFromLengths(len(xt), len(logits))
	if err != nil {
		return err
	}
	if len(out) != len(xt)*(V+1) {
		return fmt.Errorf("diffusion: out has length %d, want %d", len(out), len(xt)*(V+1))
	}
	for n, x := range xt {
		if x < 0 || x > V {
			return fmt.Errorf("diffusion: token xt[%d] = %d outside 0..%d", n, x, V)
		}
		if err := tr.fill(x, logits[n*V:(n+1)*V], out[n*(V+1):(n+1)*(V+1)]); err != nil {
			return fmt.Errorf("%w (position %d)", err, n)
		}
	}
	return nil
}

// vocabFromLengths infers V from N positions and N·V logits.
func vocabFromLengths(n, nLogits int) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("diffusion: empty sequence")
	}
	if nLogits < n || nLogits%n != 0 {
		return 0, fmt.Errorf("diffusion: %d logits is not a positive multiple of %d positions", nLogits, n)
	}
	return nLogits / n, nil
}

// LogProb returns log p_θ(x_s | x_t) = Σ_l log p(x_s^l | x_t) for one
// sequence (the kernel factorises over positions): xt and xs have length L
// with values in 0..V, logits has length L·V. An impossible transition
// gives −Inf (not an error).
func (k Kernel) LogProb(xt, xs []int, logits []float64, t, s float64) (float64, error) {
	tr, err := k.transition(t, s)
	if err != nil {
		return 0, err
	}
	if len(xs) != len(xt) {
		return 0, fmt.Errorf("diffusion: LogProb length mismatch: xt %d, xs %d", len(xt), len(xs))
	}
	V, err := vocabFromLengths(len(xt), len(logits))
	if err != nil {
		return 0, err
	}
	total := 0.0
	for l := range xt {
		if xt[l] < 0 || xt[l] > V || xs[l] < 0 || xs[l] > V {
			return 0, fmt.Errorf("diffusion: token at position %d outside 0..%d (xt %d, xs %d)", l, V, xt[l], xs[l])
		}
		lp, err := tr.logProb(xt[l], xs[l], logits[l*V:(l+1)*V])
		if err != nil {
			return 0, fmt.Errorf("%w (position %d)", err, l)
		}
		total += lp
	}
	return total, nil
}

// Step samples x_s ~ p_θ(x_s | x_t) independently per position for
// B = len(xt)/L sequences of length L over V tokens: xt and xs have length
// B·L (values 0..V), logits has length B·L·V. xs may be the very same slice
// as xt (in-place update), but must not partially overlap it.
// Logits are validated at every position.
func (k Kernel) Step(rng *rand.Rand, xt []int, logits []float64, L, V int, t, s float64, xs []int) error {
	if rng == nil {
		return fmt.Errorf("diffusion: Step needs a non-nil rng")
	}
	tr, err := k.transition(t, s)
	if err != nil {
		return err
	}
	if L < 1 || V < 1 {
		return fmt.Errorf("diffusion: Step needs L >= 1 and V >= 1, got L=%d V=%d", L, V)
	}
	N := len(xt)
	if N == 0 || N%L != 0 {
		return fmt.Errorf("diffusion: xt has length %d, not a positive multiple of L = %d", N, L)
	}
	if len(xs) != N {
		return fmt.Errorf("diffusion: xs has length %d, want %d", len(xs), N)
	}
	if len(logits) != N*V {
		return fmt.Errorf("diffusion: logits have length %d, want %d", len(logits), N*V)
	}
	for n, x := range xt {
		if x < 0 || x > V {
			return fmt.Errorf("diffusion: token xt[%d] = %d outside 0..%d", n, x, V)
		}
	}
	w := make([]float64, V)
	for n, x := range xt {
		lg := logits[n*V : (n+1)*V]
		m, err := checkLogits(lg)
		if err != nil {
			return fmt.Errorf("%w (position %d)", err, n)
		}
		if x < V {
			if tr.sigma > 0 && rng.Float64() < tr.sigma {
				xs[n] = V
			} else {
				xs[n] = x
			}
			continue
		}
		if tr.pMask > 0 && rng.Float64() < tr.pMask {
			xs[n] = V
			continue
		}
		xs[n] = sampleSoftmax(rng, lg, m, w)
	}
	return nil
}

// sampleSoftmax draws v with probability ∝ exp(logits[v] − m), using w as
// scratch (len(w) = len(logits)); m is the (finite) maximum logit.
func sampleSoftmax(rng *rand.Rand, logits []float64, m float64, w []float64) int {
	total := 0.0
	for v, x := range logits {
		e := math.Exp(x - m)
		w[v] = e
		total += e
	}
	u := rng.Float64() * total
	last := 0
	for v, e := range w {
		if e > 0 {
			last = v
			if u < e {
				return v
			}
			u -= e
		}
	}
	return last // rounding fallback: the last token with positive mass
}
