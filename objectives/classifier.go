package objectives

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/logsumexp"
	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

// ClassifierConfig describes an image classifier over L = H·W binary pixels
// given as one-hot inputs over V = 2 tokens (0 = off, 1 = on).
//
// Conv, when set, puts convolutional layers before the MLP: Conv[i] is
// the number of output channels of layer i, a 3×3 convolution with stride
// 2 and zero padding 1 followed by the activation (each halves the image
// side, rounding up). The first layer's input is the image with 2
// channels, the one-hot of each pixel (the input layout [n, 2·L] read as
// channel-last pixels); the MLP reads the last layer's output, flattened
// channel-last. Empty Conv is the plain MLP (and is left out of the JSON,
// so the configurations of MLP classifiers are unchanged).
type ClassifierConfig struct {
	H       int    `toml:"h" json:"h"`                   // image height
	W       int    `toml:"w" json:"w"`                   // image width (L = H·W pixels)
	Conv    []int  `toml:"conv" json:"conv,omitempty"`   // channels of the 3×3 stride-2 conv layers before the MLP, e.g. [16, 32]; empty = none
	Hidden  []int  `toml:"hidden" json:"hidden"`         // MLP hidden widths, e.g. [256] or [512, 256]; empty = linear softmax
	Act     string `toml:"activation" json:"activation"` // "relu", "gelu" or "silu"
	DType   string `toml:"dtype" json:"dtype"`           // "float32" (default when empty) or "float64"
	Seed    uint64 `toml:"seed" json:"seed"`             // parameter initialisation seed
	Classes int    `toml:"classes" json:"classes"`       // number of classes (10 for digits), ≥ 2
}

// ClassifierMaxBatch is the largest number of images Logits and the token
// Reward push through one compiled forward program; larger requests are
// split into chunks of this size (plus one remainder chunk).
const ClassifierMaxBatch = 256

// maxClassifierPixels bounds H·W so size arithmetic stays far from overflow.
const maxClassifierPixels = 1 << 20

// metaClassifierConfig is the checkpoint metadata key holding the
// ClassifierConfig as JSON.
const metaClassifierConfig = "classifier.config"

// classifierParamPrefix prefixes the classifier's parameter names
// ("classifier.0.W", "classifier.0.b", ...; the last layer is the output;
// the conv layers are "classifier.conv0.W" [9·Cin, Cout], "classifier.conv0.b", ...).
const classifierParamPrefix = "classifier"

// Conv layers of a classifier: 3×3 kernels, stride 2, padding 1, at most
// maxClassifierConv layers of at most maxClassifierChannels channels.
const (
	clfConvKernel         = 3
	clfConvStride         = 2
	clfConvPad            = 1
	maxClassifierConv     = 4
	maxClassifierChannels = 1024
)

// Validate reports the first invalid field, naming it. An empty DType is
// valid (it means float32).
func (c ClassifierConfig) Validate() error {
	switch {
	case c.H <= 0:
		return fmt.Errorf("objectives: classifier h = %d: must be positive", c.H)
	case c.W <= 0:
		return fmt.Errorf("objectives: classifier w = %d: must be positive", c.W)
	case c.H > maxClassifierPixels/c.W:
		return fmt.Errorf("objectives: classifier image %d×%d has more than %d pixels", c.H, c.W, maxClassifierPixels)
	case c.Classes < 2:
		return fmt.Errorf("objectives: classifier classes = %d: must be at least 2", c.Classes)
	case c.DType != "" && c.DType != "float32" && c.DType != "float64":
		return fmt.Errorf("objectives: classifier dtype = %q: want \"float32\" or \"float64\"", c.DType)
	}
	for i, h := range c.Hidden {
		if h <= 0 {
			return fmt.Errorf("objectives: classifier hidden[%d] = %d: widths must be positive", i, h)
		}
	}
	if len(c.Conv) > maxClassifierConv {
		return fmt.Errorf("objectives: classifier conv = %v: at most %d conv layers", c.Conv, maxClassifierConv)
	}
	h, w := c.H, c.W
	for i, ch := range c.Conv {
		if ch <= 0 || ch > maxClassifierChannels {
			return fmt.Errorf("objectives: classifier conv[%d] = %d: channel counts must be in 1..%d", i, ch, maxClassifierChannels)
		}
		if h < 2 || w < 2 {
			return fmt.Errorf("objectives: classifier conv = %v: the %d×%d image is only %d×%d at conv layer %d (each stride-2 layer halves it; want at least 2×2)", c.Conv, c.H, c.W, h, w, i)
		}
		h, w = (h+2*clfConvPad-clfConvKernel)/clfConvStride+1, (w+2*clfConvPad-clfConvKernel)/clfConvStride+1
	}
	switch layers.Activation(c.Act) {
	case layers.ReLU, layers.GeLU, layers.SiLU:
	default:
		return fmt.Errorf("objectives: classifier activation = %q: want relu, gelu or silu", c.Act)
	}
	return nil
}

