package experiments

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/plots"
)

// PlotAgainst draws the results column y against the results column x of
// a sweep directory, with one curve per method: the points' non-numeric
// settings (variant, schedule, ...) name the curve, and the numeric swept
// settings (e.g. particles) move along it, in their order when there is one
// (a noisy x such as wall time then doubles back rather than zigzags). Each point is the mean over its
// repeats of both columns, with ± standard error bars on y. With x a cost
// column (denoiser_rows, grad_rows, reward_evals, proposal_rows,
// network_rows, wall_s) it is the matched-budget figure: methods compared
// at equal cost rather than at equal N. It writes DIR/figures/<y>_vs_<x>
// (PNG and SVG), recomputing nothing, and returns the PNG path. A column
// the results do not have, or have no finite value of, is an error.
func PlotAgainst(dir, x, y string) (string, error) {
	meta, tk, groups, err := loadSweep(dir)
	if err != nil {
		return "", err
	}
	res, err := ReadResults(dir, meta.Columns)
	if err != nil {
		return "", err
	}
	for _, c := range []struct{ flag, col string }{{"-x", x}, {"-y", y}} {
		if err := hasColumn(dir, res, meta.Columns, c.flag, c.col); err != nil {
			return "", err
		}
	}
	numeric := numericSettings(meta.Columns, groups)
	skip := map[string]bool{}
	for _, c := range numeric {
		skip[c] = true
	}
	var series []plots.ErrorSeries
	var order [][]float64 // per series: the swept value (or x) of each point
	idx := map[string]int{}
	for _, g := range groups {
		xv, okx := g.mean[x]
		yv, oky := g.mean[y]
		if !okx || !oky {
			continue
		}
		var parts []string
		for _, c := range meta.Columns {
			if skip[c] || g.settings[c] == "-" || g.settings[c] == "" {
				continue
			}
			if c == "variant" {
				parts = append(parts, g.settings[c])
			} else {
				parts = append(parts, c+"="+g.settings[c])
			}
		}
		name := strings.Join(parts, " ")
		if name == "" {
			name = "all"
		}
		i, ok := idx[name]
		if !ok {
			i = len(series)
			idx[name] = i
			series = append(series, plots.ErrorSeries{Name: name})
			order = append(order, nil)
		}
		s := &series[i]
		s.X, s.Y, s.Err = append(s.X, xv), append(s.Y, yv), append(s.Err, g.se[y])
		along := xv // the order of the points along the curve
		if len(numeric) == 1 {
			if v, err := strconv.ParseFloat(g.settings[numeric[0]], 64); err == nil {
				along = v
			}
		}
		order[i] = append(order[i], along)
	}
	if len(series) == 0 {
		return "", fmt.Errorf("experiments: %s: no point has finite values of both %q and %q", dir, x, y)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for i := range series {
		s := &series[i]
		ord := make([]int, len(s.X))
		for j := range ord {
			ord[j] = j
		}
		sort.SliceStable(ord, func(a, b int) bool { return order[i][ord[a]] < order[i][ord[b]] })
		X, Y, E := make([]float64, len(ord)), make([]float64, len(ord)), make([]float64, len(ord))
		for j, o := range ord {
			X[j], Y[j], E[j] = s.X[o], s.Y[o], s.Err[o]
			lo, hi = math.Min(lo, X[j]), math.Max(hi, X[j])
		}
		s.X, s.Y, s.Err = X, Y, E
	}
	o := plots.ErrorOpts{LineOpts: plots.LineOpts{
		Title:  fmt.Sprintf("%s: %s vs %s (n=%d)", meta.Name, y, x, meta.Repeats),
		XLabel: columnLabel(tk, x), YLabel: columnLabel(tk, y), YMin: math.NaN(), YMax: math.NaN(), LogX: lo > 0 && hi/lo > 20,
	}}
	base := filepath.Join(dir, "figures", y+"_vs_"+x)
	for _, ext := range []string{".png", ".svg"} {
		if err := plots.ErrorBars(base+ext, series, o); err != nil {
			return "", err
		}
	}
	return base + ".png", nil
}

// hasColumn checks that results have a numeric column col (flag names the
// command-line option in the error).
func hasColumn(dir string, res *Results, settings []string, flag, col string) error {
	var have []string
	found := false
	isSetting := map[string]bool{"run": true, "repeat": true, "seed": true}
	for _, c := range settings {
		isSetting[c] = true
	}
	for _, h := range res.Header {
		if isSetting[h] {
			continue
		}
		have = append(have, h)
		found = found || h == col
	}
	if !found {
		return fmt.Errorf("experiments: %s: %s %q is not a column of results.csv (runs recorded before cost accounting have no cost columns: rerun them); columns: %s",
			dir, flag, col, strings.Join(have, ", "))
	}
	for _, r := range res.Rows {
		if v, ok := r.Metrics[col]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			return nil
		}
	}
	return fmt.Errorf("experiments: %s: %s %q has no finite value in results.csv (every run is NaN, e.g. draws from the exact target, or runs recorded before cost accounting)", dir, flag, col)
}

// numericSettings returns the swept settings (other than variant) whose
// every recorded value is a number.
func numericSettings(cols []string, groups []*group) []string {
	var out []string
	for _, c := range cols {
		if c == "variant" {
			continue
		}
		ok := true
		for _, g := range groups {
			if v := g.settings[c]; v != "-" {
				if _, err := strconv.ParseFloat(v, 64); err != nil {
					ok = false
				}
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// columnLabel is a results column's axis label: the metric's label (the
// runner's or the task's) when it is short, else the key.
func columnLabel(tk task.Task, key string) string {
	for _, m := range append(append([]task.Metric(nil), task.CommonMetrics...), tk.Metrics()...) {
		if m.Key == key && len([]rune(m.Label)) <= 32 {
			return m.Label
		}
	}
	return key
}
