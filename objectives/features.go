package objectives

import (
	"fmt"
	"math"

	"github.com/ddsmc/ddsmc/layers"
)

// Features returns the classifier's embedding of n = len(x)/(H·W) binary
// images: the activations of the last hidden layer (what the output layer
// reads), n rows of dim values. A classifier without hidden layers returns
// its one-hot input (dim = 2·H·W), one with conv layers and no hidden
// layers the flattened last conv layer's output. For an MLP it runs in
// plain Go from the stored
// parameters (no graph), for evaluation metrics such as the effective rank
// of a set of samples; it agrees with the graph's forward pass to float
// rounding.
func (c *Classifier) Features(x []int) (feats []float64, dim int, err error) {
	if len(x) == 0 || len(x)%c.L != 0 {
		return nil, 0, fmt.Errorf("objectives: classifier features: %d tokens is not a positive multiple of %d×%d = %d pixels", len(x), c.Cfg.H, c.Cfg.W, c.L)
	}
	n := len(x) / c.L
	if len(c.Cfg.Conv) > 0 {
		// The loop below reads the first layer as an MLP's over the
		// one-hot input; a conv classifier's features come from its graph.
		return c.graphFeatures(x)
	}
	if err := c.checkTokens(x, n, "features"); err != nil {
		return nil, 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ls := c.Cfg.layerShapes()
	hidden := ls[:len(ls)-1]
	if len(hidden) == 0 {
		out := make([]float64, n*2*c.L)
		for i, v := range x {
			out[2*i+v] = 1
		}
		return out, 2 * c.L, nil
	}
	act, err := goActivation(c.Cfg.Act)
	if err != nil {
		return nil, 0, err
	}
	var h []float64
	for li, l := range hidden {
		w := layers.Float64s(c.Store.Get(l.name+".W"), nil) // [in, out] row-major
		b := layers.Float64s(c.Store.Get(l.name+".b"), nil)
		next := make([]float64, n*l.out)
		for i := range n {
			row := next[i*l.out : (i+1)*l.out]
			copy(row, b)
			if li == 0 {
				// One-hot input: input unit 2p+v is on for pixel p with token v.
				for p, v := range x[i*c.L : (i+1)*c.L] {
					wr := w[(2*p+v)*l.out : (2*p+v+1)*l.out]
					for j := range row {
						row[j] += wr[j]
					}
				}
			} else {
				for k, hv := range h[i*l.in : (i+1)*l.in] {
					if hv == 0 {
						continue
					}
					wr := w[k*l.out : (k+1)*l.out]
					for j := range row {
						row[j] += hv * wr[j]
					}
				}
			}
			for j, v := range row {
				row[j] = act(v)
			}
		}
		h = next
	}
	return h, hidden[len(hidden)-1].out, nil
}

// goActivation is the plain-Go twin of layers.Activation's graph ops.
func goActivation(name string) (func(float64) float64, error) {
	switch layers.Activation(name) {
	case layers.ReLU:
		return func(v float64) float64 { return math.Max(v, 0) }, nil
	case layers.GeLU:
		return func(v float64) float64 {
			return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		}, nil
	case layers.SiLU:
		return func(v float64) float64 { return v / (1 + math.Exp(-v)) }, nil
	}
	return nil, fmt.Errorf("objectives: classifier activation %q has no plain-Go form", name)
}
