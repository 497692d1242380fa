package experiments

import (
	"fmt"
	"math"
	"path/filepath"

	"github.com/ddsmc/ddsmc/smc"
)

// SMCConfig is the [smc] table: one SMC run (or baseline) on the task's
// reward-tilted target π(x0) ∝ p_θ(x0)·exp(r(x0)/α).
type SMCConfig struct {
	// Method is "smc" (as configured below), or a baseline that fixes the
	// proposal, twist, trigger and default selection: "bon" (best-of-N:
	// N base samples, the best reward kept), "prop-grad" (gradient
	// guidance without weights or resampling; all particles kept) or
	// "plain" (N unguided samples).
	Method    string  `toml:"method"`
	Proposal  string  `toml:"proposal"`  // "reverse", "lop", "grad" or "learned" (the amortised q_φ)
	Twist     string  `toml:"twist"`     // "none", "mc", "exact" or "grad"
	Phi       int     `toml:"phi"`       // look-ahead samples φ (mc and grad twists)
	Tau       float64 `toml:"tau"`       // Gumbel-softmax temperature τ (grad twist)
	Alpha     float64 `toml:"alpha"`     // KL weight α
	Particles int     `toml:"particles"` // N

	Lambda       string    `toml:"lambda"`        // "constant", "linear", "exp", "time", "list" or "adaptive"
	LambdaK      int       `toml:"lambda_k"`      // linear ramp length in steps
	LambdaGamma  float64   `toml:"lambda_gamma"`  // exp ramp rate
	LambdaValues []float64 `toml:"lambda_values"` // λ_0..λ_T for "list"
	// LambdaESS is the target ESS fraction κ_λ ∈ (0, 1] of "adaptive"
	// (required there; left unset elsewhere, it keeps sweep fingerprints).
	LambdaESS float64 `toml:"lambda_ess" json:",omitempty"`
	// NoCache evaluates the denoiser at every state every time, instead of
	// reusing the logits of a time-independent denoiser (the GMMs'): runs
	// are then priced as for a model whose states never repeat.
	NoCache bool `toml:"no_cache" json:",omitempty"`

	Resampler string  `toml:"resampler"` // multinomial, stratified, systematic, residual, partial
	Trigger   string  `toml:"trigger"`   // ess, every, always, never
	Kappa     float64 `toml:"kappa"`     // ESS threshold fraction
	Every     int     `toml:"every"`     // resampling frequency f
	Final     string  `toml:"final"`     // resample, weighted, all, argmax-reward, argmax-weight, multinomial

	Tilt   string  `toml:"tilt"`   // gradient tilt space: "transition" or "x0"
	Centre bool    `toml:"centre"` // centre the gradient per position
	Clip   float64 `toml:"clip"`   // clip gradient entries to [−clip, clip] (0 = off)

	MaxEnum int    `toml:"max_enum"` // enumeration limit of lop and exact (0 = 65536)
	Workers int    `toml:"workers"`  // SMC workers, each with its own network copy (default 1; results do not depend on it)
	Batch   int    `toml:"batch"`    // sequences per denoiser call
	Seed    uint64 `toml:"seed"`     // run seed
	Dir     string `toml:"dir"`      // output directory of the run (default <out>/smc)

	ProposalCkpt string `toml:"proposal_ckpt"` // q_φ checkpoint for proposal = "learned" (default <out>/proposal.ckpt)

	// Target is the base of the tilted target π ∝ base · exp(r/α):
	// "tilted" (the trained model p_θ) or "product" (smc.Product:
	// p₁^a · p₂^b · q^(1−a−b) of the trained model p₁ and SecondModel p₂,
	// with Exponents = [a, b]; classifier-free guidance is a = w, b = 1 − w).
	Target string `toml:"target"`
	// Prompt conditions the run on a prompt of the task (task.Prompted):
	// its positions are clamped (smc.Config.Clamp). "" = none.
	Prompt      string    `toml:"prompt"`
	SecondModel string    `toml:"second_model"` // p₂'s checkpoint (product target)
	Exponents   []float64 `toml:"exponents"`    // [a, b] (product target)
	// Class conditions a class-conditional denoiser (model.classes > 0) on
	// a class: 0..classes−1, or −1 for its null class (the unconditional
	// p(x)). Required for such a checkpoint, an error for any other. nil =
	// not set. The class is also the outputs' label for the task's metrics
	// (task.Outputs.Classes).
	Class *int `toml:"class" json:",omitempty"`
	// Guidance is the classifier-free guidance weight w > 0: with target =
	// "product" and a class c, the target is p(x | c)^w · p(x)^{1−w}, both
	// factors from the one conditional checkpoint (class c and the null
	// class), instead of second_model and exponents. nil = not set.
	Guidance *float64 `toml:"guidance" json:",omitempty"`
	// Steps, when > 0, overrides diffusion.steps (T) for the run, so a
	// sweep can vary the number of denoising steps of one trained model.
	Steps int `toml:"steps" json:",omitempty"`
	// Eta, when set, overrides diffusion.eta (ReMDM remasking η in [0, 1])
	// for the run.
	Eta *float64 `toml:"eta" json:",omitempty"`
	// Reward is "task" (the default: the task's reward tilts the target by
	// exp(r/α)) or "none" (no tilt: the target is the base alone, e.g. the
	// plain CFG product; alpha is then unused).
	Reward string `toml:"reward" json:",omitempty"`
}

