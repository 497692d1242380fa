package experiments

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
)

// reportMetrics returns the metrics a task's figures plot against the
// swept settings and the columns of its summary table: the reward columns,
// then the task's own, then the engine's.
func reportMetrics(tk task.Task) (plot []task.Metric, summary []string) {
	var ordered []task.Metric
	ordered = append(ordered, task.CommonMetrics[:2]...)
	ordered = append(ordered, tk.Metrics()...)
	ordered = append(ordered, task.CommonMetrics[2:]...)
	for _, m := range ordered {
		if m.Plot {
			plot = append(plot, m)
		}
		if m.Summary {
			summary = append(summary, m.Key)
		}
	}
	return plot, summary
}

// openRecordedTask opens the task a sweep directory was run on, with its
// default options (enough for metric lists and rendering).
func openRecordedTask(meta sweepMeta) (task.Task, error) {
	tk, err := task.Open(&task.Spec{Name: meta.Data, TrainSize: 1, ValSize: 1}, nil)
	if err != nil {
		return nil, fmt.Errorf("experiments: sweep %s was run on task %q: %w", meta.Name, meta.Data, err)
	}
	return tk, nil
}

// group is the runs of one point: mean and standard error per metric.
type group struct {
	point    int
	settings map[string]string
	mean, se map[string]float64
	count    map[string]int // finite values per metric (se = sd/√count)
	n        int
}

// summarisePoints groups results rows by point.
func summarisePoints(res *Results) []*group {
	byPoint := map[int]*group{}
	vals := map[int]map[string][]float64{}
	for _, r := range res.Rows {
		p := r.Point
		g, ok := byPoint[p]
		if !ok {
			g = &group{point: p, settings: r.Settings, mean: map[string]float64{}, se: map[string]float64{}, count: map[string]int{}}
			byPoint[p], vals[p] = g, map[string][]float64{}
		}
		g.n++
		for m, v := range r.Metrics {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				vals[p][m] = append(vals[p][m], v)
			}
		}
	}
	out := make([]*group, 0, len(byPoint))
	for p, g := range byPoint {
		for m, v := range vals[p] {
			mean, se := MeanSE(v)
			g.mean[m], g.count[m] = mean, len(v)
			if len(v) > 1 {
				g.se[m] = se
			}
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].point < out[j].point })
	return out
}

// loadSweep reads a sweep directory's plan, task and results.
func loadSweep(dir string) (sweepMeta, task.Task, []*group, error) {
	meta, err := readSweepMeta(dir)
	if err != nil {
		return meta, nil, nil, err
	}
	tk, err := openRecordedTask(meta)
	if err != nil {
		return meta, nil, nil, err
	}
	res, err := ReadResults(dir, meta.Columns)
	if err != nil {
		return meta, nil, nil, err
	}
	return meta, tk, summarisePoints(res), nil
}

// PlotSweep draws a sweep's figures into DIR/figures (PNG and SVG) from
// DIR/results.csv, DIR/sweep.json and the runs' traces and samples, and
// returns the PNG paths. It recomputes nothing.
func PlotSweep(dir string) ([]string, error) {
	figs, _, err := PlotSweepNotes(dir)
	return figs, err
}

// PlotSweepNotes is PlotSweep that also says what it left out of the
// figures: runs whose record, trace or samples are missing or belong to
// another run.
func PlotSweepNotes(dir string) (figs, notes []string, err error) {
	figs, err = plotSweep(dir, &notes)
	return figs, notes, err
}

