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

	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/plots"
)

// metricLabel is a results column drawn against the swept settings, with
// its axis label.
type metricLabel struct{ key, label string }

// plotMetrics are the results columns drawn against the swept settings for
// the GMM tasks.
var plotMetrics = []metricLabel{
	{"reward_mean", "mean reward"},
	{"reward_max", "best reward among the outputs"},
	{"emd", "EMD to target (grid units)"},
	{"diversity", "unique grid points"},
	{"ess_min", "min ESS/N"},
	{"resamples", "resampling events"},
	{"log_z_error", "log Ẑ − log Z"},
	{"tv_exact", "TV(outputs, exact model target)"},
	{"wall_s", "wall time per run (s)"},
}

// imagePlotMetrics are the plotted columns of image (classifier-reward)
// tasks, as in the paper's MNIST figures.
var imagePlotMetrics = []metricLabel{
	{"reward_mean", "reward log p(target|x)"},
	{"reward_val", "val reward (held-out classifier)"},
	{"acc", "accuracy (p(target) > 0.5)"},
	{"acc_val", "val accuracy (held-out classifier)"},
	{"diversity", "diversity (effective rank of held-out embeddings)"},
	{"resamples", "resampling events"},
	{"success_any", "success@1 (≥ 1 correct output)"},
	{"success_all", "success@all (every output correct)"},
	{"ess_min", "min ESS/N"},
	{"wall_s", "wall time per run (s)"},
}

// metricsFor returns the plotted metrics and the summary-table columns of
// a sweep over data set data.
func metricsFor(data string) ([]metricLabel, []string) {
	if data == "mnist" {
		keys := make([]string, len(imagePlotMetrics))
		for i, m := range imagePlotMetrics {
			keys[i] = m.key
		}
		return imagePlotMetrics, keys
	}
	return plotMetrics, summaryMetrics
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
func summarisePoints(header []string, rows [][]string, cols []string) ([]*group, error) {
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	if _, ok := col["run"]; !ok {
		return nil, fmt.Errorf("experiments: results.csv has no run column")
	}
	byPoint := map[int]*group{}
	vals := map[int]map[string][]float64{}
	for _, r := range rows {
		p, err := strconv.Atoi(strings.SplitN(r[col["run"]], "-", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("experiments: bad run id %q", r[col["run"]])
		}
		g, ok := byPoint[p]
		if !ok {
			g = &group{point: p, settings: map[string]string{}, mean: map[string]float64{}, se: map[string]float64{}, count: map[string]int{}}
			for _, c := range cols {
				g.settings[c] = r[col[c]]
			}
			byPoint[p], vals[p] = g, map[string][]float64{}
		}
		g.n++
		for _, m := range MetricColumns {
			if i, ok := col[m]; ok {
				if v, err := strconv.ParseFloat(r[i], 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
					vals[p][m] = append(vals[p][m], v)
				}
			}
		}
	}
	out := make([]*group, 0, len(byPoint))
	for p, g := range byPoint {
		for m, v := range vals[p] {
			mean := 0.0
			for _, x := range v {
				mean += x / float64(len(v))
			}
			ss := 0.0
			for _, x := range v {
				ss += (x - mean) * (x - mean)
			}
			g.mean[m], g.count[m] = mean, len(v)
			if len(v) > 1 {
				g.se[m] = math.Sqrt(ss / float64(len(v)-1) / float64(len(v)))
			}
		}
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].point < out[j].point })
	return out, nil
}

