package layers

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MultiHeadAttention is full (bidirectional) self-attention over x of shape
// [B·L, D] holding B sequences of length L, with h heads of width D/h. The
// heads go through BatchedMatMul as [B·h, L, D/h]; the attention softmax is
// the stable composed Softmax. Parameters: name+".q/.k/.v/.o".
func MultiHeadAttention(c *Ctx, name string, x *G.Node, B, L, h int) (y *G.Node, err error) {
	defer catch("attention "+name, &err)
	n, d, err := must2("attention "+name, x)
	if err != nil {
		return nil, err
	}
	if n != B*L {
		return nil, fmt.Errorf("layers: attention %s: %d rows, want B·L = %d", name, n, B*L)
	}
	if h <= 0 || d%h != 0 {
		return nil, fmt.Errorf("layers: attention %s: width %d not divisible into %d heads", name, d, h)
	}
	dh := d / h
	proj := func(p string) *G.Node {
		out, err := Linear(c, name+"."+p, x, d, true)
		if err != nil {
			panic(err)
		}
		t := G.Must(G.Reshape(out, tensor.Shape{B, L, h, dh}))
		return G.Must(G.Reshape(G.Must(G.Transpose(t, 0, 2, 1, 3)), tensor.Shape{B * h, L, dh}))
	}
	q, k, v := proj("q"), proj("k"), proj("v")
	s := G.Must(G.BatchedMatMul(q, k, false, true)) // [B·h, L, L]
	s = G.Must(G.HadamardProd(s, c.Const(1/math.Sqrt(float64(dh)))))
	p, err := Softmax(G.Must(G.Reshape(s, tensor.Shape{B * h * L, L})))
	if err != nil {
		return nil, err
	}
	o := G.Must(G.BatchedMatMul(G.Must(G.Reshape(p, tensor.Shape{B * h, L, L})), v)) // [B·h, L, dh]
	o = G.Must(G.Reshape(o, tensor.Shape{B, h, L, dh}))
	o = G.Must(G.Reshape(G.Must(G.Transpose(o, 0, 2, 1, 3)), tensor.Shape{B * L, d}))
	return Linear(c, name+".o", o, d, true)
}

// TransformerBlock is a pre-LayerNorm block on x [B·L, D]:
// x + Attn(LN(x)), then + FFN(LN(·)) with FFN = Linear(D→ffn), act,
// Linear(ffn→D).
func TransformerBlock(c *Ctx, name string, x *G.Node, B, L, heads, ffn int, act Activation) (y *G.Node, err error) {
	defer catch("block "+name, &err)
	d := x.Shape()[1]
	a, err := LayerNorm(c, name+".ln1", x)
	if err != nil {
		return nil, err
	}
	if a, err = MultiHeadAttention(c, name+".attn", a, B, L, heads); err != nil {
		return nil, err
	}
	x = G.Must(G.Add(x, a))
	f, err := LayerNorm(c, name+".ln2", x)
	if err != nil {
		return nil, err
	}
	if f, err = MLP(c, name+".ffn", f, []int{ffn, d}, act); err != nil {
		return nil, err
	}
	return G.Must(G.Add(x, f)), nil
}

// TimeFeatures writes F sinusoidal features of each time t[b] ∈ [0, 1] into
// dst (length len(t)·F, row-major): sin and cos of 1000·t·ω_k with
// ω_k = 10000^(−k/(F/2)). F must be even. They feed TimeEmbedding.
func TimeFeatures(t []float64, F int, dst []float64) error {
	if F <= 0 || F%2 != 0 {
		return fmt.Errorf("layers: time features: F = %d must be positive and even", F)
	}
	if len(dst) != len(t)*F {
		return fmt.Errorf("layers: time features: dst has length %d, want %d", len(dst), len(t)*F)
	}
	half := F / 2
	for b, tb := range t {
		if b > 0 && tb == t[b-1] { // batches usually share one time
			copy(dst[b*F:(b+1)*F], dst[(b-1)*F:b*F])
			continue
		}
		for k := 0; k < half; k++ {
			w := math.Pow(10000, -float64(k)/float64(half))
			a := 1000 * tb * w
			dst[b*F+k] = math.Sin(a)
			dst[b*F+half+k] = math.Cos(a)
		}
	}
	return nil
}

// TimeEmbedding maps time features f [B, F] (see TimeFeatures) to a [B, d]
// conditioning vector: Linear(F→d), SiLU, Linear(d→d).
func TimeEmbedding(c *Ctx, name string, f *G.Node, d int) (*G.Node, error) {
	return MLP(c, name, f, []int{d, d}, SiLU)
}

// AddPerSequence adds v [B, D] to every row of x [B·L, D] that belongs to
// sequence b (time conditioning of token features).
//
// The repeated operand is deliberately the left one: Gorgonia v0.9.18 may
// compute a broadcast add in place into its left operand, and when that is
// a Reshape view the write lands in the reshaped node's memory (an input is
// then mutated on every run). The left operand here is the freshly
// materialised repeat, so nothing else is overwritten.
func AddPerSequence(x, v *G.Node, B, L int) (y *G.Node, err error) {
	defer catch("add per sequence", &err)
	d := x.Shape()[1]
	x3 := G.Must(G.Reshape(x, tensor.Shape{B, L, d}))
	y = G.Must(G.BroadcastAdd(v, x3, []byte{1}, nil))
	return G.Must(G.Reshape(y, tensor.Shape{B * L, d})), nil
}

// AddPositional adds a learned positional embedding P [L, D] (named
// name+".P") to x [B·L, D]. As in AddPerSequence, the repeated operand is on
// the left so the in-place add never writes into a Reshape view.
func AddPositional(c *Ctx, name string, x *G.Node, B, L int) (y *G.Node, err error) {
	defer catch("positional "+name, &err)
	d := x.Shape()[1]
	p, err := c.Param(name+".P", []int{L, d}, InitSmall)
	if err != nil {
		return nil, err
	}
	x3 := G.Must(G.Reshape(x, tensor.Shape{B, L, d}))
	y = G.Must(G.BroadcastAdd(p, x3, []byte{0}, nil))
	return G.Must(G.Reshape(y, tensor.Shape{B * L, d})), nil
}
