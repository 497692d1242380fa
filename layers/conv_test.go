package layers

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/internal/par"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestGradConv2D checks the convolution's backward pass (col2im for the
// input, the fused product and bias for the parameters) against finite
// differences in float64 (gradCheck: the input and every parameter), for
// odd image sizes, strides 1 and 2, padding 0 to 2 and two stacked layers
// (so that col2im also feeds an inner node).
func TestGradConv2D(t *testing.T) {
	for _, tc := range []struct {
		name                          string
		B, H, W, Cin, Cout, k, s, pad int
	}{
		{"k3s2p1", 2, 5, 5, 3, 4, 3, 2, 1},
		{"k2s1p0", 2, 3, 4, 2, 3, 2, 1, 0},
		{"k3s1p2", 1, 3, 2, 2, 2, 3, 1, 2},
		{"k3s3p1", 2, 7, 4, 1, 2, 3, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gradCheck(t, []int{tc.B, tc.H * tc.W * tc.Cin}, func(c *Ctx, x *G.Node) (*G.Node, error) {
				y, ho, wo, err := Conv2D(c, "conv", x, tc.B, tc.H, tc.W, tc.Cin, tc.Cout, tc.k, tc.s, tc.pad)
				if err != nil {
					return nil, err
				}
				randomiseBiases(c)
				if !y.Shape().Eq(tensor.Shape{tc.B, ho * wo * tc.Cout}) {
					t.Fatalf("output shape %v, want [%d %d]", y.Shape(), tc.B, ho*wo*tc.Cout)
				}
				return y, nil
			})
		})
	}
	t.Run("stacked", func(t *testing.T) {
		gradCheck(t, []int{2, 5 * 5 * 2}, func(c *Ctx, x *G.Node) (*G.Node, error) {
			h, ho, wo, err := Conv2D(c, "c1", x, 2, 5, 5, 2, 3, 3, 2, 1) // 3×3×3
			if err != nil {
				return nil, err
			}
			if h, err = SiLUOp(h); err != nil {
				return nil, err
			}
			y, _, _, err := Conv2D(c, "c2", h, 2, ho, wo, 3, 2, 3, 2, 1) // 2×2×2
			randomiseBiases(c)
			return y, err
		})
	})
}

// randomiseBiases moves the zero-initialised ".b" parameters of c away
// from 0 so that they take part in a check.
func randomiseBiases(c *Ctx) {
	for i, p := range c.Learnables() {
		if !strings.HasSuffix(p.Name(), ".b") {
			continue
		}
		d := p.Value().Data().([]float64)
		for j := range d {
			d[j] = 0.3*float64(j+1) - 0.2*float64(i)
		}
	}
}

// refPatch is the definition of im2col's entry (row, col) for geometry g.
func refPatch(x []float64, g ConvGeom, row, col int) float64 {
	b, ij := row/(g.Ho*g.Wo), row%(g.Ho*g.Wo)
	i, j := ij/g.Wo, ij%g.Wo
	d, c := col/g.C, col%g.C
	di, dj := d/g.K, d%g.K
	r, s := i*g.Stride-g.Pad+di, j*g.Stride-g.Pad+dj
	if r < 0 || r >= g.H || s < 0 || s >= g.W {
		return 0
	}
	return x[b*g.H*g.W*g.C+(r*g.W+s)*g.C+c]
}

