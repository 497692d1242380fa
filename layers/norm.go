package layers

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Fused ops of the transformer: GELU, the row softmax of attention and
// LayerNorm. Composed from Gorgonia's element-wise ops, each of them ran a
// chain of broadcasts, each allocating and copying its output on every run
// (a third of the transformer's gradient look-ahead outside the products).
// Each is one pass per direction, computed in float64 for both dtypes, with
// a hand-derived backward pass checked against finite differences in
// float64 (norm_test.go):
//
//	gelu(x)    = ½x(1 + tanh u), u = √(2/π)(x + 0.044715x³)
//	             ∂x = g·(½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²))
//	softmax(x) = e^{x−max}/Σ e^{x−max} per row     ∂x = y⊙(g − ⟨g, y⟩)
//	ln(x, γ, β) = γ⊙x̂ + β, x̂ = (x − μ)/σ, σ = √(var + 1e-5) per row
//	             ∂x = (gγ − mean(gγ) − x̂·mean(gγ⊙x̂))/σ, ∂γ = Σ_rows g⊙x̂, ∂β = Σ_rows g

const (
	geluC = 0.7978845608028654 // √(2/π)
	geluA = 0.044715
	lnEps = 1e-5
)

// GELUOp returns the tanh-approximated GELU of a matrix x as a fused op.
func GELUOp(x *G.Node) (*G.Node, error) {
	return applyPointwise(&pointwiseOp{fusedBase: fusedBase{name: "gelu"}, f32: gelu[float32], f64: gelu[float64],
		back: &pointwiseBackOp{fusedBase: fusedBase{name: "geluBack"}, f32: geluBack[float32], f64: geluBack[float64]}}, x)
}

func gelu[F float32 | float64](x, out []F) {
	for i, v := range x {
		xv := float64(v)
		out[i] = F(0.5 * xv * (1 + math.Tanh(geluC*(xv+geluA*xv*xv*xv))))
	}
}

func geluBack[F float32 | float64](x, g, out []F) {
	for i, v := range x {
		xv := float64(v)
		t := math.Tanh(geluC * (xv + geluA*xv*xv*xv))
		d := 0.5*(1+t) + 0.5*xv*(1-t*t)*geluC*(1+3*geluA*xv*xv)
		out[i] = F(float64(g[i]) * d)
	}
}

// rowOp is a fused op on the rows of matrices: f gets the row width d and
// the inputs' data (all of the first input's shape, or vectors of length d
// where vec marks them) and writes the output rows.
type rowOp struct {
	fusedBase
	arity int
	vec   []bool // input i is a vector [d] (else a matrix like input 0)
	f32   func(d int, in [][]float32, out []float32)
	f64   func(d int, in [][]float64, out []float64)
	// outVec: the output is a vector [d] (a column reduction), else a
	// matrix like input 0
	outVec bool
	diff   func(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error)
}

