package layers

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Convolution on channel-last images as im2col followed by a matrix
// product, with im2col a fused op. A batch of B images of H×W pixels with C
// channels is a matrix x [B, H·W·C] with x[b, (i·W + j)·C + c] the channel
// c of pixel (i, j) of image b (row-major, pixel-major, channels last).
// For a k×k kernel with stride s and zero padding p the output has
// Ho = (H + 2p − k)/s + 1 rows and Wo = (W + 2p − k)/s + 1 columns, and
//
//	im2col(x) [B·Ho·Wo, k·k·C], row (b·Ho + i)·Wo + j, column (di·k + dj)·C + c
//	        = x[b, ((i·s − p + di)·W + (j·s − p + dj))·C + c], 0 outside the image
//
// so that im2col(x)·Wt with Wt [k·k·C, Cout] is the convolution, its rows
// the output pixels in channel-last order again. The backward pass is
// col2im, the scatter-add of the patch gradients back onto the pixels they
// were copied from; both directions are O(size) copies.

// ConvGeom is the geometry of a 2-D convolution over a batch of
// channel-last images (see Im2Col).
type ConvGeom struct {
	B, H, W, C int // images, height, width, channels
	K          int // kernel side (k×k)
	Stride     int // stride ≥ 1
	Pad        int // zero padding on every side, 0 ≤ Pad < K
	Ho, Wo     int // output height and width (filled in by NewConvGeom)
}

// maxConvSize bounds every matrix the convolution forms, so that index
// arithmetic stays far from overflow.
const maxConvSize = 1 << 40

// NewConvGeom validates a convolution's geometry and returns it with the
// output size filled in: every size must be positive, the padding in
// [0, k) and the padded image at least as large as the kernel.
func NewConvGeom(B, H, W, C, k, stride, pad int) (ConvGeom, error) {
	g := ConvGeom{B: B, H: H, W: W, C: C, K: k, Stride: stride, Pad: pad}
	switch {
	case B <= 0 || H <= 0 || W <= 0 || C <= 0:
		return g, fmt.Errorf("layers: conv: batch %d of %d×%d images with %d channels: all must be positive", B, H, W, C)
	case k <= 0:
		return g, fmt.Errorf("layers: conv: kernel size %d: must be positive", k)
	case stride <= 0:
		return g, fmt.Errorf("layers: conv: stride %d: must be positive", stride)
	case pad < 0 || pad >= k:
		return g, fmt.Errorf("layers: conv: padding %d: want 0 ≤ pad < kernel size %d", pad, k)
	case H+2*pad < k || W+2*pad < k:
		return g, fmt.Errorf("layers: conv: %d×%d kernel larger than the %d×%d image padded by %d", k, k, H, W, pad)
	}
	g.Ho, g.Wo = (H+2*pad-k)/stride+1, (W+2*pad-k)/stride+1
	in, ok := mulSizes(B, H, W, C)
	out, ok2 := mulSizes(B, g.Ho, g.Wo, k, k, C)
	if !ok || !ok2 || in > maxConvSize || out > maxConvSize {
		return g, fmt.Errorf("layers: conv: batch %d of %d×%d×%d images with a %d×%d kernel is too large", B, H, W, C, k, k)
	}
	return g, nil
}

// mulSizes multiplies positive sizes, reporting overflow past maxConvSize.
func mulSizes(s ...int) (int, bool) {
	p := 1
	for _, v := range s {
		if v <= 0 || p > maxConvSize/v {
			return 0, false
		}
		p *= v
	}
	return p, true
}

// inWidth is the width H·W·C of an input row.
func (g ConvGeom) inWidth() int { return g.H * g.W * g.C }

// patchWidth is the width k·k·C of a patch row.
func (g ConvGeom) patchWidth() int { return g.K * g.K * g.C }

func (g ConvGeom) String() string {
	return fmt.Sprintf("%d×%d×%d×%d,k%d,s%d,p%d", g.B, g.H, g.W, g.C, g.K, g.Stride, g.Pad)
}

// Im2Col returns the patch matrix [B·Ho·Wo, k·k·C] of x [B, H·W·C]
// (channel-last images; see ConvGeom and NewConvGeom for the sizes) for a
// k×k kernel with the given stride and zero padding, as a fused op that
// owns its output buffer (valid until the next run of its program). It is
// differentiable with respect to x (col2im).
func Im2Col(x *G.Node, B, H, W, C, k, stride, pad int) (y *G.Node, err error) {
	defer catch("im2col", &err)
	if x == nil {
		return nil, fmt.Errorf("layers: im2col: nil input")
	}
	g, err := NewConvGeom(B, H, W, C, k, stride, pad)
	if err != nil {
		return nil, err
	}
	if want := (tensor.Shape{B, g.inWidth()}); !x.Shape().Eq(want) {
		return nil, fmt.Errorf("layers: im2col: input of shape %v for %d images of %d×%d×%d, want %v", x.Shape(), B, H, W, C, want)
	}
	return G.Must(G.ApplyOp(newIm2Col(g), x)), nil
}