func (c ClassifierConfig) dtype() tensor.Dtype { return layers.DTypeOf(c.DType) }

// classifierLayer is one Linear layer of the classifier MLP.
type classifierLayer struct {
	name    string
	in, out int
}

// convLayer is one conv layer of the classifier: h×w×cin → ho×wo×cout.
type convLayer struct {
	name                  string
	h, w, cin, cout       int
	ho, wo                int
	weightRows, outputDim int // 9·cin (rows of W); ho·wo·cout (flattened output)
}

// convShapes lists the conv layers (none for an MLP).
func (c ClassifierConfig) convShapes() []convLayer {
	var ls []convLayer
	h, w, cin := c.H, c.W, 2
	for i, cout := range c.Conv {
		ho := (h+2*clfConvPad-clfConvKernel)/clfConvStride + 1
		wo := (w+2*clfConvPad-clfConvKernel)/clfConvStride + 1
		ls = append(ls, convLayer{name: fmt.Sprintf("%s.conv%d", classifierParamPrefix, i), h: h, w: w, cin: cin, cout: cout,
			ho: ho, wo: wo, weightRows: clfConvKernel * clfConvKernel * cin, outputDim: ho * wo * cout})
		h, w, cin = ho, wo, cout
	}
	return ls
}

// layerShapes lists the Linear layers: 2L (or the last conv layer's
// output) → Hidden[0] → … → Classes.
func (c ClassifierConfig) layerShapes() []classifierLayer {
	in := 2 * c.H * c.W
	if cs := c.convShapes(); len(cs) > 0 {
		in = cs[len(cs)-1].outputDim
	}
	var ls []classifierLayer
	for i, out := range append(append([]int(nil), c.Hidden...), c.Classes) {
		ls = append(ls, classifierLayer{name: fmt.Sprintf("%s.%d", classifierParamPrefix, i), in: in, out: out})
		in = out
	}
	return ls
}

// Classifier is an image classifier over binary pixels (see
// ClassifierConfig): the flattened one-hot image [n, L·2] (row-major over
// pixels, then token) goes through the conv layers, if any, then Linear
// layers with the activation between them, giving class logits
// [n, Classes].
//
// Its methods serialise on a mutex. Logits compiles one pruned forward
// program per chunk size and re-runs it; the programs read the master
// parameters in Store through their own tensor headers, so they see the
// in-place updates of Train.
type Classifier struct {
	Cfg   ClassifierConfig // validated, DType filled in
	Store *layers.Store

	L     int // H·W
	mu    sync.Mutex
	progs map[int]*clfProgram
	// fprogs are the compiled feature programs (graphFeatures).
	fprogs map[int]*clfProgram
}

// clfProgram is a compiled forward program for a fixed number of images.
type clfProgram struct {
	n      int
	x      *tensor.Dense // [n, 2L] one-hot input
	logits *G.Node       // or the features, for a feature program
	m      G.VM
}

// NewClassifier validates cfg and returns a classifier with
// deterministically initialised parameters (weights N(0, 1/fan-in), biases
// 0; see layers.Store).
func NewClassifier(cfg ClassifierConfig) (*Classifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.DType == "" {
		cfg.DType = "float32"
	}
	cfg.Hidden = append([]int(nil), cfg.Hidden...)
	cfg.Conv = append([]int(nil), cfg.Conv...) // nil when empty
	s, err := layers.NewStore(cfg.dtype(), cfg.Seed)
	if err != nil {
		return nil, err
	}
	for _, l := range cfg.convShapes() {
		if _, err := s.Param(l.name+".W", []int{l.weightRows, l.cout}, layers.InitNormal); err != nil {
			return nil, err
		}
		if _, err := s.Param(l.name+".b", []int{l.cout}, layers.InitZeros); err != nil {
			return nil, err
		}
	}
	for _, l := range cfg.layerShapes() {
		if _, err := s.Param(l.name+".W", []int{l.in, l.out}, layers.InitNormal); err != nil {
			return nil, err
		}
		if _, err := s.Param(l.name+".b", []int{l.out}, layers.InitZeros); err != nil {
			return nil, err
		}
	}
	return &Classifier{Cfg: cfg, Store: s, L: cfg.H * cfg.W, progs: map[int]*clfProgram{}, fprogs: map[int]*clfProgram{}}, nil
}

