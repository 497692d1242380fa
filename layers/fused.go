package layers

import (
	"bytes"
	"fmt"
	"hash"
	"hash/fnv"
	"unsafe"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/internal/par"
)

// Fused Gorgonia ops for the hot paths of the denoisers: the bias add of
// Linear (Gorgonia's BroadcastAdd materialises a repeated bias first), ReLU
// (Rectify is a compare, a conversion and a product) and the column concat
// of the MLP's time embedding (Concat goes through a generic iterator).
// Their forward values equal the composed ops' bit for bit (ReLU up to the
// sign of zero); their
// hand-derived backward passes are checked against finite differences in
// float64 (fused_test.go).
//
// Each node's op owns its output buffer and reuses it from run to run, so
// steady-state runs do not allocate it: a node's value is only valid until
// the next run of its program, which is how the graph package and the
// look-ahead read them (copies right after the run).
//
//	addBias(y [N, d], b [d])  = y + 1·bᵀ      ∂y = g, ∂b = Σ_rows g
//	relu(x)                   = max(x, 0)      ∂x = g⊙[x > 0]
//	concatCols(a [N,p], b [N,q]) = [a b]       ∂a = g[:, :p], ∂b = g[:, p:]

// fusedBase implements the boilerplate of the Op interface and the reused
// output buffer.
type fusedBase struct {
	name string
	out  *tensor.Dense
}

func (o *fusedBase) ReturnsPtr() bool      { return false }
func (o *fusedBase) CallsExtern() bool     { return false }
func (o *fusedBase) OverwritesInput() int  { return -1 }
func (o *fusedBase) String() string        { return o.name }
func (o *fusedBase) WriteHash(h hash.Hash) { fmt.Fprintf(h, "ddsmc.%s", o.name) }
func (o *fusedBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// onRows calls f on [lo, hi) ranges of whole rows (width d) covering n
// entries: one range, or one per core for large n (par.Ranges).
// Element-wise results do not depend on the split.
func onRows(n, d int, f func(lo, hi int)) {
	if d <= 0 {
		f(0, n)
		return
	}
	par.Ranges(n/d, n, func(lo, hi int) { f(lo*d, hi*d) })
}

// buffer returns the op's output tensor of shape r×c with dtype dt,
// allocating it on first use (or when the shape or dtype changes).
func (o *fusedBase) buffer(dt tensor.Dtype, r, c int) *tensor.Dense {
	if o.out == nil || o.out.Dtype() != dt || !o.out.Shape().Eq(tensor.Shape{r, c}) {
		o.out = tensor.New(tensor.WithShape(r, c), tensor.Of(dt))
	}
	return o.out
}

func shapeOf(op string, in G.DimSizer, rank int) (tensor.Shape, error) {
	s, ok := in.(tensor.Shape)
	if !ok || len(s) != rank {
		return nil, fmt.Errorf("layers: %s: want rank %d, got %v", op, rank, in)
	}
	return s, nil
}

func dtypeOf(op string, vals ...G.Value) (tensor.Dtype, error) {
	dt := vals[0].Dtype()
	for _, v := range vals[1:] {
		if v.Dtype() != dt {
			return dt, fmt.Errorf("layers: %s: mixed dtypes %v and %v", op, dt, v.Dtype())
		}
	}
	if dt != tensor.Float32 && dt != tensor.Float64 {
		return dt, fmt.Errorf("layers: %s: unsupported dtype %v", op, dt)
	}
	return dt, nil
}

func noDiff(n int) []bool { return make([]bool, n) }

// ---- addBias ----

type addBiasOp struct{ fusedBase }

// AddBias returns y + b broadcast over the rows of y [N, d] (b [d]), as a
// fused op.
func AddBias(y, b *G.Node) (out *G.Node, err error) {
	defer catch("add bias", &err)
	return G.Must(G.ApplyOp(&addBiasOp{fusedBase{name: "addBias"}}, y, b)), nil
}

func (*addBiasOp) Arity() int { return 2 }
func (*addBiasOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a}, G.TensorType{Dims: 2, Of: a})
}
func (*addBiasOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("layers: addBias: want 2 inputs, got %d", len(in))
	}
	y, err := shapeOf("addBias", in[0], 2)
	if err != nil {
		return nil, err
	}
	b, err := shapeOf("addBias", in[1], 1)
	if err != nil {
		return nil, err
	}
	if b[0] != y[1] {
		return nil, fmt.Errorf("layers: addBias: bias %v for rows %v", b, y)
	}
	return y.Clone(), nil
}
func (o *addBiasOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("layers: addBias: want 2 inputs, got %d", len(vals))
	}
	dt, err := dtypeOf("addBias", vals...)
	if err != nil {
		return nil, err
	}
	s := vals[0].Shape()
	if len(s) != 2 || vals[1].Shape().TotalSize() != s[1] {
		return nil, fmt.Errorf("layers: addBias: shapes %v and %v", s, vals[1].Shape())
	}
	out := o.buffer(dt, s[0], s[1])
	switch y := vals[0].Data().(type) {
	case []float32:
		b, o := vals[1].Data().([]float32), out.Data().([]float32)
		onRows(len(y), s[1], func(lo, hi int) { addBias(y[lo:hi], b, o[lo:hi]) })
	case []float64:
		b, o := vals[1].Data().([]float64), out.Data().([]float64)
		onRows(len(y), s[1], func(lo, hi int) { addBias(y[lo:hi], b, o[lo:hi]) })
	}
	return out, nil
}

