package experiments

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// describeTask reads each output as its tokens joined by dashes.
type describeTask struct{ fpTask }

func (describeTask) Describe(x []int) ([]string, error) {
	var out []string
	for i := 0; i+2 <= len(x); i += 2 {
		out = append(out, fmt.Sprintf("%d-%d", x[i], x[i+1]))
	}
	return out, nil
}

// DescribeSweep prints each point's settings and the first outputs of its
// lowest repeats, as the task describes them (what ddsmc demo shows), and
// nothing for a task that cannot describe its outputs.
func TestDescribeSweep(t *testing.T) {
	dir := t.TempDir()
	base, _ := trainedTinyBase(t, dir)
	sc, err := ParseSweep("tiny", []byte(tinySweep(base, "[sweep]\nvariant = [\"RP\", \"BoN\"]\n")))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sweep")
	if _, err := RunSweep(sc, nil, out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if s, err := DescribeSweep(sc, out, 3); err != nil || s != "" {
		t.Fatalf("a task without Describe: %q, %v; want nothing", s, err)
	}
	sc.base.Task = describeTask{fpTask{sc.base.Task, ""}}
	s, err := DescribeSweep(sc, out, 3)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	// RP outputs 24 particles per run (3 are shown); BoN one per run, so
	// its two repeats give two lines.
	if len(lines) != (1+3)+(1+2) || !strings.HasPrefix(lines[0], "variant=RP") || !strings.HasPrefix(lines[4], "variant=BoN") {
		t.Fatalf("described sweep:\n%s\nwant RP's settings and 3 outputs, then BoN's and 2", s)
	}
	x, _, err := readSamples(filepath.Join(runDir(out, 0, 0), "samples.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("  %d-%d", x[0], x[1]); lines[1] != want {
		t.Errorf("first output line %q, want %q (repeat 0's first output)", lines[1], want)
	}
}