// paramFunc returns the graph node of an existing classifier parameter.
type paramFunc func(name string, shape []int) (*G.Node, error)

// net adds the classifier to x's graph: x [n, 2L] → logits [n, Classes];
// feats is what the output layer reads (the last hidden layer's
// activations, or the flattened last conv layer's, or x itself). act is
// only used for its Const (GELU's constants), so its Store must have x's
// dtype.
func (c *Classifier) net(act *layers.Ctx, x *G.Node, param paramFunc) (logits, feats *G.Node, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("objectives: building classifier: %v", p)
		}
	}()
	h := x
	n := x.Shape()[0]
	for _, l := range c.Cfg.convShapes() {
		// im2col(h)·W + b on [n·ho·wo, 9·cin], the activation, then back to
		// one row per image [n, ho·wo·cout] (channel-last).
		w, err := param(l.name+".W", []int{l.weightRows, l.cout})
		if err != nil {
			return nil, nil, err
		}
		b, err := param(l.name+".b", []int{l.cout})
		if err != nil {
			return nil, nil, err
		}
		p, err := layers.Im2Col(h, n, l.h, l.w, l.cin, clfConvKernel, clfConvStride, clfConvPad)
		if err != nil {
			return nil, nil, fmt.Errorf("objectives: classifier %s: %w", l.name, err)
		}
		if h, err = layers.MatMul(p, w); err != nil {
			return nil, nil, err
		}
		if h, err = layers.AddBias(h, b); err != nil {
			return nil, nil, err
		}
		if h, err = layers.Activation(c.Cfg.Act).Apply(act, h); err != nil {
			return nil, nil, err
		}
		h = G.Must(G.Reshape(h, tensor.Shape{n, l.outputDim}))
	}
	ls := c.Cfg.layerShapes()
	for i, l := range ls {
		if i == len(ls)-1 {
			feats = h
		}
		w, err := param(l.name+".W", []int{l.in, l.out})
		if err != nil {
			return nil, nil, err
		}
		b, err := param(l.name+".b", []int{l.out})
		if err != nil {
			return nil, nil, err
		}
		h = G.Must(G.BroadcastAdd(G.Must(G.Mul(h, w)), b, nil, []byte{0}))
		if i < len(ls)-1 {
			if h, err = layers.Activation(c.Cfg.Act).Apply(act, h); err != nil {
				return nil, nil, err
			}
		}
	}
	return h, feats, nil
}

// ownParam returns a paramFunc over a Ctx on the classifier's own Store; it
// never creates parameters.
func (c *Classifier) ownParam(ctx *layers.Ctx) paramFunc {
	return func(name string, shape []int) (*G.Node, error) {
		if t := c.Store.Get(name); t == nil || !t.Shape().Eq(tensor.Shape(shape)) {
			return nil, fmt.Errorf("objectives: classifier parameter %q missing or not of shape %v", name, shape)
		}
		return ctx.Param(name, shape, layers.InitZeros)
	}
}

// checkTokens checks that x holds n images of L binary tokens.
func (c *Classifier) checkTokens(x []int, n int, what string) error {
	if what == "features" && len(c.Cfg.Conv) > 0 {
		// The plain-Go Features (features.go) reads the first layer's
		// weights as an MLP's over the one-hot input: for a conv
		// classifier it would silently return wrong values.
		return fmt.Errorf("objectives: classifier features: the plain-Go Features does not support conv layers (conv = %v); use the graph's features (graphFeatures)", c.Cfg.Conv)
	}
	if len(x) != n*c.L {
		return fmt.Errorf("objectives: classifier %s: got %d tokens for %d images of %d×%d = %d pixels", what, len(x), n, c.Cfg.H, c.Cfg.W, c.L)
	}
	for i, v := range x {
		if v != 0 && v != 1 {
			return fmt.Errorf("objectives: classifier %s: token %d at index %d (image %d, pixel %d): want 0 or 1", what, v, i, i/c.L, i%c.L)
		}
	}
	return nil
}

