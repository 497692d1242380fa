package experiments

import (
	"io"
	"math/rand/v2"
	"runtime"
	"testing"
)

// Memory stays bounded whatever the number of points: building and
// running a gradient-proposal sampler for one point after another (each a
// new model clone and look-ahead program, as a sweep's points are) does
// not grow the heap. Before layers.TapeMachine it grew by about 7 MB per
// point here (a 20-point sweep of the GMM shape: 127 → 709 MB RSS).
func TestMemoryBoundedOverPoints(t *testing.T) {
	tmp := t.TempDir()
	_, cfg := trainedTinyBase(t, tmp)
	env, err := OpenEnv(cfg, false, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	point := func(i int) {
		c := cfg
		c.SMC.Proposal, c.SMC.Twist, c.SMC.Particles, c.SMC.Batch, c.SMC.Workers, c.SMC.Phi = "grad", "grad", 48+i%3, 64, 1, 2
		m, err := env.Model.Clone()
		if err != nil {
			t.Fatal(err)
		}
		s, _, err := BuildSampler(c, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Run(rand.New(rand.NewPCG(uint64(i), 2))); err != nil {
			t.Fatal(err)
		}
	}
	heap := func() float64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapInuse)
	}
	for i := range 5 {
		point(i)
	}
	before := heap()
	for i := range 25 {
		point(5 + i)
	}
	if grew := heap() - before; grew > 25e6 {
		t.Fatalf("heap grew by %.0f MB over 25 points (%.1f MB per point): samplers of finished points are not collected", grew/1e6, grew/25e6)
	}
}
