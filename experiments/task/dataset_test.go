package task

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestNewDatasetValidates(t *testing.T) {
	cases := []struct {
		name   string
		L, V   int
		tokens []int
		want   string
	}{
		{"empty", 2, 4, nil, "task: empty data set"},
		{"empty non-nil", 2, 4, []int{}, "task: empty data set"},
		{"zero L", 0, 4, []int{1}, "L = 0"},
		{"zero V", 2, 0, []int{1, 1}, "V = 0"},
		{"ragged", 2, 4, []int{1, 2, 3}, "not a multiple"},
		{"token too large", 2, 4, []int{0, 1, 2, 4}, "token 4 at row 1, position 1"},
		{"negative token", 2, 4, []int{-1, 1}, "token -1 at row 0, position 0"},
	}
	for _, c := range cases {
		_, err := NewDataset(c.L, c.V, c.tokens)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "task: ") {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.want)
		}
	}
}

func TestNewDatasetCopiesAndIndexesRows(t *testing.T) {
	src := []int{0, 1, 2, 3, 4, 5}
	d, err := NewDataset(3, 6, src)
	if err != nil {
		t.Fatal(err)
	}
	src[0] = 5
	if d.Len() != 2 || !slices.Equal(d.Row(0), []int{0, 1, 2}) || !slices.Equal(d.Row(1), []int{3, 4, 5}) {
		t.Errorf("Len %d, rows %v %v; want 2 rows [0 1 2] [3 4 5] unaffected by the caller's slice", d.Len(), d.Row(0), d.Row(1))
	}
	// Appending to a row must not overwrite the next row.
	_ = append(d.Row(0), 9)
	if d.Row(1)[0] != 3 {
		t.Error("appending to Row(0) clobbered Row(1)")
	}
}

// idDataset has N rows of length 2 whose row i is (i, i), so rows are
// identifiable after shuffling.
func idDataset(t *testing.T, n int) *Dataset {
	t.Helper()
	tok := make([]int, 0, 2*n)
	for i := range n {
		tok = append(tok, i, i)
	}
	d, err := NewDataset(2, n, tok)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSplitPartitionsRowsDeterministically(t *testing.T) {
	d := idDataset(t, 100)
	orig := slices.Clone(d.Tokens)
	train, val, err := d.Split(rand.New(rand.NewPCG(1, 2)), 30)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 70 || val.Len() != 30 || train.L != 2 || val.V != 100 {
		t.Fatalf("split sizes %d/%d, want 70/30", train.Len(), val.Len())
	}
	seen := make([]int, 100)
	for _, part := range []*Dataset{train, val} {
		for i := range part.Len() {
			r := part.Row(i)
			if r[0] != r[1] {
				t.Fatalf("row %v was torn apart", r)
			}
			seen[r[0]]++
		}
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("row %d appears %d times across train and val, want exactly once", id, c)
		}
	}
	if !slices.Equal(d.Tokens, orig) {
		t.Error("Split modified the original data set")
	}
	// Same seed, same split; the held-out rows are not simply the first 30.
	_, val2, _ := d.Split(rand.New(rand.NewPCG(1, 2)), 30)
	if !slices.Equal(val.Tokens, val2.Tokens) {
		t.Error("Split is not deterministic given the seed")
	}
	if slices.Equal(val.Tokens, orig[:60]) {
		t.Error("Split did not shuffle")
	}
	for _, h := range []int{0, -1, 100, 101} {
		if _, _, err := d.Split(rand.New(rand.NewPCG(1, 2)), h); err == nil {
			t.Errorf("Split(heldOut=%d) of 100 rows should fail", h)
		}
	}
}

// TestBatchDrawsRowsUniformly draws n rows from 4 and checks each count
// against n/4 with a 5-sigma binomial tolerance (sd = sqrt(n·¼·¾)).
func TestBatchDrawsRowsUniformly(t *testing.T) {
	d := idDataset(t, 4)
	rng := rand.New(rand.NewPCG(9, 9))
	const b, reps = 50, 400
	dst := make([]int, b*2)
	counts := make([]float64, 4)
	for range reps {
		if err := d.Batch(rng, b, dst); err != nil {
			t.Fatal(err)
		}
		for k := range b {
			if dst[2*k] != dst[2*k+1] {
				t.Fatalf("batch row %v is not a data row", dst[2*k:2*k+2])
			}
			counts[dst[2*k]]++
		}
	}
	n := float64(b * reps)
	tol := 5 * math.Sqrt(n*0.25*0.75)
	for id, c := range counts {
		if math.Abs(c-n/4) > tol {
			t.Errorf("row %d drawn %v times, want %v ± %.0f", id, c, n/4, tol)
		}
	}
	if err := d.Batch(rng, 3, make([]int, 5)); err == nil {
		t.Error("Batch accepted a buffer of the wrong length")
	}
	if err := d.Batch(rng, 0, nil); err == nil {
		t.Error("Batch accepted b = 0")
	}
	if err := d.Batch(nil, 1, make([]int, 2)); err == nil {
		t.Error("Batch accepted a nil rng")
	}
}