// Conv2D applies a k×k convolution with Cout output channels, stride and
// zero padding pad to the channel-last images x [B, H·W·Cin]:
// y = im2col(x)·Wt + b with the parameters Wt = name+".W" [k·k·Cin, Cout]
// (InitNormal) and b = name+".b" [Cout] (InitZeros), reshaped to
// [B, Ho·Wo·Cout] (channel-last again). It returns the output size Ho×Wo.
func Conv2D(c *Ctx, name string, x *G.Node, B, H, W, Cin, Cout, k, stride, pad int) (y *G.Node, Ho, Wo int, err error) {
	defer catch("conv2d "+name, &err)
	if Cout <= 0 {
		return nil, 0, 0, fmt.Errorf("layers: conv2d %s: %d output channels: must be positive", name, Cout)
	}
	g, err := NewConvGeom(B, H, W, Cin, k, stride, pad)
	if err != nil {
		return nil, 0, 0, err
	}
	patches, err := Im2Col(x, B, H, W, Cin, k, stride, pad)
	if err != nil {
		return nil, 0, 0, err
	}
	w, err := c.Param(name+".W", []int{g.patchWidth(), Cout}, InitNormal)
	if err != nil {
		return nil, 0, 0, err
	}
	if want := (tensor.Shape{g.patchWidth(), Cout}); !w.Shape().Eq(want) {
		return nil, 0, 0, fmt.Errorf("layers: conv2d %s: parameter %s.W has shape %v, want %v", name, name, w.Shape(), want)
	}
	if y, err = MatMulParam(patches, w, c.Store); err != nil {
		return nil, 0, 0, err
	}
	b, err := c.Param(name+".b", []int{Cout}, InitZeros)
	if err != nil {
		return nil, 0, 0, err
	}
	if y, err = AddBias(y, b); err != nil {
		return nil, 0, 0, err
	}
	return G.Must(G.Reshape(y, tensor.Shape{B, g.Ho * g.Wo * Cout})), g.Ho, g.Wo, nil
}

// ---- im2col ----

type im2colOp struct {
	fusedBase
	g ConvGeom
}

func newIm2Col(g ConvGeom) *im2colOp {
	return &im2colOp{fusedBase: fusedBase{name: "im2col(" + g.String() + ")"}, g: g}
}

func (*im2colOp) Arity() int { return 1 }
func (*im2colOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 2, Of: a})
}
func (o *im2colOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("layers: %s: want 1 input, got %d", o.name, len(in))
	}
	s, err := shapeOf(o.name, in[0], 2)
	if err != nil {
		return nil, err
	}
	if s[0] != o.g.B || s[1] != o.g.inWidth() {
		return nil, fmt.Errorf("layers: %s: input of shape %v, want [%d %d]", o.name, s, o.g.B, o.g.inWidth())
	}
	return tensor.Shape{o.g.B * o.g.Ho * o.g.Wo, o.g.patchWidth()}, nil
}
func (o *im2colOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("layers: %s: want 1 input, got %d", o.name, len(vals))
	}
	dt, err := dtypeOf(o.name, vals...)
	if err != nil {
		return nil, err
	}
	g := o.g
	if s := vals[0].Shape(); len(s) != 2 || s[0] != g.B || s[1] != g.inWidth() {
		return nil, fmt.Errorf("layers: %s: input of shape %v, want [%d %d]", o.name, s, g.B, g.inWidth())
	}
	rows, per := g.B*g.Ho*g.Wo, g.Ho*g.Wo*g.patchWidth()
	out := o.buffer(dt, rows, g.patchWidth())
	switch x := vals[0].Data().(type) {
	case []float32:
		d := out.Data().([]float32)
		onRows(len(d), per, func(lo, hi int) { im2col(x, d, g, lo/per, hi/per) })
	case []float64:
		d := out.Data().([]float64)
		onRows(len(d), per, func(lo, hi int) { im2col(x, d, g, lo/per, hi/per) })
	}
	return out, nil
}

// cols returns, for output column j, the first input column c0 = j·s − p
// of its patch and the range [lo, hi) of kernel columns dj inside the
// image (0 ≤ c0 + dj < W).
func (g ConvGeom) cols(j int) (c0, lo, hi int) {
	c0 = j*g.Stride - g.Pad
	return c0, max(0, -c0), min(g.K, g.W-c0)
}