func plotSweep(dir string, notes *[]string) ([]string, error) {
	meta, tk, groups, err := loadSweep(dir)
	if err != nil {
		return nil, err
	}
	figDir := filepath.Join(dir, "figures")
	var out []string
	save := func(name string, draw func(path string) error) error {
		for _, ext := range []string{".png", ".svg"} {
			if err := draw(filepath.Join(figDir, name+ext)); err != nil {
				return err
			}
		}
		out = append(out, filepath.Join(figDir, name+".png"))
		return nil
	}
	// Numeric swept settings become x axes; the other settings label the series.
	var numeric []string
	for _, c := range meta.Columns {
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
			numeric = append(numeric, c)
		}
	}
	plotted, _ := reportMetrics(tk)
	for _, x := range numeric {
		for _, m := range plotted {
			series := seriesAgainst(groups, meta.Columns, x, m.Key)
			if len(series) == 0 {
				continue
			}
			o := plots.ErrorOpts{LineOpts: plots.LineOpts{Title: fmt.Sprintf("%s: %s against %s (mean ± SE, %d repeats)", meta.Name, m.Label, x, meta.Repeats),
				XLabel: x, YLabel: m.Label, YMin: math.NaN(), YMax: math.NaN(), LogX: x == "particles"}}
			if err := save(fmt.Sprintf("%s_vs_%s", m.Key, x), func(p string) error { return plots.ErrorBars(p, series, o) }); err != nil {
				return out, err
			}
		}
	}
	// Points with no numeric swept value (e.g. one point per method, or the
	// exact-look-ahead block of an ablation): one bar per point.
	var cat []*group
	for _, g := range groups {
		has := false
		for _, x := range numeric {
			if g.settings[x] != "-" {
				has = true
			}
		}
		if !has {
			cat = append(cat, g)
		}
	}
	if len(cat) > 0 {
		groups := cat
		labels := make([]string, len(groups))
		for i, g := range groups {
			labels[i] = label(g.settings, meta.Columns, "")
		}
		for _, m := range plotted {
			vals, errs := make([]float64, len(groups)), make([]float64, len(groups))
			any := false
			for i, g := range groups {
				v, ok := g.mean[m.Key]
				if !ok {
					v = math.NaN()
				} else {
					any = true
				}
				vals[i], errs[i] = v, g.se[m.Key]
			}
			if !any {
				continue
			}
			o := plots.LineOpts{Title: fmt.Sprintf("%s: %s (mean ± SE, %d repeats)", meta.Name, m.Label, meta.Repeats),
				YLabel: m.Label, YMin: math.NaN(), YMax: math.NaN()}
			if err := save("bars_"+m.Key, func(p string) error {
				return plots.Bars(p, labels, []string{m.Label}, [][]float64{vals}, [][]float64{errs}, o)
			}); err != nil {
				return out, err
			}
		}
	}
	// Traces and outputs of repeat 0, at most 8 points.
	var curves []plots.TraceCurve
	var panels []task.Panel
	for _, g := range groups {
		if len(curves) >= 8 && len(panels) >= 8 {
			break
		}
		d := runDir(dir, g.point, 0)
		name := label(g.settings, meta.Columns, "")
		rec, err := ReadRecord(d)
		if err == nil && g.point < len(meta.Points) {
			err = checkRecord(rec, meta.Points[g.point], 0, meta.Seed)
		}
		if err != nil {
			*notes = append(*notes, fmt.Sprintf("%s (%s): %v", runID(g.point, 0), name, err))
			continue
		}
		if c, err := readTrace(filepath.Join(d, "trace.csv")); err == nil && len(curves) < 8 {
			c.Name = name
			curves = append(curves, c)
		} else if err != nil && exists(filepath.Join(d, "trace.jsonl")) {
			*notes = append(*notes, fmt.Sprintf("%s (%s): no readable trace.csv: %v", runID(g.point, 0), name, err))
		}
		if len(panels) >= 8 {
			continue
		}
		x, l, err := readSamples(filepath.Join(d, "samples.csv"))
		if err != nil || len(x) == 0 {
			*notes = append(*notes, fmt.Sprintf("%s (%s): no readable samples.csv: %v", runID(g.point, 0), name, err))
			continue
		}
		alpha := 1.0
		if g.point < len(meta.Points) {
			alpha = meta.Points[g.point].SMC.Alpha
		}
		panels = append(panels, task.Panel{Title: name, Out: task.Outputs{L: l, Samples: x, Alpha: alpha, Dir: d}, Metrics: rec.Metrics})
	}
	if len(curves) > 0 {
		if err := save("ess_trace", func(p string) error {
			return plots.ESSTraces(p, curves, meta.Name+": ESS/N per step (repeat 0; markers = resampling)")
		}); err != nil {
			return out, err
		}
		if err := save("reward_trace", func(p string) error {
			return plots.RewardTraces(p, curves, meta.Name+": mean look-ahead reward per step (repeat 0)")
		}); err != nil {
			return out, err
		}
	}
	if len(panels) > 0 {
		if err := save("samples", func(p string) error { return tk.Render(p, panels) }); err != nil {
			return out, err
		}
	}
	return out, nil
}

// label names a point by its settings other than skip.
func label(s map[string]string, cols []string, skip string) string {
	var parts []string
	for _, c := range cols {
		if c == skip || s[c] == "-" || s[c] == "" {
			continue
		}
		if c == "variant" {
			parts = append(parts, s[c])
		} else {
			parts = append(parts, c+"="+s[c])
		}
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, " ")
}

