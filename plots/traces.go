package plots

import "fmt"

// Per-step SMC trace figures: ESS and mean look-ahead reward.

// TraceCurve is one method's per-step trace: Step, ESS (fraction of N),
// Resampled, RhatMean values in step order (as in smc.Info). Resampled may
// be nil (no resampling marks); RhatMean may be nil when only ESSTraces is
// used.
type TraceCurve struct {
	Name      string
	Step      []int
	ESS       []float64
	Resampled []bool
	RhatMean  []float64
}

// checkTrace validates one TraceCurve; need selects the value slices used.
func checkTrace(c TraceCurve, ess, rhat bool) error {
	if ess && len(c.ESS) != len(c.Step) {
		return fmt.Errorf("plots: trace %q: length mismatch, len(Step) = %d but len(ESS) = %d", c.Name, len(c.Step), len(c.ESS))
	}
	if ess && c.Resampled != nil && len(c.Resampled) != len(c.Step) {
		return fmt.Errorf("plots: trace %q: length mismatch, len(Step) = %d but len(Resampled) = %d", c.Name, len(c.Step), len(c.Resampled))
	}
	if rhat && len(c.RhatMean) != len(c.Step) {
		return fmt.Errorf("plots: trace %q: length mismatch, len(Step) = %d but len(RhatMean) = %d", c.Name, len(c.Step), len(c.RhatMean))
	}
	return nil
}

func stepsAsFloat(steps []int) []float64 {
	x := make([]float64, len(steps))
	for i, s := range steps {
		x[i] = float64(s)
	}
	return x
}

// ESSTraces plots ESS/N against the step, one curve per method, with
// markers at resampling events (a "resampled" legend entry explains them);
// y in [0, 1.02].
func ESSTraces(path string, curves []TraceCurve, title string) error {
	if len(curves) == 0 {
		return fmt.Errorf("plots: no traces")
	}
	cs := make([]curve, len(curves))
	for i, c := range curves {
		if err := checkTrace(c, true, false); err != nil {
			return err
		}
		x := stepsAsFloat(c.Step)
		var marks []float64
		for j, r := range c.Resampled {
			if r {
				marks = append(marks, x[j])
			}
		}
		cs[i] = curve{name: c.Name, x: x, y: c.ESS, marks: marks, idx: i}
	}
	return drawCurves(path, cs, curveOpts{
		LineOpts:  LineOpts{Title: title, XLabel: "SMC step", YLabel: "ESS / N", YMin: 0, YMax: 1.02},
		markLabel: "resampled",
	})
}

// RewardTraces plots the mean look-ahead reward (RhatMean) against the
// step, one curve per method. Non-finite values are skipped (the curve
// joins its finite neighbours); a method with no finite value keeps its
// colour and gets a "(no finite values)" legend entry; if no method has a
// finite value the call fails.
func RewardTraces(path string, curves []TraceCurve, title string) error {
	if len(curves) == 0 {
		return fmt.Errorf("plots: no traces")
	}
	cs := make([]curve, len(curves))
	someData := false
	for i, c := range curves {
		if err := checkTrace(c, false, true); err != nil {
			return err
		}
		var x, y []float64
		for j, s := range c.Step {
			if finite(c.RhatMean[j]) {
				x = append(x, float64(s))
				y = append(y, c.RhatMean[j])
			}
		}
		cs[i] = curve{name: c.Name, x: x, y: y, idx: i, noData: len(y) == 0}
		someData = someData || len(y) > 0
	}
	if !someData {
		return fmt.Errorf("plots: no trace has a finite RhatMean value")
	}
	return drawCurves(path, cs, curveOpts{LineOpts: LineOpts{Title: title, XLabel: "SMC step", YLabel: "mean look-ahead reward"}})
}
