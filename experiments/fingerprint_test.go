package experiments

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
)

// fpTask is a task whose token encoding has the fingerprint fp.
type fpTask struct {
	task.Task
	fp string
}

func (f fpTask) Fingerprint() (string, error) { return f.fp, nil }

// The trainer stamps the task's fingerprint into the checkpoint, and a
// checkpoint stamped with another fingerprint (a model trained on another
// vocabulary) is refused naming the task; unstamped checkpoints load.
func TestCheckpointCarriesTheTaskFingerprint(t *testing.T) {
	dir := t.TempDir()
	p := tinyBase(t, dir)
	b, _ := os.ReadFile(p)
	cfg, err := Parse(p, b)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Task = fpTask{cfg.Task, "vocab A"}
	if _, err := TrainDenoiser(cfg, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, meta, err := graph.Load(cfg.CheckpointPath())
	if err != nil {
		t.Fatal(err)
	}
	if meta[metaFingerprint] != "vocab A" {
		t.Fatalf("checkpoint fingerprint %q, want %q", meta[metaFingerprint], "vocab A")
	}
	if _, _, err := loadDenoiser(cfg); err != nil {
		t.Fatalf("same fingerprint: %v", err)
	}
	other := cfg
	other.Task = fpTask{cfg.Task.(fpTask).Task, "vocab B"}
	if _, _, err := loadDenoiser(other); err == nil || !strings.Contains(err.Error(), "another encoding") {
		t.Errorf("another fingerprint: error %v", err)
	}
	// A task without a fingerprint loads any checkpoint of its shape.
	plain := cfg
	plain.Task = cfg.Task.(fpTask).Task
	if _, _, err := loadDenoiser(plain); err != nil {
		t.Errorf("task without a fingerprint: %v", err)
	}
}
