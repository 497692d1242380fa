package diffusion

import (
	"fmt"
	"math"
	"strings"
)

// Schedule is a masking schedule for absorbing-state (masked) diffusion
// (paper.md §1.1). α(t) is the probability that a token of x_0 is still
// unmasked at time t ∈ [0,1]; it must be non-increasing with α(0) = 1.
type Schedule interface {
	// Alpha returns α(t), the probability a token is still unmasked at time
	// t; Alpha(0) = 1.
	Alpha(t float64) float64
	// Rate returns −α'(t)/(1−α(t)), the weight of the MDLM continuous-time
	// ELBO at t (1/t for the linear schedule; +Inf at t = 0).
	Rate(t float64) float64
	// Name returns the schedule's name as accepted by ParseSchedule.
	Name() string
}

// Linear returns the linear schedule α(t) = 1 − t (the toy setting of
// paper.md §1.1). Its rate is 1/t.
func Linear() Schedule { return linearSchedule{} }

type linearSchedule struct{}

func (linearSchedule) Alpha(t float64) float64 { return 1 - t }
func (linearSchedule) Rate(t float64) float64  { return 1 / t }
func (linearSchedule) Name() string            { return "linear" }

// Cosine returns the cosine schedule of the authors' language-model code,
// α(t) = 1 − cos(π/2·(1 − t)) (paper.md §1.1 table, reference-code.md §2.1).
//
// Note the convention: this equals 1 − sin(πt/2), so tokens are masked
// fastest near t = 0 (slope π/2) and slowest near t = 1 (slope 0). This is
// the reverse of the "cosine" schedule of e.g. MaskGIT; it is what the
// reference code uses, and it is computed here in the sin form, which is
// exact at both ends (α(0) = 1, α(1) = 0). Its rate is (π/2)/tan(πt/2).
func Cosine() Schedule { return cosineSchedule{} }

type cosineSchedule struct{}

func (cosineSchedule) Alpha(t float64) float64 { return 1 - math.Sin(math.Pi/2*t) }
func (cosineSchedule) Rate(t float64) float64 {
	x := math.Pi / 2 * t
	return math.Pi / 2 * math.Cos(x) / math.Sin(x)
}
func (cosineSchedule) Name() string { return "cosine" }

// LogLinear returns MDLM's log-linear schedule with noise
// σ(t) = −log(1 − (1 − eps)·t), i.e. α(t) = e^{−σ(t)} = 1 − (1 − eps)·t
// (paper.md §1.1 table, reference-code.md §2.2). Its rate is exactly 1/t
// for every eps. With eps > 0, α(1) = eps > 0, so the all-mask start of the
// sampler is only approximately q(x_1 | x_0) and the prior term of the ELBO
// is dropped (as MDLM does). eps must lie in [0,1); LogLinear does not check
// this (it cannot return an error); use ParseSchedule to validate.
func LogLinear(eps float64) Schedule { return logLinearSchedule{eps: eps} }

type logLinearSchedule struct{ eps float64 }

func (s logLinearSchedule) Alpha(t float64) float64 { return 1 - (1-s.eps)*t }
func (logLinearSchedule) Rate(t float64) float64    { return 1 / t }
func (logLinearSchedule) Name() string              { return "loglinear" }

// ParseSchedule returns the schedule called name: "linear", "cosine" or
// "loglinear" (case-insensitive). eps is used by "loglinear" only and must
// lie in [0,1) there. An unknown name is an error naming it.
func ParseSchedule(name string, eps float64) (Schedule, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "linear":
		return Linear(), nil
	case "cosine":
		return Cosine(), nil
	case "loglinear":
		if !(eps >= 0 && eps < 1) {
			return nil, fmt.Errorf("diffusion: loglinear schedule needs eps in [0,1), got %v", eps)
		}
		return LogLinear(eps), nil
	default:
		return nil, fmt.Errorf("diffusion: unknown schedule %q (want linear, cosine or loglinear)", name)
	}
}
