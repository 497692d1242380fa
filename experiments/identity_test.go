package experiments

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// A checkpoint cannot be swapped silently: one trained on another task,
// one of another architecture than the config's [model], one replaced
// between a sweep's runs, and a non-regular file are each refused with a
// message naming both sides.
func TestCheckpointIdentity(t *testing.T) {
	tmp := t.TempDir()
	base, cfg := trainedTinyBase(t, tmp)
	b, _ := os.ReadFile(base)
	parse := func(text string) Config {
		t.Helper()
		c, err := Parse("x.toml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Another task.
	other := strings.Replace(string(b), "[data]\n", "[data]\nname = \"gmm2\"\n", 1)
	if _, _, err := loadDenoiser(parse(other)); err == nil || !strings.Contains(err.Error(), "trained on task gmm1, but the config's data.name is gmm2") {
		t.Errorf("another task: %v", err)
	}
	// Another architecture.
	wider := strings.Replace(string(b), "hidden = 16", "hidden = 32", 1)
	if _, _, err := loadDenoiser(parse(wider)); err == nil || !strings.Contains(err.Error(), "model.hidden = 32 in the config, 16 in the checkpoint") {
		t.Errorf("another architecture: %v", err)
	}
	// A FIFO is refused rather than read (which would block).
	fifo := filepath.Join(tmp, "fifo.ckpt")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	if err := regularFile(fifo, "trained denoiser", ""); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("FIFO: %v", err)
	}
	// Swapped between the runs of a sweep: the sweep is killed after its
	// first run, the checkpoint replaced by another of the same shape, and
	// the resume refused.
	text := strings.Replace(tinySweep(base, "[sweep]\nvariant = [\"RP\", \"BoN\"]\n"), "workers = 2", "workers = 1", 1)
	sc, err := ParseSweep("s.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "sweep")
	n := 0
	restore := atomicfile.SetCrashHook(func(p string) bool { n++; return n > 8 })
	RunSweep(sc, []byte(text), dir, io.Discard)
	restore()
	m, _, err := graph.Load(cfg.CheckpointPath())
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Save(cfg.CheckpointPath(), map[string]string{"data": "gmm1", "note": "another model"}); err != nil {
		t.Fatal(err)
	}
	if _, err := RunSweep(sc, []byte(text), dir, io.Discard); err == nil || !strings.Contains(err.Error(), "has changed since sweep") {
		t.Errorf("swapped checkpoint: %v", err)
	}
}