func (o *rowOp) Arity() int { return o.arity }
func (o *rowOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	ts := make([]hm.Type, 0, o.arity+1)
	for i := 0; i < o.arity; i++ {
		dims := 2
		if o.vec[i] {
			dims = 1
		}
		ts = append(ts, G.TensorType{Dims: dims, Of: a})
	}
	out := 2
	if o.outVec {
		out = 1
	}
	return hm.NewFnType(append(ts, G.TensorType{Dims: out, Of: a})...)
}
func (o *rowOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != o.arity {
		return nil, fmt.Errorf("layers: %s: want %d inputs, got %d", o.name, o.arity, len(in))
	}
	s, err := shapeOf(o.name, in[0], 2)
	if err != nil {
		return nil, err
	}
	for i := 1; i < o.arity; i++ {
		si, ok := in[i].(tensor.Shape)
		if !ok || (o.vec[i] && si.TotalSize() != s[1]) || (!o.vec[i] && !si.Eq(s)) {
			return nil, fmt.Errorf("layers: %s: input %d has shape %v for rows %v", o.name, i, in[i], s)
		}
	}
	if o.outVec {
		return tensor.Shape{s[1]}, nil
	}
	return s.Clone(), nil
}
func (o *rowOp) Do(vals ...G.Value) (G.Value, error) {
	dt, s, err := matrixVals(o.name, o.arity, vals)
	if err != nil {
		return nil, err
	}
	for i, v := range vals[1:] {
		if (o.vec[i+1] && v.Shape().TotalSize() != s[1]) || (!o.vec[i+1] && !v.Shape().Eq(s)) {
			return nil, fmt.Errorf("layers: %s: input %d has shape %v for rows %v", o.name, i+1, v.Shape(), s)
		}
	}
	var out *tensor.Dense
	if o.outVec {
		if o.out == nil || o.out.Dtype() != dt || o.out.Shape().TotalSize() != s[1] {
			o.out = tensor.New(tensor.WithShape(s[1]), tensor.Of(dt))
		}
		out = o.out
	} else {
		out = o.buffer(dt, s[0], s[1])
	}
	switch dt {
	case tensor.Float32:
		in := make([][]float32, len(vals))
		for i, v := range vals {
			in[i] = v.Data().([]float32)
		}
		o.f32(s[1], in, out.Data().([]float32))
	default:
		in := make([][]float64, len(vals))
		for i, v := range vals {
			in[i] = v.Data().([]float64)
		}
		o.f64(s[1], in, out.Data().([]float64))
	}
	return out, nil
}
func (o *rowOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = o.diff != nil
	}
	return d
}
func (o *rowOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if o.diff == nil {
		return nil, fmt.Errorf("layers: %s is not differentiable", o.name)
	}
	if len(inputs) != o.arity {
		return nil, fmt.Errorf("layers: %s: want %d inputs, got %d", o.name, o.arity, len(inputs))
	}
	return o.diff(inputs, output, grad)
}

// ---- softmax ----

// SoftmaxOp returns the row-wise softmax of x [N, K] as a fused op
// (stable: each row's maximum is subtracted).
func SoftmaxOp(x *G.Node) (y *G.Node, err error) {
	defer catch("softmax", &err)
	if _, _, err := must2("softmax", x); err != nil {
		return nil, err
	}
	op := &rowOp{fusedBase: fusedBase{name: "softmax"}, arity: 1, vec: []bool{false},
		f32: func(d int, in [][]float32, out []float32) { softmaxRows(d, in[0], out) },
		f64: func(d int, in [][]float64, out []float64) { softmaxRows(d, in[0], out) },
		diff: func(_ G.Nodes, output, grad *G.Node) (G.Nodes, error) {
			back := &rowOp{fusedBase: fusedBase{name: "softmaxBack"}, arity: 2, vec: []bool{false, false},
				f32: func(d int, in [][]float32, out []float32) { softmaxBackRows(d, in[0], in[1], out) },
				f64: func(d int, in [][]float64, out []float64) { softmaxBackRows(d, in[0], in[1], out) }}
			dx, err := G.ApplyOp(back, output, grad)
			if err != nil {
				return nil, err
			}
			return G.Nodes{dx}, nil
		}}
	return G.Must(G.ApplyOp(op, x)), nil
}

func softmaxRows[F float32 | float64](d int, x, out []F) {
	onRows(len(x), d, func(lo, hi int) {
		for i := lo; i < hi; i += d {
			row, o := x[i:i+d], out[i:i+d]
			m := math.Inf(-1)
			for _, v := range row {
				m = math.Max(m, float64(v))
			}
			s := 0.0
			for j, v := range row {
				e := math.Exp(float64(v) - m)
				o[j] = F(e)
				s += e
			}
			inv := 1 / s
			for j := range o {
				o[j] = F(float64(o[j]) * inv)
			}
		}
	})
}

func softmaxBackRows[F float32 | float64](d int, y, g, out []F) {
	onRows(len(y), d, func(lo, hi int) {
		for i := lo; i < hi; i += d {
			yr, gr, o := y[i:i+d], g[i:i+d], out[i:i+d]
			dot := 0.0
			for j, v := range yr {
				dot += float64(gr[j]) * float64(v)
			}
			for j, v := range yr {
				o[j] = F(float64(v) * (float64(gr[j]) - dot))
			}
		}
	})
}

