package testutil

import (
	"fmt"
	"math"
)

// HashDenoiser is a deterministic stand-in for a trained denoiser over L
// positions and V tokens. Its x₀ logits are pseudo-random numbers in
// [−Scale, Scale], hashed (splitmix64) from the whole noisy sequence, the
// time, the position, the token and Salt: they depend on everything a real
// denoiser sees, and different salts act as different models. It
// satisfies diffusion.Denoiser.
type HashDenoiser struct {
	L, V  int
	Salt  uint64
	Scale float64
}

// Shape returns (L, V).
func (d HashDenoiser) Shape() (int, int) { return d.L, d.V }

// X0Logits writes to out ([b][l][v]) the logits for the len(t) noisy
// sequences in xt ([b][l]) at times t.
func (d HashDenoiser) X0Logits(xt []int, t []float64, out []float64) error {
	L, V := d.L, d.V
	if len(xt) != len(t)*L || len(out) != len(xt)*V {
		return fmt.Errorf("testutil: HashDenoiser: %d tokens and %d outputs for %d sequences of L=%d, V=%d", len(xt), len(out), len(t), L, V)
	}
	for b := range t {
		h := mix(math.Float64bits(t[b]) ^ d.Salt)
		for _, v := range xt[b*L : (b+1)*L] {
			h = mix(h ^ uint64(v+1))
		}
		for i := range L * V {
			u := mix(h ^ uint64(i+1)*0x9e3779b97f4a7c15)
			out[b*L*V+i] = 2*d.Scale*float64(u>>11)/(1<<53) - d.Scale
		}
	}
	return nil
}

// mix is the splitmix64 finaliser, a bijective 64-bit hash.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}