func addBias[F float32 | float64](y, b, out []F) {
	d := len(b)
	for i := 0; i < len(y); i += d {
		yr, or := y[i:i+d], out[i:i+d]
		for j, v := range b {
			or[j] = yr[j] + v
		}
	}
}

func (*addBiasOp) DiffWRT(n int) []bool { return []bool{true, true} }
func (*addBiasOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("layers: addBias: want 2 inputs, got %d", len(inputs))
	}
	db, err := G.ApplyOp(&colSumOp{fusedBase{name: "colSum"}}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{grad, db}, nil
}

// colSumOp sums a matrix [N, d] over its rows, giving [d].
type colSumOp struct{ fusedBase }

func (*colSumOp) Arity() int { return 1 }
func (*colSumOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 1, Of: a})
}
func (*colSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("layers: colSum: want 1 input, got %d", len(in))
	}
	s, err := shapeOf("colSum", in[0], 2)
	if err != nil {
		return nil, err
	}
	return tensor.Shape{s[1]}, nil
}
func (o *colSumOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("layers: colSum: want 1 input, got %d", len(vals))
	}
	dt, err := dtypeOf("colSum", vals...)
	if err != nil {
		return nil, err
	}
	s := vals[0].Shape()
	if len(s) != 2 {
		return nil, fmt.Errorf("layers: colSum: shape %v", s)
	}
	if o.out == nil || o.out.Dtype() != dt || o.out.Shape().TotalSize() != s[1] {
		o.out = tensor.New(tensor.WithShape(s[1]), tensor.Of(dt))
	}
	switch g := vals[0].Data().(type) {
	case []float32:
		colSum(g, o.out.Data().([]float32))
	case []float64:
		colSum(g, o.out.Data().([]float64))
	}
	return o.out, nil
}

func colSum[F float32 | float64](g, out []F) {
	clear(out)
	d := len(out)
	for i := 0; i < len(g); i += d {
		for j, v := range g[i : i+d] {
			out[j] += v
		}
	}
}

func (*colSumOp) DiffWRT(n int) []bool { return noDiff(n) }
func (*colSumOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: colSum is not differentiable")
}

// ---- pointwise ops (relu, silu) and their backward passes ----

// pointwiseOp applies f to every entry of a matrix; its gradient is the
// non-differentiable back(x, g), also entry by entry.
type pointwiseOp struct {
	fusedBase
	f32  func(x, out []float32)
	f64  func(x, out []float64)
	back *pointwiseBackOp
	// rowwise: a row equal (bit for bit) to the one before it copies that
	// row's output instead of recomputing it — for costly functions of
	// inputs that repeat, such as the time embedding of a batch sharing t.
	rowwise bool
}

// pointwiseBackOp(x, g) is an element-wise backward pass.
type pointwiseBackOp struct {
	fusedBase
	f32 func(x, g, out []float32)
	f64 func(x, g, out []float64)
}

func applyPointwise(op *pointwiseOp, x *G.Node) (y *G.Node, err error) {
	defer catch(op.name, &err)
	if _, _, err := must2(op.name, x); err != nil {
		return nil, err
	}
	return G.Must(G.ApplyOp(op, x)), nil
}

// ReLUOp returns max(x, 0) of a matrix x as a fused op.
func ReLUOp(x *G.Node) (*G.Node, error) {
	return applyPointwise(&pointwiseOp{fusedBase: fusedBase{name: "relu"}, f32: relu[float32], f64: relu[float64],
		back: &pointwiseBackOp{fusedBase: fusedBase{name: "reluBack"}, f32: reluBack[float32], f64: reluBack[float64]}}, x)
}

func (*pointwiseOp) Arity() int { return 1 }
func (*pointwiseOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}
func (o *pointwiseOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("layers: %s: want 1 input, got %d", o.name, len(in))
	}
	s, err := shapeOf(o.name, in[0], 2)
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

