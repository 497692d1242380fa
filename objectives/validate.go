package objectives

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/internal/logsumexp"
)

// ValidationELBO estimates the held-out negative ELBO in nats per token, and
// the Monte Carlo standard error of that estimate,
// (1/(N·L)) Σ_rows E_{t, x_t}[ Σ_l 1[masked] · w(t) · (−log x̂θ(x_t)^l[x0^l]) ],
// with `samples` stratified draws of t per row and a fixed seed, so two
// calls on the same model give the same number and successive validations
// differ only through the model. The denoiser is called in batches of
// exactly `batch` sequences (padded).
func ValidationELBO(d diffusion.Denoiser, s diffusion.Schedule, data Data, samples, batch int, seed uint64) (mean, stderr float64, err error) {
	n := data.Len()
	if n == 0 {
		return 0, 0, fmt.Errorf("objectives: empty validation set")
	}
	if samples <= 0 || batch <= 0 {
		return 0, 0, fmt.Errorf("objectives: validation needs samples > 0 and batch > 0 (got %d, %d)", samples, batch)
	}
	L, V := d.Shape()
	rng := rand.New(rand.NewPCG(seed, 0x76616c))
	xt := make([]int, batch*L)
	x0 := make([]int, batch*L)
	ts := make([]float64, batch)
	logits := make([]float64, batch*L*V)
	total, total2 := 0.0, 0.0
	count := 0 // (row, sample) pairs in the current batch
	flush := func() error {
		if count == 0 {
			return nil
		}
		for b := count; b < batch; b++ { // pad with all-mask rows
			for l := 0; l < L; l++ {
				xt[b*L+l] = V
			}
			ts[b] = 1
		}
		if err := d.X0Logits(xt, ts, logits); err != nil {
			return err
		}
		for b := 0; b < count; b++ {
			rate := s.Rate(ts[b])
			v := 0.0
			for l := 0; l < L; l++ {
				i := b*L + l
				if xt[i] == V {
					v += rate * -logsumexp.LogSoftmaxAt(logits[i*V:(i+1)*V], x0[i])
				}
			}
			v /= float64(L)
			total += v
			total2 += v * v
		}
		count = 0
		return nil
	}
	for r := 0; r < n; r++ {
		row := data.Row(r)
		if len(row) != L {
			return 0, 0, fmt.Errorf("objectives: validation row %d has length %d, model expects %d", r, len(row), L)
		}
		u := rng.Float64()
		for k := 0; k < samples; k++ {
			t := TimeEps + (1-TimeEps)*math.Mod(u+float64(k)/float64(samples), 1)
			copy(x0[count*L:], row)
			if err := diffusion.ForwardMask(rng, s, t, V, row, xt[count*L:(count+1)*L]); err != nil {
				return 0, 0, err
			}
			ts[count] = t
			count++
			if count == batch {
				if err := flush(); err != nil {
					return 0, 0, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	cnt := float64(n * samples)
	mean = total / cnt
	if math.IsNaN(mean) || math.IsInf(mean, 0) {
		return mean, 0, fmt.Errorf("objectives: validation ELBO is %v", mean)
	}
	// The stratified times make this conservative: it treats draws as iid.
	stderr = math.Sqrt(math.Max(0, total2/cnt-mean*mean) / cnt)
	return mean, stderr, nil
}
