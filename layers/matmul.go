package layers

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	"gonum.org/v1/gonum/blas"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/internal/sgemm"
)

// Fused matrix product and SiLU, the other two hot ops of the denoisers.
//
// Gorgonia's own matrix product allocates (and zeroes) its output on every
// run of a program, which at the SMC shapes cost as much as a tenth of a
// step; matMul calls the same BLAS (G.WhichBLAS(), so the values are those
// of G.Mul bit for bit) into a buffer the op owns, and its backward pass
// is two more such products:
//
//	matMul(a [m,k], b [k,n]) = a·b     ∂a = g·bᵀ (matMulNT), ∂b = aᵀ·g (matMulTN)
//	silu(x)                  = x·σ(x)   ∂x = g⊙σ(x)⊙(1 + x⊙(1 − σ(x)))
//
// Gorgonia's Sigmoid is an element-wise function call (about 10 ns per
// entry at the time embedding's shape); silu is one pass.

type matMulOp struct {
	fusedBase
	ta, tb bool // the product is op(a)·op(b), op = transpose when set
	// b is fixed between its source's versions (a parameter, or a
	// constant with a nil source): its packing is kept and reused
	fixed versioned
	pack  packCache
}

// versioned is a source of parameter values that counts its changes
// (*Store).
type versioned interface{ Version() uint64 }

// constant never changes.
type constant struct{}

func (constant) Version() uint64 { return 0 }

// packCache is a product's packed right operand and what it was packed
// from.
type packCache struct {
	p       *sgemm.Packed
	version uint64
	data    *float32
	ld      int
}

// packed returns op(b) packed, repacking it when b's storage or its
// source's version differ from the cached one's; nil when the BLAS in use
// is not the internal sgemm.
func (o *matMulOp) packed(b []float32, ld, k, n int) *sgemm.Packed {
	if o.fixed == nil || len(b) == 0 {
		return nil
	}
	if _, ok := G.WhichBLAS().(sgemm.Implementation); !ok {
		return nil
	}
	v := o.fixed.Version()
	c := &o.pack
	if c.p != nil && c.version == v && c.data == &b[0] && c.ld == ld {
		if pk, pn := c.p.Dims(); pk == k && pn == n {
			return c.p
		}
	}
	tb := blas.NoTrans
	if o.tb {
		tb = blas.Trans
	}
	p, err := sgemm.Pack(tb, k, n, b, ld)
	if err != nil {
		return nil // Sgemm reports the bad shape
	}
	*c = packCache{p: p, version: v, data: &b[0], ld: ld}
	return p
}

func newMatMul(ta, tb bool) *matMulOp {
	name := "matMul"
	switch {
	case ta && tb:
		name = "matMulTT"
	case ta:
		name = "matMulTN"
	case tb:
		name = "matMulNT"
	}
	return &matMulOp{fusedBase: fusedBase{name: name}, ta: ta, tb: tb}
}

// MatMul returns the matrix product a·b of a [m, k] and b [k, n] as a
// fused op that owns its output buffer ([m, n]; valid until the next run of
// its program) and has a fused backward pass.
func MatMul(a, b *G.Node) (y *G.Node, err error) {
	defer catch("matmul", &err)
	if a.Dims() != 2 || b.Dims() != 2 {
		return nil, fmt.Errorf("layers: matmul: want two matrices, got shapes %v and %v", a.Shape(), b.Shape())
	}
	return G.Must(G.ApplyOp(newMatMul(false, false), a, b)), nil
}

// MatMulParam is MatMul for a right operand b whose values change only
// when s is touched (a parameter of s; Store.Touch): the product keeps b
// packed for the kernel from run to run, and so does the input-gradient
// product a's backward pass forms with bᵀ. s = nil declares b a constant.
// The values are MatMul's bit for bit.
func MatMulParam(a, b *G.Node, s *Store) (y *G.Node, err error) {
	defer catch("matmul", &err)
	if a.Dims() != 2 || b.Dims() != 2 {
		return nil, fmt.Errorf("layers: matmul: want two matrices, got shapes %v and %v", a.Shape(), b.Shape())
	}
	op := newMatMul(false, false)
	op.fixed = constant{}
	if s != nil {
		op.fixed = s
	}
	return G.Must(G.ApplyOp(op, a, b)), nil
}

func (*matMulOp) Arity() int { return 2 }
func (*matMulOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 2, Of: a})
}

// dims returns m, k, n of op(a)·op(b) for stored shapes a and b.
func (o *matMulOp) dims(a, b tensor.Shape) (m, k, n int, err error) {
	m, k = a[0], a[1]
	if o.ta {
		m, k = k, m
	}
	kb, n := b[0], b[1]
	if o.tb {
		kb, n = n, kb
	}
	if k != kb {
		return 0, 0, 0, fmt.Errorf("layers: %s: inner dimensions of %v and %v differ", o.name, a, b)
	}
	return m, k, n, nil
}