// TestIm2ColMatchesDirectLoop checks im2col on a small odd-sized image
// (5×7, 2 channels, 3×3 kernel, stride 2, padding 1) against the
// definition entry by entry (float32 and float64, bit for bit), also on a
// second run with new input values (the op's reused buffer, whose padding
// must stay zero), and Conv2D's output against a direct convolution loop.
func TestIm2ColMatchesDirectLoop(t *testing.T) {
	const B, H, W, C, Cout, k, s, p = 2, 5, 7, 2, 3, 3, 2, 1
	geo, err := NewConvGeom(B, H, W, C, k, s, p)
	if err != nil {
		t.Fatal(err)
	}
	if geo.Ho != 3 || geo.Wo != 4 {
		t.Fatalf("output %d×%d, want 3×4", geo.Ho, geo.Wo)
	}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		t.Run(dt.String(), func(t *testing.T) {
			st, err := NewStore(dt, 3)
			if err != nil {
				t.Fatal(err)
			}
			c := NewCtx(st, false)
			x := c.Input("x", B, H*W*C)
			rng := rand.New(rand.NewPCG(1, 2))
			xv := make([]float64, B*H*W*C)
			for i := range xv {
				xv[i] = float64(float32(rng.NormFloat64())) // exact in float32
			}
			xt := NewDense(dt, []int{B, H * W * C}, xv)
			if err := G.Let(x, xt); err != nil {
				t.Fatal(err)
			}
			patches, err := Im2Col(x, B, H, W, C, k, s, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := (tensor.Shape{B * 3 * 4, k * k * C}); !patches.Shape().Eq(want) {
				t.Fatalf("patch shape %v, want %v", patches.Shape(), want)
			}
			y, ho, wo, err := Conv2D(c, "conv", x, B, H, W, C, Cout, k, s, p)
			if err != nil {
				t.Fatal(err)
			}
			if ho != 3 || wo != 4 {
				t.Fatalf("Conv2D output %d×%d", ho, wo)
			}
			bias := Float64s(st.Get("conv.b"), nil)
			for i := range bias {
				bias[i] = 0.25 * float64(i+1)
			}
			if err := SetFloat64s(st.Get("conv.b"), bias); err != nil {
				t.Fatal(err)
			}
			wt := Float64s(st.Get("conv.W"), nil) // [k·k·C, Cout]
			m := TapeMachine(c.G)
			defer m.Close()
			for run := 0; run < 2; run++ {
				if run == 1 {
					for i := range xv {
						xv[i] = float64(float32(-2*xv[i] + 0.5))
					}
					if err := SetFloat64s(xt, xv); err != nil {
						t.Fatal(err)
					}
				}
				m.Reset()
				if err := m.RunAll(); err != nil {
					t.Fatal(err)
				}
				got := Float64s(patches.Value(), nil)
				kkc := k * k * C
				zeros := 0
				for r := 0; r < B*ho*wo; r++ {
					for col := 0; col < kkc; col++ {
						want := refPatch(xv, geo, r, col)
						if got[r*kkc+col] != want {
							t.Fatalf("run %d: patch (%d, %d) = %v, want %v", run, r, col, got[r*kkc+col], want)
						}
						if want == 0 {
							zeros++
						}
					}
				}
				if zeros == 0 {
					t.Fatal("degenerate test: no padding entries")
				}
				// Direct convolution: y[b, (i·Wo + j)·Cout + o].
				yv := Float64s(y.Value(), nil)
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				for b := 0; b < B; b++ {
					for i := 0; i < ho; i++ {
						for j := 0; j < wo; j++ {
							for o := 0; o < Cout; o++ {
								sum := bias[o]
								for di := 0; di < k; di++ {
									for dj := 0; dj < k; dj++ {
										r, q := i*s-p+di, j*s-p+dj
										if r < 0 || r >= H || q < 0 || q >= W {
											continue
										}
										for ch := 0; ch < C; ch++ {
											sum += xv[b*H*W*C+(r*W+q)*C+ch] * wt[((di*k+dj)*C+ch)*Cout+o]
										}
									}
								}
								if g := yv[b*ho*wo*Cout+(i*wo+j)*Cout+o]; math.Abs(g-sum) > tol*math.Max(1, math.Abs(sum)) {
									t.Fatalf("run %d: conv output (%d, %d, %d, %d) = %v, direct loop %v", run, b, i, j, o, g, sum)
								}
							}
						}
					}
				}
			}
		})
	}
}

