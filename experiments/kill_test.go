package experiments

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// A kill at any write of a sweep's life — the plan, the file as given, any
// file of any run, results.csv — leaves a directory that the same command
// resumes to the same results, with no temporary file left behind. A kill
// is simulated by stopping that write before its rename (its temporary
// file stays, as after SIGKILL) and failing every later write.
func TestSweepSurvivesAKillAtEveryWrite(t *testing.T) {
	tmp := t.TempDir()
	base := tinyBase(t, tmp)
	text := tinySweep(base, "[sweep]\nvariant = [\"RP\", \"BoN\"]\n")
	text = strings.Replace(text, "workers = 2", "workers = 1", 1)
	text = strings.Replace(text, "repeats = 2", "repeats = 1", 1)
	sc, err := ParseSweep("tiny.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RunSweep(sc, []byte(text), filepath.Join(tmp, "train"), io.Discard); err != nil { // trains the base
		t.Fatal(err)
	}
	ref := filepath.Join(tmp, "ref")
	writes := 0
	restore := atomicfile.SetCrashHook(func(string) bool { writes++; return false })
	_, err = RunSweep(sc, []byte(text), ref, io.Discard)
	restore()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(ref, "results.csv"))
	t.Logf("%d writes in the sweep; a kill injected at each", writes)
	if writes < 10 {
		t.Fatalf("only %d writes in a sweep", writes)
	}
	for k := 1; k <= writes; k++ {
		dir := filepath.Join(tmp, "kill", itoa(k))
		n := 0
		restore := atomicfile.SetCrashHook(func(string) bool { n++; return n >= k })
		_, err := RunSweep(sc, []byte(text), dir, io.Discard)
		restore()
		if err == nil {
			t.Fatalf("kill at write %d: the sweep did not notice", k)
		}
		if _, err := RunSweep(sc, []byte(text), dir, io.Discard); err != nil {
			t.Fatalf("kill at write %d: resuming: %v", k, err)
		}
		got, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
		if !bytes.Equal(stripWall(want), stripWall(got)) {
			t.Fatalf("kill at write %d: resumed results differ:\n%s\n---\n%s", k, want, got)
		}
		if !exists(filepath.Join(dir, "sweep.toml")) {
			t.Fatalf("kill at write %d: sweep.toml missing after resuming", k)
		}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && (atomicfile.IsTemp(d.Name()) || strings.Contains(d.Name(), ".old-")) {
				t.Errorf("kill at write %d: %s left behind", k, p)
			}
			return nil
		})
	}
}

func itoa(k int) string {
	return string(rune('0'+k/100%10)) + string(rune('0'+k/10%10)) + string(rune('0'+k%10))
}

// A kill between the two renames of a run's commit leaves the old run moved
// aside and no run directory: recovery puts it back; a staging directory
// (an unfinished run) is removed.
func TestRecoverDirRestoresAMovedAsideRun(t *testing.T) {
	runs := filepath.Join(t.TempDir(), "runs")
	old := filepath.Join(runs, ".0001-00.old-123")
	stage := filepath.Join(runs, ".0001-00.tmp-456")
	for _, d := range []string{old, stage} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(old, "record.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := recoverRuns(runs); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(runs, "0001-00", "record.json")) || exists(old) || exists(stage) {
		t.Fatal("recovery did not restore the run and remove the staging directory")
	}
	// smc.dir pointing at a model's directory is refused, not replaced.
	model := filepath.Join(t.TempDir(), "m")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(model, "denoiser.ckpt"), []byte("x"), 0o644)
	if err := replaceableRun(model); err == nil || !strings.Contains(err.Error(), "denoiser.ckpt") {
		t.Fatalf("a model directory as a run directory: %v", err)
	}
}

// The store validates what it reads: a record.json copied from another
// run is not taken as that run's (the sweep runs it again), a results.csv
// listing a run twice is refused, and the figures say which runs they
// left out.
func TestStoreValidatesWhatItReads(t *testing.T) {
	tmp := t.TempDir()
	base := tinyBase(t, tmp)
	text := strings.Replace(tinySweep(base, "[sweep]\nvariant = [\"RP\", \"BoN\"]\n"), "repeats = 2", "repeats = 1", 1)
	sc, err := ParseSweep("s.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "sweep")
	if _, err := RunSweep(sc, []byte(text), dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	// Copy run 0's record over run 1's.
	b, _ := os.ReadFile(filepath.Join(runDir(dir, 0, 0), "record.json"))
	if err := os.WriteFile(filepath.Join(runDir(dir, 1, 0), "record.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := RunSweep(sc, []byte(text), dir, &log); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "run 0001-00: record.json is of point 0") || !strings.Contains(log.String(), "1 already done") {
		t.Fatalf("the copied record was not detected:\n%s", log.String())
	}
	got, _ := os.ReadFile(filepath.Join(dir, "results.csv"))
	if !bytes.Equal(stripWall(want), stripWall(got)) {
		t.Fatalf("results after rerunning the run with a copied record:\n%s\n---\n%s", want, got)
	}
	// Missing samples are reported, not silently dropped.
	if err := os.Remove(filepath.Join(runDir(dir, 1, 0), "samples.csv")); err != nil {
		t.Fatal(err)
	}
	_, notes, err := PlotSweepNotes(dir)
	if err != nil || len(notes) != 1 || !strings.Contains(notes[0], "0001-00") || !strings.Contains(notes[0], "samples.csv") {
		t.Fatalf("notes %q, %v", notes, err)
	}
	// A duplicated row.
	lines := strings.SplitAfter(string(got), "\n")
	dup := strings.Join(append(lines[:2], lines[1:]...), "")
	if err := os.WriteFile(filepath.Join(dir, "results.csv"), []byte(dup), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := SummaryTable(dir, false); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicated row: %v", err)
	}
}
