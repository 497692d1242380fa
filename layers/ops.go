package layers

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
)

// catch turns a Gorgonia panic (G.Must on a shape or type error) into an
// error prefixed with the op's name, so graph construction never panics.
func catch(op string, err *error) {
	if r := recover(); r != nil {
		if e, ok := r.(error); ok {
			*err = fmt.Errorf("layers: %s: %w", op, e)
			return
		}
		*err = fmt.Errorf("layers: %s: %v", op, r)
	}
}

// must2 checks x has rank 2 and returns its shape.
func must2(op string, x *G.Node) (int, int, error) {
	if x.Dims() != 2 {
		return 0, 0, fmt.Errorf("layers: %s: want a matrix, got shape %v", op, x.Shape())
	}
	return x.Shape()[0], x.Shape()[1], nil
}

// Linear computes x·W + b for x of shape [N, in]: W has shape [in, out] and
// b shape [out] (omitted when bias is false). Parameters are named
// name+".W" and name+".b". With c.LoRA.Rank > 0 it adds the low-rank
// adapter term (Alpha/Rank)·(x·A)·B described at LoRAConfig, with the extra
// parameters name+".lora_A" and name+".lora_B".
func Linear(c *Ctx, name string, x *G.Node, out int, bias bool) (y *G.Node, err error) {
	return linear(c, name, x, out, bias, false)
}

// linear is Linear followed, when relu, by a ReLU. Without LoRA the bias
// and the ReLU are fused into the product (Dense); with it the adapter term
// comes before them, so they stay separate ops.
func linear(c *Ctx, name string, x *G.Node, out int, bias, relu bool) (y *G.Node, err error) {
	defer catch("linear "+name, &err)
	_, in, err := must2("linear "+name, x)
	if err != nil {
		return nil, err
	}
	if r := c.LoRA.Rank; r < 0 || c.LoRA.Alpha < 0 || math.IsNaN(c.LoRA.Alpha) || math.IsInf(c.LoRA.Alpha, 0) {
		return nil, fmt.Errorf("layers: linear %s: LoRA rank %d / alpha %v: want rank ≥ 0 and a finite alpha ≥ 0", name, r, c.LoRA.Alpha)
	}
	w, err := c.Param(name+".W", []int{in, out}, InitNormal)
	if err != nil {
		return nil, err
	}
	if c.LoRA.Rank == 0 && (bias || relu) {
		var b *G.Node
		if bias {
			if b, err = c.Param(name+".b", []int{out}, InitZeros); err != nil {
				return nil, err
			}
		}
		return Dense(x, w, b, c.Store, relu)
	}
	if y, err = MatMulParam(x, w, c.Store); err != nil {
		return nil, err
	}
	if bias {
		b, err := c.Param(name+".b", []int{out}, InitZeros)
		if err != nil {
			return nil, err
		}
		if y, err = AddBias(y, b); err != nil {
			return nil, err
		}
	}
	if r := c.LoRA.Rank; r > 0 {
		a, err := c.Param(name+LoRASuffixA, []int{in, r}, InitNormal)
		if err != nil {
			return nil, err
		}
		bm, err := c.Param(name+LoRASuffixB, []int{r, out}, InitZeros)
		if err != nil {
			return nil, err
		}
		xa, err := MatMulParam(x, a, c.Store) // [N, r]: scale the narrow factor
		if err != nil {
			return nil, err
		}
		if s := c.LoRA.Scale(); s != 1 {
			xa = G.Must(G.HadamardProd(xa, c.Const(s)))
		}
		xab, err := MatMulParam(xa, bm, c.Store)
		if err != nil {
			return nil, err
		}
		y = G.Must(G.Add(y, xab))
	}
	if relu {
		return ReLUOp(y)
	}
	return y, nil
}

