// Command dnapool pools the outputs of a DNA sweep by point (one output per
// run with the argmax-reward selection) and computes the set-level
// held-out metrics that a single run cannot give: medians over the cell's
// outputs, the 3-mer Pearson and 126-motif Spearman correlations of the
// pooled outputs with the top 1% of real windows, and the shares. It
// writes pooled.csv, one figure per metric against N per method
// (figures/pooled_<metric>.png) and sequences_N<n>.svg (outputs with
// their sites marked) into the sweep directory, and prints a Markdown
// table.
//
//	go run ./experiments/dna/cmd/dnapool [-n 16] runs/sweeps/dna_table
//	go run ./experiments/dna/cmd/dnapool -out runs/sweeps/dna_all runs/sweeps/dna_table runs/sweeps/dna_alpha05
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/ddsmc/ddsmc/experiments"
	"github.com/ddsmc/ddsmc/experiments/dna"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/plots"
)

// cell is one point of a sweep with its pooled outputs.
type cell struct {
	point           int
	variant         string
	n               int
	alpha           string
	x               []int
	rewards, elbos  []float64 // per output; per run
	ess, wall       []float64
	set             dna.SetMetrics
	medR, medE, p90 float64
}

func main() {
	base := flag.String("config", "dna", "the base experiment config (for the data directory)")
	show := flag.Int("n", 16, "particle count whose sequences are drawn and printed")
	out := flag.String("out", "", "pool all the sweeps together into this directory (default: each sweep on its own, into itself)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: dnapool [-config dna] [-n 16] <sweep dir>...")
		os.Exit(2)
	}
	b, err := experiments.ConfigText(*base)
	check(err)
	cfg, err := experiments.Parse(*base, b)
	check(err)
	tk, ok := cfg.Task.(*dna.Task)
	if !ok {
		check(fmt.Errorf("dnapool: config %s is not a dna task", *base))
	}
	j, err := tk.Judges()
	check(err)
	if *out != "" {
		check(pool(*out, flag.Args(), tk, j, *show))
		return
	}
	for _, dir := range flag.Args() {
		check(pool(dir, []string{dir}, tk, j, *show))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// pool pools the runs of the sweeps in srcs by (variant, α, N) and writes
// the table, figures and sequences into dir.
func pool(dir string, srcs []string, tk *dna.Task, j *dna.Judges, show int) error {
	var runs []string
	for _, src := range srcs {
		r, err := filepath.Glob(filepath.Join(src, "runs", "*", "record.json"))
		if err != nil {
			return err
		}
		runs = append(runs, r...)
	}
	L, _ := tk.Shape()
	// Cells are keyed by their settings, so the runs of one setting in
	// several sweeps (e.g. more seeds of a cell) pool together.
	type key struct {
		variant, alpha string
		n              int
	}
	cells := map[key]*cell{}
	for _, rp := range runs {
		rd := filepath.Dir(rp)
		rec, err := experiments.ReadRecord(rd)
		if err != nil {
			return err
		}
		x, err := readSamples(filepath.Join(rd, "samples.csv"), L)
		if err != nil {
			return err
		}
		if rec.Run == nil {
			return fmt.Errorf("dnapool: %s: record without run information", rd)
		}
		alpha := rec.Setting["alpha"]
		if alpha == "" {
			alpha = strconv.FormatFloat(rec.Run.Alpha, 'g', 4, 64)
		}
		k := key{rec.Setting["variant"], alpha, rec.Run.N}
		c := cells[k]
		if c == nil {
			c = &cell{point: rec.Point, variant: k.variant, alpha: alpha, n: k.n}
			cells[k] = c
		}
		c.x = append(c.x, x...)
		m := rec.Metrics
		c.elbos = append(c.elbos, m["elbo_bits"])
		c.ess = append(c.ess, m["ess_mean"])
		c.wall = append(c.wall, m["wall_s"])
	}
	if len(cells) == 0 {
		return fmt.Errorf("dnapool: no finished runs in %v", srcs)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	reward, _, err := tk.Reward(1)
	if err != nil {
		return err
	}
	var list []*cell
	for _, c := range cells {
		d, err := task.NewDataset(L, 4, c.x)
		if err != nil {
			return err
		}
		c.rewards = make([]float64, d.Len())
		if err := reward.Reward(c.x, c.rewards); err != nil {
			return err
		}
		c.set = j.Set(d)
		c.medR, c.medE, c.p90 = median(c.rewards), median(c.elbos), quantile(c.rewards, 0.9)
		list = append(list, c)
	}
	sort.Slice(list, func(a, b int) bool {
		if list[a].alpha != list[b].alpha {
			return list[a].alpha < list[b].alpha
		}
		if list[a].variant != list[b].variant {
			return order(list[a].variant) < order(list[b].variant)
		}
		return list[a].n < list[b].n
	})
	if err := writeCSV(filepath.Join(dir, "pooled.csv"), list); err != nil {
		return err
	}
	fmt.Printf("\n%s (pooled over each cell's outputs)\n\n", dir)
	fmt.Println("| α | method | N | outputs | reward median | reward p90 | Trl sites/seq | Trl hit % | ≥3 GAGAG % | promoter % | 3-mer r | motif ρ | Markov-5 bits (median) | −ELBO bits (median) | GC | distinct % | s/run |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range list {
		s := c.set
		fmt.Printf("| %s | %s | %d | %d | %.2f | %.2f | %.3f | %.1f | %.1f | %.1f | %.3f | %.3f | %.3f | %.3f | %.3f | %.0f | %.2f |\n",
			c.alpha, c.variant, c.n, s.N, c.medR, c.p90, s.TrlSites, 100*s.TrlHit, 100*s.GAGA3, 100*s.Promoter, s.Kmer3, s.MotifRho,
			s.MarkovMedian, c.medE, s.GC, 100*s.Unique, mean(c.wall))
	}
	if err := references(tk, j, reward.Reward); err != nil {
		return err
	}
	if err := figures(dir, list); err != nil {
		return err
	}
	return sequences(dir, tk, j, list, show, L)
}

// references prints the table's rows for real chr2L windows (all, and
// 128 of them: the set-level correlations depend on the set size), a
// mono-nucleotide shuffle of them and the top 1% of all real windows.
func references(tk *dna.Task, j *dna.Judges, reward func([]int, []float64) error) error {
	c, err := tk.Corpus()
	if err != nil {
		return err
	}
	test, err := c.Split("test")
	if err != nil {
		return err
	}
	top := &task.Dataset{L: c.W, V: 4}
	for _, i := range j.TopRows {
		top.Tokens = append(top.Tokens, c.Proximal[i*c.W:(i+1)*c.W]...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	sub := &task.Dataset{L: c.W, V: 4}
	for _, i := range rng.Perm(test.Len())[:128] {
		sub.Tokens = append(sub.Tokens, test.Row(i)...)
	}
	for _, r := range []struct {
		name string
		d    *task.Dataset
	}{{"real chr2L windows", test}, {"128 random chr2L windows", sub}, {"chr2L, shuffled", dna.Shuffle(rng, test)}, {"top 1% of real windows", top}} {
		v := make([]float64, r.d.Len())
		if err := reward(r.d.Tokens, v); err != nil {
			return err
		}
		s := j.Set(r.d)
		fmt.Printf("| – | %s | – | %d | %.2f | %.2f | %.3f | %.1f | %.1f | %.1f | %.3f | %.3f | %.3f | – | %.3f | %.0f | – |\n",
			r.name, s.N, median(v), quantile(v, 0.9), s.TrlSites, 100*s.TrlHit, 100*s.GAGA3, 100*s.Promoter, s.Kmer3, s.MotifRho,
			s.MarkovMedian, s.GC, 100*s.Unique)
	}
	return nil
}

// order puts the methods in the table's order.
func order(v string) int {
	for i, m := range []string{"Pretrained", "BoN", "Prop-grad", "SMC-base", "SMC-grad", "Prop-amot", "SMC-amot"} {
		if v == m {
			return i
		}
	}
	return 100
}

func writeCSV(path string, list []*cell) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		fmt.Fprintln(w, "alpha,variant,particles,outputs,reward_median,reward_p90,trl_sites,trl_hit,gaga3,promoter,kmer3,motif_rho,markov5_median,elbo_bits_median,gc,unique,wall_s")
		for _, c := range list {
			s := c.set
			fmt.Fprintf(w, "%s,%s,%d,%d,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%.3f\n", c.alpha, c.variant, c.n, s.N,
				c.medR, c.p90, s.TrlSites, s.TrlHit, s.GAGA3, s.Promoter, s.Kmer3, s.MotifRho, s.MarkovMedian, c.medE, s.GC, s.Unique, mean(c.wall))
		}
		return nil
	})
}

// figures draws each pooled metric against N, one line per (α, method);
// Pretrained (a single N) is drawn as a flat line across the N range.
func figures(dir string, list []*cell) error {
	metrics := []struct {
		key, label string
		get        func(c *cell) float64
	}{
		{"reward", "median reward (nats)", func(c *cell) float64 { return c.medR }},
		{"trl_sites", "Trl sites at p<1e-4 per sequence", func(c *cell) float64 { return c.set.TrlSites }},
		{"gaga3", "share with ≥ 3 GAGAG/CTCTC", func(c *cell) float64 { return c.set.GAGA3 }},
		{"promoter", "promoter-like share (6-mer LR p > 0.5)", func(c *cell) float64 { return c.set.Promoter }},
		{"kmer3", "3-mer Pearson r with the top 1%", func(c *cell) float64 { return c.set.Kmer3 }},
		{"motif_rho", "motif-profile Spearman ρ with the top 1%", func(c *cell) float64 { return c.set.MotifRho }},
		{"markov5", "Markov-5 bits per base (median)", func(c *cell) float64 { return c.set.MarkovMedian }},
		{"elbo", "base-model −ELBO bits per base (median)", func(c *cell) float64 { return c.medE }},
	}
	minN, maxN := math.Inf(1), 0.0
	for _, c := range list {
		minN, maxN = math.Min(minN, float64(c.n)), math.Max(maxN, float64(c.n))
	}
	for _, m := range metrics {
		var series []plots.Series
		idx := map[string]int{}
		for _, c := range list {
			name := c.variant
			if c.alpha != "" {
				name += " α=" + c.alpha
			}
			i, ok := idx[name]
			if !ok {
				i = len(series)
				idx[name] = i
				series = append(series, plots.Series{Name: name})
			}
			series[i].X = append(series[i].X, float64(c.n))
			series[i].Y = append(series[i].Y, m.get(c))
		}
		for i := range series {
			if len(series[i].X) == 1 && maxN > minN {
				series[i].X = []float64{minN, maxN}
				series[i].Y = []float64{series[i].Y[0], series[i].Y[0]}
			}
		}
		path := filepath.Join(dir, "figures", "pooled_"+m.key+".png")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := plots.Lines(path, series, plots.LineOpts{Title: m.label + " against N (pooled outputs)", XLabel: "particles N", YLabel: m.label,
			YMin: math.NaN(), YMax: math.NaN(), LogX: minN > 0}); err != nil {
			return err
		}
	}
	return nil
}

// sequences draws and prints the first outputs of each method at N = show.
func sequences(dir string, tk *dna.Task, j *dna.Judges, list []*cell, show, L int) error {
	var panels []task.Panel
	for _, c := range list {
		if c.n != show && !(c.variant == "Pretrained") {
			continue
		}
		k := min(4, len(c.x)/L)
		title := fmt.Sprintf("%s α=%s N=%d", c.variant, c.alpha, c.n)
		panels = append(panels, task.Panel{Title: title, Out: task.Outputs{L: L, Samples: c.x[:k*L]}})
		fmt.Printf("\n%s (upper case: Trl sites at p<1e-4)\n", title)
		for i := 0; i < k; i++ {
			x := c.x[i*L : (i+1)*L]
			fmt.Printf("    %s  r=%.2f GAGAG=%d\n", j.Marked(x), c.rewards[i], dna.GAGACount(x))
		}
	}
	if len(panels) == 0 {
		return nil
	}
	return tk.Render(filepath.Join(dir, fmt.Sprintf("sequences_N%d.svg", show)), panels)
}

func readSamples(path string, L int) ([]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 2 || len(rows[0]) != L {
		return nil, fmt.Errorf("dnapool: %s: unreadable samples or not of length %d", path, L)
	}
	var x []int
	for _, r := range rows[1:] {
		for _, c := range r {
			v, err := strconv.Atoi(c)
			if err != nil {
				return nil, fmt.Errorf("dnapool: %s: bad token %q", path, c)
			}
			x = append(x, v)
		}
	}
	return x, nil
}

func median(v []float64) float64 { return quantile(v, 0.5) }

func quantile(v []float64, q float64) float64 {
	var s []float64
	for _, x := range v {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	if len(s) == 0 {
		return math.NaN()
	}
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}

func mean(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / math.Max(1, float64(len(v)))
}