// matrixVals checks that an op got n values of one float dtype with a
// matrix first, and returns the dtype and that matrix's shape.
func matrixVals(name string, n int, vals []G.Value) (tensor.Dtype, tensor.Shape, error) {
	if len(vals) != n {
		return tensor.Float64, nil, fmt.Errorf("layers: %s: want %d inputs, got %d", name, n, len(vals))
	}
	dt, err := dtypeOf(name, vals...)
	if err != nil {
		return dt, nil, err
	}
	s := vals[0].Shape()
	if len(s) != 2 {
		return dt, nil, fmt.Errorf("layers: %s: shape %v", name, s)
	}
	return dt, s, nil
}

func (o *pointwiseOp) Do(vals ...G.Value) (G.Value, error) {
	dt, s, err := matrixVals(o.name, 1, vals)
	if err != nil {
		return nil, err
	}
	out := o.buffer(dt, s[0], s[1])
	switch x := vals[0].Data().(type) {
	case []float32:
		if o.rowwise {
			byRows(x, out.Data().([]float32), s[1], o.f32)
		} else {
			d := out.Data().([]float32)
			onRows(len(x), s[1], func(lo, hi int) { o.f32(x[lo:hi], d[lo:hi]) })
		}
	case []float64:
		if o.rowwise {
			byRows(x, out.Data().([]float64), s[1], o.f64)
		} else {
			d := out.Data().([]float64)
			onRows(len(x), s[1], func(lo, hi int) { o.f64(x[lo:hi], d[lo:hi]) })
		}
	}
	return out, nil
}

// byRows applies f row by row (width d), copying the previous row's output
// for a row whose bits equal the previous row's.
func byRows[F float32 | float64](x, out []F, d int, f func(x, out []F)) {
	for i := 0; i < len(x); i += d {
		row, o := x[i:i+d], out[i:i+d]
		if i > 0 && sameBits(row, x[i-d:i]) {
			copy(o, out[i-d:i])
			continue
		}
		f(row, o)
	}
}

// sameBits reports whether a and b hold the same bits (so ±0 differ and a
// NaN equals the same NaN), comparing their memory at once.
func sameBits[F float32 | float64](a, b []F) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) == 0 {
		return true
	}
	n := len(a) * int(unsafe.Sizeof(a[0]))
	return bytes.Equal(unsafe.Slice((*byte)(unsafe.Pointer(&a[0])), n), unsafe.Slice((*byte)(unsafe.Pointer(&b[0])), n))
}

func (*pointwiseOp) DiffWRT(n int) []bool { return []bool{true} }
func (o *pointwiseOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("layers: %s: want 1 input, got %d", o.name, len(inputs))
	}
	back := *o.back // a fresh op (and buffer) per gradient node
	d, err := G.ApplyOp(&back, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

func (*pointwiseBackOp) Arity() int { return 2 }
func (*pointwiseBackOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}
func (o *pointwiseBackOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("layers: %s: want 2 inputs, got %d", o.name, len(in))
	}
	s, err := shapeOf(o.name, in[0], 2)
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}
func (o *pointwiseBackOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("layers: %s: want 2 inputs, got %d", o.name, len(vals))
	}
	dt, err := dtypeOf(o.name, vals...)
	if err != nil {
		return nil, err
	}
	s := vals[0].Shape()
	if len(s) != 2 || !s.Eq(vals[1].Shape()) {
		return nil, fmt.Errorf("layers: %s: shapes %v and %v", o.name, s, vals[1].Shape())
	}
	out := o.buffer(dt, s[0], s[1])
	switch x := vals[0].Data().(type) {
	case []float32:
		g, d := vals[1].Data().([]float32), out.Data().([]float32)
		onRows(len(x), s[1], func(lo, hi int) { o.f32(x[lo:hi], g[lo:hi], d[lo:hi]) })
	case []float64:
		g, d := vals[1].Data().([]float64), out.Data().([]float64)
		onRows(len(x), s[1], func(lo, hi int) { o.f64(x[lo:hi], g[lo:hi], d[lo:hi]) })
	}
	return out, nil
}
func (*pointwiseBackOp) DiffWRT(n int) []bool { return noDiff(n) }
func (o *pointwiseBackOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s is not differentiable", o.name)
}

// relu is 0 where x < 0 and x elsewhere (NaN and ±0 kept), as the fused
// Dense epilogue computes it: Rectify's value up to the sign of zero
// (Rectify gives −0 for negative inputs).
func relu[F float32 | float64](x, out []F) {
	for i, v := range x {
		if v < 0 {
			v = 0
		}
		out[i] = v
	}
}

// reluBack is g⊙[x > 0].
func reluBack[F float32 | float64](x, g, out []F) {
	for i, v := range x {
		var m F
		if v > 0 {
			m = 1
		}
		out[i] = g[i] * m
	}
}

// ---- concatCols ----

