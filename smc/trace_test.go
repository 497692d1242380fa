package smc

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// traceFixture is a three-row trace with values that exercise the
// formatting: exact binary fractions, a value needing all 10 significant
// digits, a negative, a −Inf maximum reward (no finite look-ahead reward)
// and a resampled row.
func traceFixture() []Info {
	return []Info{
		{Step: 0, T: 1, Lambda: 0.001, ESS: 1, Resampled: false, RhatMean: -0.5, RhatMax: math.Inf(-1),
			LogWSpread: 0, Unique: 16, LogZ: 0.125, Dead: 0, Increments: []float64{1, 2}},
		{Step: 1, T: 0.75, Lambda: 0.5, ESS: 0.3125, Resampled: true, RhatMean: 1.234567891, RhatMax: 2.5,
			LogWSpread: 3.75, Unique: 9, LogZ: -1.0625, Dead: 2},
		{Step: 2, T: 0, Lambda: 1, ESS: 0.0625, Resampled: false, RhatMean: -3.141592654, RhatMax: 1e-7,
			LogWSpread: 12.5, Unique: 9, LogZ: -2.71828182, Dead: 15},
	}
}

// relClose reports |a − b| ≤ 1e-9·max(1, |b|) (the CSV keeps 10 digits),
// with equal infinities close.
func relClose(a, b float64) bool {
	if math.IsInf(b, 0) || math.IsNaN(b) {
		return a == b || (math.IsNaN(a) && math.IsNaN(b))
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

// TestWriteTraceCSVRoundTrip writes the fixture and parses it back with
// encoding/csv: the header is TraceHeader and every field reproduces the
// Info within the 10 significant digits written.
func TestWriteTraceCSVRoundTrip(t *testing.T) {
	tr := traceFixture()
	p := filepath.Join(t.TempDir(), "nested", "trace.csv")
	if err := WriteTraceCSV(p, tr); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatalf("trace is not valid CSV: %v\n%s", err, b)
	}
	if len(recs) != len(tr)+1 {
		t.Fatalf("%d CSV records, want header + %d rows", len(recs), len(tr))
	}
	if !slices.Equal(recs[0], TraceHeader) {
		t.Fatalf("header %v, want %v", recs[0], TraceHeader)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	for r, in := range tr {
		rec := recs[r+1]
		if len(rec) != len(TraceHeader) {
			t.Fatalf("row %d has %d fields, want %d", r, len(rec), len(TraceHeader))
		}
		fl := func(name string) float64 {
			v, err := strconv.ParseFloat(rec[col[name]], 64)
			if err != nil {
				t.Fatalf("row %d column %s: %v", r, name, err)
			}
			return v
		}
		in2 := func(name string) int {
			v, err := strconv.Atoi(rec[col[name]])
			if err != nil {
				t.Fatalf("row %d column %s: %v", r, name, err)
			}
			return v
		}
		if got := in2("step"); got != in.Step {
			t.Errorf("row %d step %d, want %d", r, got, in.Step)
		}
		if got := in2("unique"); got != in.Unique {
			t.Errorf("row %d unique %d, want %d", r, got, in.Unique)
		}
		if got := in2("dead"); got != in.Dead {
			t.Errorf("row %d dead %d, want %d", r, got, in.Dead)
		}
		wantRes := "0"
		if in.Resampled {
			wantRes = "1"
		}
		if got := rec[col["resampled"]]; got != wantRes {
			t.Errorf("row %d resampled %q, want %q", r, got, wantRes)
		}
		for name, want := range map[string]float64{
			"t": in.T, "lambda": in.Lambda, "ess": in.ESS, "rhat_mean": in.RhatMean, "rhat_max": in.RhatMax,
			"logw_spread": in.LogWSpread, "log_z": in.LogZ,
		} {
			if got := fl(name); !relClose(got, want) {
				t.Errorf("row %d %s = %v, want %v", r, name, got, want)
			}
		}
	}
	// No temporary file is left next to the trace.
	ents, _ := os.ReadDir(filepath.Dir(p))
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after the write, want only trace.csv", len(ents))
	}
}

// TestWriteTraceJSONLRoundTrip: one JSON object per row with the same keys
// as the CSV header, numbers reproduced exactly, and a −Inf RhatMax written
// as null (the file stays valid JSON).
func TestWriteTraceJSONLRoundTrip(t *testing.T) {
	tr := traceFixture()
	p := filepath.Join(t.TempDir(), "trace.jsonl")
	if err := WriteTraceJSONL(p, tr); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	wantKeys := slices.Clone(TraceHeader)
	sort.Strings(wantKeys)
	r := 0
	for sc.Scan() {
		if r >= len(tr) {
			t.Fatalf("more than %d lines", len(tr))
		}
		in := tr[r]
		var row map[string]any
		d := json.NewDecoder(strings.NewReader(sc.Text()))
		d.UseNumber()
		if err := d.Decode(&row); err != nil {
			t.Fatalf("line %d is not JSON: %v: %s", r, err, sc.Text())
		}
		keys := make([]string, 0, len(row))
		for k := range row {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if !slices.Equal(keys, wantKeys) {
			t.Fatalf("line %d keys %v, want %v", r, keys, wantKeys)
		}
		num := func(name string) (float64, bool) {
			v := row[name]
			if v == nil {
				return 0, false
			}
			n, ok := v.(json.Number)
			if !ok {
				t.Fatalf("line %d %s = %#v is not a number", r, name, v)
			}
			x, err := n.Float64()
			if err != nil {
				t.Fatal(err)
			}
			return x, true
		}
		for name, want := range map[string]float64{
			"step": float64(in.Step), "t": in.T, "lambda": in.Lambda, "ess": in.ESS, "rhat_mean": in.RhatMean,
			"rhat_max": in.RhatMax, "logw_spread": in.LogWSpread, "unique": float64(in.Unique),
			"dead": float64(in.Dead), "log_z": in.LogZ,
		} {
			got, ok := num(name)
			if math.IsInf(want, 0) {
				if ok {
					t.Errorf("line %d %s = %v, want null for %v", r, name, got, want)
				}
				continue
			}
			if !ok || got != want {
				t.Errorf("line %d %s = %v (present %v), want %v", r, name, got, ok, want)
			}
		}
		if b, ok := row["resampled"].(bool); !ok || b != in.Resampled {
			t.Errorf("line %d resampled = %#v, want %v", r, row["resampled"], in.Resampled)
		}
		r++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if r != len(tr) {
		t.Fatalf("%d lines, want %d", r, len(tr))
	}
}

// TestWriteTraceFailureLeavesFilesUntouched: a write that cannot succeed
// (the parent "directory" is a regular file; the destination is a
// non-empty directory) returns an error, and the existing file or
// directory is left as it was, with no temporary file behind.
func TestWriteTraceFailureLeavesFilesUntouched(t *testing.T) {
	writers := map[string]func(string, []Info) error{"csv": WriteTraceCSV, "jsonl": WriteTraceJSONL}
	for name, write := range writers {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			// An existing trace, written successfully.
			good := filepath.Join(dir, "trace."+name)
			if err := write(good, traceFixture()[:1]); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(good)
			if err != nil {
				t.Fatal(err)
			}

			// 1. Parent is a regular file (the existing trace).
			if err := write(filepath.Join(good, "sub.csv"), traceFixture()); err == nil {
				t.Fatal("writing below a regular file succeeded")
			}
			// 2. Destination is a non-empty directory.
			d := filepath.Join(dir, "isdir")
			if err := os.MkdirAll(filepath.Join(d, "keep"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := write(d, traceFixture()); err == nil {
				t.Fatal("writing over a non-empty directory succeeded")
			}
			if st, err := os.Stat(filepath.Join(d, "keep")); err != nil || !st.IsDir() {
				t.Fatalf("directory content changed: %v", err)
			}

			after, err := os.ReadFile(good)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("existing trace changed by the failed writes:\n%s\n---\n%s", before, after)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			sort.Strings(names)
			if want := []string{"isdir", "trace." + name}; !slices.Equal(names, want) {
				t.Fatalf("directory holds %v after the failed writes, want %v (no temporary files)", names, want)
			}
		})
	}
}