// OutDir returns where RunSMC writes: smc.dir, or <out>/smc.
func (c *Config) OutDir() string {
	if c.SMC.Dir != "" {
		return c.SMC.Dir
	}
	return filepath.Join(c.Out, "smc")
}

// DefaultSMC is the paper's synthetic setting (§6(a1)): α = 1, N = 2000,
// reverse proposal with a φ = 10 Monte Carlo look-ahead, λ ≡ 1, systematic
// resampling when ESS < N/2, checked every step, final weighted resample.
// One worker: its products and element-wise passes already use every core
// (internal/par), and on the 2-core machine of bench/RESULTS.md two
// workers were 0.7–0.95× as fast.
func DefaultSMC() SMCConfig {
	return SMCConfig{Method: "smc", Proposal: "reverse", Twist: "mc", Phi: 10, Tau: 1, Alpha: 1, Particles: 2000,
		Lambda: "constant", LambdaK: 30, LambdaGamma: 0.05, Resampler: "systematic", Trigger: "ess", Kappa: 0.5,
		Every: 1, Final: "resample", Tilt: "transition", Workers: 1, Batch: 256, Seed: 4, Target: "tilted"}
}

// applyMethod fixes the settings a baseline method implies. defined
// reports whether the user set a key in the [smc] table; the final
// selection is only defaulted, never overridden.
func (c *SMCConfig) applyMethod(defined func(key string) bool) error {
	set := func(key string, dst *string, v string) error {
		if defined(key) && *dst != v {
			return fmt.Errorf("smc.%s = %q conflicts with smc.method = %q (which uses %q)", key, *dst, c.Method, v)
		}
		*dst = v
		return nil
	}
	var prop, twist, final string
	switch c.Method {
	case "smc":
		return nil
	case "bon":
		prop, twist, final = "reverse", "none", "argmax-reward"
	case "prop-grad":
		prop, twist, final = "grad", "grad", "all"
	case "plain":
		prop, twist, final = "reverse", "none", "all"
	case "prop-amot":
		prop, twist, final = "learned", "none", "all"
	default:
		return fmt.Errorf("smc.method = %q: want smc, bon, prop-grad, prop-amot or plain", c.Method)
	}
	if err := set("proposal", &c.Proposal, prop); err != nil {
		return err
	}
	if err := set("twist", &c.Twist, twist); err != nil {
		return err
	}
	if err := set("trigger", &c.Trigger, "never"); err != nil {
		return err
	}
	if !defined("final") {
		c.Final = final
	}
	return nil
}

