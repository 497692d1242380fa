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
	// the fused Dense layer: a third input, the bias [n], is
	// added to every row, and relu clamps the result at 0 (NaN kept)
	bias, relu bool
	// maskA: the last input m (a's shape) multiplies a by [m > 0] — the
	// input gradient of a fused ReLU layer, (g⊙[y > 0])·Wᵀ, masked as g is
	// packed
	maskA bool
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
// source's version differ from the cached one's; nil without the internal
// sgemm's kernel (no AVX2/FMA). Products with packed weights go through
// the internal kernel whatever the BLAS in use: OpenBLAS has no interface
// for a prepacked operand, and repacking the weights on every product cost
// the OpenBLAS build half its speed at the GMM shape (bench/RESULTS.md).
func (o *matMulOp) packed(b []float32, ld, k, n int) *sgemm.Packed {
	if o.fixed == nil || len(b) == 0 || !sgemm.Enabled {
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

// Dense returns act(x·w + b) for x [m, k], a parameter w [k, n] of s and a
// bias b [n] (nil: none), as one fused op: the bias and a ReLU are applied
// to each tile of the product while it is in cache (sgemm.Epilogue), and
// the input gradient (g⊙[y > 0])·wᵀ masks g as the product packs it. The
// values equal MatMulParam, AddBias and ReLUOp composed, bit for bit
// (ReLU here keeps −0, as v < 0 ? 0 : v does). relu = false gives
// x·w + b. The parameter gradients, when asked for, go through a reluBack
// node as in the composed graph.
func Dense(x, w, b *G.Node, s *Store, relu bool) (y *G.Node, err error) {
	defer catch("dense", &err)
	if x.Dims() != 2 || w.Dims() != 2 || (b != nil && b.Dims() != 1) {
		return nil, fmt.Errorf("layers: dense: want matrices x, w and a vector b, got shapes %v, %v and %v", x.Shape(), w.Shape(), shapeOrNil(b))
	}
	op := newMatMul(false, false)
	op.name = "dense"
	if relu {
		op.name = "denseReLU" // the hash tells the two apart
	}
	op.relu = relu
	op.fixed = constant{}
	if s != nil {
		op.fixed = s
	}
	if b == nil {
		return G.Must(G.ApplyOp(op, x, w)), nil
	}
	op.bias = true
	return G.Must(G.ApplyOp(op, x, w, b)), nil
}

func shapeOrNil(n *G.Node) any {
	if n == nil {
		return nil
	}
	return n.Shape()
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

func (o *matMulOp) Arity() int {
	n := 2
	if o.bias {
		n++
	}
	if o.maskA {
		n++
	}
	return n
}
func (o *matMulOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	m := G.TensorType{Dims: 2, Of: a}
	switch {
	case o.bias:
		return hm.NewFnType(m, m, G.TensorType{Dims: 1, Of: a}, m)
	case o.maskA:
		return hm.NewFnType(m, m, m, m)
	}
	return hm.NewFnType(m, m, m)
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
	if len(in) != o.Arity() {
		return nil, fmt.Errorf("layers: %s: want %d inputs, got %d", o.name, o.Arity(), len(in))
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
	if o.bias {
		bs, ok := in[2].(tensor.Shape)
		if !ok || bs.TotalSize() != n {
			return nil, fmt.Errorf("layers: %s: bias %v for %d columns", o.name, in[2], n)
		}
	}
	if o.maskA {
		ms, err := shapeOf(o.name, in[2], 2)
		if err != nil {
			return nil, err
		}
		if !ms.Eq(a) {
			return nil, fmt.Errorf("layers: %s: mask %v for a left operand %v", o.name, ms, a)
		}
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
	if len(vals) != o.Arity() {
		return nil, fmt.Errorf("layers: %s: want %d inputs, got %d", o.name, o.Arity(), len(vals))
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
	var bias, mask any
	if o.bias {
		bias = vals[2].Data()
		if vals[2].Shape().TotalSize() != n {
			return nil, fmt.Errorf("layers: %s: bias %v for %d columns", o.name, vals[2].Shape(), n)
		}
	}
	if o.maskA {
		if o.ta || !vals[2].Shape().Eq(sa) {
			return nil, fmt.Errorf("layers: %s: mask %v for a left operand %v", o.name, vals[2].Shape(), sa)
		}
		if mask, err = rowMajor(vals[2]); err != nil {
			return nil, err
		}
	}
	impl := G.WhichBLAS()
	switch c := out.Data().(type) {
	case []float32:
		if m*n == 0 {
			return out, nil
		}
		a := ad.([]float32)
		var msk []float32
		if mask != nil {
			msk = mask.([]float32)
		}
		var epi *sgemm.Epilogue
		if o.bias || o.relu {
			epi = &sgemm.Epilogue{ReLU: o.relu}
			if bias != nil {
				epi.Bias = bias.([]float32)
			}
		}
		if p := o.packed(bd.([]float32), ldb, k, n); p != nil && k > 0 {
			sgemm.Implementation{}.SgemmPackedFused(ta, m, 1, a, msk, lda, p, 0, c, n, epi)
			return out, nil
		}
		if msk != nil {
			a = maskCopy(a, msk) // without the internal kernel only
		}
		if k == 0 {
			clear(c)
		} else {
			impl.Sgemm(ta, tb, m, n, k, 1, a, lda, bd.([]float32), ldb, 0, c, n)
		}
		if epi != nil {
			epilogue(c, n, epi.Bias, o.relu)
		}
	case []float64:
		if m*n == 0 {
			return out, nil
		}
		a := ad.([]float64)
		if mask != nil {
			a = maskCopy(a, mask.([]float64))
		}
		if k == 0 {
			clear(c)
		} else {
			impl.Dgemm(ta, tb, m, n, k, 1, a, lda, bd.([]float64), ldb, 0, c, n)
		}
		if o.bias || o.relu {
			var b []float64
			if bias != nil {
				b = bias.([]float64)
			}
			epilogue(c, n, b, o.relu)
		}
	}
	return out, nil
}

// maskCopy returns a·[m > 0] (a new slice).
func maskCopy[F float32 | float64](a, m []F) []F {
	out := make([]F, len(a))
	for i, v := range a {
		out[i] = v * step(m[i])
	}
	return out
}

// step is [x > 0].
func step[F float32 | float64](x F) F {
	if x > 0 {
		return 1
	}
	return 0
}

// epilogue adds b (when set) to every row of c (width n) and clamps at 0
// (when relu; NaN and ±0 kept), as sgemm.Epilogue does.
func epilogue[F float32 | float64](c []F, n int, b []F, relu bool) {
	onRows(len(c), n, func(lo, hi int) {
		for i := lo; i < hi; i += n {
			row := c[i : i+n]
			if b != nil {
				for j, v := range b {
					row[j] += v
				}
			}
			if relu {
				for j, v := range row {
					if v < 0 {
						row[j] = 0
					}
				}
			}
		}
	})
}

// DiffWRT: only the plain product is differentiable (its backward products
// are not differentiated again).
func (o *matMulOp) DiffWRT(n int) []bool {
	if o.ta || o.tb || o.maskA {
		return noDiff(n)
	}
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}

// SymDiff: for y = act(a·b + c), with gm = g⊙[y > 0] for a ReLU (else g),
// ∂a = gm·bᵀ (g masked as it is packed), ∂b = aᵀ·gm and ∂c = Σ_rows gm.
// [y > 0] equals [a·b + c > 0] (y is that value, or 0 where it was < 0).
func (o *matMulOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if o.ta || o.tb || o.maskA {
		return nil, fmt.Errorf("layers: %s is not differentiable", o.name)
	}
	if len(inputs) != o.Arity() {
		return nil, fmt.Errorf("layers: %s: want %d inputs, got %d", o.name, o.Arity(), len(inputs))
	}
	nt := newMatMul(false, true) // g·bᵀ: b stays fixed as long as it does here
	nt.fixed = o.fixed
	gm := grad
	var da *G.Node
	var err error
	if o.relu {
		nt.maskA = true
		nt.name = "matMulNTMasked"
		if da, err = G.ApplyOp(nt, grad, inputs[1], output); err != nil {
			return nil, err
		}
		back := &pointwiseBackOp{fusedBase: fusedBase{name: "reluBack"}, f32: reluBack[float32], f64: reluBack[float64]}
		if gm, err = G.ApplyOp(back, output, grad); err != nil {
			return nil, err
		}
	} else if da, err = G.ApplyOp(nt, grad, inputs[1]); err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(newMatMul(true, false), inputs[0], gm)
	if err != nil {
		return nil, err
	}
	if !o.bias {
		return G.Nodes{da, db}, nil
	}
	dc, err := G.ApplyOp(&colSumOp{fusedBase{name: "colSum"}}, gm)
	if err != nil {
		return nil, err
	}
	return G.Nodes{da, db, dc}, nil
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
