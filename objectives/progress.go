package objectives

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

// Progress is a one-line progress bar showing step, loss and steps/s. On a
// terminal it redraws in place; elsewhere (logs, CI) it prints a line at
// every tenth of the run and at every record.
type Progress struct {
	w        io.Writer
	total    int
	tty      bool
	start    time.Time
	lastDraw time.Time
	ema      float64
	lastTick int
}

// NewProgress returns a progress bar for total steps writing to w (nil is
// silent).
func NewProgress(w io.Writer, total int) *Progress {
	p := &Progress{w: w, total: total, start: time.Now(), ema: math.NaN()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// Update reports the loss after step.
func (p *Progress) Update(step int, loss float64) {
	if p.w == nil {
		return
	}
	if math.IsNaN(p.ema) {
		p.ema = loss
	} else {
		p.ema = 0.98*p.ema + 0.02*loss
	}
	now := time.Now()
	if p.tty {
		if now.Sub(p.lastDraw) < 100*time.Millisecond && step != p.total {
			return
		}
		p.lastDraw = now
		fmt.Fprintf(p.w, "\r%s", p.line(step))
		return
	}
	if tick := step * 10 / max(1, p.total); tick != p.lastTick {
		p.lastTick = tick
		fmt.Fprintln(p.w, p.line(step))
	}
}

func (p *Progress) line(step int) string {
	const width = 24
	frac := float64(step) / float64(max(1, p.total))
	fill := int(frac * width)
	el := time.Since(p.start).Seconds()
	rate := float64(step) / math.Max(el, 1e-9)
	eta := time.Duration(float64(p.total-step)/math.Max(rate, 1e-9)) * time.Second
	return fmt.Sprintf("step %*d/%d [%s%s] loss %.4f  %.1f steps/s  eta %s ",
		len(fmt.Sprint(p.total)), step, p.total, strings.Repeat("#", fill), strings.Repeat(".", width-fill),
		p.ema, rate, eta.Round(time.Second))
}

// Record prints a validation point on its own line.
func (p *Progress) Record(r Record) {
	if p.w == nil {
		return
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	val := "-"
	if !math.IsNaN(r.ValELBO) {
		val = fmt.Sprintf("%.4f", r.ValELBO)
	}
	fmt.Fprintf(p.w, "step %d  train loss %.4f  val -ELBO %s nats/token  %.1f steps/s  %.1fs\n", r.Step, r.Loss, val, r.StepsPer, r.Elapsed)
}

// Done ends the bar's line.
func (p *Progress) Done() {
	if p.w != nil && p.tty {
		fmt.Fprintln(p.w)
	}
}
