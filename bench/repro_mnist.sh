#!/bin/bash
# Binarised-MNIST reproduction (issue 6, paper §6(a2)). Each step is skipped
# when its output exists, so the script resumes after an interruption.
#   bash bench/repro_mnist.sh            # pure-Go BLAS (the default build)
#   OPENBLAS=1 bash bench/repro_mnist.sh # OpenBLAS via cgo (needs libopenblas-dev), 2–3× faster
# Times below are with OpenBLAS on the 2-core machine (notebooks.md §7).
set -e
cd "$(dirname "$0")/.."
bin=/tmp/ddsmc-mnist
if [ -n "$OPENBLAS" ]; then
  CGO_LDFLAGS=-lopenblas go build -tags openblas -o $bin ./cmd/ddsmc
  export OPENBLAS_NUM_THREADS=1   # parallelism comes from the SMC/sweep workers
else
  go build -o $bin ./cmd/ddsmc
fi
$bin prepare mnist   # the two reward classifiers (12 epochs, ~3 min); kept if present
[ -f runs/mnist/denoiser.ckpt ] || $bin train mnist                             # ~18 min
$bin sample mnist                                                               # test ELBO + sample grid, ~20 s
[ -f runs/mnist/proposal.ckpt ] || $bin train-proposal mnist                    # amortised q_φ
for s in sweep_mnist_cost sweep_mnist_table sweep_mnist_lambda sweep_mnist_amortised; do
  $bin sweep $s
done
