package mnist

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// FrechetDistance returns the Fréchet distance between Gaussians fitted to
// two sets of d-dimensional feature rows (a: na×d, b: nb×d, row-major):
//
//	‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa^½ Σb Σa^½)^½),
//
// the FID formula (Heusel et al. 2017) with the held-out classifier's
// penultimate features in place of Inception's. Covariances use 1/(n−1);
// both sets need at least two rows.
func FrechetDistance(a []float64, na int, b []float64, nb int, d int) (float64, error) {
	ma, ca, err := moments(a, na, d)
	if err != nil {
		return 0, err
	}
	mb, cb, err := moments(b, nb, d)
	if err != nil {
		return 0, err
	}
	return frechet(ma, ca, mb, cb)
}

// moments returns the mean and covariance of n rows of d features.
func moments(x []float64, n, d int) ([]float64, *mat.SymDense, error) {
	if n < 2 || d < 1 || len(x) != n*d {
		return nil, nil, fmt.Errorf("mnist: Fréchet distance of %d rows of %d features given %d values (need at least 2 rows)", n, d, len(x))
	}
	mu := make([]float64, d)
	for i := range n {
		for j := range d {
			v := x[i*d+j]
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("mnist: non-finite feature %v at row %d, column %d", v, i, j)
			}
			mu[j] += v / float64(n)
		}
	}
	cov := mat.NewSymDense(d, nil)
	for j := range d {
		for k := j; k < d; k++ {
			s := 0.0
			for i := range n {
				s += (x[i*d+j] - mu[j]) * (x[i*d+k] - mu[k])
			}
			cov.SetSym(j, k, s/float64(n-1))
		}
	}
	return mu, cov, nil
}

// frechet is the distance between N(ma, ca) and N(mb, cb).
func frechet(ma []float64, ca *mat.SymDense, mb []float64, cb *mat.SymDense) (float64, error) {
	d := len(ma)
	dist := 0.0
	for j := range d {
		dist += (ma[j] - mb[j]) * (ma[j] - mb[j])
	}
	ra, err := sqrtPSD(ca)
	if err != nil {
		return 0, err
	}
	var m mat.Dense
	m.Mul(ra, cb)
	m.Mul(&m, ra)
	inner := mat.NewSymDense(d, nil)
	for j := range d {
		for k := j; k < d; k++ {
			inner.SetSym(j, k, (m.At(j, k)+m.At(k, j))/2)
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(inner, false) {
		return 0, fmt.Errorf("mnist: Fréchet distance: eigendecomposition did not converge")
	}
	trSqrt := 0.0
	for _, v := range eig.Values(nil) {
		trSqrt += math.Sqrt(math.Max(v, 0))
	}
	return dist + mat.Trace(ca) + mat.Trace(cb) - 2*trSqrt, nil
}

// sqrtPSD returns the symmetric square root of a positive semi-definite
// matrix (negative eigenvalues from rounding are taken as 0).
func sqrtPSD(s *mat.SymDense) (*mat.Dense, error) {
	var eig mat.EigenSym
	if !eig.Factorize(s, true) {
		return nil, fmt.Errorf("mnist: Fréchet distance: eigendecomposition did not converge")
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	d := len(vals)
	out := mat.NewDense(d, d, nil)
	for j := range d {
		for k := range d {
			s := 0.0
			for i, v := range vals {
				s += vecs.At(j, i) * math.Sqrt(math.Max(v, 0)) * vecs.At(k, i)
			}
			out.Set(j, k, s)
		}
	}
	return out, nil
}

// InceptionScore returns exp(E_x KL(p(y|x) ‖ p(y))) for n rows of C class
// probabilities (row-major), with p(y) their mean: 1 when every row is the
// same distribution, C when the rows are confident and spread evenly over
// the classes (the IS of Salimans et al. 2016 with the held-out
// classifier in place of Inception).
func InceptionScore(p []float64, n, C int) (float64, error) {
	if n < 1 || C < 1 || len(p) != n*C {
		return 0, fmt.Errorf("mnist: inception score of %d rows of %d classes given %d values", n, C, len(p))
	}
	marg := make([]float64, C)
	for i := range n {
		for c := range C {
			marg[c] += p[i*C+c] / float64(n)
		}
	}
	kl := 0.0
	for i := range n {
		for c := range C {
			if q := p[i*C+c]; q > 0 {
				kl += q * (math.Log(q) - math.Log(marg[c])) / float64(n)
			}
		}
	}
	return math.Exp(kl), nil
}