func (o *matMulOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("layers: %s: want 2 inputs, got %d", o.name, len(in))
	}
	a, err := shapeOf(o.name, in[0], 2)
	if err != nil {
		return nil, err
	}
	b, err := shapeOf(o.name, in[1], 2)
	if err != nil {
		return nil, err
	}
	m, _, n, err := o.dims(a, b)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{m, n}, nil
}

// rowMajor returns v's data in row-major order: a lazily transposed dense
// is materialised first (a copy; the graphs here never produce one on the
// hot path).
func rowMajor(v G.Value) (any, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("layers: matmul: unsupported value %T", v)
	}
	if d.IsMaterializable() {
		d = d.Materialize().(*tensor.Dense)
	}
	return d.Data(), nil
}

func (o *matMulOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("layers: %s: want 2 inputs, got %d", o.name, len(vals))
	}
	dt, err := dtypeOf(o.name, vals...)
	if err != nil {
		return nil, err
	}
	sa, sb := vals[0].Shape(), vals[1].Shape()
	if len(sa) != 2 || len(sb) != 2 {
		return nil, fmt.Errorf("layers: %s: shapes %v and %v", o.name, sa, sb)
	}
	m, k, n, err := o.dims(sa, sb)
	if err != nil {
		return nil, err
	}
	out := o.buffer(dt, m, n)
	ad, err := rowMajor(vals[0])
	if err != nil {
		return nil, err
	}
	bd, err := rowMajor(vals[1])
	if err != nil {
		return nil, err
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if o.ta {
		ta = blas.Trans
	}
	if o.tb {
		tb = blas.Trans
	}
	lda, ldb := sa[1], sb[1]
	impl := G.WhichBLAS()
	switch c := out.Data().(type) {
	case []float32:
		if m*n == 0 {
			return out, nil
		}
		if k == 0 {
			clear(c)
			return out, nil
		}
		if p := o.packed(bd.([]float32), ldb, k, n); p != nil {
			sgemm.Implementation{}.SgemmPacked(ta, m, 1, ad.([]float32), lda, p, 0, c, n)
			return out, nil
		}
		impl.Sgemm(ta, tb, m, n, k, 1, ad.([]float32), lda, bd.([]float32), ldb, 0, c, n)
	case []float64:
		if m*n == 0 {
			return out, nil
		}
		if k == 0 {
			clear(c)
			return out, nil
		}
		impl.Dgemm(ta, tb, m, n, k, 1, ad.([]float64), lda, bd.([]float64), ldb, 0, c, n)
	}
	return out, nil
}

// DiffWRT: only the plain product is differentiable (its backward products
// are not differentiated again).
func (o *matMulOp) DiffWRT(n int) []bool {
	if o.ta || o.tb {
		return noDiff(n)
	}
	return []bool{true, true}
}

func (o *matMulOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if o.ta || o.tb {
		return nil, fmt.Errorf("layers: %s is not differentiable", o.name)
	}
	if len(inputs) != 2 {
		return nil, fmt.Errorf("layers: matMul: want 2 inputs, got %d", len(inputs))
	}
	nt := newMatMul(false, true) // g·bᵀ: b stays fixed as long as it does here
	nt.fixed = o.fixed
	da, err := G.ApplyOp(nt, grad, inputs[1])
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(newMatMul(true, false), inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{da, db}, nil
}

// ---- silu ----

// SiLUOp returns x·σ(x) of a matrix x as a fused op. A row equal to the
// previous one reuses its values (the time embedding of a batch that shares
// t costs one row).
func SiLUOp(x *G.Node) (*G.Node, error) {
	return applyPointwise(&pointwiseOp{fusedBase: fusedBase{name: "silu"}, f32: silu[float32], f64: silu[float64], rowwise: true,
		back: &pointwiseBackOp{fusedBase: fusedBase{name: "siluBack"}, f32: siluBack[float32], f64: siluBack[float64]}}, x)
}

// sigmoid is 1/(1 + e^{−x}), computed in float64 for both dtypes.
func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func silu[F float32 | float64](x, out []F) {
	for i, v := range x {
		out[i] = F(float64(v) * sigmoid(float64(v)))
	}
}

// siluBack is g⊙σ(x)⊙(1 + x⊙(1 − σ(x))).
func siluBack[F float32 | float64](x, g, out []F) {
	for i, v := range x {
		xv := float64(v)
		s := sigmoid(xv)
		out[i] = F(float64(g[i]) * s * (1 + xv*(1-s)))
	}
}
