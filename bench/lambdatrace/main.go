// Command lambdatrace draws the tempering exponent λ (and ESS/N) against
// the step for repeat 0 of every point of a sweep directory, one curve per
// point, from the runs' trace.csv: the schedules an adaptive sweep chose
// beside the fixed ones (issue 18).
//
//	go run ./bench/lambdatrace -filter variant=SMC-FALOP runs/sweeps/gmm1_adaptive out.png
package main

import (
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/plots"
)

type point struct {
	Index    int               `json:"index"`
	Settings map[string]string `json:"settings"`
}

func main() {
	filter := flag.String("filter", "", "only points with this setting, key=value")
	column := flag.String("y", "lambda", "trace column to draw (lambda, ess, ...)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: lambdatrace [-filter key=value] [-y column] SWEEPDIR OUT.png")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *filter, *column); err != nil {
		fmt.Fprintln(os.Stderr, "lambdatrace:", err)
		os.Exit(1)
	}
}

func run(dir, out, filter, column string) error {
	b, err := os.ReadFile(filepath.Join(dir, "sweep.json"))
	if err != nil {
		return err
	}
	var meta struct {
		Name   string  `json:"name"`
		Points []point `json:"points"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return err
	}
	var series []plots.Series
	for _, p := range meta.Points {
		if k, v, ok := strings.Cut(filter, "="); ok && p.Settings[k] != v {
			continue
		}
		xs, ys, err := readColumn(filepath.Join(dir, "runs", fmt.Sprintf("%04d-00", p.Index), "trace.csv"), column)
		if err != nil {
			return err
		}
		series = append(series, plots.Series{Name: label(p.Settings, filter), X: xs, Y: ys})
	}
	if len(series) == 0 {
		return fmt.Errorf("no point matches %q", filter)
	}
	return plots.Lines(out, series, plots.LineOpts{Title: fmt.Sprintf("%s: %s per step (repeat 0) %s", meta.Name, column, filter),
		XLabel: "step", YLabel: column, YMin: math.NaN(), YMax: math.NaN()})
}

func label(s map[string]string, skip string) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		if k+"="+s[k] == skip {
			continue
		}
		parts = append(parts, k+"="+s[k])
	}
	return strings.Join(parts, " ")
}

func readColumn(path, column string) (xs, ys []float64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, nil, fmt.Errorf("%s: unreadable trace", path)
	}
	col, step := -1, -1
	for i, h := range rows[0] {
		switch h {
		case column:
			col = i
		case "step":
			step = i
		}
	}
	if col < 0 || step < 0 {
		return nil, nil, fmt.Errorf("%s has no column %q", path, column)
	}
	for _, r := range rows[1:] {
		x, _ := strconv.ParseFloat(r[step], 64)
		y, _ := strconv.ParseFloat(r[col], 64)
		xs, ys = append(xs, x), append(ys, y)
	}
	return xs, ys, nil
}
