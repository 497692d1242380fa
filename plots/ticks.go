package plots

import (
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Axis ticks: linear (1, 2, 5 × 10^k), logarithmic and categorical.

// linearTicks labels a linear axis at 1, 2 or 5 × 10^k with at most
// about eight labels and unlabelled minor ticks in between.
func linearTicks(min, max float64) []plot.Tick {
	if !finite(min, max) || !(max > min) {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	mag := math.Pow(10, math.Floor(math.Log10((max-min)/7)))
	step, sub := mag, 5
	for _, m := range []struct {
		f   float64
		sub int
	}{{1, 5}, {2, 4}, {5, 5}, {10, 5}} {
		step, sub = m.f*mag, m.sub
		if (max-min)/step <= 8 {
			break
		}
	}
	minor := step / float64(sub)
	decimals := int(math.Max(0, -math.Floor(math.Log10(step)+1e-9)))
	var ticks []plot.Tick
	for i := math.Ceil(min/minor - 1e-9); i <= math.Floor(max/minor+1e-9); i++ {
		v := i * minor
		t := plot.Tick{Value: v}
		if int(math.Round(i))%sub == 0 {
			if math.Abs(v) < minor/2 {
				v = 0
			}
			t.Label = strconv.FormatFloat(v, 'f', decimals, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// logTicks labels a log axis: at the data x values when there are only a
// few of them (e.g. N = 64, 128, …), otherwise at 1, 2, 5 × 10^k for
// ranges of up to three decades and at powers of ten beyond.
func logTicks(xs []float64) plot.Ticker {
	return plot.TickerFunc(func(min, max float64) []plot.Tick {
		if min <= 0 || max <= 0 || !finite(min, max) {
			return nil
		}
		var ticks []plot.Tick
		if len(xs) >= 2 && len(xs) <= 10 {
			for _, x := range xs {
				ticks = append(ticks, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'g', 4, 64)})
			}
			return ticks
		}
		lo, hi := math.Floor(math.Log10(min)), math.Ceil(math.Log10(max))
		mult := []float64{1}
		if hi-lo <= 3 {
			mult = []float64{1, 2, 5}
		}
		for e := lo; e <= hi; e++ {
			for k := 1; k <= 9; k++ {
				v := float64(k) * math.Pow(10, e)
				label := ""
				for _, m := range mult {
					if float64(k) == m {
						label = strconv.FormatFloat(v, 'g', 4, 64)
					}
				}
				ticks = append(ticks, plot.Tick{Value: v, Label: label})
			}
		}
		return ticks
	})
}

// categoricalTicks names the x positions 0..k−1, rotating the labels when
// they would not fit side by side in width.
func categoricalTicks(p *plot.Plot, names []string, width vg.Length) {
	ticks := make(plot.ConstantTicks, len(names))
	widest := vg.Length(0)
	for i, n := range names {
		ticks[i] = plot.Tick{Value: float64(i), Label: n}
		widest = max(widest, p.X.Tick.Label.Width(n))
	}
	p.X.Tick.Marker = ticks
	if widest > 0.9*width/vg.Length(len(names)) {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YTop
	}
}