// InputProjection embeds one-hot or soft one-hot rows x of shape [N, K]
// (K = V+1 with the MASK last) as x·E with E of shape [K, d]. It equals an
// embedding lookup for exact one-hots, and, unlike a lookup, it is
// differentiable with respect to x, which the first-order proposal needs.
func InputProjection(c *Ctx, name string, x *G.Node, d int) (*G.Node, error) {
	_, k, err := must2("input projection "+name, x)
	if err != nil {
		return nil, err
	}
	e, err := c.Param(name+".E", []int{k, d}, InitSmall)
	if err != nil {
		return nil, err
	}
	return MatMulParam(x, e, c.Store)
}

// LayerNorm normalises each row of x [N, d] to zero mean and unit variance
// (ε = 1e-5) and applies a learned scale γ and shift β, as one fused op
// (LayerNormOp; Gorgonia's InverseSqrt, which a composed version would
// want, has a wrong gradient in v0.9.18).
func LayerNorm(c *Ctx, name string, x *G.Node) (y *G.Node, err error) {
	defer catch("layernorm "+name, &err)
	_, d, err := must2("layernorm "+name, x)
	if err != nil {
		return nil, err
	}
	gamma, err := c.Param(name+".g", []int{d}, InitOnes)
	if err != nil {
		return nil, err
	}
	beta, err := c.Param(name+".b", []int{d}, InitZeros)
	if err != nil {
		return nil, err
	}
	return LayerNormOp(x, gamma, beta)
}

// LogSoftmax returns the row-wise log-softmax of x [N, K], computed stably
// as (x − max) − log Σ exp(x − max). Gorgonia's own last-axis LogSoftMax can
// return −Inf/NaN, so it is not used.
func LogSoftmax(x *G.Node) (y *G.Node, err error) {
	defer catch("logsoftmax", &err)
	if _, _, err := must2("logsoftmax", x); err != nil {
		return nil, err
	}
	m := G.Must(G.Max(x, 1))
	xc := G.Must(G.BroadcastSub(x, m, nil, []byte{1}))
	lse := G.Must(G.Log(G.Must(G.Sum(G.Must(G.Exp(xc)), 1))))
	return G.Must(G.BroadcastSub(xc, lse, nil, []byte{1})), nil
}

// Softmax returns the row-wise softmax of x [N, K], computed stably as
// exp(x − max) / Σ exp(x − max).
func Softmax(x *G.Node) (y *G.Node, err error) {
	defer catch("softmax", &err)
	if _, _, err := must2("softmax", x); err != nil {
		return nil, err
	}
	return SoftmaxOp(x)
}

// GELU is the tanh approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
func GELU(c *Ctx, x *G.Node) (y *G.Node, err error) {
	return GELUOp(x)
}

// Activation names a pointwise non-linearity.
type Activation string

const (
	// ReLU is max(0, x).
	ReLU Activation = "relu"
	// GeLU is the tanh-approximated GELU.
	GeLU Activation = "gelu"
	// SiLU is x·sigmoid(x).
	SiLU Activation = "silu"
)

// Apply applies the activation to x.
func (a Activation) Apply(c *Ctx, x *G.Node) (y *G.Node, err error) {
	defer catch("activation "+string(a), &err)
	switch a {
	case ReLU:
		return ReLUOp(x)
	case GeLU:
		return GELU(c, x)
	case SiLU:
		return SiLUOp(x)
	}
	return nil, fmt.Errorf("layers: unknown activation %q (want relu, gelu or silu)", string(a))
}

// MLP applies len(widths) Linear layers to x [N, in]; every layer but the
// last is followed by act. Layers are named name+".0", name+".1", ...
func MLP(c *Ctx, name string, x *G.Node, widths []int, act Activation) (*G.Node, error) {
	var err error
	for i, w := range widths {
		hidden := i < len(widths)-1
		x, err = linear(c, fmt.Sprintf("%s.%d", name, i), x, w, true, hidden && act == ReLU)
		if err != nil {
			return nil, err
		}
		if hidden && act != ReLU {
			if x, err = act.Apply(c, x); err != nil {
				return nil, err
			}
		}
	}
	return x, nil
}
