package objectives

import (
	"fmt"
	"hash"
	"hash/fnv"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/internal/par"
	"github.com/ddsmc/ddsmc/internal/vmath"
)

// Fused Gorgonia ops of the look-ahead graph. Each costs O(rows·V) in both
// directions; they replace the constant selector matmuls (O(rows·V²)) that
// dropped the MASK column and formed γ, and the composed softmax and
// straight-through correction. Their backward passes are hand-derived and
// checked against finite differences in float64 (lookahead_ops_test.go).
//
//   carry(x, S)   x [N, V+1] (one-hot x_t, MASK last), S [K·N, V] (K tiles)
//                 out[k,n,v] = γ_n·S[k,n,v] + x[n,v],  γ_n = 1 − Σ_{u<V} x[n,u]
//                 ∂/∂S[k,n,v] = γ_n·g[k,n,v]
//                 ∂/∂x[n,v]   = Σ_k g[k,n,v] − Σ_k Σ_u g[k,n,u]·S[k,n,u]  (v < V)
//                 ∂/∂x[n,V]   = 0
//   noisyTile(ℓ, G)  ℓ [N, V], G [K·N, V]; out[k,n,v] = ℓ[n,v] + G[k,n,v]
//                 ∂/∂ℓ[n,v] = Σ_k g[k,n,v]   (G is noise: no gradient)
//   gumbelST(z)   z [M, V]; y = softmax(z/τ) row-wise (stable), out = y (soft)
//                 or onehot(argmax z) (hard: straight-through, the first
//                 maximum wins ties); in both cases
//                 ∂/∂z = (1/τ)·y⊙(g − ⟨g, y⟩)   (the softmax Jacobian)
//
// The hard forward value is the exact one-hot, as fl(y + fl(h − y)) = h in
// the former composed graph.

// opBase implements the boilerplate of the Op interface and holds the
// op's output buffer, reused from run to run (a node's value is valid until
// the next run of its program; the look-ahead copies its outputs right
// after each run).
type opBase struct {
	name string
	buf  *opBuf // shared by the copies of the op value
}

type opBuf struct{ t *tensor.Dense }

func newBase(name string) opBase { return opBase{name, &opBuf{}} }

func (o opBase) ReturnsPtr() bool      { return false }
func (o opBase) CallsExtern() bool     { return false }
func (o opBase) OverwritesInput() int  { return -1 }
func (o opBase) String() string        { return o.name }
func (o opBase) WriteHash(h hash.Hash) { fmt.Fprint(h, "ddsmc."+o.name) }
func (o opBase) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

func binaryType() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a)
}

func matShape(name string, in G.DimSizer) (tensor.Shape, error) {
	s, ok := in.(tensor.Shape)
	if !ok || len(s) != 2 {
		return nil, fmt.Errorf("%s: want a matrix, got %v", name, in)
	}
	return s, nil
}

// floats returns the data of v as []float32 or []float64 (exactly one
// non-nil).
func floats(v G.Value) ([]float32, []float64, error) {
	switch d := v.Data().(type) {
	case []float32:
		return d, nil, nil
	case []float64:
		return nil, d, nil
	}
	return nil, nil, fmt.Errorf("unsupported data %T", v.Data())
}

// like returns the op's output matrix of shape r×c with v's dtype (its
// reused buffer; the contents are stale).
func (o opBase) like(v G.Value, r, c int) (*tensor.Dense, []float32, []float64) {
	dt := tensor.Float64
	if _, ok := v.Data().([]float32); ok {
		dt = tensor.Float32
	}
	if t := o.buf.t; t == nil || t.Dtype() != dt || !t.Shape().Eq(tensor.Shape{r, c}) {
		o.buf.t = tensor.New(tensor.WithShape(r, c), tensor.Of(dt))
	}
	d32, _ := o.buf.t.Data().([]float32)
	d64, _ := o.buf.t.Data().([]float64)
	return o.buf.t, d32, d64
}

// ---- carry ----

type carryOp struct{ opBase }

func newCarry() carryOp { return carryOp{newBase("carry")} }

func (carryOp) Arity() int           { return 2 }
func (carryOp) Type() hm.Type        { return binaryType() }
func (carryOp) DiffWRT(n int) []bool { return []bool{true, true} }