// ---- LayerNorm ----

// LayerNormOp returns γ⊙x̂ + β for each row of x [N, d] (x̂ the row
// normalised to zero mean and unit variance, ε = 1e-5), as a fused op.
func LayerNormOp(x, gamma, beta *G.Node) (y *G.Node, err error) {
	defer catch("layernorm", &err)
	op := &rowOp{fusedBase: fusedBase{name: "layerNorm"}, arity: 3, vec: []bool{false, true, true},
		f32:  func(d int, in [][]float32, out []float32) { layerNormRows(d, in[0], in[1], in[2], out) },
		f64:  func(d int, in [][]float64, out []float64) { layerNormRows(d, in[0], in[1], in[2], out) },
		diff: layerNormDiff}
	return G.Must(G.ApplyOp(op, x, gamma, beta)), nil
}

func layerNormDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	x, gamma := inputs[0], inputs[1]
	bx := &rowOp{fusedBase: fusedBase{name: "layerNormBackX"}, arity: 3, vec: []bool{false, true, false},
		f32: func(d int, in [][]float32, out []float32) { layerNormBackX(d, in[0], in[1], in[2], out) },
		f64: func(d int, in [][]float64, out []float64) { layerNormBackX(d, in[0], in[1], in[2], out) }}
	dx, err := G.ApplyOp(bx, x, gamma, grad)
	if err != nil {
		return nil, err
	}
	bg := &rowOp{fusedBase: fusedBase{name: "layerNormBackGamma"}, arity: 2, vec: []bool{false, false}, outVec: true,
		f32: func(d int, in [][]float32, out []float32) { layerNormBackGamma(d, in[0], in[1], out) },
		f64: func(d int, in [][]float64, out []float64) { layerNormBackGamma(d, in[0], in[1], out) }}
	dg, err := G.ApplyOp(bg, x, grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&colSumOp{fusedBase{name: "colSum"}}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dg, db}, nil
}

// moments returns the mean and σ = √(var + ε) of a row.
func moments[F float32 | float64](row []F) (mu, sigma float64) {
	for _, v := range row {
		mu += float64(v)
	}
	mu /= float64(len(row))
	v := 0.0
	for _, x := range row {
		c := float64(x) - mu
		v += c * c
	}
	return mu, math.Sqrt(v/float64(len(row)) + lnEps)
}

func layerNormRows[F float32 | float64](d int, x, gamma, beta, out []F) {
	onRows(len(x), d, func(lo, hi int) {
		for i := lo; i < hi; i += d {
			row, o := x[i:i+d], out[i:i+d]
			mu, sigma := moments(row)
			for j, v := range row {
				o[j] = F(float64(gamma[j])*(float64(v)-mu)/sigma + float64(beta[j]))
			}
		}
	})
}

func layerNormBackX[F float32 | float64](d int, x, gamma, g, out []F) {
	onRows(len(x), d, func(lo, hi int) {
		for i := lo; i < hi; i += d {
			row, gr, o := x[i:i+d], g[i:i+d], out[i:i+d]
			mu, sigma := moments(row)
			m1, m2 := 0.0, 0.0 // mean(gγ), mean(gγ⊙x̂)
			for j, v := range row {
				gh := float64(gr[j]) * float64(gamma[j])
				m1 += gh
				m2 += gh * (float64(v) - mu) / sigma
			}
			m1 /= float64(d)
			m2 /= float64(d)
			for j, v := range row {
				gh := float64(gr[j]) * float64(gamma[j])
				o[j] = F((gh - m1 - (float64(v)-mu)/sigma*m2) / sigma)
			}
		}
	})
}

func layerNormBackGamma[F float32 | float64](d int, x, g, out []F) {
	acc := make([]float64, d)
	for i := 0; i < len(x); i += d {
		row, gr := x[i:i+d], g[i:i+d]
		mu, sigma := moments(row)
		for j, v := range row {
			acc[j] += float64(gr[j]) * (float64(v) - mu) / sigma
		}
	}
	for j, v := range acc {
		out[j] = F(v)
	}
}
