package dna

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Bases are the tokens 0..3, in the order of the JASPAR rows.
const Bases = "ACGT"

// baseToken maps a FASTA character to its token: 0..3 for A/C/G/T (either
// case), 4 for N, −1 for anything else.
var baseToken [256]int8

func init() {
	for i := range baseToken {
		baseToken[i] = -1
	}
	for t, c := range Bases {
		baseToken[c] = int8(t)
		baseToken[c+'a'-'A'] = int8(t)
	}
	baseToken['N'], baseToken['n'] = 4, 4
}

// ErrBadFASTA marks malformed FASTA input: a character other than
// A/C/G/T/N, sequence before the first header, or an empty record.
var ErrBadFASTA = errors.New("dna: bad FASTA")

// Record is one FASTA record of the upstream file: its header fields and
// its sequence as tokens (0..3 = A, C, G, T; 4 = N).
type Record struct {
	ID     string // first header word, e.g. NM_078863_up_2000_chr2L_16764737_f
	Chrom  string // chromosome, e.g. chr2L
	Strand byte   // '+' or '-' (from the _f / _r suffix)
	Seq    []int8
}

// HasN reports whether s[lo:hi] contains an N.
func hasN(s []int8) bool {
	for _, v := range s {
		if v == 4 {
			return true
		}
	}
	return false
}

// ReadFASTAFile reads a FASTA file, gzipped if its name ends in .gz.
func ReadFASTAFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dna: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		z, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
		if err != nil {
			return nil, fmt.Errorf("dna: %s: %w", path, err)
		}
		defer z.Close()
		r = z
	}
	recs, err := ReadFASTA(r)
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return recs, nil
}

// ReadFASTA parses FASTA records. Headers of the UCSC upstream file
// (">NM_078863_up_2000_chr2L_16764737_f chr2L:16764737-16766736") give the
// chromosome (the second word, before ':'; else the fourth-from-last
// underscore field of the first word) and the strand (the _f/_r suffix).
// Any character other than A/C/G/T/N (either case) is ErrBadFASTA naming
// the record and position.
func ReadFASTA(r io.Reader) ([]Record, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	var recs []Record
	var cur *Record
	line := 0
	finish := func() error {
		if cur != nil && len(cur.Seq) == 0 {
			return fmt.Errorf("%w: record %s (line %d) has no sequence", ErrBadFASTA, cur.ID, line)
		}
		return nil
	}
	for sc.Scan() {
		line++
		b := bytes.TrimRight(sc.Bytes(), "\r")
		if len(b) == 0 {
			continue
		}
		if b[0] == '>' {
			if err := finish(); err != nil {
				return nil, err
			}
			rec, err := parseHeader(string(b[1:]))
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadFASTA, line, err)
			}
			recs = append(recs, rec)
			cur = &recs[len(recs)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%w: line %d: sequence before the first '>' header", ErrBadFASTA, line)
		}
		for i, c := range b {
			t := baseToken[c]
			if t < 0 {
				return nil, fmt.Errorf("%w: record %s, line %d, column %d (base %d of the record): unexpected character %q (want A, C, G, T or N)",
					ErrBadFASTA, cur.ID, line, i+1, len(cur.Seq)+1, c)
			}
			cur.Seq = append(cur.Seq, t)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dna: reading FASTA: %w", err)
	}
	if err := finish(); err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrBadFASTA)
	}
	return recs, nil
}

func parseHeader(h string) (Record, error) {
	f := strings.Fields(h)
	if len(f) == 0 {
		return Record{}, errors.New("empty header")
	}
	rec := Record{ID: f[0], Strand: '+'}
	if strings.HasSuffix(f[0], "_r") {
		rec.Strand = '-'
	}
	if len(f) > 1 {
		if i := strings.IndexByte(f[1], ':'); i > 0 {
			rec.Chrom = f[1][:i]
		}
	}
	if rec.Chrom == "" {
		parts := strings.Split(f[0], "_")
		if len(parts) >= 3 {
			rec.Chrom = parts[len(parts)-3]
		}
	}
	if rec.Chrom == "" {
		return Record{}, fmt.Errorf("header %q names no chromosome", h)
	}
	return rec, nil
}

// Decode turns a string of A/C/G/T (either case) into tokens.
func Decode(s string) ([]int, error) {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		t := baseToken[s[i]]
		if t < 0 || t > 3 {
			return nil, fmt.Errorf("%w: unexpected character %q at position %d (want A, C, G or T)", ErrBadFASTA, s[i], i+1)
		}
		out[i] = int(t)
	}
	return out, nil
}

// MustDecode is Decode for literals in tests and examples; it panics on a
// bad character.
func MustDecode(s string) []int {
	x, err := Decode(s)
	if err != nil {
		panic(err)
	}
	return x
}

// Encode turns tokens 0..3 into a string of A/C/G/T ('N' for others).
func Encode(x []int) string {
	b := make([]byte, len(x))
	for i, v := range x {
		if v >= 0 && v < 4 {
			b[i] = Bases[v]
		} else {
			b[i] = 'N'
		}
	}
	return string(b)
}
