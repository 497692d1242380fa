package experiments

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
	"github.com/ddsmc/ddsmc/plots"
	"github.com/ddsmc/ddsmc/smc"
)

// The results store: one run's directory holds samples.csv (the outputs,
// one row of L tokens each), trace.csv and trace.jsonl (the per-step SMC
// trace), the task's side files, and record.json, written last, whose
// presence marks the run finished. A sweep's directory holds sweep.json
// (the plan), sweep.toml (the file as given), runs/<point>-<repeat>/ and
// results.csv (one row per finished run, rewritten atomically after each).
// Every file is written atomically (temporary file, then rename).

// Record is one finished run: its point, repeat, seed, swept settings,
// metrics (the common ones and the task's) and what ran.
type Record struct {
	Point   int                `json:"point"`
	Repeat  int                `json:"repeat"`
	Seed    uint64             `json:"seed"`
	Setting map[string]string  `json:"settings"`
	Metrics map[string]float64 `json:"metrics"`
	Run     *RunInfo           `json:"run,omitempty"`
}

// RunInfo describes what a run used.
type RunInfo struct {
	Task      string  `json:"task"`
	Method    string  `json:"method"`
	Proposal  string  `json:"proposal"`
	Twist     string  `json:"twist"`
	Resampler string  `json:"resampler"`
	Target    string  `json:"target"`
	N         int     `json:"particles"`
	Steps     int     `json:"steps"`
	Alpha     float64 `json:"alpha"`
	Workers   int     `json:"workers"`
	BLAS      string  `json:"blas"`
	Model     string  `json:"model"` // denoiser checkpoint path
	// Models holds the SHA-256 of every checkpoint the run used (the
	// denoiser, a learned proposal, a product target's second model).
	Models map[string]string `json:"models,omitempty"`
}