// PlotSweep draws a sweep's figures into DIR/figures (PNG and SVG) from
// DIR/results.csv, DIR/sweep.json and the runs' traces and samples, and
// returns the PNG paths. It recomputes nothing.
func PlotSweep(dir string) ([]string, error) {
	meta, err := readSweepMeta(dir)
	if err != nil {
		return nil, err
	}
	header, rows, err := ReadResults(dir)
	if err != nil {
		return nil, err
	}
	groups, err := summarisePoints(header, rows, meta.Columns)
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
	plotted, _ := metricsFor(meta.Data)
	for _, x := range numeric {
		for _, m := range plotted {
			series := seriesAgainst(groups, meta.Columns, x, m.key)
			if len(series) == 0 {
				continue
			}
			o := plots.ErrorOpts{LineOpts: plots.LineOpts{Title: fmt.Sprintf("%s: %s against %s (mean ± SE, %d repeats)", meta.Name, m.label, x, meta.Repeats),
				XLabel: x, YLabel: m.label, YMin: math.NaN(), YMax: math.NaN(), LogX: x == "particles"}}
			if err := save(fmt.Sprintf("%s_vs_%s", m.key, x), func(p string) error { return plots.ErrorBars(p, series, o) }); err != nil {
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
				v, ok := g.mean[m.key]
				if !ok {
					v = math.NaN()
				} else {
					any = true
				}
				vals[i], errs[i] = v, g.se[m.key]
			}
			if !any {
				continue
			}
			o := plots.LineOpts{Title: fmt.Sprintf("%s: %s (mean ± SE, %d repeats)", meta.Name, m.label, meta.Repeats),
				YLabel: m.label, YMin: math.NaN(), YMax: math.NaN()}
			if err := save("bars_"+m.key, func(p string) error {
				return plots.Bars(p, labels, []string{m.label}, [][]float64{vals}, [][]float64{errs}, o)
			}); err != nil {
				return out, err
			}
		}
	}
	// Traces and scatters of repeat 0, at most 8 points.
	var curves []plots.TraceCurve
	var panels []plots.ScatterPanel
	var grid int
	if len(meta.Points) > 0 {
		if task, err := loadReference(DataConfig{Name: meta.Data}); err == nil && task.GMM != nil {
			grid = task.V
			if tp, err := task.GMM.TiltedPMF(meta.Points[0].SMC.Alpha); err == nil {
				panels = append(panels, plots.ScatterPanel{Title: "target pmf (data·exp(r/α))", PMF: tp})
			}
		}
	}
	for _, g := range groups {
		if len(curves) >= 8 {
			break
		}
		d := runDir(dir, g.point, 0)
		name := label(g.settings, meta.Columns, "")
		if c, err := readTrace(filepath.Join(d, "trace.csv")); err == nil {
			c.Name = name
			curves = append(curves, c)
		}
		if grid > 0 && len(panels) < 8 {
			if pts, err := readPoints(filepath.Join(d, "samples.csv")); err == nil {
				rec, _ := readRecord(d)
				panels = append(panels, plots.ScatterPanel{Title: fmt.Sprintf("%s\nreward %.2f, EMD %.2f, %d unique", name,
					rec.Metrics["reward_mean"], rec.Metrics["emd"], int(rec.Metrics["diversity"])), Points: pts})
			}
		}
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
	if len(panels) > 1 {
		if err := save("samples", func(p string) error { return plots.Scatters(p, grid, grid, panels) }); err != nil {
			return out, err
		}
	}
	if meta.Data == "mnist" {
		for _, g := range groups {
			if err := imageSampleGrid(dir, g, meta, save); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// imageSampleGrid draws the outputs of repeat 0 of an image-task point as
// figures/samples_pNNN, each captioned with its main-classifier reward.
func imageSampleGrid(dir string, g *group, meta sweepMeta, save func(string, func(string) error) error) error {
	d := runDir(dir, g.point, 0)
	x, L, err := readTokenRows(filepath.Join(d, "samples.csv"))
	if err != nil {
		return nil // not run yet
	}
	side := int(math.Round(math.Sqrt(float64(L))))
	if side*side != L || len(x) == 0 {
		return fmt.Errorf("experiments: %s/samples.csv: %d pixels per row is not a square image", d, L)
	}
	imgs := tokensAsImages(x, L)
	if len(imgs) > 32 {
		imgs = imgs[:32]
	}
	var captions []string
	if r, err := readSampleRewards(filepath.Join(d, "sample_rewards.csv")); err == nil && len(r) >= len(imgs) {
		captions = make([]string, len(imgs))
		for i := range imgs {
			captions[i] = fmt.Sprintf("r = %.2f", r[i])
		}
	}
	rec, _ := readRecord(d)
	title := fmt.Sprintf("%s (repeat 0): reward %.2f, acc %.2f, val acc %.2f", label(g.settings, meta.Columns, ""),
		rec.Metrics["reward_mean"], rec.Metrics["acc"], rec.Metrics["acc_val"])
	return save(fmt.Sprintf("samples_p%03d", g.point), func(p string) error {
		return plots.ImageGrid(p, imgs, side, side, 8, captions, title)
	})
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

// readTrace reads a trace.csv written by smc.WriteTraceCSV.
func readTrace(path string) (plots.TraceCurve, error) {
	var c plots.TraceCurve
	f, err := os.Open(path)
	if err != nil {
		return c, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return c, fmt.Errorf("experiments: %s: unreadable trace", path)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, r := range rows[1:] {
		st, _ := strconv.Atoi(r[col["step"]])
		ess, _ := strconv.ParseFloat(r[col["ess"]], 64)
		rh, err := strconv.ParseFloat(r[col["rhat_mean"]], 64)
		if err != nil {
			rh = math.NaN()
		}
		c.Step = append(c.Step, st)
		c.ESS = append(c.ESS, ess)
		c.Resampled = append(c.Resampled, r[col["resampled"]] == "1")
		c.RhatMean = append(c.RhatMean, rh)
	}
	return c, nil
}

// readPoints reads an L = 2 samples.csv as grid points.
func readPoints(path string) ([][2]int, error) {
	x, L, err := readTokenRows(path)
	if err != nil {
		return nil, err
	}
	if L != 2 {
		return nil, fmt.Errorf("experiments: %s: want 2 columns", path)
	}
	pts := make([][2]int, len(x)/2)
	for i := range pts {
		pts[i] = [2]int{x[2*i], x[2*i+1]}
	}
	return pts, nil
}

// summaryMetrics are the columns of SummaryTable.
var summaryMetrics = []string{"reward_mean", "reward_max", "emd", "diversity", "ess_min", "ess_mean", "resamples", "log_z_error", "tv_exact", "wall_s"}

// SummaryTable returns a Markdown table of a sweep directory's results:
// one row per point, mean ± standard error over its repeats, or mean ±
// standard deviation with sd (as the paper's tables report).
func SummaryTable(dir string, sd bool) (string, error) {
	meta, err := readSweepMeta(dir)
	if err != nil {
		return "", err
	}
	header, rows, err := ReadResults(dir)
	if err != nil {
		return "", err
	}
	groups, err := summarisePoints(header, rows, meta.Columns)
	if err != nil {
		return "", err
	}
	_, summaryMetrics := metricsFor(meta.Data)
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
