#!/bin/bash
# Full-size synthetic reproduction (issue 4): every GMM sweep, one after the
# other, into runs/sweeps/<name>. Resumable: re-run to finish after a kill.
set -e
cd "$(dirname "$0")/.."
go build -o /tmp/ddsmc-repro ./cmd/ddsmc
for s in gmm1_compare gmm2_compare gmm1_tempering gmm2_tempering gmm1_scaling gmm2_scaling gmm1_phi gmm2_phi; do
  start=$(date +%s)
  /tmp/ddsmc-repro sweep "sweep_$s"
  echo "== $s: $(( $(date +%s) - start )) s"
done