// MarshalJSON writes non-finite metrics as the strings "NaN", "+Inf" and
// "-Inf" (JSON has no such numbers), so a record reads back exactly.
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	m := map[string]any{}
	for k, v := range r.Metrics {
		switch {
		case math.IsNaN(v):
			m[k] = "NaN"
		case math.IsInf(v, 1):
			m[k] = "+Inf"
		case math.IsInf(v, -1):
			m[k] = "-Inf"
		default:
			m[k] = v
		}
	}
	return json.Marshal(struct {
		plain
		Metrics map[string]any `json:"metrics"`
	}{plain(r), m})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	var aux struct {
		plain
		Metrics map[string]any `json:"metrics"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*r = Record(aux.plain)
	r.Metrics = map[string]float64{}
	for k, v := range aux.Metrics {
		switch x := v.(type) {
		case float64:
			r.Metrics[k] = x
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return fmt.Errorf("metric %s: %w", k, err)
			}
			r.Metrics[k] = f
		default:
			return fmt.Errorf("metric %s: unexpected %v", k, v)
		}
	}
	return nil
}

// writeRun writes one finished run into dir: samples, trace (if any), then
// the record.
func writeRun(dir string, rec Record, samples []int, L int, trace []smc.Info) error {
	if err := writeSamples(filepath.Join(dir, "samples.csv"), samples, L); err != nil {
		return err
	}
	if trace != nil {
		if err := smc.WriteTraceCSV(filepath.Join(dir, "trace.csv"), trace); err != nil {
			return err
		}
		if err := smc.WriteTraceJSONL(filepath.Join(dir, "trace.jsonl"), trace); err != nil {
			return err
		}
	}
	return writeJSON(filepath.Join(dir, "record.json"), rec)
}

// ReadRecord reads dir/record.json.
func ReadRecord(dir string) (Record, error) {
	var rec Record
	b, err := os.ReadFile(filepath.Join(dir, "record.json"))
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, fmt.Errorf("experiments: %s/record.json: %w", dir, err)
	}
	return rec, nil
}

// runDir is a sweep run's directory.
func runDir(dir string, p, r int) string {
	return filepath.Join(dir, "runs", runID(p, r))
}

func runID(p, r int) string { return fmt.Sprintf("%04d-%02d", p, r) }

func sortedRecords(m map[[2]int]Record) []Record {
	out := make([]Record, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Point != out[j].Point {
			return out[i].Point < out[j].Point
		}
		return out[i].Repeat < out[j].Repeat
	})
	return out
}

// resultColumns are the metric columns of a task's results.csv: the
// common ones, then the task's own.
func resultColumns(tk task.Task) []string {
	var out []string
	for _, m := range append(append([]task.Metric(nil), task.CommonMetrics...), tk.Metrics()...) {
		out = append(out, m.Key)
	}
	return out
}

// writeResults rewrites results.csv from all finished runs, atomically:
// run, the swept settings, repeat, seed, then the metric columns.
func writeResults(path string, cols, metrics []string, m map[[2]int]Record) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		cw := csv.NewWriter(w)
		head := append(append([]string{"run"}, cols...), "repeat", "seed")
		if err := cw.Write(append(head, metrics...)); err != nil {
			return err
		}
		for _, r := range sortedRecords(m) {
			row := []string{runID(r.Point, r.Repeat)}
			for _, c := range cols {
				v, ok := r.Setting[c]
				if !ok {
					v = "-" // not swept in this run's block
				}
				row = append(row, v)
			}
			row = append(row, strconv.Itoa(r.Repeat), strconv.FormatUint(r.Seed, 10))
			for _, c := range metrics {
				v, ok := r.Metrics[c]
				if !ok || math.IsNaN(v) {
					row = append(row, "NaN")
					continue
				}
				row = append(row, strconv.FormatFloat(v, 'g', 8, 64))
			}
			if err := cw.Write(row); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	})
}

// Results is a sweep's results.csv, parsed: one row per run.
type Results struct {
	Header []string
	Rows   []ResultRow
}

// ResultRow is one run of results.csv.
type ResultRow struct {
	Point, Repeat int
	Settings      map[string]string  // swept settings ("-" if not swept in the run's block)
	Metrics       map[string]float64 // every metric column that parses as a number
}

// ReadResults reads DIR/results.csv; cols are the swept settings.
func ReadResults(dir string, cols []string) (*Results, error) {
	f, err := os.Open(filepath.Join(dir, "results.csv"))
	if err != nil {
		return nil, fmt.Errorf("experiments: %w", err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, fmt.Errorf("experiments: %s/results.csv: unreadable or empty: %v", dir, err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	if _, ok := col["run"]; !ok {
		return nil, fmt.Errorf("experiments: %s/results.csv has no run column", dir)
	}
	setting := map[string]bool{"run": true, "repeat": true, "seed": true}
	for _, c := range cols {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("experiments: %s/results.csv has no column %q of the sweep's settings", dir, c)
		}
		setting[c] = true
	}
	out := &Results{Header: rows[0]}
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		var p, rep int
		id := r[col["run"]]
		if _, err := fmt.Sscanf(id, "%d-%d", &p, &rep); err != nil || id != runID(p, rep) {
			return nil, fmt.Errorf("experiments: %s/results.csv: bad run id %q", dir, id)
		}
		if seen[id] {
			return nil, fmt.Errorf("experiments: %s/results.csv lists run %s twice (edited by hand?): regenerate it with ddsmc sweep -rescore", dir, id)
		}
		seen[id] = true
		row := ResultRow{Point: p, Repeat: rep, Settings: map[string]string{}, Metrics: map[string]float64{}}
		for _, c := range cols {
			row.Settings[c] = r[col[c]]
		}
		for i, h := range rows[0] {
			if setting[h] || i >= len(r) {
				continue
			}
			if v, err := strconv.ParseFloat(r[i], 64); err == nil {
				row.Metrics[h] = v
			}
		}
		out.Rows = append(out.Rows, row)
	}
	return out, nil
}

// sweepMeta is DIR/sweep.json: the sweep's plan.
type sweepMeta struct {
	Name        string   `json:"name"`
	Data        string   `json:"data"` // the task name
	Fingerprint string   `json:"fingerprint"`
	Commit      string   `json:"commit"`
	Columns     []string `json:"columns"`
	Metrics     []string `json:"metrics,omitempty"` // metric columns of results.csv
	Points      []Point  `json:"points"`
	Repeats     int      `json:"repeats"`
	Seed        uint64   `json:"seed"`
	Checkpoint  string   `json:"checkpoint"`
	// Models holds the SHA-256 of the checkpoints the plan uses (path →
	// hash), taken when the sweep was planned; a resumed sweep refuses a
	// checkpoint that has changed since.
	Models  map[string]string `json:"models,omitempty"`
	Created string            `json:"created"`
}

// readSweepMeta reads dir/sweep.json.
func readSweepMeta(dir string) (sweepMeta, error) {
	var meta sweepMeta
	b, err := os.ReadFile(filepath.Join(dir, "sweep.json"))
	if err != nil {
		return meta, fmt.Errorf("experiments: %s is not a sweep directory: %w", dir, err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return meta, fmt.Errorf("experiments: %s/sweep.json: %w", dir, err)
	}
	return meta, nil
}

// writeSamples writes outputs as CSV rows of L tokens under a header
// x0,…,x(L−1).
func writeSamples(path string, x []int, L int) error {
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		for l := 0; l < L; l++ {
			if l > 0 {
				w.WriteByte(',')
			}
			fmt.Fprintf(w, "x%d", l)
		}
		w.WriteByte('\n')
		for i := 0; i < len(x); i += L {
			for l := 0; l < L; l++ {
				if l > 0 {
					w.WriteByte(',')
				}
				w.WriteString(strconv.Itoa(x[i+l]))
			}
			w.WriteByte('\n')
		}
		return nil
	})
}

// readSamples reads a samples.csv of writeSamples back into flat tokens.
func readSamples(path string) (tokens []int, L int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil || len(rows) < 1 {
		return nil, 0, fmt.Errorf("experiments: %s: unreadable samples", path)
	}
	L = len(rows[0])
	for _, r := range rows[1:] {
		for _, c := range r {
			v, err := strconv.Atoi(c)
			if err != nil {
				return nil, 0, fmt.Errorf("experiments: %s: bad token %q", path, c)
			}
			tokens = append(tokens, v)
		}
	}
	return tokens, L, nil
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

// writeJSON writes v as indented JSON, atomically; non-finite floats are
// null.
func writeJSON(path string, v any) error { return atomicfile.WriteJSON(path, v) }

// exists reports whether path exists.
func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// describe formats swept settings for messages.
func describe(s map[string]string) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + s[k]
	}
	return strings.Join(parts, " ")
}

// A run's files appear together or not at all: RunPoint writes them into
// a staging directory beside the run's (".<name>.tmp-*") and moves it into
// place when everything is written, moving an older run of the same name
// aside (".<name>.old-*") first and deleting it after. recoverDir undoes
// what a kill between those steps leaves.

// stageDir creates a fresh staging directory beside dir.
func stageDir(dir string) (string, error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("experiments: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("experiments: %w", err)
	}
	return tmp, nil
}

// commitDir moves the finished staging directory tmp to dir, replacing
// what dir held.
func commitDir(tmp, dir string) error {
	if !exists(dir) {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("experiments: %w", err)
		}
		return nil
	}
	old, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".old-*")
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	if err := os.Remove(old); err != nil { // only the unique name is wanted
		return fmt.Errorf("experiments: %w", err)
	}
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.Rename(old, dir) // put the old run back
		return fmt.Errorf("experiments: %w", err)
	}
	return os.RemoveAll(old)
}

// recoverDir cleans the staging siblings of dir: a staging directory is
// an unfinished run (removed); a moved-aside run is put back if dir is
// missing (a kill between commitDir's renames), and removed otherwise.
func recoverDir(dir string) error {
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(parent, name)
		switch {
		case strings.HasPrefix(name, "."+base+".tmp-"):
			if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("experiments: %w", err)
			}
		case strings.HasPrefix(name, "."+base+".old-"):
			if !exists(dir) {
				if err := os.Rename(p, dir); err != nil {
					return fmt.Errorf("experiments: %w", err)
				}
			} else if err := os.RemoveAll(p); err != nil {
				return fmt.Errorf("experiments: %w", err)
			}
		}
	}
	return nil
}

// recoverRuns applies recoverDir to every run directory under runs.
func recoverRuns(runs string) error {
	ents, err := os.ReadDir(runs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, ".") {
			continue
		}
		base := strings.TrimPrefix(name, ".")
		if i := strings.Index(base, ".tmp-"); i >= 0 {
			base = base[:i]
		} else if i := strings.Index(base, ".old-"); i >= 0 {
			base = base[:i]
		} else {
			continue
		}
		if !seen[base] {
			seen[base] = true
			if err := recoverDir(filepath.Join(runs, base)); err != nil {
				return err
			}
		}
	}
	return nil
}

// replaceableRun refuses to replace a directory that is not a run's: one
// holding subdirectories or checkpoints (a model's or a sweep's directory,
// say, given as smc.dir by mistake).
func replaceableRun(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("experiments: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".ckpt") {
			return fmt.Errorf("experiments: %s holds %s, so it is not a run directory and will not be replaced by one: choose a new or empty directory", dir, e.Name())
		}
	}
	return nil
}

// checkRecord checks that a record found in a run's directory is that
// run's: its point, repeat, seed and settings (a record.json copied from
// another run is not).
func checkRecord(rec Record, pt Point, repeat int, seed uint64) error {
	if rec.Point != pt.Index || rec.Repeat != repeat || rec.Seed != seed {
		return fmt.Errorf("record.json is of point %d, repeat %d, seed %d, not of point %d, repeat %d, seed %d", rec.Point, rec.Repeat, rec.Seed, pt.Index, repeat, seed)
	}
	for k, v := range pt.Settings {
		if rec.Setting[k] != v {
			return fmt.Errorf("record.json has %s = %q, the plan %q", k, rec.Setting[k], v)
		}
	}
	if len(rec.Setting) != len(pt.Settings) {
		return fmt.Errorf("record.json has settings %v, the plan %v", rec.Setting, pt.Settings)
	}
	return nil
}
