package plots

import "math"

// Training loss curves.

// LossCurve plots a training loss curve (step vs loss) and, when valStep
// and val are non-empty, a second series ("validation") drawn with
// markers. Non-finite losses leave gaps. When every loss is positive and
// the largest is 30 times the smallest or more, the y-axis is logarithmic.
func LossCurve(path string, step, loss []float64, valStep, val []float64, title string) error {
	cs := []curve{{name: "train", x: step, y: loss, idx: 0, width: 1}}
	if len(valStep) > 0 || len(val) > 0 {
		cs = append(cs, curve{name: "validation", x: valStep, y: val, points: true, idx: 1})
	}
	if err := validateCurves(cs, curveOpts{}); err != nil {
		return err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range cs {
		for i := range c.x {
			if finite(c.x[i], c.y[i]) {
				lo, hi = math.Min(lo, c.y[i]), math.Max(hi, c.y[i])
			}
		}
	}
	logY := lo > 0 && hi/lo >= 30
	ylabel := "loss"
	if logY {
		ylabel = "loss (log scale)"
	}
	return drawCurves(path, cs, curveOpts{LineOpts: LineOpts{Title: title, XLabel: "training step", YLabel: ylabel}, logY: logY})
}
