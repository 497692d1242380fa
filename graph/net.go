package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/layers"
)

// Config describes a denoiser architecture. L and V come from the data set,
// not from the user's config file.
type Config struct {
	Arch     string `toml:"arch" json:"arch"`             // "mlp" or "transformer"
	L        int    `toml:"-" json:"length"`              // sequence length
	V        int    `toml:"-" json:"vocab"`               // vocabulary size, excluding MASK
	Embed    int    `toml:"embed" json:"embed"`           // token embedding width d
	Hidden   int    `toml:"hidden" json:"hidden"`         // MLP hidden width, or transformer FFN width
	Layers   int    `toml:"layers" json:"layers"`         // MLP hidden layers, or transformer blocks
	Heads    int    `toml:"heads" json:"heads"`           // attention heads (transformer only)
	TimeDim  int    `toml:"time_dim" json:"time_dim"`     // sinusoidal time features; 0 = no time input
	Act      string `toml:"activation" json:"activation"` // "relu", "gelu" or "silu"
	DType    string `toml:"dtype" json:"dtype"`           // "float32" (default) or "float64"
	InitSeed uint64 `toml:"init_seed" json:"init_seed"`   // seed of the deterministic initialisation

	// LoRARank > 0 adds a low-rank adapter (layers.LoRAConfig) of this rank
	// to every Linear layer of the denoiser (MLP layers, time embedding,
	// attention projections, FFN and head; not the one-hot input projection,
	// the LayerNorms or the positional embedding). 0 (the default) = off.
	// Fresh adapters leave the function unchanged; see Model.LoadBase and
	// Model.Trainable for fine-tuning only the adapters.
	LoRARank int `toml:"lora_rank" json:"lora_rank,omitempty"`
	// LoRAAlpha is the adapter scale numerator: the adapter term is
	// (LoRAAlpha/LoRARank)·(x·A)·B. 0 means LoRAAlpha = LoRARank (scale 1).
	// Must be finite and ≥ 0. Both fields are omitted from the JSON when 0,
	// so configs without adapters serialise exactly as before.
	LoRAAlpha float64 `toml:"lora_alpha" json:"lora_alpha,omitempty"`
	// Classes > 0 makes the denoiser class-conditional: a one-hot class
	// input over Classes+1 values, the last (NullClass) standing for "no
	// class", is embedded to width Embed and added to every position
	// (transformer) or appended to the flattened embedding (MLP). Trained
	// with label dropout (objectives.TrainConfig.LabelDropout), one network
	// gives both p(x | c) and p(x), the two factors of classifier-free
	// guidance. 0 (the default) = unconditional; omitted from the JSON.
	Classes int `toml:"classes" json:"classes,omitempty"`
}

// NullClass is the class index that stands for "no class" in a
// class-conditional model's calls (Model.WithClass).
const NullClass = -1

// DefaultConfig returns the paper's GMM MLP (§6(a1): embedding 64, hidden
// 64, 2 hidden layers, no time input) for sequences of length L over V.
func DefaultConfig(L, V int) Config {
	return Config{Arch: "mlp", L: L, V: V, Embed: 64, Hidden: 64, Layers: 2, Act: "relu", DType: "float32", InitSeed: 1}
}

// Validate reports the first out-of-range field, naming it.
func (c Config) Validate() error {
	switch {
	case c.Arch != "mlp" && c.Arch != "transformer":
		return fmt.Errorf("graph: model.arch = %q: want \"mlp\" or \"transformer\"", c.Arch)
	case c.L <= 0 || c.V <= 0:
		return fmt.Errorf("graph: model shape L=%d V=%d: both must be positive", c.L, c.V)
	case c.Embed <= 0:
		return fmt.Errorf("graph: model.embed = %d: must be positive", c.Embed)
	case c.Hidden <= 0:
		return fmt.Errorf("graph: model.hidden = %d: must be positive", c.Hidden)
	case c.Layers <= 0:
		return fmt.Errorf("graph: model.layers = %d: must be positive", c.Layers)
	case c.TimeDim < 0 || c.TimeDim%2 != 0:
		return fmt.Errorf("graph: model.time_dim = %d: must be 0 or a positive even number", c.TimeDim)
	case c.Arch == "transformer" && (c.Heads <= 0 || c.Embed%c.Heads != 0):
		return fmt.Errorf("graph: model.heads = %d: must be positive and divide model.embed = %d", c.Heads, c.Embed)
	case c.DType != "float32" && c.DType != "float64":
		return fmt.Errorf("graph: model.dtype = %q: want \"float32\" or \"float64\"", c.DType)
	case c.Classes < 0:
		return fmt.Errorf("graph: model.classes = %d: must be ≥ 0 (0 = unconditional)", c.Classes)
	case c.LoRARank < 0:
		return fmt.Errorf("graph: model.lora_rank = %d: must be ≥ 0 (0 = no adapters)", c.LoRARank)
	case math.IsNaN(c.LoRAAlpha) || math.IsInf(c.LoRAAlpha, 0) || c.LoRAAlpha < 0:
		return fmt.Errorf("graph: model.lora_alpha = %v: must be finite and ≥ 0 (0 = lora_rank, i.e. scale 1)", c.LoRAAlpha)
	}
	switch layers.Activation(c.Act) {
	case layers.ReLU, layers.GeLU, layers.SiLU:
	default:
		return fmt.Errorf("graph: model.activation = %q: want relu, gelu or silu", c.Act)
	}
	return nil
}

