package experiments

import (
	"math"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/smc"
)

// The output metrics: reward_mean is the plain mean of the outputs'
// rewards, or their weighted mean when the outputs carry weights;
// reward_max and outputs ignore the weights.
func TestOutputMetricsWeighting(t *testing.T) {
	e := &Env{reward: smc.SequenceReward{L: 1, F: func(x []int) float64 { return float64(x[0]) }}}
	m := map[string]float64{}
	if err := e.outputMetrics(task.Outputs{L: 1, Samples: []int{1, 2, 6}}, nil, m); err != nil {
		t.Fatal(err)
	}
	if m["reward_mean"] != 3 || m["reward_max"] != 6 || m["outputs"] != 3 {
		t.Fatalf("unweighted %v", m)
	}
	w := []float64{math.Log(0.5), math.Log(0.5), math.Inf(-1)}
	if err := e.outputMetrics(task.Outputs{L: 1, Samples: []int{1, 2, 6}, LogW: w}, nil, m); err != nil {
		t.Fatal(err)
	}
	if m["reward_mean"] != 1.5 || m["reward_max"] != 6 {
		t.Fatalf("weighted %v", m)
	}
	if err := e.outputMetrics(task.Outputs{L: 2, Samples: []int{1, 2, 6}}, nil, m); err == nil {
		t.Fatal("ragged outputs: no error")
	}
}
