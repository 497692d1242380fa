#!/bin/bash
# Amortised-proposal reproduction (issue 5): train q_φ for GMM-1 and GMM-2
# (runs/gmm{1,2}/proposal.ckpt; needs the denoisers of `ddsmc train gmm1/gmm2`),
# then compare SMC-amot and Prop-amot with the other proposals.
set -e
cd "$(dirname "$0")/.."
go build -o /tmp/ddsmc-amot ./cmd/ddsmc
for g in gmm1 gmm2; do
  printf 'name="%s"\n[data]\nname="%s"\n[proposal]\nepochs=8\npatience=3\n' $g $g > /tmp/amot-$g.toml
  /tmp/ddsmc-amot train-proposal -out runs/$g /tmp/amot-$g.toml
done
for g in gmm1 gmm2; do /tmp/ddsmc-amot sweep sweep_${g}_amortised; done
