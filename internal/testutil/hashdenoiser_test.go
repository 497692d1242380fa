package testutil

import (
	"math"
	"testing"
)

// oldHash is the hashed denoiser as the smc tests wrote it (logits in
// [−2, 2], salted); the diffusion tests' copy was the same with 6·u − 3
// and no salt.
func oldHash(L, V int, salt uint64, wide bool, xt []int, t, out []float64) {
	for b := range t {
		h := mix(math.Float64bits(t[b]) ^ salt)
		for _, v := range xt[b*L : (b+1)*L] {
			h = mix(h ^ uint64(v+1))
		}
		for i := range L * V {
			u := mix(h ^ uint64(i+1)*0x9e3779b97f4a7c15)
			if wide {
				out[b*L*V+i] = 6*float64(u>>11)/(1<<53) - 3
			} else {
				out[b*L*V+i] = 4*float64(u>>11)/(1<<53) - 2
			}
		}
	}
}

// HashDenoiser reproduces both former test copies bit for bit, stays in
// [−Scale, Scale], and its logits change with the salt, the time and every
// token of the sequence.
func TestHashDenoiserMatchesFormerCopiesAndDependsOnEverything(t *testing.T) {
	const L, V = 3, 4
	xt := []int{0, 4, 2, 4, 4, 4, 3, 1, 0}
	ts := []float64{0.25, 1, 0.6}
	for _, tc := range []struct {
		salt  uint64
		scale float64
		wide  bool
	}{{0, 2, false}, {5, 2, false}, {0, 3, true}} {
		d := HashDenoiser{L: L, V: V, Salt: tc.salt, Scale: tc.scale}
		got, want := make([]float64, len(xt)*V), make([]float64, len(xt)*V)
		if err := d.X0Logits(xt, ts, got); err != nil {
			t.Fatal(err)
		}
		oldHash(L, V, tc.salt, tc.wide, xt, ts, want)
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("salt %d scale %v: logit %d = %v, former copy %v", tc.salt, tc.scale, i, got[i], want[i])
			}
			if math.Abs(got[i]) > tc.scale {
				t.Fatalf("logit %d = %v outside ±%v", i, got[i], tc.scale)
			}
		}
	}
	base := HashDenoiser{L: L, V: V, Scale: 2}
	ref := make([]float64, L*V)
	base.X0Logits(xt[:L], ts[:1], ref)
	differs := func(what string, d HashDenoiser, x []int, tm float64) {
		out := make([]float64, L*V)
		if err := d.X0Logits(x, []float64{tm}, out); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if out[i] != ref[i] {
				return
			}
		}
		t.Errorf("changing the %s left the logits unchanged", what)
	}
	differs("salt", HashDenoiser{L: L, V: V, Salt: 1, Scale: 2}, xt[:L], ts[0])
	differs("time", base, xt[:L], 0.26)
	for l := range L {
		x := append([]int(nil), xt[:L]...)
		x[l] = (x[l] + 1) % (V + 1)
		differs("token", base, x, ts[0])
	}
	if L2, V2 := base.Shape(); L2 != L || V2 != V {
		t.Errorf("Shape() = %d, %d", L2, V2)
	}
	if err := base.X0Logits(xt[:L], ts[:2], make([]float64, 2*L*V)); err == nil {
		t.Error("mismatched lengths: no error")
	}
}