// setOneHot writes the one-hot encoding of the binary images x (m images)
// into the first m rows of dst ([rows, 2L] data) and zeros the rest.
func setOneHot(dst *tensor.Dense, x []int) {
	switch d := dst.Data().(type) {
	case []float32:
		clear(d)
		for i, v := range x {
			d[2*i+v] = 1
		}
	case []float64:
		clear(d)
		for i, v := range x {
			d[2*i+v] = 1
		}
	}
}

// program returns the compiled forward program for n images. c.mu is held.
func (c *Classifier) program(n int) (p *clfProgram, err error) { return c.compile(n, false) }

// compile returns the compiled forward program for n images, of the
// logits or (features) of what the output layer reads. c.mu is held.
func (c *Classifier) compile(n int, features bool) (p *clfProgram, err error) {
	progs := c.progs
	if features {
		if c.fprogs == nil {
			c.fprogs = map[int]*clfProgram{}
		}
		progs = c.fprogs
	}
	if p, ok := progs[n]; ok {
		return p, nil
	}
	unlock := graph.LockBuild()
	defer unlock()
	ctx := layers.NewCtx(c.Store, false)
	x := ctx.Input("classifier_x", n, 2*c.L)
	logits, feats, err := c.net(ctx, x, c.ownParam(ctx))
	if err != nil {
		return nil, err
	}
	if features {
		logits = feats
	}
	p = &clfProgram{n: n, x: layers.NewDense(c.Store.DType(), []int{n, 2 * c.L}, make([]float64, n*2*c.L)), logits: logits}
	if err := G.Let(x, p.x); err != nil {
		return nil, fmt.Errorf("objectives: classifier input: %w", err)
	}
	prog, locs, err := G.CompileFunction(ctx.G, G.Nodes{x}, G.Nodes{logits})
	if err != nil {
		return nil, fmt.Errorf("objectives: compile classifier for %d images: %w", n, err)
	}
	p.m = layers.TapeMachine(ctx.G, G.WithPrecompiled(prog, locs))
	progs[n] = p
	return p, nil
}

// graphFeatures is Features computed by the graph's forward pass, for any
// classifier (the plain-Go Features covers MLPs only): the activations the
// output layer reads — the last hidden layer's, or the flattened last conv
// layer's for a conv classifier without hidden layers — n rows of dim
// values for n = len(x)/(H·W) binary images, in chunks of at most
// ClassifierMaxBatch images.
func (c *Classifier) graphFeatures(x []int) (feats []float64, dim int, err error) {
	if len(x) == 0 || len(x)%c.L != 0 {
		return nil, 0, fmt.Errorf("objectives: classifier features: %d tokens is not a positive multiple of %d×%d = %d pixels", len(x), c.Cfg.H, c.Cfg.W, c.L)
	}
	n := len(x) / c.L
	if err := c.checkTokens(x, n, "graph features"); err != nil {
		return nil, 0, err
	}
	ls := c.Cfg.layerShapes()
	dim = ls[len(ls)-1].in
	c.mu.Lock()
	defer c.mu.Unlock()
	feats = make([]float64, n*dim)
	for s := 0; s < n; s += ClassifierMaxBatch {
		b := min(ClassifierMaxBatch, n-s)
		p, err := c.compile(b, true)
		if err != nil {
			return nil, 0, err
		}
		setOneHot(p.x, x[s*c.L:(s+b)*c.L])
		p.m.Reset()
		if err := p.m.RunAll(); err != nil {
			return nil, 0, fmt.Errorf("objectives: classifier features run: %w", err)
		}
		v := p.logits.Value()
		if v == nil {
			return nil, 0, fmt.Errorf("objectives: classifier features run produced no values")
		}
		layers.CopyFloat64s(v, feats[s*dim:(s+b)*dim])
	}
	return feats, dim, nil
}

// Logits writes the class logits of n = len(out)/Classes images given as
// x, n·L binary tokens (0/1, image-major, row-major pixels), into out
// (n·Classes, image-major). Images are processed in chunks of at most
// ClassifierMaxBatch with a compiled program per chunk size.
func (c *Classifier) Logits(x []int, out []float64) error {
	C := c.Cfg.Classes
	if len(out)%C != 0 {
		return fmt.Errorf("objectives: classifier logits buffer has length %d, not a multiple of %d classes", len(out), C)
	}
	n := len(out) / C
	if err := c.checkTokens(x, n, "logits"); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logits(x, out, n)
}