type concatColsOp struct{ fusedBase }

// ConcatCols returns [a b] for matrices a [N, p] and b [N, q], as a fused
// op.
func ConcatCols(a, b *G.Node) (y *G.Node, err error) {
	defer catch("concat", &err)
	return G.Must(G.ApplyOp(&concatColsOp{fusedBase{name: "concatCols"}}, a, b)), nil
}

func (*concatColsOp) Arity() int { return 2 }
func (*concatColsOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}
func (*concatColsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("layers: concatCols: want 2 inputs, got %d", len(in))
	}
	a, err := shapeOf("concatCols", in[0], 2)
	if err != nil {
		return nil, err
	}
	b, err := shapeOf("concatCols", in[1], 2)
	if err != nil {
		return nil, err
	}
	if a[0] != b[0] {
		return nil, fmt.Errorf("layers: concatCols: %v and %v have different row counts", a, b)
	}
	return tensor.Shape{a[0], a[1] + b[1]}, nil
}
func (o *concatColsOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("layers: concatCols: want 2 inputs, got %d", len(vals))
	}
	dt, err := dtypeOf("concatCols", vals...)
	if err != nil {
		return nil, err
	}
	sa, sb := vals[0].Shape(), vals[1].Shape()
	if len(sa) != 2 || len(sb) != 2 || sa[0] != sb[0] {
		return nil, fmt.Errorf("layers: concatCols: shapes %v and %v", sa, sb)
	}
	out := o.buffer(dt, sa[0], sa[1]+sb[1])
	switch a := vals[0].Data().(type) {
	case []float32:
		concatCols(a, vals[1].Data().([]float32), out.Data().([]float32), sa[1], sb[1])
	case []float64:
		concatCols(a, vals[1].Data().([]float64), out.Data().([]float64), sa[1], sb[1])
	}
	return out, nil
}

func concatCols[F float32 | float64](a, b, out []F, p, q int) {
	for i := 0; i < len(out)/(p+q); i++ {
		copy(out[i*(p+q):i*(p+q)+p], a[i*p:(i+1)*p])
		copy(out[i*(p+q)+p:(i+1)*(p+q)], b[i*q:(i+1)*q])
	}
}

func (*concatColsOp) DiffWRT(n int) []bool { return []bool{true, true} }
func (*concatColsOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("layers: concatCols: want 2 inputs, got %d", len(inputs))
	}
	p, q := inputs[0].Shape()[1], inputs[1].Shape()[1]
	ga, err := G.ApplyOp(&sliceColsOp{fusedBase{name: fmt.Sprintf("sliceCols(0,%d)", p)}, 0, p}, grad)
	if err != nil {
		return nil, err
	}
	gb, err := G.ApplyOp(&sliceColsOp{fusedBase{name: fmt.Sprintf("sliceCols(%d,%d)", p, p+q)}, p, p + q}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{ga, gb}, nil
}

// sliceColsOp returns the columns lo..hi−1 of a matrix.
type sliceColsOp struct {
	fusedBase
	lo, hi int
}

func (*sliceColsOp) Arity() int { return 1 }
func (*sliceColsOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}
func (o *sliceColsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("layers: sliceCols: want 1 input, got %d", len(in))
	}
	s, err := shapeOf("sliceCols", in[0], 2)
	if err != nil {
		return nil, err
	}
	if o.hi > s[1] || o.lo < 0 || o.lo >= o.hi {
		return nil, fmt.Errorf("layers: sliceCols %d..%d of %v", o.lo, o.hi, s)
	}
	return tensor.Shape{s[0], o.hi - o.lo}, nil
}
func (o *sliceColsOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("layers: sliceCols: want 1 input, got %d", len(vals))
	}
	dt, err := dtypeOf("sliceCols", vals...)
	if err != nil {
		return nil, err
	}
	s := vals[0].Shape()
	if len(s) != 2 || o.hi > s[1] {
		return nil, fmt.Errorf("layers: sliceCols %d..%d of %v", o.lo, o.hi, s)
	}
	out := o.buffer(dt, s[0], o.hi-o.lo)
	switch g := vals[0].Data().(type) {
	case []float32:
		sliceCols(g, out.Data().([]float32), s[1], o.lo, o.hi)
	case []float64:
		sliceCols(g, out.Data().([]float64), s[1], o.lo, o.hi)
	}
	return out, nil
}

func sliceCols[F float32 | float64](g, out []F, w, lo, hi int) {
	n := hi - lo
	for i := 0; i < len(g)/w; i++ {
		copy(out[i*n:(i+1)*n], g[i*w+lo:i*w+hi])
	}
}

func (*sliceColsOp) DiffWRT(n int) []bool { return noDiff(n) }
func (*sliceColsOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: sliceCols is not differentiable")
}