func (o carryOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("carry: want 2 inputs, got %d", len(in))
	}
	x, err := matShape("carry", in[0])
	if err != nil {
		return nil, err
	}
	s, err := matShape("carry", in[1])
	if err != nil {
		return nil, err
	}
	if x[1] != s[1]+1 || s[0]%x[0] != 0 {
		return nil, fmt.Errorf("carry: x %v and S %v: want [N, V+1] and [K·N, V]", x, s)
	}
	return s.Clone(), nil
}

func (o carryOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("carry: want 2 inputs, got %d", len(vals))
	}
	xs, ss := vals[0].Shape(), vals[1].Shape()
	N, V := xs[0], ss[1]
	out, o32, o64 := o.like(vals[1], ss[0], V)
	x32, x64, err := floats(vals[0])
	if err != nil {
		return nil, fmt.Errorf("carry: %w", err)
	}
	s32, s64, err := floats(vals[1])
	if err != nil {
		return nil, fmt.Errorf("carry: %w", err)
	}
	if (x32 == nil) != (s32 == nil) || (o32 == nil) != (x32 == nil) {
		return nil, fmt.Errorf("carry: mixed dtypes")
	}
	if x32 != nil {
		carryFwd(x32, s32, o32, N, V)
	} else {
		carryFwd(x64, s64, o64, N, V)
	}
	return out, nil
}

func carryFwdRange[F float32 | float64](lo, hi int, x, s, out []F, N, V int) {
	K := len(s) / (N * V)
	for n := lo; n < hi; n++ {
		xr := x[n*(V+1) : (n+1)*(V+1)]
		var sum F
		for _, v := range xr[:V] {
			sum += v
		}
		gam := 1 - sum
		for k := range K {
			off := (k*N + n) * V
			sr, or := s[off:off+V], out[off:off+V]
			for v := range sr {
				or[v] = gam*sr[v] + xr[v]
			}
		}
	}
}

// carryFwd, carryBackX and carryBackS split their N positions over the
// cores (each position's rows are computed by one goroutine, so the bits
// do not depend on the split; par.Ranges).
func carryFwd[F float32 | float64](x, s, out []F, N, V int) {
	par.Ranges(N, len(s), func(lo, hi int) { carryFwdRange(lo, hi, x, s, out, N, V) })
}

func carryBackX[F float32 | float64](s, g, out []F, N, V int) {
	par.Ranges(N, len(s), func(lo, hi int) { carryBackXRange(lo, hi, s, g, out, N, V) })
}

func carryBackS[F float32 | float64](x, g, out []F, N, V int) {
	par.Ranges(N, len(g), func(lo, hi int) { carryBackSRange(lo, hi, x, g, out, N, V) })
}

func (o carryOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("carry: want 2 inputs, got %d", len(inputs))
	}
	x, s := inputs[0], inputs[1]
	dx, err := G.ApplyOp(carryBackXOp{newBase("carryBackX")}, x, s, grad)
	if err != nil {
		return nil, err
	}
	ds, err := G.ApplyOp(carryBackSOp{newBase("carryBackS")}, x, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, ds}, nil
}

// carryBackXOp(x, S, g) = ∂⟨g, carry(x, S)⟩/∂x.
type carryBackXOp struct{ opBase }

func (carryBackXOp) Arity() int { return 3 }
func (carryBackXOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a, a, a)
}
func (carryBackXOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (carryBackXOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("carryBackX is not differentiable")
}
func (carryBackXOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("carryBackX: want 3 inputs, got %d", len(in))
	}
	x, err := matShape("carryBackX", in[0])
	if err != nil {
		return nil, err
	}
	return x.Clone(), nil
}
func (o carryBackXOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 3 {
		return nil, fmt.Errorf("carryBackX: want 3 inputs, got %d", len(vals))
	}
	xs, ss := vals[0].Shape(), vals[1].Shape()
	N, V := xs[0], ss[1]
	out, o32, o64 := o.like(vals[0], N, V+1)
	s32, s64, err := floats(vals[1])
	if err != nil {
		return nil, fmt.Errorf("carryBackX: %w", err)
	}
	g32, g64, err := floats(vals[2])
	if err != nil {
		return nil, fmt.Errorf("carryBackX: %w", err)
	}
	if (s32 == nil) != (g32 == nil) || (o32 == nil) != (s32 == nil) || len(g32)+len(g64) != len(s32)+len(s64) {
		return nil, fmt.Errorf("carryBackX: mixed dtypes or shapes")
	}
	if s32 != nil {
		carryBackX(s32, g32, o32, N, V)
	} else {
		carryBackX(s64, g64, o64, N, V)
	}
	return out, nil
}