func (c *Classifier) logits(x []int, out []float64, n int) error {
	C, L := c.Cfg.Classes, c.L
	for s := 0; s < n; s += ClassifierMaxBatch {
		b := min(ClassifierMaxBatch, n-s)
		p, err := c.program(b)
		if err != nil {
			return err
		}
		setOneHot(p.x, x[s*L:(s+b)*L])
		p.m.Reset()
		if err := p.m.RunAll(); err != nil {
			return fmt.Errorf("objectives: classifier run: %w", err)
		}
		v := p.logits.Value()
		if v == nil {
			return fmt.Errorf("objectives: classifier run produced no logits")
		}
		dst := out[s*C : (s+b)*C]
		layers.CopyFloat64s(v, dst)
		for i, z := range dst {
			if math.IsNaN(z) || math.IsInf(z, 0) {
				return fmt.Errorf("objectives: classifier produced non-finite logit %v (image %d, class %d)", z, s+i/C, i%C)
			}
		}
	}
	return nil
}

// Accuracy returns the fraction of images (pixels: n·L binary tokens) whose
// arg-max logit (first maximum on ties) equals the label.
func (c *Classifier) Accuracy(pixels, labels []int) (float64, error) {
	n := len(labels)
	if n == 0 {
		return 0, fmt.Errorf("objectives: classifier accuracy on an empty set")
	}
	if err := c.checkLabels(labels); err != nil {
		return 0, err
	}
	C := c.Cfg.Classes
	logits := make([]float64, n*C)
	if err := c.Logits(pixels, logits); err != nil {
		return 0, err
	}
	right := 0
	for i, y := range labels {
		row := logits[i*C : (i+1)*C]
		best := 0
		for k, z := range row {
			if z > row[best] {
				best = k
			}
		}
		if best == y {
			right++
		}
	}
	return float64(right) / float64(n), nil
}

func (c *Classifier) checkLabels(labels []int) error {
	for i, y := range labels {
		if y < 0 || y >= c.Cfg.Classes {
			return fmt.Errorf("objectives: classifier label %d at index %d out of range 0..%d", y, i, c.Cfg.Classes-1)
		}
	}
	return nil
}

// Train fits the classifier to (pixels, labels) — n images of L binary
// tokens and n labels in 0..Classes−1 — by minimising the mean
// cross-entropy −log p(label | image) with Adam (learning rate lr in
// (0, 1)) for epochs passes over the data. Each epoch visits the images in
// an order drawn from rng (Shuffle) in mini-batches of min(batch, n); the
// last, smaller batch of an epoch is padded with zero-weight rows, so every
// image is used once per epoch and every step's loss is the mean over its
// real rows. It returns the mean training loss of every epoch (nats, per
// image) and writes one progress line per epoch to log (nil = silent).
//
// The parameters are updated in place (Logits sees them). A non-finite loss
// stops training with an error before that step's update; earlier updates
// are kept. Training is deterministic given the data, rng and parameters.
func (c *Classifier) Train(pixels []int, labels []int, epochs, batch int, lr float64, rng *rand.Rand, log io.Writer) ([]float64, error) {
	return c.TrainAugmented(pixels, labels, epochs, batch, lr, 0, rng, log)
}

// maxClassifierShift bounds TrainAugmented's shift.
const maxClassifierShift = 8

