package task

import (
	"math"
	"strings"
	"testing"
)

// Open finds registered factories by name, passes the decoder through,
// and lists the registered names for an unknown one; Register refuses a
// name twice.
func TestRegisterAndOpen(t *testing.T) {
	var got Decoder
	Register("test-toy", func(spec *Spec, dec Decoder) (Task, error) { got = dec; return nil, nil })
	if _, err := Open(&Spec{Name: "test-toy"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(NoOptions); !ok {
		t.Fatalf("a nil decoder reached the factory as %T, want NoOptions", got)
	}
	_, err := Open(&Spec{Name: "nope"}, nil)
	if err == nil || !strings.Contains(err.Error(), `data.name = "nope"`) || !strings.Contains(err.Error(), "test-toy") {
		t.Fatalf("unknown task: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("registering a name twice did not panic")
		}
	}()
	Register("test-toy", func(*Spec, Decoder) (Task, error) { return nil, nil })
}

// Outputs.Check names inconsistent sizes; Weights are exp(LogW) or uniform.
func TestOutputsCheckAndWeights(t *testing.T) {
	ok := Outputs{L: 2, Samples: []int{0, 1, 1, 0}, LogW: []float64{math.Log(0.25), math.Log(0.75)}}
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	if w := ok.Weights(); math.Abs(w[0]-0.25) > 1e-15 || math.Abs(w[1]-0.75) > 1e-15 {
		t.Fatalf("weights %v", w)
	}
	if w := (Outputs{L: 2, Samples: []int{0, 1, 1, 0}}).Weights(); w[0] != 0.5 || w[1] != 0.5 {
		t.Fatalf("uniform weights %v", w)
	}
	for _, c := range []struct {
		o    Outputs
		want string
	}{
		{Outputs{L: 0, Samples: []int{1}}, "length 0"},
		{Outputs{L: 2, Samples: []int{1, 2, 3}}, "multiple of L = 2"},
		{Outputs{L: 2, Samples: []int{1, 2}, LogW: []float64{0, 0}}, "2 output weights for 1 outputs"},
		{Outputs{L: 2, Samples: []int{1, 2}, X: []int{1, 2}, XLogW: nil}, "particle tokens"},
	} {
		if err := c.o.Check(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error containing %q", c.o, err, c.want)
		}
	}
}

// A TOML decoder marks exactly the keys a Decode consumed as known, and
// keeps defaults for keys the text does not set.
func TestTOMLDecoderKnownKeys(t *testing.T) {
	d, err := NewTOML([]byte("[data]\nname = \"x\"\nsize = 14\n[reward]\ntarget = 3\nother = 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		Data struct {
			Size int `toml:"size"`
		} `toml:"data"`
		Reward struct {
			Target int `toml:"target"`
			Epochs int `toml:"epochs"`
		} `toml:"reward"`
	}
	o.Reward.Epochs = 12
	if err := d.Decode(&o); err != nil {
		t.Fatal(err)
	}
	if o.Data.Size != 14 || o.Reward.Target != 3 || o.Reward.Epochs != 12 {
		t.Fatalf("decoded %+v", o)
	}
	for k, want := range map[string]bool{"data.size": true, "reward.target": true, "reward.other": false, "data.name": false} {
		if d.Known(k) != want {
			t.Errorf("Known(%s) = %v, want %v", k, !want, want)
		}
	}
	if !d.Defined("reward", "other") || d.Defined("reward", "nope") {
		t.Error("Defined")
	}
	if len(d.Options()) != 1 {
		t.Errorf("Options() = %v", d.Options())
	}
	if _, err := NewTOML([]byte("[data\n")); err == nil {
		t.Error("malformed TOML: no error")
	}
}