func carryBackXRange[F float32 | float64](lo, hi int, s, g, out []F, N, V int) {
	K := len(s) / (N * V)
	for n := lo; n < hi; n++ {
		or := out[n*(V+1) : (n+1)*(V+1)]
		clear(or)
		var dot F
		for k := range K {
			off := (k*N + n) * V
			sr, gr := s[off:off+V], g[off:off+V]
			for v := range gr {
				or[v] += gr[v]
				dot += gr[v] * sr[v]
			}
		}
		for v := range V {
			or[v] -= dot
		}
		or[V] = 0
	}
}

// carryBackSOp(x, g) = ∂⟨g, carry(x, S)⟩/∂S = γ⊙g.
type carryBackSOp struct{ opBase }

func (carryBackSOp) Arity() int           { return 2 }
func (carryBackSOp) Type() hm.Type        { return binaryType() }
func (carryBackSOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (carryBackSOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("carryBackS is not differentiable")
}
func (carryBackSOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("carryBackS: want 2 inputs, got %d", len(in))
	}
	g, err := matShape("carryBackS", in[1])
	if err != nil {
		return nil, err
	}
	return g.Clone(), nil
}
func (o carryBackSOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("carryBackS: want 2 inputs, got %d", len(vals))
	}
	xs, gs := vals[0].Shape(), vals[1].Shape()
	N, V := xs[0], gs[1]
	out, o32, o64 := o.like(vals[1], gs[0], V)
	x32, x64, err := floats(vals[0])
	if err != nil {
		return nil, fmt.Errorf("carryBackS: %w", err)
	}
	g32, g64, err := floats(vals[1])
	if err != nil {
		return nil, fmt.Errorf("carryBackS: %w", err)
	}
	if (x32 == nil) != (g32 == nil) || (o32 == nil) != (x32 == nil) {
		return nil, fmt.Errorf("carryBackS: mixed dtypes")
	}
	if x32 != nil {
		carryBackS(x32, g32, o32, N, V)
	} else {
		carryBackS(x64, g64, o64, N, V)
	}
	return out, nil
}

func carryBackSRange[F float32 | float64](lo, hi int, x, g, out []F, N, V int) {
	K := len(g) / (N * V)
	for n := lo; n < hi; n++ {
		xr := x[n*(V+1) : n*(V+1)+V]
		var sum F
		for _, v := range xr {
			sum += v
		}
		gam := 1 - sum
		for k := range K {
			off := (k*N + n) * V
			gr, or := g[off:off+V], out[off:off+V]
			for v := range gr {
				or[v] = gam * gr[v]
			}
		}
	}
}

// ---- gumbelST ----

// gumbelSTOp is the (straight-through) Gumbel-softmax of z = ℓ + G with
// temperature τ; see the package comment above.
type gumbelSTOp struct {
	opBase
	tau  float64
	hard bool
}

func newGumbelST(tau float64, hard bool) gumbelSTOp {
	return gumbelSTOp{newBase("gumbelST"), tau, hard}
}

func (o gumbelSTOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "ddsmc.gumbelST(%v,%v)", o.tau, o.hard) }
func (o gumbelSTOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (o gumbelSTOp) String() string { return fmt.Sprintf("gumbelST(τ=%v, hard=%v)", o.tau, o.hard) }
func (gumbelSTOp) Arity() int       { return 1 }
func (gumbelSTOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(a, a)
}
func (gumbelSTOp) DiffWRT(n int) []bool { return []bool{true} }
func (gumbelSTOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("gumbelST: want 1 input, got %d", len(in))
	}
	s, err := matShape("gumbelST", in[0])
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}
func (o gumbelSTOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("gumbelST: want 1 input, got %d", len(vals))
	}
	s := vals[0].Shape()
	out, o32, o64 := o.like(vals[0], s[0], s[1])
	z32, z64, err := floats(vals[0])
	if err != nil {
		return nil, fmt.Errorf("gumbelST: %w", err)
	}
	if z32 != nil {
		V := s[1]
		par.Ranges(s[0], len(z32), func(lo, hi int) { gumbelFwd(z32[lo*V:hi*V], o32[lo*V:hi*V], V, o.tau, o.hard) })
	} else {
		V := s[1]
		par.Ranges(s[0], len(z64), func(lo, hi int) { gumbelFwd(z64[lo*V:hi*V], o64[lo*V:hi*V], V, o.tau, o.hard) })
	}
	return out, nil
}