// Validate reports the first bad [smc] value, naming its key.
func (c *SMCConfig) Validate() error {
	for _, e := range []struct{ key, v string }{{"smc.method", c.Method}, {"smc.proposal", c.Proposal}, {"smc.twist", c.Twist},
		{"smc.lambda", c.Lambda}, {"smc.resampler", c.Resampler}, {"smc.trigger", c.Trigger}, {"smc.final", c.Final}, {"smc.tilt", c.Tilt}, {"smc.target", c.Target}} {
		if err := exactName(e.key, e.v); err != nil {
			return err
		}
	}
	switch {
	case !(c.Kappa > 0 && c.Kappa <= 1):
		return fmt.Errorf("smc.kappa = %v: the ESS threshold must lie in (0, 1]", c.Kappa)
	case c.Every < 1:
		return fmt.Errorf("smc.every = %d: must be >= 1", c.Every)
	case c.Proposal != "reverse" && c.Proposal != "lop" && c.Proposal != "grad" && c.Proposal != "learned":
		return fmt.Errorf("smc.proposal = %q: want reverse, lop, grad or learned", c.Proposal)
	case c.Twist != "none" && c.Twist != "mc" && c.Twist != "exact" && c.Twist != "grad":
		return fmt.Errorf("smc.twist = %q: want none, mc, exact or grad", c.Twist)
	case c.Phi < 1:
		return fmt.Errorf("smc.phi = %d: must be >= 1", c.Phi)
	case !(c.Tau > 0) || math.IsInf(c.Tau, 1):
		return fmt.Errorf("smc.tau = %v: must be positive", c.Tau)
	case !(c.Alpha > 0) || math.IsInf(c.Alpha, 1):
		return fmt.Errorf("smc.alpha = %v: must be positive", c.Alpha)
	case c.Particles < 1:
		return fmt.Errorf("smc.particles = %d: must be >= 1", c.Particles)
	case c.Workers < 1:
		return fmt.Errorf("smc.workers = %d: must be >= 1", c.Workers)
	case c.Batch < 1:
		return fmt.Errorf("smc.batch = %d: must be >= 1", c.Batch)
	case c.MaxEnum < 0:
		return fmt.Errorf("smc.max_enum = %d: must be >= 0", c.MaxEnum)
	case c.Proposal == "grad" && c.Twist != "grad":
		return fmt.Errorf("smc.proposal = \"grad\" needs smc.twist = \"grad\" (the gradient comes from the differentiable look-ahead), got %q", c.Twist)
	case c.Proposal == "lop" && c.Twist != "exact":
		return fmt.Errorf("smc.proposal = \"lop\" needs smc.twist = \"exact\" (a deterministic look-ahead), got %q", c.Twist)
	}
	if err := c.validateTarget(); err != nil {
		return err
	}
	if _, err := smc.ParseResampler(c.Resampler); err != nil {
		return fmt.Errorf("smc.resampler: %w", err)
	}
	if err := c.trigger().Validate(); err != nil {
		return fmt.Errorf("smc.trigger/kappa/every: %w", err)
	}
	if c.Final != "all" {
		if err := smc.Final(c.Final).Validate(); err != nil {
			return fmt.Errorf("smc.final: %w", err)
		}
	}
	if c.Lambda == "adaptive" {
		switch {
		case c.LambdaESS == 0:
			return fmt.Errorf("smc.lambda = \"adaptive\" needs smc.lambda_ess, the target ESS fraction in (0, 1] (e.g. 0.9)")
		case !(c.LambdaESS > 0 && c.LambdaESS <= 1):
			return fmt.Errorf("smc.lambda_ess = %v: the adaptive schedule's target ESS fraction must lie in (0, 1]", c.LambdaESS)
		case c.LambdaValues != nil:
			return fmt.Errorf("smc.lambda = \"adaptive\" chooses λ from the particles: remove smc.lambda_values (or set smc.lambda = \"list\")")
		}
	}
	if c.Lambda != "list" { // a list's length is checked against T by Config.Validate
		if err := c.lambda().Validate(1); err != nil {
			return fmt.Errorf("smc.lambda: %w", err)
		}
	}
	g := smc.GradProposal{Space: c.Tilt, Centre: c.Centre, Clip: c.Clip}
	if err := g.Validate(); err != nil {
		return fmt.Errorf("smc.tilt/clip: %w", err)
	}
	return nil
}