// TrainAugmented is Train with random-translation augmentation: each
// time an image is visited it is shifted by (dy, dx), both drawn
// uniformly from −shift..shift with rng (after the epoch's shuffle, one
// pair per image in batch order), the pixels shifted in from outside the
// image being off (token 0). shift = 0 is Train exactly (no extra draws);
// shift must be in 0..8 and smaller than both image sides.
func (c *Classifier) TrainAugmented(pixels []int, labels []int, epochs, batch int, lr float64, shift int, rng *rand.Rand, log io.Writer) ([]float64, error) {
	n := len(labels)
	switch {
	case shift < 0 || shift > maxClassifierShift || (shift > 0 && (shift >= c.Cfg.H || shift >= c.Cfg.W)):
		return nil, fmt.Errorf("objectives: classifier augmentation shift = %d: want 0..%d, smaller than the %d×%d image", shift, maxClassifierShift, c.Cfg.H, c.Cfg.W)
	case n == 0:
		return nil, fmt.Errorf("objectives: classifier training on an empty set")
	case epochs <= 0:
		return nil, fmt.Errorf("objectives: classifier epochs = %d: must be positive", epochs)
	case batch <= 0:
		return nil, fmt.Errorf("objectives: classifier batch = %d: must be positive", batch)
	case !(lr > 0 && lr < 1):
		return nil, fmt.Errorf("objectives: classifier lr = %v: must be in (0, 1)", lr)
	case rng == nil:
		return nil, fmt.Errorf("objectives: classifier training needs a random number generator")
	}
	if err := c.checkTokens(pixels, n, "training"); err != nil {
		return nil, err
	}
	if err := c.checkLabels(labels); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	B, L, C := min(batch, n), c.L, c.Cfg.Classes
	dt := c.Store.DType()

	// Loss graph; its parameter nodes alias the master tensors.
	var (
		ctx    *layers.Ctx
		loss   *G.Node
		lossV  G.Value
		xT, yT *tensor.Dense
		vm     G.VM
	)
	err := func() (err error) {
		unlock := graph.LockBuild()
		defer unlock()
		ctx = layers.NewCtx(c.Store, true)
		x := ctx.Input("classifier_x", B, 2*L)
		y := ctx.Input("classifier_y", B, C) // one-hot labels / batch count; 0 rows = padding
		logits, _, err := c.net(ctx, x, c.ownParam(ctx))
		if err != nil {
			return err
		}
		logp, err := layers.LogSoftmax(logits)
		if err != nil {
			return err
		}
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("objectives: building classifier loss: %v", p)
			}
		}()
		loss = G.Must(G.Neg(G.Must(G.Sum(G.Must(G.HadamardProd(logp, y))))))
		G.Read(loss, &lossV)
		if _, err := G.Grad(loss, ctx.Learnables()...); err != nil {
			return fmt.Errorf("objectives: classifier loss gradient: %w", err)
		}
		xT = layers.NewDense(dt, []int{B, 2 * L}, make([]float64, B*2*L))
		yT = layers.NewDense(dt, []int{B, C}, make([]float64, B*C))
		if err := G.Let(x, xT); err != nil {
			return err
		}
		if err := G.Let(y, yT); err != nil {
			return err
		}
		vm = layers.TapeMachine(ctx.G, G.BindDualValues(ctx.Learnables()...))
		return nil
	}()
	if err != nil {
		return nil, err
	}
	defer vm.Close()
	solver := newSolver(lr, 0)

	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	xb := make([]int, B*L)
	yv := make([]float64, B*C)
	var losses []float64
	start := time.Now()
	for e := 0; e < epochs; e++ {
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		sum := 0.0
		for s := 0; s < n; s += B {
			cnt := min(B, n-s)
			clear(yv)
			for r := 0; r < cnt; r++ {
				i := perm[s+r]
				if shift == 0 {
					copy(xb[r*L:(r+1)*L], pixels[i*L:(i+1)*L])
				} else {
					dy, dx := rng.IntN(2*shift+1)-shift, rng.IntN(2*shift+1)-shift
					shiftImage(xb[r*L:(r+1)*L], pixels[i*L:(i+1)*L], c.Cfg.H, c.Cfg.W, dy, dx)
				}
				yv[r*C+labels[i]] = 1 / float64(cnt)
			}
			setOneHot(xT, xb[:cnt*L])
			if err := layers.SetFloat64s(yT, yv); err != nil {
				return losses, err
			}
			vm.Reset()
			if err := vm.RunAll(); err != nil {
				return losses, fmt.Errorf("objectives: classifier epoch %d: %w", e+1, err)
			}
			lv := math.NaN()
			if lossV != nil {
				lv = layers.Float64s(lossV, nil)[0]
			}
			if math.IsNaN(lv) || math.IsInf(lv, 0) {
				return losses, fmt.Errorf("objectives: classifier loss is %v in epoch %d (diverged; try a lower lr)", lv, e+1)
			}
			if err := solver.Step(G.NodesToValueGrads(ctx.Learnables())); err != nil {
				return losses, fmt.Errorf("objectives: classifier Adam step in epoch %d: %w", e+1, err)
			}
			c.Store.Touch() // the weights changed in place
			sum += lv * float64(cnt)
		}
		losses = append(losses, sum/float64(n))
		if log != nil {
			fmt.Fprintf(log, "classifier epoch %d/%d: loss %.4f (%.1fs)\n", e+1, epochs, losses[e], time.Since(start).Seconds())
		}
	}
	return losses, nil
}

// shiftImage writes src (an h×w image, row-major) translated by dy rows
// and dx columns into dst: dst[i, j] = src[i − dy, j − dx], 0 outside.
func shiftImage(dst, src []int, h, w, dy, dx int) {
	clear(dst)
	for i := max(0, dy); i < min(h, h+dy); i++ {
		lo, hi := max(0, dx), min(w, w+dx)
		copy(dst[i*w+lo:i*w+hi], src[(i-dy)*w+lo-dx:(i-dy)*w+hi-dx])
	}
}

