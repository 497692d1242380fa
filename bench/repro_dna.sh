#!/bin/bash
# DNA reproduction (issue 13, paper §6(c) analogue; notebooks.md "DNA").
# Each step is skipped when its output exists, so the script resumes after
# an interruption (the sweeps are resumable themselves).
#   bash bench/repro_dna.sh            # pure-Go BLAS (the default build)
#   OPENBLAS=1 bash bench/repro_dna.sh # OpenBLAS via cgo (needs libopenblas-dev)
set -e
cd "$(dirname "$0")/.."
bin=/tmp/ddsmc-dna
if [ -n "$OPENBLAS" ]; then
  CGO_LDFLAGS=-lopenblas go build -tags openblas -o $bin ./cmd/ddsmc
  export OPENBLAS_NUM_THREADS=1
else
  go build -o $bin ./cmd/ddsmc
fi
$bin prepare dna                                       # apt-get download + dpkg-deb -x + SHA-256, seconds
[ -f runs/dna/denoiser.ckpt ] || $bin train dna        # 2,000 steps (early-stopped by hand, see configs/dna.toml), ~3 min
[ -f runs/dna/sample_summary.json ] || $bin sample dna # test −ELBO, sample statistics, samples.svg
$bin sweep sweep_dna_table                                  # 2,688 runs, ~33 min
$bin sweep sweep_dna_alpha05                                # 1,152 runs, ~14 min
[ -f runs/dna/proposal.ckpt ] || $bin train-proposal dna     # amortised q_φ, ~6 min
$bin sweep sweep_dna_amortised                              # Prop-amot, SMC-amot
$bin sweep sweep_dna_640                                    # 512 more seeds of three N = 16 cells
pool="go run ./experiments/dna/cmd/dnapool"
$pool runs/sweeps/dna_table
$pool -out runs/sweeps/dna_combined runs/sweeps/dna_table runs/sweeps/dna_alpha05 runs/sweeps/dna_amortised
$pool -out runs/sweeps/dna_640_pooled runs/sweeps/dna_table runs/sweeps/dna_640