// im2col writes the patch rows of images b0..b1−1 (every entry, zeros for
// the padding).
func im2col[F float32 | float64](x, out []F, g ConvGeom, b0, b1 int) {
	kc, kkc, in := g.K*g.C, g.patchWidth(), g.inWidth()
	for b := b0; b < b1; b++ {
		xb := x[b*in : (b+1)*in]
		for i := 0; i < g.Ho; i++ {
			r0 := i*g.Stride - g.Pad
			for j := 0; j < g.Wo; j++ {
				row := out[((b*g.Ho+i)*g.Wo+j)*kkc:][:kkc]
				c0, lo, hi := g.cols(j)
				for di := 0; di < g.K; di++ {
					seg := row[di*kc : (di+1)*kc]
					r := r0 + di
					if r < 0 || r >= g.H || lo >= hi {
						clear(seg)
						continue
					}
					clear(seg[:lo*g.C])
					copy(seg[lo*g.C:hi*g.C], xb[(r*g.W+c0+lo)*g.C:(r*g.W+c0+hi)*g.C])
					clear(seg[hi*g.C:])
				}
			}
		}
	}
}

func (*im2colOp) DiffWRT(n int) []bool { return []bool{true} }
func (o *im2colOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if len(inputs) != 1 {
		return nil, fmt.Errorf("layers: %s: want 1 input, got %d", o.name, len(inputs))
	}
	d, err := G.ApplyOp(&col2imOp{fusedBase: fusedBase{name: "col2im(" + o.g.String() + ")"}, g: o.g}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{d}, nil
}

// ---- col2im: im2col's backward pass ----

// col2imOp scatter-adds patch gradients [B·Ho·Wo, k·k·C] onto the images
// [B, H·W·C]; it is not differentiable.
type col2imOp struct {
	fusedBase
	g ConvGeom
}

func (*col2imOp) Arity() int { return 1 }
func (*col2imOp) Type() hm.Type {
	a := hm.TypeVariable('a')
	return hm.NewFnType(G.TensorType{Dims: 2, Of: a}, G.TensorType{Dims: 2, Of: a})
}
func (o *col2imOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if len(in) != 1 {
		return nil, fmt.Errorf("layers: %s: want 1 input, got %d", o.name, len(in))
	}
	s, err := shapeOf(o.name, in[0], 2)
	if err != nil {
		return nil, err
	}
	if s[0] != o.g.B*o.g.Ho*o.g.Wo || s[1] != o.g.patchWidth() {
		return nil, fmt.Errorf("layers: %s: gradient of shape %v, want [%d %d]", o.name, s, o.g.B*o.g.Ho*o.g.Wo, o.g.patchWidth())
	}
	return tensor.Shape{o.g.B, o.g.inWidth()}, nil
}
func (o *col2imOp) Do(vals ...G.Value) (G.Value, error) {
	if len(vals) != 1 {
		return nil, fmt.Errorf("layers: %s: want 1 input, got %d", o.name, len(vals))
	}
	dt, err := dtypeOf(o.name, vals...)
	if err != nil {
		return nil, err
	}
	g := o.g
	if s := vals[0].Shape(); len(s) != 2 || s[0] != g.B*g.Ho*g.Wo || s[1] != g.patchWidth() {
		return nil, fmt.Errorf("layers: %s: gradient of shape %v, want [%d %d]", o.name, s, g.B*g.Ho*g.Wo, g.patchWidth())
	}
	in := g.inWidth()
	out := o.buffer(dt, g.B, in)
	switch p := vals[0].Data().(type) {
	case []float32:
		d := out.Data().([]float32)
		onRows(len(d), in, func(lo, hi int) { col2im(p, d, g, lo/in, hi/in) })
	case []float64:
		d := out.Data().([]float64)
		onRows(len(d), in, func(lo, hi int) { col2im(p, d, g, lo/in, hi/in) })
	}
	return out, nil
}

// col2im sets the rows of images b0..b1−1 of dx to the sum of the patch
// entries copied from each pixel.
func col2im[F float32 | float64](p, dx []F, g ConvGeom, b0, b1 int) {
	kc, kkc, in := g.K*g.C, g.patchWidth(), g.inWidth()
	for b := b0; b < b1; b++ {
		xb := dx[b*in : (b+1)*in]
		clear(xb)
		for i := 0; i < g.Ho; i++ {
			r0 := i*g.Stride - g.Pad
			for j := 0; j < g.Wo; j++ {
				row := p[((b*g.Ho+i)*g.Wo+j)*kkc:][:kkc]
				c0, lo, hi := g.cols(j)
				if lo >= hi {
					continue
				}
				for di := 0; di < g.K; di++ {
					r := r0 + di
					if r < 0 || r >= g.H {
						continue
					}
					src := row[di*kc+lo*g.C : di*kc+hi*g.C]
					dst := xb[(r*g.W+c0+lo)*g.C : (r*g.W+c0+hi)*g.C]
					for t, v := range src {
						dst[t] += v
					}
				}
			}
		}
	}
}

func (*col2imOp) DiffWRT(n int) []bool { return noDiff(n) }
func (o *col2imOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, fmt.Errorf("layers: %s is not differentiable", o.name)
}
