package experiments

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Sizes are checked up front against a memory estimate, so that an absurd
// setting (particles = 1e12, hidden = 1e12, workers = 100000, …) is an
// error naming the setting and the estimate instead of a panic in
// makeslice or an out-of-memory kill. The estimates are deliberately
// generous upper bounds of the dominant buffers (bytes); they are
// computed in float64, so sizes near 2⁶³ cannot overflow.

// memoryLimit is the machine's memory (MemTotal of /proc/meminfo), or
// 64 GiB where that is unknown.
var memoryLimit = sync.OnceValue(func() float64 {
	f, err := os.Open("/proc/meminfo")
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fs := strings.Fields(sc.Text()); len(fs) >= 2 && fs[0] == "MemTotal:" {
				if kb, err := strconv.ParseFloat(fs[1], 64); err == nil && kb > 0 {
					return kb * 1024
				}
			}
		}
	}
	return 64 << 30
})

// paramsEstimate bounds the parameter count of the config's denoiser.
func (c *Config) paramsEstimate(L, V float64) float64 {
	m := c.Model
	e, h, n := float64(m.Embed), float64(m.Hidden), float64(m.Layers)
	if m.Arch == "transformer" {
		return L*e + (V+1)*e + n*(4*e*e+2*e*h+8*e) + e*V
	}
	return (V+1)*e + L*e*h + n*h*h + h*L*V + float64(m.TimeDim)*h
}

type sizeCheck struct {
	key   string
	bytes float64
}

// checkSizes refuses a config whose training or SMC run would need more
// memory than the machine has, naming the setting that dominates.
func (c *Config) checkSizes() error {
	L0, V0 := c.Task.Shape()
	L, V := float64(L0), float64(V0)
	params := c.paramsEstimate(L, V)
	checks := []sizeCheck{
		{"model (hidden/layers/embed)", params * 4 * 4},
		{"data.train_size", float64(c.Data.TrainSize) * L * 8},
		{"data.val_size", float64(c.Data.ValSize) * L * 8},
		{"train.batch", float64(c.Train.Batch) * L * (V + 1) * 8 * 8},
		{"sample.n", float64(c.Sample.N) * L * 8 * 2},
		{"sample.batch", float64(c.Sample.Batch) * L * (V + 1) * 8 * 4},
	}
	checks = append(checks, c.smcSizes(c.SMC, L, V, params)...)
	return overLimit(checks)
}

// smcSizes are the estimates of one [smc] setting.
func (c *Config) smcSizes(sc SMCConfig, L, V, params float64) []sizeCheck {
	n, b, phi, w := float64(sc.Particles), float64(min(sc.Batch, sc.Particles)), float64(sc.Phi), float64(sc.Workers)
	return []sizeCheck{
		{"smc.particles", n * L * (V + 1) * 8 * 3},
		{"smc.phi", n * phi * L * 8 * 2},
		{"smc.batch", b * L * (V + 1) * 8 * 4 * max(phi, 1)},
		{"smc.workers", w * (params*4 + b*L*(V+1)*8*2)},
	}
}

func overLimit(checks []sizeCheck) error {
	limit := memoryLimit()
	for _, s := range checks {
		if s.bytes > limit {
			return fmt.Errorf("%s: needs about %s of memory, more than this machine's %s", s.key, fmtBytes(s.bytes), fmtBytes(limit))
		}
	}
	return nil
}

func fmtBytes(b float64) string {
	switch {
	case b >= 1<<40:
		return fmt.Sprintf("%.3g TiB", b/(1<<40))
	case b >= 1<<30:
		return fmt.Sprintf("%.3g GiB", b/(1<<30))
	default:
		return fmt.Sprintf("%.3g MiB", b/(1<<20))
	}
}