// Save writes the classifier's configuration (checkpoint metadata key
// "classifier.config", JSON) and parameters to path as a graph checkpoint
// (atomic write, SHA-256 checksum; see graph.WriteCheckpoint).
func (c *Classifier) Save(path string) error {
	cfg, err := json.Marshal(c.Cfg)
	if err != nil {
		return fmt.Errorf("objectives: encoding classifier config: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ck := &graph.Checkpoint{Meta: map[string]string{metaClassifierConfig: string(cfg)}, DType: c.Cfg.DType}
	for _, name := range c.Store.Names() {
		t := c.Store.Get(name)
		ck.Tensors = append(ck.Tensors, graph.Tensor{Name: name, Shape: append([]int(nil), t.Shape()...), Data: layers.Float64s(t, nil)})
	}
	return graph.WriteCheckpoint(path, ck)
}

// LoadClassifier reads a checkpoint written by Classifier.Save, verifying
// its checksum, and checks that it is for h×w images (both positive): a
// classifier trained on another image size is an error naming both sizes.
func LoadClassifier(path string, h, w int) (*Classifier, error) {
	if h <= 0 || w <= 0 {
		return nil, fmt.Errorf("objectives: LoadClassifier: image size %d×%d: both must be positive", h, w)
	}
	ck, err := graph.ReadCheckpoint(path)
	if err != nil {
		return nil, err
	}
	js, ok := ck.Meta[metaClassifierConfig]
	if !ok {
		return nil, fmt.Errorf("objectives: %s is not a classifier checkpoint (no %q metadata)", path, metaClassifierConfig)
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(js)))
	dec.DisallowUnknownFields()
	var cfg ClassifierConfig
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("objectives: classifier checkpoint %s: configuration: %w", path, err)
	}
	if cfg.H != h || cfg.W != w {
		return nil, fmt.Errorf("objectives: classifier checkpoint %s is for %d×%d images, not %d×%d", path, cfg.H, cfg.W, h, w)
	}
	c, err := NewClassifier(cfg)
	if err != nil {
		return nil, fmt.Errorf("objectives: classifier checkpoint %s: %w", path, err)
	}
	if ck.DType != c.Cfg.DType {
		return nil, fmt.Errorf("objectives: classifier checkpoint %s stores %s tensors for a %s classifier", path, ck.DType, c.Cfg.DType)
	}
	var want []graph.Tensor
	for _, name := range c.Store.Names() {
		want = append(want, graph.Tensor{Name: name, Shape: c.Store.Get(name).Shape()})
	}
	if err := ck.Expect(want); err != nil {
		return nil, fmt.Errorf("objectives: classifier checkpoint %s: %w", path, err)
	}
	for _, t := range ck.Tensors {
		if err := layers.SetFloat64s(c.Store.Get(t.Name), t.Data); err != nil {
			return nil, fmt.Errorf("objectives: classifier checkpoint %s: %w", path, err)
		}
	}
	c.Store.Touch()
	return c, nil
}

// ClassifierReward is the reward r(x) = log p_clf(y = Target | x) of a
// Classifier, both as an smc.Reward on binary tokens and as a RewardGraph
// on soft one-hot inputs. It shares the classifier's parameters (it holds
// no copy), so it reflects later training; do not Train the classifier
// while a reward over it is evaluated or while a graph built from it runs.
type ClassifierReward struct {
	clf    *Classifier
	target int
}

var (
	_ smc.Reward  = (*ClassifierReward)(nil)
	_ RewardGraph = (*ClassifierReward)(nil)
)

// Reward returns the reward log p(y = target | x) of class target, which
// must be in 0..Classes−1.
func (c *Classifier) Reward(target int) (*ClassifierReward, error) {
	if target < 0 || target >= c.Cfg.Classes {
		return nil, fmt.Errorf("objectives: target digit %d out of range 0..%d", target, c.Cfg.Classes-1)
	}
	return &ClassifierReward{clf: c, target: target}, nil
}

// Target returns the target class.
func (r *ClassifierReward) Target() int { return r.target }

// Classifier returns the underlying classifier.
func (r *ClassifierReward) Classifier() *Classifier { return r.clf }

// Shape implements RewardGraph: (L = H·W, V = 2).
func (r *ClassifierReward) Shape() (L, V int) { return r.clf.L, 2 }

