package experiments

import (
	"reflect"
	"strings"
	"testing"
)

// parseSMC parses a config whose text is prefixed with "[smc]\n".
func parseSMC(t *testing.T, body string) (SMCConfig, error) {
	t.Helper()
	cfg, err := Parse("smc.toml", []byte("[smc]\n"+body))
	return cfg.SMC, err
}

// TestSMCDefaults: an absent or empty [smc] table gives DefaultSMC, whose
// values are the documented paper setting.
func TestSMCDefaults(t *testing.T) {
	want := SMCConfig{Method: "smc", Proposal: "reverse", Twist: "mc", Phi: 10, Tau: 1, Alpha: 1, Particles: 2000,
		Lambda: "constant", LambdaK: 30, LambdaGamma: 0.05, Resampler: "systematic", Trigger: "ess", Kappa: 0.5,
		Every: 1, Final: "resample", Tilt: "transition", Workers: 1, Batch: 256, Seed: 4, Target: "tilted"}
	if got := DefaultSMC(); !reflect.DeepEqual(got, want) {
		t.Fatalf("DefaultSMC() = %+v, want %+v", got, want)
	}
	for _, text := range []string{"", "[smc]\n"} {
		cfg, err := Parse("x.toml", []byte(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if !reflect.DeepEqual(cfg.SMC, want) {
			t.Fatalf("%q: smc = %+v, want the defaults %+v", text, cfg.SMC, want)
		}
	}
	// Overrides are merged key by key.
	sc, err := parseSMC(t, "particles = 64\nalpha = 0.25\nresampler = \"residual\"\n")
	if err != nil {
		t.Fatal(err)
	}
	want.Particles, want.Alpha, want.Resampler = 64, 0.25, "residual"
	if !reflect.DeepEqual(sc, want) {
		t.Fatalf("smc = %+v, want %+v", sc, want)
	}
}

// TestSMCMethodPresets: the baseline methods fix proposal, twist and
// trigger and default the final selection, which stays overridable.
func TestSMCMethodPresets(t *testing.T) {
	cases := []struct {
		body                            string
		proposal, twist, trigger, final string
	}{
		{"method = \"smc\"\n", "reverse", "mc", "ess", "resample"},
		{"method = \"bon\"\n", "reverse", "none", "never", "argmax-reward"},
		{"method = \"prop-grad\"\n", "grad", "grad", "never", "all"},
		{"method = \"plain\"\n", "reverse", "none", "never", "all"},
		// An explicit final selection is kept.
		{"method = \"bon\"\nfinal = \"weighted\"\n", "reverse", "none", "never", "weighted"},
		{"method = \"plain\"\nfinal = \"multinomial\"\n", "reverse", "none", "never", "multinomial"},
		// Explicitly setting the preset's own value is fine.
		{"method = \"bon\"\nproposal = \"reverse\"\ntwist = \"none\"\ntrigger = \"never\"\n", "reverse", "none", "never", "argmax-reward"},
		{"method = \"prop-grad\"\nproposal = \"grad\"\n", "grad", "grad", "never", "all"},
		// method = "smc" leaves the other keys alone.
		{"method = \"smc\"\nproposal = \"lop\"\ntwist = \"exact\"\ntrigger = \"always\"\n", "lop", "exact", "always", "resample"},
	}
	for _, c := range cases {
		sc, err := parseSMC(t, c.body)
		if err != nil {
			t.Errorf("%q: %v", c.body, err)
			continue
		}
		if sc.Proposal != c.proposal || sc.Twist != c.twist || sc.Trigger != c.trigger || sc.Final != c.final {
			t.Errorf("%q: proposal %q twist %q trigger %q final %q, want %q %q %q %q",
				c.body, sc.Proposal, sc.Twist, sc.Trigger, sc.Final, c.proposal, c.twist, c.trigger, c.final)
		}
	}
}

// TestSMCBadConfigsNameTheKey: every bad [smc] setting is an error that
// names the file and the offending key.
func TestSMCBadConfigsNameTheKey(t *testing.T) {
	cases := []struct {
		body string
		want []string
	}{
		// Presets conflicting with explicitly set keys.
		{"method = \"bon\"\nproposal = \"grad\"\n", []string{"smc.proposal", `"grad"`, "bon"}},
		{"method = \"bon\"\ntwist = \"mc\"\n", []string{"smc.twist", "bon"}},
		{"method = \"plain\"\ntrigger = \"ess\"\n", []string{"smc.trigger", "plain"}},
		{"method = \"prop-grad\"\nproposal = \"reverse\"\n", []string{"smc.proposal", "prop-grad"}},
		{"method = \"prop-grad\"\ntwist = \"exact\"\n", []string{"smc.twist", "prop-grad"}},
		{"method = \"best\"\n", []string{"smc.method", `"best"`}},
		// Unknown keys and wrong types.
		{"particels = 5\n", []string{"smc.particels"}},
		{"particles = \"many\"\n", []string{"smc.particles"}},
		{"centre = 1\n", []string{"smc.centre"}},
		// Out-of-range values.
		{"proposal = \"foo\"\n", []string{"smc.proposal", `"foo"`}},
		{"twist = \"foo\"\n", []string{"smc.twist", `"foo"`}},
		{"phi = 0\n", []string{"smc.phi"}},
		{"tau = 0\n", []string{"smc.tau"}},
		{"alpha = 0\n", []string{"smc.alpha"}},
		{"alpha = -1\n", []string{"smc.alpha"}},
		{"alpha = nan\n", []string{"smc.alpha"}},
		{"alpha = inf\n", []string{"smc.alpha"}},
		{"particles = 0\n", []string{"smc.particles"}},
		{"proposal = \"lop\"\ntwist = \"mc\"\n", []string{"smc.proposal", "smc.twist", "exact"}},
		{"proposal = \"grad\"\ntwist = \"mc\"\n", []string{"smc.proposal", "smc.twist", "grad"}},
		{"resampler = \"foo\"\n", []string{"smc.resampler", `"foo"`}},
		{"trigger = \"foo\"\n", []string{"smc.trigger", `"foo"`}},
		{"kappa = 2\n", []string{"kappa"}},
		{"kappa = -0.5\n", []string{"kappa"}},
		{"every = -1\n", []string{"every"}},
		{"final = \"foo\"\n", []string{"smc.final", `"foo"`}},
		{"lambda = \"foo\"\n", []string{"smc.lambda", `"foo"`}},
		{"lambda = \"linear\"\nlambda_k = 0\n", []string{"smc.lambda", "k >= 1"}},
		{"lambda = \"exp\"\nlambda_gamma = 0\n", []string{"smc.lambda", "gamma"}},
		{"lambda = \"list\"\n", []string{"smc.lambda_values", "T+1 = 101"}},
		{"lambda = \"list\"\nlambda_values = [0.0, 1.0]\n", []string{"smc.lambda_values", "T+1 = 101"}},
		{"lambda = \"list\"\nlambda_values = [0.0, 1.5, 1.0]\n[diffusion]\nsteps = 2\n", []string{"smc.lambda_values", "1.5"}},
		{"tilt = \"foo\"\n", []string{"tilt", `"foo"`}},
		{"clip = -1\n", []string{"clip"}},
		{"workers = 0\n", []string{"smc.workers"}},
		{"batch = 0\n", []string{"smc.batch"}},
		{"max_enum = -1\n", []string{"smc.max_enum"}},
	}
	for _, c := range cases {
		_, err := parseSMC(t, c.body)
		if err == nil {
			t.Errorf("%q: no error", c.body)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "smc.toml") {
			t.Errorf("%q: error %q does not name the file", c.body, msg)
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q: error %q does not mention %q", c.body, msg, w)
			}
		}
	}
}

// TestSMCLambdaListLength: a list schedule is checked against T from the
// [diffusion] table (T+1 values).
func TestSMCLambdaListLength(t *testing.T) {
	ok := "lambda = \"list\"\nlambda_values = [0.0, 0.5, 1.0]\n[diffusion]\nsteps = 2\n"
	sc, err := parseSMC(t, ok)
	if err != nil {
		t.Fatalf("valid list schedule: %v", err)
	}
	if !reflect.DeepEqual(sc.LambdaValues, []float64{0, 0.5, 1}) {
		t.Fatalf("lambda_values = %v", sc.LambdaValues)
	}
	if _, err := parseSMC(t, "lambda = \"list\"\nlambda_values = [0.0, 0.5, 1.0]\n[diffusion]\nsteps = 3\n"); err == nil ||
		!strings.Contains(err.Error(), "smc.lambda_values") || !strings.Contains(err.Error(), "T+1 = 4") {
		t.Fatalf("3 values for T = 3: error %v, want one naming smc.lambda_values and T+1 = 4", err)
	}
	// Values of a non-list schedule are ignored.
	if _, err := parseSMC(t, "lambda = \"constant\"\nlambda_values = [0.0]\n"); err != nil {
		t.Fatalf("lambda_values with a constant schedule: %v", err)
	}
}