// seriesAgainst builds one error-bar series per combination of the other
// settings, with x the numeric setting.
func seriesAgainst(groups []*group, cols []string, x, metric string) []plots.ErrorSeries {
	idx := map[string]int{}
	var out []plots.ErrorSeries
	for _, g := range groups {
		xv, err := strconv.ParseFloat(g.settings[x], 64)
		if err != nil {
			continue
		}
		y, ok := g.mean[metric]
		if !ok {
			continue
		}
		name := label(g.settings, cols, x)
		i, ok := idx[name]
		if !ok {
			i = len(out)
			idx[name] = i
			out = append(out, plots.ErrorSeries{Name: name})
		}
		out[i].X = append(out[i].X, xv)
		out[i].Y = append(out[i].Y, y)
		out[i].Err = append(out[i].Err, g.se[metric])
	}
	for i := range out {
		s := &out[i]
		ord := make([]int, len(s.X))
		for j := range ord {
			ord[j] = j
		}
		sort.Slice(ord, func(a, b int) bool { return s.X[ord[a]] < s.X[ord[b]] })
		X, Y, E := make([]float64, len(ord)), make([]float64, len(ord)), make([]float64, len(ord))
		for j, o := range ord {
			X[j], Y[j], E[j] = s.X[o], s.Y[o], s.Err[o]
		}
		s.X, s.Y, s.Err = X, Y, E
	}
	return out
}

// SummaryTable returns a Markdown table of a sweep directory's results:
// one row per point, mean ± standard error over its repeats, or mean ±
// standard deviation with sd (as the paper's tables report).
func SummaryTable(dir string, sd bool) (string, error) {
	meta, tk, groups, err := loadSweep(dir)
	if err != nil {
		return "", err
	}
	_, summaryMetrics := reportMetrics(tk)
	var sb strings.Builder
	sb.WriteString("| point | n |")
	for _, m := range summaryMetrics {
		fmt.Fprintf(&sb, " %s |", m)
	}
	sb.WriteString("\n|---|---|")
	for range summaryMetrics {
		sb.WriteString("---|")
	}
	sb.WriteString("\n")
	for _, g := range groups {
		fmt.Fprintf(&sb, "| %s | %d |", label(g.settings, meta.Columns, ""), g.n)
		for _, m := range summaryMetrics {
			v, ok := g.mean[m]
			switch {
			case !ok:
				sb.WriteString(" – |")
			case g.n > 1 && sd:
				fmt.Fprintf(&sb, " %s ± %s |", fmtNum(v), fmtNum(g.se[m]*math.Sqrt(float64(g.count[m]))))
			case g.n > 1:
				fmt.Fprintf(&sb, " %s ± %s |", fmtNum(v), fmtNum(g.se[m]))
			default:
				fmt.Fprintf(&sb, " %s |", fmtNum(v))
			}
		}
		sb.WriteString("\n")
	}
	return sb.String(), nil
}

// fmtNum prints a number with 3 significant digits (at least 2 decimals
// below 10).
func fmtNum(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 0.01 || a == 0:
		return strconv.FormatFloat(x, 'f', 3, 64)
	default:
		return strconv.FormatFloat(x, 'g', 2, 64)
	}
}

// PlotTraining redraws DIR/train_curve.png from DIR/train_curve.csv (a
// denoiser's output directory) and returns its path.
func PlotTraining(dir string) (string, error) {
	f, err := os.Open(filepath.Join(dir, "train_curve.csv"))
	if err != nil {
		return "", fmt.Errorf("experiments: %s holds neither a sweep (sweep.json) nor a training curve: %w", dir, err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return "", fmt.Errorf("experiments: %s/train_curve.csv: unreadable or empty: %v", dir, err)
	}
	var curve []objectives.Record
	for _, r := range rows[1:] {
		if len(r) < 3 {
			return "", fmt.Errorf("experiments: %s/train_curve.csv: short row %v", dir, r)
		}
		st, err1 := strconv.Atoi(r[0])
		loss, err2 := strconv.ParseFloat(r[1], 64)
		val, err3 := strconv.ParseFloat(r[2], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return "", fmt.Errorf("experiments: %s/train_curve.csv: bad row %v", dir, r)
		}
		curve = append(curve, objectives.Record{Step: st, Loss: loss, ValELBO: val})
	}
	out := filepath.Join(dir, "train_curve.png")
	return out, plotCurve(out, curve, filepath.Base(dir))
}

// FormatRecord prints one run's metrics: the common ones on the first
// line, the task's on the second, with the task's labels.
func FormatRecord(tk task.Task, rec Record) string {
	var sb strings.Builder
	line := func(ms []task.Metric) {
		var parts []string
		for _, m := range ms {
			if v, ok := rec.Metrics[m.Key]; ok {
				parts = append(parts, fmt.Sprintf("%s %s", m.Key, strconv.FormatFloat(v, 'g', 6, 64)))
			}
		}
		sb.WriteString(strings.Join(parts, ", "))
		sb.WriteByte('\n')
	}
	line(task.CommonMetrics)
	line(tk.Metrics())
	return sb.String()
}

// MeanSE returns the mean of x and its standard error √(s²/n) with the
// n−1 sample variance (NaN mean for no values, NaN error below two).
func MeanSE(x []float64) (mean, se float64) {
	if len(x) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, v := range x {
		mean += v / float64(len(x))
	}
	if len(x) < 2 {
		return mean, math.NaN()
	}
	ss := 0.0
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(ss / float64(len(x)-1) / float64(len(x)))
}
