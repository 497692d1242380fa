package dna

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/graph"
)

func openTask(t *testing.T) *Task {
	t.Helper()
	tk, err := open(specFor(), optionsFor(map[string]any{"data.dir": realDataDir(t)}))
	if err != nil {
		t.Fatal(err)
	}
	return tk.(*Task)
}

// The evaluator's metrics of a set of real windows equal the judges'
// set metrics; a denoiser of another length is an error; Render writes
// SVG and PNG and rejects other extensions.
func TestEvaluatorAndRender(t *testing.T) {
	tk := openTask(t)
	c := realCorpus(t)
	j := realJudges(t)
	tk.jonce.Do(func() { tk.judges = j }) // reuse the judges built by the other tests
	top := gather(c.Proximal, 100, j.TopRows[:4])
	small, err := graph.New(graph.Config{Arch: "mlp", L: 50, V: 4, Embed: 2, Hidden: 8, Layers: 1, Act: "relu", DType: "float32", InitSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tk.Evaluator(task.Model{Denoiser: small}); err == nil || !strings.Contains(err.Error(), "length 50") {
		t.Fatalf("denoiser of length 50: %v", err)
	}
	m, err := graph.New(graph.Config{Arch: "mlp", L: 100, V: 4, Embed: 2, Hidden: 8, Layers: 1, Act: "relu", DType: "float32", InitSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := diffusion.ParseSchedule("loglinear", 1e-3)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := tk.Evaluator(task.Model{Denoiser: m, Kernel: diffusion.Kernel{Schedule: sched}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	got, err := ev.Evaluate(rand.New(rand.NewPCG(1, 1)), task.Outputs{L: 100, Samples: top.Tokens, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := j.Set(top)
	if got["trl_sites"] != want.TrlSites || got["gaga3"] != want.GAGA3 || got["promoter"] != want.Promoter || got["markov5"] != want.Markov {
		t.Fatalf("metrics %v, set %+v", got, want)
	}
	// An untrained denoiser is near uniform: about 2 bits per base.
	if e := got["elbo_bits"]; !(e > 1.8 && e < 2.6) {
		t.Fatalf("−ELBO of an untrained model %v bits per base", e)
	}
	if b, err := os.ReadFile(filepath.Join(dir, SampleMetricsFile)); err != nil || bytes.Count(b, []byte("\n")) != 5 {
		t.Fatalf("sample metrics file: %v %q", err, b)
	}
	if _, err := ev.Evaluate(nil, task.Outputs{L: 50, Samples: top.Tokens[:100]}); err == nil {
		t.Fatal("outputs of length 50: no error")
	}
	panels := []task.Panel{{Title: "top", Out: task.Outputs{L: 100, Samples: top.Tokens}}}
	for _, ext := range []string{".svg", ".png"} {
		p := filepath.Join(dir, "seqs"+ext)
		if err := tk.Render(p, panels); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(p); err != nil || st.Size() < 500 {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if err := tk.Render(filepath.Join(dir, "x.pdf"), panels); err == nil {
		t.Fatal("render to .pdf: no error")
	}
	// The top windows are GA/CT repeats: their marked form has upper-case sites.
	mk := j.Marked(top.Row(0))
	if strings.ToLower(mk) == mk || math.IsNaN(got["kmer3"]) {
		t.Fatalf("marked %s", mk)
	}
	t.Logf("top window: %s", mk)
}