// softmaxRow writes softmax(z/τ) of one row into y (stable: the row's own
// maximum is subtracted), with e (len(z)) as scratch for the exponentials
// (vmath.Exp: math.Exp's bits).
func softmaxRow[F float32 | float64](z, y []F, invTau F, e []float64) {
	m := z[0]
	for _, v := range z[1:] {
		if v > m {
			m = v
		}
	}
	e = e[:len(z)]
	for j, v := range z {
		e[j] = float64((v - m) * invTau)
	}
	vmath.Exp(e, e)
	var sum F
	for j, x := range e {
		y[j] = F(x)
		sum += y[j]
	}
	inv := 1 / sum
	for j := range y {
		y[j] *= inv
	}
}

func gumbelFwd[F float32 | float64](z, out []F, V int, tau float64, hard bool) {
	invTau := F(1 / tau)
	var e []float64
	if !hard {
		e = make([]float64, V)
	}
	for i := 0; i < len(z)/V; i++ {
		zr, or := z[i*V:(i+1)*V], out[i*V:(i+1)*V]
		if !hard {
			softmaxRow(zr, or, invTau, e)
			continue
		}
		best := 0
		for j, v := range zr {
			if v > zr[best] {
				best = j
			}
		}
		clear(or)
		or[best] = 1
	}
}

func (o gumbelSTOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("gumbelST: want 1 input, got %d", len(inputs))
	}
	d, err := G.ApplyOp(gumbelBackOp{newBase("gumbelBack"), o.tau}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

// gumbelBackOp(z, g) = (1/τ)·y⊙(g − ⟨g, y⟩) row-wise, y = softmax(z/τ).
type gumbelBackOp struct {
	opBase
	tau float64
}

func (o gumbelBackOp) WriteHash(h hash.Hash) { fmt.Fprintf(h, "ddsmc.gumbelBack(%v)", o.tau) }
func (o gumbelBackOp) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}
func (gumbelBackOp) Arity() int           { return 2 }
func (gumbelBackOp) Type() hm.Type        { return binaryType() }
func (gumbelBackOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (gumbelBackOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("gumbelBack is not differentiable")
}
func (gumbelBackOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("gumbelBack: want 2 inputs, got %d", len(in))
	}
	s, err := matShape("gumbelBack", in[0])
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}
func (o gumbelBackOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("gumbelBack: want 2 inputs, got %d", len(vals))
	}
	s := vals[0].Shape()
	out, o32, o64 := o.like(vals[0], s[0], s[1])
	z32, z64, err := floats(vals[0])
	if err != nil {
		return nil, fmt.Errorf("gumbelBack: %w", err)
	}
	g32, g64, err := floats(vals[1])
	if err != nil {
		return nil, fmt.Errorf("gumbelBack: %w", err)
	}
	if (z32 == nil) != (g32 == nil) || len(z32)+len(z64) != len(g32)+len(g64) {
		return nil, fmt.Errorf("gumbelBack: mixed dtypes or shapes")
	}
	if z32 != nil {
		V := s[1]
		par.Ranges(s[0], len(z32), func(lo, hi int) { gumbelBack(z32[lo*V:hi*V], g32[lo*V:hi*V], o32[lo*V:hi*V], V, o.tau) })
	} else {
		V := s[1]
		par.Ranges(s[0], len(z64), func(lo, hi int) { gumbelBack(z64[lo*V:hi*V], g64[lo*V:hi*V], o64[lo*V:hi*V], V, o.tau) })
	}
	return out, nil
}

func gumbelBack[F float32 | float64](z, g, out []F, V int, tau float64) {
	invTau := F(1 / tau)
	e := make([]float64, V) // one scratch row per range of rows
	for i := 0; i < len(z)/V; i++ {
		zr, gr, or := z[i*V:(i+1)*V], g[i*V:(i+1)*V], out[i*V:(i+1)*V]
		if allZero(gr) { // e.g. a carried-over (unmasked) position: the softmax is not needed
			clear(or)
			continue
		}
		softmaxRow(zr, or, invTau, e) // or = y
		var dot F
		for j, y := range or {
			dot += gr[j] * y
		}
		for j, y := range or {
			or[j] = invTau * y * (gr[j] - dot)
		}
	}
}