// Reward implements smc.Reward: for B = len(out) images x0 (B·L tokens in
// {0, 1}) it writes log p(target | x0_b) = ℓ_target − log Σ_k exp ℓ_k,
// from the classifier's logits ℓ (Logits), with the log-sum-exp taken
// stably in float64 (logsumexp.LogSoftmaxAt).
func (r *ClassifierReward) Reward(x0 []int, out []float64) error {
	C := r.clf.Cfg.Classes
	logits := make([]float64, len(out)*C)
	if err := r.clf.Logits(x0, logits); err != nil {
		return err
	}
	for b := range out {
		out[b] = logsumexp.LogSoftmaxAt(logits[b*C:(b+1)*C], r.target)
	}
	return nil
}

// buildSeq numbers ClassifierReward.Build calls, to give the parameter
// nodes of every build unique names in the caller's graph.
var buildSeq atomic.Uint64

// Build implements RewardGraph. It adds the classifier to the caller's
// graph c.G: x0 [n·L, 2] (soft one-hot pixels) is reshaped to [n, 2L], run
// through the MLP, turned into log-probabilities with layers.LogSoftmax and
// multiplied by the constant one-hot vector e_target [Classes], giving
// log p(target | x0) of shape [n], differentiable in x0.
//
// The parameter nodes are created directly in c.G from the classifier's own
// Store, not through c (whose Store is the caller's model): they are not
// among c.Learnables(), so a caller training its model does not train the
// classifier, and nothing is added to c.Store. When the dtypes agree each
// node gets its own tensor header over the classifier's master data (no
// copy; the classifier's tensors are never written); when the classifier's
// dtype differs from x0's, the node holds a converted copy taken now. The
// nodes get names unique to this call ("classifier#<k>/classifier.0.W"),
// because Gorgonia merges input nodes of equal name, type and shape: two
// classifiers (or a model parameter of the same name) would otherwise
// silently share weights.
//
// Build does not take graph.LockBuild (the caller holds it while building
// its graph) nor the classifier's mutex.
func (r *ClassifierReward) Build(c *layers.Ctx, x0 *G.Node, n int) (out *G.Node, err error) {
	if c == nil || c.G == nil || c.Store == nil {
		return nil, fmt.Errorf("objectives: classifier reward needs a context with a graph and a store")
	}
	if x0 == nil {
		return nil, fmt.Errorf("objectives: classifier reward needs an input node")
	}
	L, C := r.clf.L, r.clf.Cfg.Classes
	if n <= 0 {
		return nil, fmt.Errorf("objectives: classifier reward for %d images", n)
	}
	if want := (tensor.Shape{n * L, 2}); !x0.Shape().Eq(want) {
		return nil, fmt.Errorf("objectives: classifier reward input has shape %v, want %v", x0.Shape(), want)
	}
	dt := c.Store.DType()
	if x0.Dtype() != dt {
		return nil, fmt.Errorf("objectives: classifier reward input has dtype %v, the context's store %v", x0.Dtype(), dt)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("objectives: building classifier reward: %v", p)
		}
	}()
	id := buildSeq.Add(1)
	param := func(name string, shape []int) (*G.Node, error) {
		t := r.clf.Store.Get(name)
		if t == nil || !t.Shape().Eq(tensor.Shape(shape)) {
			return nil, fmt.Errorf("objectives: classifier parameter %q missing or not of shape %v", name, shape)
		}
		var v *tensor.Dense
		if t.Dtype() == dt {
			v = tensor.New(tensor.WithShape(shape...), tensor.WithBacking(t.Data()))
		} else {
			v = layers.NewDense(dt, shape, layers.Float64s(t, nil))
		}
		return G.NodeFromAny(c.G, v, G.WithName(fmt.Sprintf("classifier#%d/%s", id, name))), nil
	}
	x := G.Must(G.Reshape(x0, tensor.Shape{n, 2 * L}))
	logits, _, err := r.clf.net(c, x, param)
	if err != nil {
		return nil, err
	}
	logp, err := layers.LogSoftmax(logits)
	if err != nil {
		return nil, err
	}
	sel := make([]float64, C)
	sel[r.target] = 1
	e := G.NewVector(c.G, dt, G.WithShape(C), G.WithName(fmt.Sprintf("classifier#%d/target", id)),
		G.WithValue(layers.NewDense(dt, []int{C}, sel)))
	return G.Must(G.Mul(logp, e)), nil
}
