package atomicfile

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteJSONNullsNonFiniteFloats: NaN and ±Inf anywhere become null;
// finite values, nested structs, maps and json tags are kept.
func TestWriteJSONNullsNonFiniteFloats(t *testing.T) {
	type inner struct {
		X float64 `json:"x"`
	}
	v := struct {
		A    float64            `json:"a"`
		B    float64            `json:"b"`
		M    map[string]float64 `json:"m"`
		S    []float64          `json:"s"`
		In   *inner             `json:"in"`
		Skip int                `json:"-"`
		Omit string             `json:"omit,omitempty"`
	}{A: 1.5, B: math.NaN(), M: map[string]float64{"p": math.Inf(1), "q": 2}, S: []float64{math.Inf(-1), 3}, In: &inner{math.NaN()}, Skip: 7}
	path := filepath.Join(t.TempDir(), "v.json")
	if err := WriteJSON(path, v); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	m := got["m"].(map[string]any)
	s := got["s"].([]any)
	in := got["in"].(map[string]any)
	if got["a"] != 1.5 || got["b"] != nil || m["p"] != nil || m["q"] != 2.0 || s[0] != nil || s[1] != 3.0 || in["x"] != nil {
		t.Fatalf("got %s", b)
	}
	if _, ok := got["Skip"]; ok {
		t.Fatalf("json:\"-\" field written: %s", b)
	}
	if _, ok := got["omit"]; ok {
		t.Fatalf("empty omitempty field written: %s", b)
	}
}