// TestIm2ColSplitOverCores checks im2col and col2im on a batch large
// enough to be split over goroutines against their serial loops, bit for
// bit.
func TestIm2ColSplitOverCores(t *testing.T) {
	g, err := NewConvGeom(100, 14, 14, 2, 3, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	rows, kkc := g.B*g.Ho*g.Wo, g.patchWidth()
	if g.B*g.inWidth() < par.MinWork || rows*kkc < par.MinWork {
		t.Fatalf("sizes %d and %d do not reach the parallel threshold %d", g.B*g.inWidth(), rows*kkc, par.MinWork)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	xv, pv := make([]float32, g.B*g.inWidth()), make([]float32, rows*kkc)
	for i := range xv {
		xv[i] = float32(rng.NormFloat64())
	}
	for i := range pv {
		pv[i] = float32(rng.NormFloat64())
	}
	gr := G.NewGraph()
	x := G.NewMatrix(gr, tensor.Float32, G.WithShape(g.B, g.inWidth()), G.WithName("x"), G.WithValue(tensor.New(tensor.WithShape(g.B, g.inWidth()), tensor.WithBacking(xv))))
	pt := G.NewMatrix(gr, tensor.Float32, G.WithShape(rows, kkc), G.WithName("p"), G.WithValue(tensor.New(tensor.WithShape(rows, kkc), tensor.WithBacking(pv))))
	fi, err := Im2Col(x, g.B, g.H, g.W, g.C, g.K, g.Stride, g.Pad)
	if err != nil {
		t.Fatal(err)
	}
	fc := G.Must(G.ApplyOp(&col2imOp{fusedBase: fusedBase{name: "col2im"}, g: g}, pt))
	m := TapeMachine(gr)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	wi, wc := make([]float32, rows*kkc), make([]float32, g.B*g.inWidth())
	im2col(xv, wi, g, 0, g.B)
	col2im(pv, wc, g, 0, g.B)
	for k, p := range []struct {
		n    *G.Node
		want []float32
	}{{fi, wi}, {fc, wc}} {
		got := p.n.Value().Data().([]float32)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(p.want[i]) {
				t.Fatalf("op %d (%s), entry %d: %v, serial %v", k, p.n.Op(), i, got[i], p.want[i])
			}
		}
	}
}

// TestConvBadArguments: bad sizes, a wrong input width and bad values at
// run time are errors naming the problem, never panics.
func TestConvBadArguments(t *testing.T) {
	for _, a := range []struct {
		name                string
		B, H, W, C, k, s, p int
		want                string
	}{
		{"batch 0", 0, 4, 4, 2, 3, 2, 1, "positive"},
		{"height -1", 1, -1, 4, 2, 3, 2, 1, "positive"},
		{"width 0", 1, 4, 0, 2, 3, 2, 1, "positive"},
		{"channels 0", 1, 4, 4, 0, 3, 2, 1, "positive"},
		{"kernel 0", 1, 4, 4, 2, 0, 2, 1, "kernel size 0"},
		{"stride 0", 1, 4, 4, 2, 3, 0, 1, "stride 0"},
		{"pad -1", 1, 4, 4, 2, 3, 1, -1, "padding -1"},
		{"pad k", 1, 4, 4, 2, 3, 1, 3, "padding 3"},
		{"kernel too large", 1, 2, 4, 2, 5, 1, 1, "larger than"},
		{"huge", 1 << 20, 1 << 12, 1 << 12, 4, 3, 1, 1, "too large"},
	} {
		if _, err := NewConvGeom(a.B, a.H, a.W, a.C, a.k, a.s, a.p); err == nil || !strings.Contains(err.Error(), a.want) || !strings.HasPrefix(err.Error(), "layers: ") {
			t.Errorf("%s: error %v, want one containing %q", a.name, err, a.want)
		}
	}
	s, _ := NewStore(tensor.Float64, 1)
	c := NewCtx(s, false)
	x := c.Input("x", 2, 4*4*2)
	expect := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "layers: ") {
			t.Errorf("%s: error %v, want one containing %q", what, err, want)
		}
	}
	_, err := Im2Col(x, 2, 4, 4, 3, 3, 2, 1)
	expect("wrong width", err, "want (2, 48)")
	_, err = Im2Col(x, 3, 4, 4, 2, 3, 2, 1)
	expect("wrong batch", err, "want (3, 32)")
	_, err = Im2Col(c.Input("v", 64), 2, 4, 4, 2, 3, 2, 1)
	expect("vector input", err, "want (2, 32)")
	_, err = Im2Col(nil, 2, 4, 4, 2, 3, 2, 1)
	expect("nil input", err, "nil input")
	_, err = Im2Col(x, 2, 4, 4, 2, 3, 0, 1)
	expect("stride 0", err, "stride 0")
	_, _, _, err = Conv2D(c, "bad", x, 2, 4, 4, 2, 0, 3, 2, 1)
	expect("Cout 0", err, "output channels")
	_, _, _, err = Conv2D(c, "bad", x, 2, 4, 4, 2, 3, -3, 2, 1)
	expect("kernel -3", err, "kernel size -3")
	_, _, _, err = Conv2D(c, "bad", x, 2, 4, 4, 4, 3, 3, 2, 1)
	expect("Conv2D wrong width", err, "want (2, 64)")
	if _, err := c.Param("taken.W", []int{5, 5}, InitNormal); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = Conv2D(c, "taken", x, 2, 4, 4, 2, 3, 3, 2, 1)
	expect("parameter of another shape", err, "parameter taken.W has shape (5, 5), want (18, 3)")
	if _, _, _, err := Conv2D(c, "ok", x, 2, 4, 4, 2, 3, 3, 2, 1); err != nil {
		t.Fatal(err)
	}
	// Run-time values of the wrong shape or dtype.
	g, _ := NewConvGeom(2, 4, 4, 2, 3, 2, 1)
	op := newIm2Col(g)
	if _, err := op.Do(tensor.New(tensor.WithShape(2, 31), tensor.Of(tensor.Float64))); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("im2col of a [2 31] value: %v", err)
	}
	if _, err := op.Do(tensor.New(tensor.WithShape(2, 32), tensor.Of(tensor.Int))); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("im2col of an int value: %v", err)
	}
	back := &col2imOp{fusedBase: fusedBase{name: "col2im"}, g: g}
	if _, err := back.Do(tensor.New(tensor.WithShape(8, 17), tensor.Of(tensor.Float64))); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("col2im of a [8 17] value: %v", err)
	}
	if _, err := back.SymDiff(nil, nil, nil); err == nil {
		t.Error("col2im SymDiff: no error")
	}
}
