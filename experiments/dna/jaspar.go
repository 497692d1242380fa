package dna

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Motif is a JASPAR position frequency matrix: Counts[b][j] for base b
// (A, C, G, T) at motif position j.
type Motif struct {
	ID, Name string
	Counts   [4][]float64
}

// Width is the motif's number of positions.
func (m *Motif) Width() int { return len(m.Counts[0]) }

// ErrBadMotif marks a malformed or unusable matrix: rows of unequal width,
// a width outside [MinWidth, the sequence length], or a zero column.
var ErrBadMotif = errors.New("dna: bad motif")

// ErrUnknownMotif marks a JASPAR id that the matrix file does not hold.
var ErrUnknownMotif = errors.New("dna: unknown JASPAR motif")

// MinWidth is the narrowest matrix accepted as a reward or metric motif.
const MinWidth = 4

// ReadJASPARFile reads a JASPAR bracket-format file.
func ReadJASPARFile(path string) ([]*Motif, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dna: %w", err)
	}
	defer f.Close()
	ms, err := ReadJASPAR(f)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return ms, nil
}

// ReadJASPAR parses the bracket format:
//
//	>MA0205.1 Trl
//	A  [ 4  6 12 … ]
//	C  [22 23  6 … ]
//	G  [ … ]
//	T  [ … ]
//
// Every motif needs the four rows A, C, G, T of equal width ≥ 1 with
// finite non-negative counts; anything else is ErrBadMotif.
func ReadJASPAR(r io.Reader) ([]*Motif, error) {
	sc := bufio.NewScanner(r)
	var out []*Motif
	var cur *Motif
	seen := 0
	line := 0
	done := func() error {
		if cur == nil {
			return nil
		}
		if seen != 0xf {
			return fmt.Errorf("%w: %s lacks one of the rows A, C, G, T", ErrBadMotif, cur.ID)
		}
		return checkWidths(cur)
	}
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		if s[0] == '>' {
			if err := done(); err != nil {
				return nil, err
			}
			f := strings.Fields(s[1:])
			if len(f) == 0 {
				return nil, fmt.Errorf("%w: line %d: header without an id", ErrBadMotif, line)
			}
			cur = &Motif{ID: f[0], Name: strings.Join(f[1:], " ")}
			out = append(out, cur)
			seen = 0
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%w: line %d: matrix row before the first header", ErrBadMotif, line)
		}
		b := strings.IndexByte(Bases, s[0])
		lb, rb := strings.IndexByte(s, '['), strings.LastIndexByte(s, ']')
		if b < 0 || lb < 0 || rb < lb {
			return nil, fmt.Errorf("%w: %s, line %d: want a row \"A [ counts ]\", got %q", ErrBadMotif, cur.ID, line, s)
		}
		var row []float64
		for _, w := range strings.Fields(s[lb+1 : rb]) {
			v, err := strconv.ParseFloat(w, 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return nil, fmt.Errorf("%w: %s, line %d: count %q is not a finite non-negative number", ErrBadMotif, cur.ID, line, w)
			}
			row = append(row, v)
		}
		cur.Counts[b] = row
		seen |= 1 << b
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dna: reading JASPAR: %w", err)
	}
	if err := done(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no matrices", ErrBadMotif)
	}
	return out, nil
}

func checkWidths(m *Motif) error {
	w := len(m.Counts[0])
	for b := 1; b < 4; b++ {
		if len(m.Counts[b]) != w {
			return fmt.Errorf("%w: %s has rows of widths %d and %d", ErrBadMotif, m.ID, w, len(m.Counts[b]))
		}
	}
	if w == 0 {
		return fmt.Errorf("%w: %s has width 0", ErrBadMotif, m.ID)
	}
	return nil
}