// allZero reports whether every entry of a is 0.
func allZero[F float32 | float64](a []F) bool {
	for _, v := range a {
		if v != 0 {
			return false
		}
	}
	return true
}

// ---- noisyTile ----

// noisyTileOp is z = tile_K(ℓ) + G: the K copies of the logits plus their
// Gumbel noise, in one pass (it replaces a product with a column of ones,
// two reshapes and an allocating add).
type noisyTileOp struct{ opBase }

func newNoisyTile() noisyTileOp { return noisyTileOp{newBase("noisyTile")} }

func (noisyTileOp) Arity() int           { return 2 }
func (noisyTileOp) Type() hm.Type        { return binaryType() }
func (noisyTileOp) DiffWRT(n int) []bool { return []bool{true, false} }
func (noisyTileOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("noisyTile: want 2 inputs, got %d", len(in))
	}
	l, err := matShape("noisyTile", in[0])
	if err != nil {
		return nil, err
	}
	g, err := matShape("noisyTile", in[1])
	if err != nil {
		return nil, err
	}
	if l[1] != g[1] || l[0] == 0 || g[0]%l[0] != 0 {
		return nil, fmt.Errorf("noisyTile: noise %v is not a whole number of tiles of the logits %v", g, l)
	}
	return g.Clone(), nil
}
func (o noisyTileOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("noisyTile: want 2 inputs, got %d", len(vals))
	}
	s := vals[1].Shape()
	out, o32, o64 := o.like(vals[0], s[0], s[1])
	l32, l64, err := floats(vals[0])
	if err != nil {
		return nil, fmt.Errorf("noisyTile: %w", err)
	}
	g32, g64, err := floats(vals[1])
	if err != nil {
		return nil, fmt.Errorf("noisyTile: %w", err)
	}
	if (l32 == nil) != (g32 == nil) || len(l32)+len(l64) == 0 || (len(g32)+len(g64))%(len(l32)+len(l64)) != 0 {
		return nil, fmt.Errorf("noisyTile: mixed dtypes or shapes")
	}
	if l32 != nil {
		noisyTile(l32, g32, o32)
	} else {
		noisyTile(l64, g64, o64)
	}
	return out, nil
}

func noisyTile[F float32 | float64](l, g, out []F) {
	n := len(l)
	for k := 0; k < len(g); k += n {
		gk, ok := g[k:k+n], out[k:k+n]
		for i, v := range l {
			ok[i] = v + gk[i]
		}
	}
}

func (o noisyTileOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 2 {
		return nil, fmt.Errorf("noisyTile: want 2 inputs, got %d", len(inputs))
	}
	d, err := G.ApplyOp(tileSumOp{newBase("tileSum")}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d, nil}, nil
}

// tileSumOp(ℓ, g) = Σ_k g[k-th tile]: the gradient of noisyTile with
// respect to ℓ (ℓ gives only the shape).
type tileSumOp struct{ opBase }

func (tileSumOp) Arity() int           { return 2 }
func (tileSumOp) Type() hm.Type        { return binaryType() }
func (tileSumOp) DiffWRT(n int) []bool { return make([]bool, n) }
func (tileSumOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("tileSum is not differentiable")
}
func (tileSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 2 {
		return nil, fmt.Errorf("tileSum: want 2 inputs, got %d", len(in))
	}
	s, err := matShape("tileSum", in[0])
	if err != nil {
		return nil, err
	}
	return s.Clone(), nil
}
func (o tileSumOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 2 {
		return nil, fmt.Errorf("tileSum: want 2 inputs, got %d", len(vals))
	}
	s := vals[0].Shape()
	out, o32, o64 := o.like(vals[0], s[0], s[1])
	g32, g64, err := floats(vals[1])
	if err != nil {
		return nil, fmt.Errorf("tileSum: %w", err)
	}
	n := s[0] * s[1]
	if (o32 == nil) != (g32 == nil) || n == 0 || (len(g32)+len(g64))%n != 0 {
		return nil, fmt.Errorf("tileSum: mixed dtypes or shapes")
	}
	if g32 != nil {
		tileSum(g32, o32)
	} else {
		tileSum(g64, o64)
	}
	return out, nil
}

func tileSum[F float32 | float64](g, out []F) {
	n := len(out)
	copy(out, g[:n])
	for k := n; k < len(g); k += n {
		for i, v := range g[k : k+n] {
			out[i] += v
		}
	}
}
