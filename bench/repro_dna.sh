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
for s in sweep_dna_table sweep_dna_alpha05; do
  $bin sweep $s
  go run ./experiments/dna/cmd/dnapool runs/sweeps/${s#sweep_}
done