// FindMotif returns the motif of a JASPAR id (e.g. "MA0205.1").
func FindMotif(ms []*Motif, id string) (*Motif, error) {
	for _, m := range ms {
		if m.ID == id {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%w %q (the file has %d matrices, e.g. %s)", ErrUnknownMotif, id, len(ms), ms[0].ID)
}

// LoadMotifs reads and verifies the JASPAR file in dir.
func LoadMotifs(dir string) ([]*Motif, error) {
	for _, s := range Sources {
		if s.Name == JasparFile {
			if err := VerifySource(dir, s); err != nil {
				return nil, err
			}
		}
	}
	return ReadJASPARFile(filepath.Join(dir, JasparFile))
}

// PWM is a log-odds position weight matrix in nats: W[j][b] =
// log(p_jb / bg_b), with p_jb = (count_jb + bg_b)/(n_j + 1) (a pseudocount
// of 1 spread by the background bg), for the motif's forward strand.
type PWM struct {
	ID string
	W  [][4]float64
	BG [4]float64
}

// Background is the base composition (A, C, G, T) of the unique proximal
// 100-bp windows (domains.md §2.2; a test checks it against the data).
var Background = [4]float64{0.2843, 0.2147, 0.2089, 0.2921}

// NewPWM turns a motif into log-odds against bg. A zero column or a width
// outside [MinWidth, maxWidth] is ErrBadMotif; bg must be a positive
// distribution.
func NewPWM(m *Motif, bg [4]float64, maxWidth int) (*PWM, error) {
	if err := checkWidths(m); err != nil {
		return nil, err
	}
	w := m.Width()
	if w < MinWidth || w > maxWidth {
		return nil, fmt.Errorf("%w: %s has width %d, want %d..%d", ErrBadMotif, m.ID, w, MinWidth, maxWidth)
	}
	var s float64
	for _, v := range bg {
		if !(v > 0) {
			return nil, fmt.Errorf("dna: background %v: every frequency must be positive", bg)
		}
		s += v
	}
	if math.Abs(s-1) > 1e-3 {
		return nil, fmt.Errorf("dna: background %v sums to %v, want 1", bg, s)
	}
	p := &PWM{ID: m.ID, W: make([][4]float64, w), BG: bg}
	for j := 0; j < w; j++ {
		n := 0.0
		for b := 0; b < 4; b++ {
			n += m.Counts[b][j]
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: %s has a zero column at position %d", ErrBadMotif, m.ID, j+1)
		}
		for b := 0; b < 4; b++ {
			p.W[j][b] = math.Log((m.Counts[b][j] + bg[b]) / (n + 1) / bg[b])
		}
	}
	return p, nil
}

// Width is the number of positions.
func (p *PWM) Width() int { return len(p.W) }

// Reverse returns the reverse-complement matrix W[::-1, ::-1].
func (p *PWM) Reverse() [][4]float64 {
	w := len(p.W)
	out := make([][4]float64, w)
	for j := range out {
		for b := 0; b < 4; b++ {
			out[j][b] = p.W[w-1-j][3-b]
		}
	}
	return out
}

// Bounds are the lowest and highest possible scores.
func (p *PWM) Bounds() (lo, hi float64) {
	for _, c := range p.W {
		mn, mx := c[0], c[0]
		for _, v := range c[1:] {
			mn, mx = math.Min(mn, v), math.Max(mx, v)
		}
		lo += mn
		hi += mx
	}
	return lo, hi
}

// Consensus is the highest-scoring forward-strand site.
func (p *PWM) Consensus() string {
	b := make([]byte, len(p.W))
	for j, c := range p.W {
		best := 0
		for k := range c {
			if c[k] > c[best] {
				best = k
			}
		}
		b[j] = Bases[best]
	}
	return string(b)
}

// Score is the forward-strand score of the site x[0:Width].
func score(w [][4]float64, x []int) float64 {
	s := 0.0
	for j, c := range w {
		s += c[x[j]]
	}
	return s
}

// Scanner scores both strands of sequences with a PWM.
type Scanner struct {
	PWM      *PWM
	fwd, rev [][4]float64
}

// NewScanner returns a scanner of both strands.
func NewScanner(p *PWM) *Scanner { return &Scanner{PWM: p, fwd: p.W, rev: p.Reverse()} }

// Scores writes the per-position forward and reverse scores of x into
// fwd and rev (length len(x) − Width + 1 each).
func (s *Scanner) Scores(x []int, fwd, rev []float64) {
	for p := range fwd {
		fwd[p] = score(s.fwd, x[p:])
		rev[p] = score(s.rev, x[p:])
	}
}

// MaxScore is the hard maximum over positions and strands.
func (s *Scanner) MaxScore(x []int) float64 {
	best := math.Inf(-1)
	for p := 0; p+len(s.fwd) <= len(x); p++ {
		best = math.Max(best, math.Max(score(s.fwd, x[p:]), score(s.rev, x[p:])))
	}
	return best
}

// SoftScore is the reward log Σ_{p, strand} exp(score) in nats.
func (s *Scanner) SoftScore(x []int) float64 {
	P := len(x) - len(s.fwd) + 1
	v := make([]float64, 2*P)
	s.Scores(x, v[:P], v[P:])
	return logSumExp(v)
}

// Sites counts the positions whose better strand scores at least thr
// (the hard max-type scanner).
func (s *Scanner) Sites(x []int, thr float64) int {
	n := 0
	for p := 0; p+len(s.fwd) <= len(x); p++ {
		if math.Max(score(s.fwd, x[p:]), score(s.rev, x[p:])) >= thr {
			n++
		}
	}
	return n
}

func logSumExp(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}

// ScoreStep is the discretisation of the exact score distribution.
const ScoreStep = 0.01

// Threshold returns the smallest score threshold t (a multiple of
// ScoreStep) with P(S ≥ t) ≤ pvalue for the score S of one strand of an
// iid-background site, computed exactly on scores rounded to ScoreStep.
func (p *PWM) Threshold(pvalue float64) float64 {
	// Integer scores, shifted so the minimum of each column is 0.
	w := len(p.W)
	ints := make([][4]int, w)
	tot := 0
	for j, c := range p.W {
		mn := math.MaxInt
		for b := range c {
			ints[j][b] = int(math.Round(c[b] / ScoreStep))
			mn = min(mn, ints[j][b])
		}
		for b := range c {
			ints[j][b] -= mn
		}
		tot += mn
		_ = tot
	}
	maxS := 0
	for _, c := range ints {
		maxS += max(c[0], c[1], c[2], c[3])
	}
	dist := make([]float64, maxS+1)
	dist[0] = 1
	hi := 0
	for _, c := range ints {
		next := make([]float64, maxS+1)
		for s := 0; s <= hi; s++ {
			if dist[s] == 0 {
				continue
			}
			for b := 0; b < 4; b++ {
				next[s+c[b]] += dist[s] * p.BG[b]
			}
		}
		hi += max(c[0], c[1], c[2], c[3])
		dist = next
	}
	// Tail sums from the top; find the smallest s with P(S ≥ s) ≤ pvalue.
	tail := 0.0
	best := maxS + 1
	for s := maxS; s >= 0; s-- {
		tail += dist[s]
		if tail > pvalue {
			break
		}
		best = s
	}
	return float64(best+tot) * ScoreStep
}