// LoRA returns the adapter configuration Build installs in its context.
func (c Config) LoRA() layers.LoRAConfig {
	return layers.LoRAConfig{Rank: c.LoRARank, Alpha: c.LoRAAlpha}
}

func (c Config) dtype() tensor.Dtype { return layers.DTypeOf(c.DType) }

// Net is one denoiser instance in a graph, for a fixed batch size B.
type Net struct {
	B      int
	X      *G.Node // one-hot or soft one-hot x_t, [B, L, V+1]; index V is MASK
	TF     *G.Node // time features, [B, TimeDim]; nil without time input
	C      *G.Node // one-hot class, [B, Classes+1] (last = null class); nil if unconditional
	Logits *G.Node // x0-logits, [B, L, V]
	Flat   *G.Node // the same logits as a matrix, [B·L, V]
}

// Build adds the denoiser for batch size B to c's graph, creating the
// model's parameters in c.Store on first use. While it builds, c.LoRA is
// set from cfg (cfg.LoRA()), so the denoiser's Linear layers get adapters
// iff cfg.LoRARank > 0; c.LoRA is restored on return, so whatever the
// caller adds to c afterwards (losses, reward heads) gets none.
func Build(cfg Config, c *layers.Ctx, B int) (net *Net, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if B <= 0 {
		return nil, fmt.Errorf("graph: batch size %d must be positive", B)
	}
	defer func(saved layers.LoRAConfig) { c.LoRA = saved }(c.LoRA)
	c.LoRA = cfg.LoRA()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("graph: building %s denoiser: %v", cfg.Arch, r)
		}
	}()
	L, V, D := cfg.L, cfg.V, cfg.Embed
	act := layers.Activation(cfg.Act)
	net = &Net{B: B, X: c.Input("x_t", B, L, V+1)}
	var temb *G.Node
	if cfg.TimeDim > 0 {
		net.TF = c.Input("t_features", B, cfg.TimeDim)
		if temb, err = layers.TimeEmbedding(c, "time", net.TF, D); err != nil {
			return nil, err
		}
	}
	var cemb *G.Node
	if cfg.Classes > 0 {
		net.C = c.Input("class", B, cfg.Classes+1)
		if cemb, err = layers.Linear(c, "class", net.C, D, false); err != nil {
			return nil, err
		}
	}
	h, err := layers.InputProjection(c, "embed", G.Must(G.Reshape(net.X, tensor.Shape{B * L, V + 1})), D)
	if err != nil {
		return nil, err
	}
	switch cfg.Arch {
	case "mlp":
		h = G.Must(G.Reshape(h, tensor.Shape{B, L * D}))
		for _, e := range []*G.Node{temb, cemb} {
			if e != nil {
				if h, err = layers.ConcatCols(h, e); err != nil {
					return nil, err
				}
			}
		}
		widths := make([]int, 0, cfg.Layers+1)
		for i := 0; i < cfg.Layers; i++ {
			widths = append(widths, cfg.Hidden)
		}
		if h, err = layers.MLP(c, "mlp", h, append(widths, L*V), act); err != nil {
			return nil, err
		}
		net.Flat = G.Must(G.Reshape(h, tensor.Shape{B * L, V}))
	case "transformer":
		if h, err = layers.AddPositional(c, "pos", h, B, L); err != nil {
			return nil, err
		}
		for _, e := range []*G.Node{temb, cemb} {
			if e != nil {
				if h, err = layers.AddPerSequence(h, e, B, L); err != nil {
					return nil, err
				}
			}
		}
		for i := 0; i < cfg.Layers; i++ {
			if h, err = layers.TransformerBlock(c, fmt.Sprintf("block%d", i), h, B, L, cfg.Heads, cfg.Hidden, act); err != nil {
				return nil, err
			}
		}
		if h, err = layers.LayerNorm(c, "lnf", h); err != nil {
			return nil, err
		}
		if net.Flat, err = layers.Linear(c, "head", h, V, true); err != nil {
			return nil, err
		}
	}
	net.Logits = G.Must(G.Reshape(net.Flat, tensor.Shape{B, L, V}))
	return net, nil
}

// Inputs holds preallocated input tensors for one Net and fills them.
type Inputs struct {
	cfg Config
	X   *tensor.Dense
	TF  *tensor.Dense
	tf  []float64
	C   *tensor.Dense // one-hot classes [B, Classes+1]; nil if unconditional
	cv  []float64
	cls []int // the classes C holds, per row (NullClass = none)
}

