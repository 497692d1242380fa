package layers

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Init names a deterministic parameter initialiser.
type Init int

const (
	// InitNormal draws N(0, 1/fanIn) with fanIn = shape[0] (weights of x·W).
	InitNormal Init = iota
	// InitZeros fills with 0 (biases, LayerNorm β).
	InitZeros
	// InitOnes fills with 1 (LayerNorm γ).
	InitOnes
	// InitSmall draws N(0, 0.02²) (embeddings).
	InitSmall
)

// Store holds the master copy of every named parameter tensor of a model.
// Initialisation is deterministic: the values of a parameter depend only on
// the store's seed and the parameter's name and shape, never on the order in
// which parameters are created.
type Store struct {
	dtype   tensor.Dtype
	seed    uint64
	vals    map[string]*tensor.Dense
	version atomic.Uint64 // bumped by Touch
	owned   *ownedKeys    // the owners entries of its tensors, removed when the store is collected
}

// ownedKeys lists a store's entries in owners (kept apart from the store,
// so that its cleanup does not keep the store alive).
type ownedKeys struct {
	mu   sync.Mutex
	keys []uintptr
	self weak.Pointer[Store]
}

// Touch records that parameter values changed in place (an optimiser
// step, a load): the products that keep their weights packed between runs
// (MatMulParam) repack them on their next run. Code that writes a store's
// parameter values other than through SetFloat64s (which touches the
// owner itself), such as an optimiser writing a graph's learnables, must
// call it before the store's graphs run again.
func (s *Store) Touch() { s.version.Add(1) }

// Version counts the store's Touch calls.
func (s *Store) Version() uint64 { return s.version.Load() }

// NewStore returns an empty store for dtype (tensor.Float32 or
// tensor.Float64) with initialisation seed seed.
func NewStore(dtype tensor.Dtype, seed uint64) (*Store, error) {
	if dtype != tensor.Float32 && dtype != tensor.Float64 {
		return nil, fmt.Errorf("layers: unsupported dtype %v (want float32 or float64)", dtype)
	}
	st := &Store{dtype: dtype, seed: seed, vals: map[string]*tensor.Dense{}}
	st.owned = &ownedKeys{self: weak.Make(st)}
	runtime.AddCleanup(st, func(o *ownedKeys) {
		for _, k := range o.keys { // only the entries still this store's (an address may be reused)
			owners.CompareAndDelete(k, o.self)
		}
	}, st.owned)
	return st, nil
}

// DType returns the store's element type.
func (s *Store) DType() tensor.Dtype { return s.dtype }

// Names returns the parameter names in sorted order.
func (s *Store) Names() []string {
	names := make([]string, 0, len(s.vals))
	for n := range s.vals {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Get returns the master tensor of a parameter, or nil.
func (s *Store) Get(name string) *tensor.Dense { return s.vals[name] }

// NumParams returns the total number of scalar parameters.
func (s *Store) NumParams() int {
	n := 0
	for _, v := range s.vals {
		n += v.Shape().TotalSize()
	}
	return n
}

// Param returns the master tensor called name, creating and initialising it
// if it does not exist yet. Asking again with another shape is an error.
func (s *Store) Param(name string, shape []int, init Init) (*tensor.Dense, error) {
	if v, ok := s.vals[name]; ok {
		if !v.Shape().Eq(tensor.Shape(shape)) {
			return nil, fmt.Errorf("layers: parameter %q has shape %v, requested %v", name, v.Shape(), shape)
		}
		return v, nil
	}
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("layers: parameter %q has non-positive dimension in shape %v", name, shape)
		}
		n *= d
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	rng := rand.New(rand.NewPCG(s.seed, h.Sum64()))
	vals := make([]float64, n)
	switch init {
	case InitNormal:
		sd := 1 / math.Sqrt(float64(shape[0]))
		for i := range vals {
			vals[i] = rng.NormFloat64() * sd
		}
	case InitSmall:
		for i := range vals {
			vals[i] = rng.NormFloat64() * 0.02
		}
	case InitOnes:
		for i := range vals {
			vals[i] = 1
		}
	case InitZeros:
	default:
		return nil, fmt.Errorf("layers: unknown initialiser %d for %q", init, name)
	}
	t := NewDense(s.dtype, shape, vals)
	s.vals[name] = t
	s.owned.mu.Lock()
	owners.Store(t.Uintptr(), s.owned.self)
	s.owned.keys = append(s.owned.keys, t.Uintptr())
	s.owned.mu.Unlock()
	return t, nil
}

// owners maps the storage of every parameter tensor to its store (weakly:
// a dead store's entries are ignored), so that SetFloat64s into a
// parameter touches its store.
var owners sync.Map // uintptr → weak.Pointer[Store]

// touchOwner touches the store that owns t's storage, if any.
func touchOwner(t *tensor.Dense) {
	if w, ok := owners.Load(t.Uintptr()); ok {
		if s := w.(weak.Pointer[Store]).Value(); s != nil {
			s.Touch()
		}
	}
}

// NewDense returns a dense tensor of dtype and shape holding vals (converted).
func NewDense(dtype tensor.Dtype, shape []int, vals []float64) *tensor.Dense {
	if dtype == tensor.Float32 {
		b := make([]float32, len(vals))
		for i, v := range vals {
			b[i] = float32(v)
		}
		return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(b))
	}
	b := make([]float64, len(vals))
	copy(b, vals)
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(b))
}

