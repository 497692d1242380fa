package experiments

import (
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/plots"
)

// PlotPooled draws a metric of a sweep's pooled table against a swept
// setting: from DIR/pooled_mean.csv (mean ± standard error over the
// averaged keys; pooled.csv if there is none), y against x with one curve
// per value of the series column, and one figure per value of the panel
// column ("" = a single figure). Rows that differ only in the variant
// (e.g. the plain CFG sampler at N = 1 and SMC at N > 1) join one curve.
// It writes DIR/figures/pooled_<y>_vs_<x>[_<panel>=<v>] (PNG and SVG) and
// returns the PNG paths. where keeps only the rows whose columns have the
// given values (e.g. phi = "-": the rows of the block that did not sweep
// φ), and rows whose x is not a number ("-": not swept in their block) are
// left out. An unknown column, or two rows at one point of one curve, is
// an error.
func PlotPooled(dir, x, y, series, panel string, where map[string]string) ([]string, error) {
	path := filepath.Join(dir, PooledMeanFile)
	if _, err := os.Stat(path); err != nil {
		path = filepath.Join(dir, PooledFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("experiments: no pooled table in %s (a sweep with a [pool] table writes one; ddsmc sweep -pool recomputes it): %w", dir, err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("experiments: %s: no rows (%v)", path, err)
	}
	head := rows[0]
	col := func(name, flag string) (int, error) {
		if name == "" {
			return -1, nil
		}
		i := slices.Index(head, name)
		if i < 0 {
			return 0, fmt.Errorf("experiments: %s %q is not a column of %s (columns: %s)", flag, name, path, strings.Join(head, ", "))
		}
		return i, nil
	}
	xi, err := col(x, "-x")
	if err != nil {
		return nil, err
	}
	yi, err := col(y, "-y")
	if err != nil {
		return nil, err
	}
	si, err := col(series, "-series")
	if err != nil {
		return nil, err
	}
	pi, err := col(panel, "-panel")
	if err != nil {
		return nil, err
	}
	ei := slices.Index(head, y+"_se")
	keep := func(r []string) (bool, error) {
		for k, v := range where {
			i, err := col(k, "-where")
			if err != nil {
				return false, err
			}
			if r[i] != v {
				return false, nil
			}
		}
		return true, nil
	}
	type point struct{ x, y, e float64 }
	panels := map[string]map[string][]point{}
	var panelOrder []string
	for _, r := range rows[1:] {
		if ok, err := keep(r); err != nil {
			return nil, err
		} else if !ok || r[xi] == "-" {
			continue
		}
		pv := ""
		if pi >= 0 {
			pv = r[pi]
		}
		sv := y
		if si >= 0 {
			sv = series + " = " + r[si]
		}
		xv, err1 := strconv.ParseFloat(r[xi], 64)
		yv, err2 := strconv.ParseFloat(r[yi], 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("experiments: %s: %s = %q, %s = %q are not both numbers", path, x, r[xi], y, r[yi])
		}
		ev := math.NaN()
		if ei >= 0 {
			ev, _ = strconv.ParseFloat(r[ei], 64)
		}
		if panels[pv] == nil {
			panels[pv] = map[string][]point{}
			panelOrder = append(panelOrder, pv)
		}
		for _, p := range panels[pv][sv] {
			if p.x == xv {
				return nil, fmt.Errorf("experiments: %s: two rows at %s = %v on the curve %s (panel %q): choose -series/-panel so that each point is one row", path, x, xv, sv, pv)
			}
		}
		panels[pv][sv] = append(panels[pv][sv], point{xv, yv, ev})
	}
	var out []string
	for _, pv := range panelOrder {
		var names []string
		for n := range panels[pv] {
			names = append(names, n)
		}
		sort.Strings(names)
		var ss []plots.ErrorSeries
		for _, n := range names {
			pts := panels[pv][n]
			sort.Slice(pts, func(a, b int) bool { return pts[a].x < pts[b].x })
			s := plots.ErrorSeries{Name: n}
			for _, p := range pts {
				s.X, s.Y, s.Err = append(s.X, p.x), append(s.Y, p.y), append(s.Err, p.e)
			}
			ss = append(ss, s)
		}
		name := "pooled_" + y + "_vs_" + x
		title := fmt.Sprintf("%s against %s (pooled outputs", y, x)
		if ei >= 0 {
			title += "; mean ± s.e. over the averaged groups"
		}
		title += ")"
		if pi >= 0 {
			name += "_" + panel + "=" + pv
			title += ", " + panel + " = " + pv
		}
		for _, k := range sortedKeys(where) {
			name += "_" + k + "=" + strings.ReplaceAll(where[k], "-", "none")
		}
		png := filepath.Join(dir, "figures", name+".png")
		if err := os.MkdirAll(filepath.Dir(png), 0o755); err != nil {
			return nil, err
		}
		o := plots.ErrorOpts{LineOpts: plots.LineOpts{Title: title, XLabel: x, YLabel: y, YMin: math.NaN(), YMax: math.NaN(), LogX: logScale(ss)}}
		if err := plots.ErrorBars(png, ss, o); err != nil {
			return nil, err
		}
		if err := plots.ErrorBars(strings.TrimSuffix(png, ".png")+".svg", ss, o); err != nil {
			return nil, err
		}
		out = append(out, png)
	}
	return out, nil
}

// logScale reports whether the curves' x are positive and span a factor
// of 8 or more (e.g. N = 1…16), which reads better on a log axis.
func logScale(ss []plots.ErrorSeries) bool {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.X {
			if !(v > 0) {
				return false
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	return hi >= 8*lo
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