// NewInputs allocates the input tensors of a batch of B sequences.
func NewInputs(cfg Config, B int) *Inputs {
	in := &Inputs{cfg: cfg}
	in.X = layers.NewDense(cfg.dtype(), []int{B, cfg.L, cfg.V + 1}, make([]float64, B*cfg.L*(cfg.V+1)))
	if cfg.TimeDim > 0 {
		in.tf = make([]float64, B*cfg.TimeDim)
		in.TF = layers.NewDense(cfg.dtype(), []int{B, cfg.TimeDim}, in.tf)
	}
	if cfg.Classes > 0 {
		in.cv = make([]float64, B*(cfg.Classes+1))
		in.cls = make([]int, B)
		for b := range in.cls {
			in.cls[b] = NullClass
			in.cv[b*(cfg.Classes+1)+cfg.Classes] = 1
		}
		in.C = layers.NewDense(cfg.dtype(), []int{B, cfg.Classes + 1}, in.cv)
	}
	return in
}

// SetClasses writes the per-row classes of a class-conditional net (length
// B; each in 0..Classes−1, or NullClass for "no class"). Rows whose class
// is unchanged cost nothing.
func (in *Inputs) SetClasses(cls []int) error {
	K := in.cfg.Classes
	if K == 0 {
		return fmt.Errorf("graph: classes given to an unconditional denoiser (model.classes = 0)")
	}
	if len(cls) != len(in.cls) {
		return fmt.Errorf("graph: %d classes for a batch of %d", len(cls), len(in.cls))
	}
	changed := false
	for b, c := range cls {
		if c != NullClass && (c < 0 || c >= K) {
			return fmt.Errorf("graph: class %d of row %d outside 0..%d (or %d for none)", c, b, K-1, NullClass)
		}
		if c == in.cls[b] {
			continue
		}
		row := in.cv[b*(K+1) : (b+1)*(K+1)]
		clear(row)
		if c == NullClass {
			row[K] = 1
		} else {
			row[c] = 1
		}
		in.cls[b], changed = c, true
	}
	if !changed {
		return nil
	}
	return layers.SetFloat64s(in.C, in.cv)
}

// SetClass gives every row the class c (a no-op for an unconditional net).
func (in *Inputs) SetClass(c int) error {
	if in.C == nil {
		return nil
	}
	if same := func() bool {
		for _, x := range in.cls {
			if x != c {
				return false
			}
		}
		return true
	}(); same {
		return nil
	}
	cls := make([]int, len(in.cls))
	for b := range cls {
		cls[b] = c
	}
	return in.SetClasses(cls)
}

// SetTokens writes the one-hot encoding of xt (length B·L, values 0..V with
// V = MASK) and the time features of t (length B).
func (in *Inputs) SetTokens(xt []int, t []float64) error {
	L, V := in.cfg.L, in.cfg.V
	B := in.X.Shape()[0]
	if len(xt) != B*L {
		return fmt.Errorf("graph: x_t has %d tokens, want B·L = %d·%d", len(xt), B, L)
	}
	for i, v := range xt {
		if v < 0 || v > V {
			return fmt.Errorf("graph: token %d at position %d out of range [0, %d] (%d is MASK)", v, i, V, V)
		}
	}
	switch d := in.X.Data().(type) {
	case []float32:
		clear(d)
		for i, v := range xt {
			d[i*(V+1)+v] = 1
		}
	case []float64:
		clear(d)
		for i, v := range xt {
			d[i*(V+1)+v] = 1
		}
	}
	return in.setTime(t)
}

// SetSoft writes a soft one-hot x (length B·L·(V+1)) and the time features.
func (in *Inputs) SetSoft(x []float64, t []float64) error {
	if n := in.X.Shape().TotalSize(); len(x) != n {
		return fmt.Errorf("graph: soft x_t has %d values, want B·L·(V+1) = %d", len(x), n)
	}
	if err := layers.SetFloat64s(in.X, x); err != nil {
		return err
	}
	return in.setTime(t)
}

func (in *Inputs) setTime(t []float64) error {
	B := in.X.Shape()[0]
	if len(t) != B {
		return fmt.Errorf("graph: %d times for a batch of %d", len(t), B)
	}
	for b, v := range t {
		if !(v >= 0 && v <= 1) {
			return fmt.Errorf("graph: time t[%d] = %v outside [0, 1]", b, v)
		}
	}
	if in.TF == nil {
		return nil
	}
	if err := layers.TimeFeatures(t, in.cfg.TimeDim, in.tf); err != nil {
		return err
	}
	return layers.SetFloat64s(in.TF, in.tf)
}

// Bind lets the net's input nodes hold the tensors.
func (in *Inputs) Bind(n *Net) error {
	if err := G.Let(n.X, in.X); err != nil {
		return fmt.Errorf("graph: bind x_t: %w", err)
	}
	if n.TF != nil {
		if err := G.Let(n.TF, in.TF); err != nil {
			return fmt.Errorf("graph: bind time: %w", err)
		}
	}
	if n.C != nil {
		if err := G.Let(n.C, in.C); err != nil {
			return fmt.Errorf("graph: bind class: %w", err)
		}
	}
	return nil
}