func (c *SMCConfig) trigger() smc.Trigger {
	return smc.Trigger{Kind: c.Trigger, Kappa: c.Kappa, Every: c.Every}
}

func (c *SMCConfig) lambda() smc.Lambda {
	l := smc.Lambda{Kind: c.Lambda, K: c.LambdaK, Gamma: c.LambdaGamma, Values: c.LambdaValues}
	if c.Lambda == "adaptive" {
		l.ESS, l.Values = c.LambdaESS, nil
	}
	return l
}

// validateTarget checks the target settings.
func (c *SMCConfig) validateTarget() error {
	switch c.Reward {
	case "", "task":
	case "none":
		if c.Twist == "grad" || c.Proposal == "grad" {
			return fmt.Errorf("smc.reward = \"none\": proposal %q with twist %q needs a reward gradient; use the reverse proposal", c.Proposal, c.Twist)
		}
	default:
		return fmt.Errorf("smc.reward = %q: want task or none", c.Reward)
	}
	if c.Steps < 0 {
		return fmt.Errorf("smc.steps = %d: want T > 0, or 0 for diffusion.steps", c.Steps)
	}
	if c.Eta != nil && !(*c.Eta >= 0 && *c.Eta <= 1) {
		return fmt.Errorf("smc.eta = %v: the ReMDM remasking η must be in [0, 1]", *c.Eta)
	}
	if c.Class != nil && *c.Class < -1 {
		return fmt.Errorf("smc.class = %d: want a class 0, 1, … or -1 for the null class", *c.Class)
	}
	if c.Guidance != nil {
		w := *c.Guidance
		switch {
		case !(w > 0) || math.IsInf(w, 1):
			return fmt.Errorf("smc.guidance = %v: the guidance weight must be finite and > 0", w)
		case c.Target != "product":
			return fmt.Errorf("smc.guidance = %v needs smc.target = \"product\" (the CFG target p(x|c)^w·p(x)^(1−w))", w)
		case c.Class == nil || *c.Class < 0:
			return fmt.Errorf("smc.guidance = %v needs smc.class, the class c of p(x | c) (0, 1, …)", w)
		case c.SecondModel != "" || c.Exponents != nil:
			return fmt.Errorf("smc.guidance = %v takes both factors from the one class-conditional checkpoint: remove smc.second_model and smc.exponents", w)
		case c.Twist == "grad" || c.Proposal == "grad" || c.Proposal == "learned":
			return fmt.Errorf("smc.target = \"product\" works with the reverse and lop proposals and the none, mc and exact twists, not proposal %q with twist %q", c.Proposal, c.Twist)
		}
		return nil
	}
	switch c.Target {
	case "tilted":
		if c.SecondModel != "" || c.Exponents != nil {
			return fmt.Errorf("smc.second_model/exponents are set but smc.target = \"tilted\": set smc.target = \"product\" or remove them")
		}
		return nil
	case "product":
	default:
		return fmt.Errorf("smc.target = %q: want tilted or product", c.Target)
	}
	switch {
	case c.SecondModel == "":
		return fmt.Errorf("smc.target = \"product\" needs smc.second_model (the checkpoint of p₂)")
	case len(c.Exponents) != 2:
		return fmt.Errorf("smc.exponents = %v: the product target needs two exponents [a, b]", c.Exponents)
	case math.IsNaN(c.Exponents[0]) || math.IsInf(c.Exponents[0], 0) || math.IsNaN(c.Exponents[1]) || math.IsInf(c.Exponents[1], 0):
		return fmt.Errorf("smc.exponents = %v: must be finite", c.Exponents)
	case c.Twist == "grad" || c.Proposal == "grad" || c.Proposal == "learned":
		return fmt.Errorf("smc.target = \"product\" works with the reverse and lop proposals and the none, mc and exact twists, not proposal %q with twist %q", c.Proposal, c.Twist)
	}
	return nil
}
