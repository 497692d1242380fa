package dna

import (
	"io"
	"math/rand/v2"

	"github.com/ddsmc/ddsmc/experiments/task"
)

// Judges placeholder.
type Judges struct{}

// Metrics placeholder.
func (t *Task) Metrics() []task.Metric { return nil }

// Evaluator placeholder.
func (t *Task) Evaluator(task.Model) (task.Evaluator, error) { return stubEval{}, nil }

type stubEval struct{}

func (stubEval) Evaluate(*rand.Rand, task.Outputs) (map[string]float64, error) {
	return map[string]float64{}, nil
}

// Render placeholder.
func (t *Task) Render(string, []task.Panel) error { return nil }

// ReportSamples placeholder.
func (t *Task) ReportSamples(task.SampleRun, []int, io.Writer) (any, error) { return nil, nil }