// Float64s copies a float32 or float64 tensor's data into dst (grown as needed).
func Float64s(t interface{ Data() interface{} }, dst []float64) []float64 {
	switch d := t.Data().(type) {
	case []float32:
		dst = grow(dst, len(d))
		for i, v := range d {
			dst[i] = float64(v)
		}
	case []float64:
		dst = grow(dst, len(d))
		copy(dst, d)
	case float32:
		dst = append(dst[:0], float64(d))
	case float64:
		dst = append(dst[:0], d)
	}
	return dst
}

// CopyFloat64s copies the float32 or float64 values of t, converted to
// float64, into dst, which must be at least as long.
func CopyFloat64s(t interface{ Data() interface{} }, dst []float64) {
	switch d := t.Data().(type) {
	case []float32:
		for i, x := range d {
			dst[i] = float64(x)
		}
	case []float64:
		copy(dst, d)
	}
}

// SetFloat64s writes src into a float32 or float64 tensor of the same size.
// Writing a parameter's values (a Store's tensor, or a tensor over its
// storage) touches the store (Store.Touch).
func SetFloat64s(t *tensor.Dense, src []float64) error {
	defer touchOwner(t)
	switch d := t.Data().(type) {
	case []float32:
		if len(d) != len(src) {
			return fmt.Errorf("layers: size mismatch: tensor has %d values, got %d", len(d), len(src))
		}
		for i, v := range src {
			d[i] = float32(v)
		}
	case []float64:
		if len(d) != len(src) {
			return fmt.Errorf("layers: size mismatch: tensor has %d values, got %d", len(d), len(src))
		}
		copy(d, src)
	default:
		return fmt.Errorf("layers: unsupported tensor data %T", d)
	}
	return nil
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

// Ctx builds layers into one Gorgonia graph, binding parameter nodes to a
// Store. With Alias set, parameter nodes hold the master tensors themselves,
// so a solver stepping them updates the store (training). Otherwise each node
// gets its own tensor header over the master data: Gorgonia transposes
// operand headers in place, so headers shared between machines race.
//
// With LoRA.Rank > 0, every Linear built through the context also gets a
// low-rank adapter (see LoRAConfig).
type Ctx struct {
	G     *G.ExprGraph
	Store *Store
	Alias bool
	LoRA  LoRAConfig

	nodes  map[string]*G.Node
	params G.Nodes
}

// LoRA suffixes of the adapter parameters added to a Linear layer "name":
// name+LoRASuffixA has shape [in, Rank], name+LoRASuffixB shape [Rank, out].
const (
	LoRASuffixA = ".lora_A"
	LoRASuffixB = ".lora_B"
)

// LoRAConfig switches on low-rank adapters (LoRA) in Linear. With Rank > 0,
// Linear(c, name, x, out, bias) computes
//
//	y = x·W + b + (Alpha/Rank)·(x·A)·B
//
// with A = name+".lora_A" [in, Rank] (InitNormal, N(0, 1/in)) and
// B = name+".lora_B" [Rank, out] (InitZeros), so a fresh adapter leaves the
// layer's function unchanged (bit for bit: the adapter term is exactly 0).
// Alpha 0 means Alpha = Rank (scale 1); Alpha < 0 is rejected by Linear.
// Rank 0 (the zero value) turns adapters off. InputProjection, LayerNorm and
// AddPositional never get adapters.
type LoRAConfig struct {
	Rank  int
	Alpha float64
}

// Scale returns Alpha/Rank (1 when Alpha is 0), the adapter's multiplier.
func (l LoRAConfig) Scale() float64 {
	if l.Alpha == 0 {
		return 1
	}
	return l.Alpha / float64(l.Rank)
}

// IsLoRA reports whether name is a LoRA adapter parameter (it ends in
// ".lora_A" or ".lora_B").
func IsLoRA(name string) bool {
	return strings.HasSuffix(name, LoRASuffixA) || strings.HasSuffix(name, LoRASuffixB)
}

// NewCtx returns a context over a fresh graph.
func NewCtx(s *Store, alias bool) *Ctx {
	return &Ctx{G: G.NewGraph(), Store: s, Alias: alias, nodes: map[string]*G.Node{}}
}

// Param returns the graph node for the parameter called name, creating the
// parameter (see Store.Param) and its node on first use.
func (c *Ctx) Param(name string, shape []int, init Init) (*G.Node, error) {
	if n, ok := c.nodes[name]; ok {
		return n, nil
	}
	t, err := c.Store.Param(name, shape, init)
	if err != nil {
		return nil, err
	}
	if !c.Alias {
		t = tensor.New(tensor.WithShape(t.Shape().Clone()...), tensor.WithBacking(t.Data()))
	}
	n := G.NodeFromAny(c.G, t, G.WithName(name))
	c.nodes[name] = n
	c.params = append(c.params, n)
	return n, nil
}

// Learnables returns the parameter nodes created so far, in creation order.
func (c *Ctx) Learnables() G.Nodes { return c.params }

// Const returns a scalar constant node of the context's dtype.
func (c *Ctx) Const(v float64) *G.Node {
	if c.Store.dtype == tensor.Float32 {
		return G.NewConstant(float32(v))
	}
	return G.NewConstant(v)
}

// Input returns a new input node of the context's dtype and shape.
func (c *Ctx) Input(name string, shape ...int) *G.Node {
	return G.NewTensor(c.G, c.Store.dtype, len(shape), G.WithShape(shape...), G.WithName(name))
}

// DTypeOf maps a config dtype name to a tensor dtype: "float64" is
// Float64, anything else (validated elsewhere) Float32.
func DTypeOf(name string) tensor.Dtype {
	if name == "float64" {
		return tensor.Float64
	}
	return tensor.Float32
}
