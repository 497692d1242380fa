package dna

import (
	"bufio"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"math"
	"path/filepath"
	"strings"

	"github.com/ddsmc/ddsmc/experiments/task"
	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// SiteMask marks the bases of x inside Trl sites (p < 1e-4, either
// strand) and inside GAGAG/CTCTC occurrences.
func (j *Judges) SiteMask(x []int) (trl, gaga []bool) {
	trl, gaga = make([]bool, len(x)), make([]bool, len(x))
	w := j.Trl.PWM.Width()
	for p := 0; p+w <= len(x); p++ {
		if math.Max(score(j.Trl.fwd, x[p:]), score(j.Trl.rev, x[p:])) >= j.TrlThr {
			for q := p; q < p+w; q++ {
				trl[q] = true
			}
		}
	}
	for p := 0; p+5 <= len(x); p++ {
		if GAGACount(x[p:p+5]) > 0 {
			for q := p; q < p+5; q++ {
				gaga[q] = true
			}
		}
	}
	return trl, gaga
}

// Marked writes x with the bases inside Trl sites in upper case and the
// others in lower case, e.g. "acgtTCGCTCTCTCacg".
func (j *Judges) Marked(x []int) string {
	trl, _ := j.SiteMask(x)
	b := []byte(strings.ToLower(Encode(x)))
	for i, in := range trl {
		if in {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// renderRow is one sequence to draw with its caption.
type renderRow struct {
	caption string
	x       []int
}

func (t *Task) renderRows(panels []task.Panel) ([]renderRow, string, error) {
	var rows []renderRow
	per := 8
	if len(panels) == 1 {
		per = 24
	}
	var titles []string
	r, err := t.rewardFunc()
	if err != nil {
		return nil, "", err
	}
	for _, p := range panels {
		if err := p.Out.Check(); err != nil {
			return nil, "", err
		}
		titles = append(titles, p.Title)
		for i := 0; i < min(per, p.Out.N()); i++ {
			x := p.Out.Samples[i*p.Out.L : (i+1)*p.Out.L]
			v := make([]float64, 1)
			if err := r(x, v); err != nil {
				return nil, "", err
			}
			c := fmt.Sprintf("r=%.2f", v[0])
			if i == 0 && len(panels) > 1 {
				c = p.Title + "  " + c
			}
			rows = append(rows, renderRow{caption: c, x: x})
		}
	}
	return rows, strings.Join(titles, "; "), nil
}

func (t *Task) rewardFunc() (func([]int, []float64) error, error) {
	p, err := t.PWM()
	if err != nil {
		return nil, err
	}
	r, err := NewReward(p, t.o.Data.Window)
	if err != nil {
		return nil, err
	}
	return r.Reward, nil
}

var baseColour = [4]color.RGBA{
	{0x1b, 0x9e, 0x3e, 0xff}, // A green
	{0x1f, 0x5f, 0xc8, 0xff}, // C blue
	{0xf0, 0xa0, 0x00, 0xff}, // G orange
	{0xd0, 0x20, 0x20, 0xff}, // T red
}

// Render draws sequences with their sites marked: SVG (letters coloured by
// base, Trl p < 1e-4 sites on a yellow band, GAGAG/CTCTC underlined) or
// PNG (one coloured cell per base, the same marks as bars). One panel: up
// to 24 of its outputs; several: up to 8 per panel, captioned with the
// panel's title. Each row is captioned with its reward.
func (t *Task) Render(path string, panels []task.Panel) error {
	j, err := t.Judges()
	if err != nil {
		return err
	}
	rows, title, err := t.renderRows(panels)
	if err != nil {
		return err
	}
	switch strings.ToLower(filepath.Ext(path)) {
	case ".svg":
		return renderSVG(path, j, rows, title)
	case ".png":
		return renderPNG(path, j, rows)
	}
	return fmt.Errorf("dna: render %s: want a .svg or .png path", path)
}

func renderSVG(path string, j *Judges, rows []renderRow, title string) error {
	const cw, rh, left, top = 8.4, 34.0, 10.0, 40.0
	maxL := 0
	for _, r := range rows {
		maxL = max(maxL, len(r.x))
	}
	W := left*2 + cw*float64(maxL)
	H := top + rh*float64(len(rows)) + 10
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="monospace">`+"\n", W, H)
		fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
		fmt.Fprintf(w, `<text x="%.0f" y="16" font-size="13">%s</text>`+"\n", left, html.EscapeString(title))
		fmt.Fprintf(w, `<text x="%.0f" y="32" font-size="11" fill="#555">yellow: Trl (MA0205.1) site, p &lt; 1e-4; underline: GAGAG/CTCTC</text>`+"\n", left)
		for i, r := range rows {
			y := top + rh*float64(i)
			fmt.Fprintf(w, `<text x="%.0f" y="%.1f" font-size="10" fill="#333">%s</text>`+"\n", left, y+10, html.EscapeString(r.caption))
			trl, gaga := j.SiteMask(r.x)
			for p, v := range r.x {
				x := left + cw*float64(p)
				if trl[p] {
					fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="14" fill="#ffe066"/>`+"\n", x, y+13, cw)
				}
				if gaga[p] {
					fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="2" fill="#000"/>`+"\n", x, y+28, cw)
				}
				c := baseColour[v]
				fmt.Fprintf(w, `<text x="%.1f" y="%.1f" font-size="13" fill="#%02x%02x%02x">%c</text>`+"\n", x, y+25, c.R, c.G, c.B, Bases[v])
			}
		}
		fmt.Fprintln(w, "</svg>")
		return nil
	})
}

func renderPNG(path string, j *Judges, rows []renderRow) error {
	const cw, ch, gap, bar = 6, 10, 8, 3
	maxL := 0
	for _, r := range rows {
		maxL = max(maxL, len(r.x))
	}
	img := image.NewRGBA(image.Rect(0, 0, cw*maxL+4, (ch+2*bar+gap)*len(rows)+4))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	fill := func(x0, y0, x1, y1 int, c color.RGBA) {
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				img.SetRGBA(x, y, c)
			}
		}
	}
	for i, r := range rows {
		y := 2 + i*(ch+2*bar+gap)
		trl, gaga := j.SiteMask(r.x)
		for p, v := range r.x {
			x := 2 + p*cw
			if trl[p] {
				fill(x, y, x+cw, y+bar, color.RGBA{0xe0, 0xb0, 0x00, 0xff})
			}
			fill(x, y+bar, x+cw-1, y+bar+ch, baseColour[v])
			if gaga[p] {
				fill(x, y+bar+ch, x+cw, y+2*bar+ch, color.RGBA{0, 0, 0, 0xff})
			}
		}
	}
	return atomicfile.Write(path, func(w *bufio.Writer) error { return png.Encode(w, img) })
}
