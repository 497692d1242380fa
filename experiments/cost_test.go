package experiments

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/smc"
)

// TestAdaptiveLambdaConfig: smc.lambda = "adaptive" needs smc.lambda_ess
// in (0, 1] and refuses smc.lambda_values; the amortised proposal's
// rollouts refuse it; a good setting reaches the engine.
func TestAdaptiveLambdaConfig(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"lambda = \"adaptive\"\n", "smc.lambda = \"adaptive\" needs smc.lambda_ess"},
		{"lambda = \"adaptive\"\nlambda_ess = 0\n", "needs smc.lambda_ess"},
		{"lambda = \"adaptive\"\nlambda_ess = 1.5\n", "smc.lambda_ess = 1.5"},
		{"lambda = \"adaptive\"\nlambda_ess = -0.2\n", "smc.lambda_ess = -0.2"},
		{"lambda = \"adaptive\"\nlambda_ess = nan\n", "smc.lambda_ess = NaN"},
		{"lambda = \"adaptive\"\nlambda_ess = 0.5\nlambda_values = [0.0, 1.0]\n", "remove smc.lambda_values"},
	} {
		_, err := parseSMC(t, c.body)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.body, err, c.want)
		}
	}
	sc, err := parseSMC(t, "lambda = \"adaptive\"\nlambda_ess = 0.7\n")
	if err != nil {
		t.Fatal(err)
	}
	if l := sc.lambda(); l.Kind != "adaptive" || l.ESS != 0.7 || l.Values != nil {
		t.Errorf("engine schedule %+v, want adaptive with ESS 0.7", l)
	}
	if err := (smc.Lambda{Kind: "adaptive", ESS: 0.7}).Validate(100); err != nil {
		t.Errorf("engine refuses the parsed schedule: %v", err)
	}
	if sc, err := parseSMC(t, "no_cache = true\n"); err != nil || !sc.NoCache {
		t.Errorf("no_cache = true: %v, %+v", err, sc)
	}
	if _, err := Parse("p.toml", []byte("[proposal]\nlambda = \"adaptive\"\n")); err == nil || !strings.Contains(err.Error(), "proposal.lambda = \"adaptive\"") {
		t.Errorf("proposal.lambda = adaptive: error %v", err)
	}
}

// TestCostColumnsAndMatchedBudgetPlot runs a tiny sweep (adaptive λ beside
// best-of-N and the exact target, two particle counts) and checks: every
// SMC run's record and results row carry the cost columns, equal to the
// last row of its trace, with network_rows their sum; best-of-N on the
// reverse proposal counts at most N·T denoiser rows (the GMM denoiser is
// time-independent, so cached states are not counted again) and exactly N
// reward evaluations; the exact target's cost is NaN. Then `plot -x`
// draws reward against denoiser rows, one curve per variant, and a column
// the results do not have is a clear error.
func TestCostColumnsAndMatchedBudgetPlot(t *testing.T) {
	tmp := t.TempDir()
	base := tinyBase(t, tmp)
	text := tinySweep(base, "[variants.Adaptive]\nproposal = \"reverse\"\ntwist = \"mc\"\nphi = 2\nlambda = \"adaptive\"\nlambda_ess = 0.5\n"+
		"[sweep]\nvariant = [\"Adaptive\", \"BoN\", \"Target\"]\nparticles = [8, 16]\n")
	sc, err := ParseSweep("tiny.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "out")
	var log bytes.Buffer
	recs, err := RunSweep(sc, []byte(text), dir, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	const T = 12 // tinyBase's diffusion.steps
	for _, rec := range recs {
		m := rec.Metrics
		v := rec.Setting["variant"]
		if v == "Target" {
			for _, k := range smc.CostColumns {
				if !math.IsNaN(m[k]) {
					t.Errorf("target run %d-%d: %s = %v, want NaN", rec.Point, rec.Repeat, k, m[k])
				}
			}
			continue
		}
		tr, err := os.ReadFile(filepath.Join(runDir(dir, rec.Point, rec.Repeat), "trace.csv"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(tr)), "\n")
		head, last := strings.Split(lines[0], ","), strings.Split(lines[len(lines)-1], ",")
		for i, h := range head {
			if _, ok := m[h]; ok && (h == "denoiser_rows" || h == "reward_evals" || h == "grad_rows" || h == "proposal_rows") {
				if want, err := strconv.ParseFloat(last[i], 64); err != nil || m[h] != want {
					t.Errorf("run %d-%d: %s = %v in the record, %s in the trace's last row", rec.Point, rec.Repeat, h, m[h], last[i])
				}
			}
		}
		if m["network_rows"] != m["denoiser_rows"]+m["grad_rows"]+m["proposal_rows"] {
			t.Errorf("run %d-%d: network_rows %v is not the sum of its parts", rec.Point, rec.Repeat, m["network_rows"])
		}
		N := float64(rec.Run.N)
		if v == "BoN" && (m["reward_evals"] != N || m["denoiser_rows"] > N*T || m["denoiser_rows"] < 1) {
			t.Errorf("best-of-N N=%v: reward_evals %v (want N), denoiser_rows %v (want 1..N·T = %v)", N, m["reward_evals"], m["denoiser_rows"], N*T)
		}
		if v == "Adaptive" && m["reward_evals"] != N*T*2+N {
			t.Errorf("adaptive N=%v: reward_evals %v, want N·T·φ + N = %v", N, m["reward_evals"], N*T*2+N)
		}
	}
	png, err := PlotAgainst(dir, "denoiser_rows", "reward_mean")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 || filepath.Base(png) != "reward_mean_vs_denoiser_rows.png" {
		t.Fatalf("figure %s: %v", png, err)
	}
	for _, c := range []struct{ x, y, want string }{
		{"denoiser_rowz", "reward_mean", `-x "denoiser_rowz" is not a column of results.csv`},
		{"denoiser_rows", "nope", `-y "nope" is not a column`},
	} {
		if _, err := PlotAgainst(dir, c.x, c.y); err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "denoiser_rows") {
			t.Errorf("plot -x %s -y %s: error %v, want one containing %q and listing the columns", c.x, c.y, err, c.want)
		}
	}
}
