#!/usr/bin/env bash
# Duel: ddsmc bench against the PyTorch-CPU peer (../shared/peer/torch_smc.py),
# interleaved in one run (peer, ddsmc, peer, ddsmc, ...) so both see the same
# machine load, then the ratios of particle-steps/s.
#
#   bench/duel.sh [rounds] [workers]     e.g. bench/duel.sh 3 "1,2"
#   OPENBLAS=1 bench/duel.sh            ddsmc built with -tags openblas
#   SHAPES="gmm mnist" PROPS="reverse grad" bench/duel.sh
#   DDSMC_BIN=/path/to/ddsmc bench/duel.sh  use a prebuilt binary
#
# The peer runs one thread (torch.set_num_threads(1), OPENBLAS_NUM_THREADS=1).
# Debian's torch takes its BLAS from the libblas.so.3 alternative: with
# libopenblas-dev installed that is OpenBLAS (about 8x faster than the
# reference BLAS on these shapes); the script prints which one it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
WORKERS=${2:-1,2}
SHAPES=${SHAPES:-gmm mnist}
PROPS=${PROPS:-reverse grad}
PEER=${PEER:-../shared/peer/torch_smc.py}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
BIN=${DDSMC_BIN:-$OUT/ddsmc}
if [ -n "${DDSMC_BIN:-}" ]; then
  : # a prebuilt binary (e.g. an older commit, for before/after tables)
elif [ "${OPENBLAS:-0}" = 1 ]; then
  CGO_ENABLED=1 CGO_LDFLAGS=-lopenblas go build -tags openblas -o "$BIN" ./cmd/ddsmc
else
  CGO_ENABLED=0 go build -o "$BIN" ./cmd/ddsmc
fi
havepeer=0
if /usr/bin/python3 -c 'import torch' 2>/dev/null && [ -f "$PEER" ]; then
  havepeer=1
  echo "peer BLAS: $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)" >&2
else
  echo "torch or the peer script is missing: ddsmc only" >&2
fi
peerargs() { # shape -> torch_smc.py flags
  case $1 in
    gmm) echo "--L 2 --V 64 --hidden 256 --layers 2 --N 256 --T 100";;
    mnist) echo "--L 784 --V 2 --hidden 1024 --layers 2 --N 64 --T 100";;
    *) echo "";;
  esac
}
: > "$OUT/results.jsonl"
for r in $(seq "$ROUNDS"); do
  for sh in $SHAPES; do
    for p in $PROPS; do
      if [ $havepeer = 1 ] && [ -n "$(peerargs "$sh")" ]; then
        OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 "$PEER" $(peerargs "$sh") --phi 1 --proposal "$p" --threads 1 |
          sed "s/^{/{\"round\": $r, \"workload\": \"$sh\", /" >> "$OUT/results.jsonl"
      fi
      "$BIN" bench -shape "$sh" -proposal "$p" -workers "$WORKERS" -phi 1 |
        sed "s/^{/{\"round\":$r,/" >> "$OUT/results.jsonl"
    done
  done
done
echo "raw results: $OUT/results.jsonl" >&2
python3 - "$OUT/results.jsonl" <<'PY'
import json, sys, statistics as st
rows = [json.loads(l) for l in open(sys.argv[1])]
key = lambda r: (r["workload"], r["proposal"])
peer, ours = {}, {}
for r in rows:
    if r.get("peer"):
        peer.setdefault(key(r), []).append(r["particle_steps_per_s"])
    else:
        ours.setdefault(key(r) + (r["workers"],), []).append(r["particle_steps_per_s"])
blas = next((r["blas"] for r in rows if "blas" in r), "?")
print(f"ddsmc BLAS: {blas}")
print(f"{'workload':<12}{'proposal':<9}{'workers':>8}{'peer':>11}{'ddsmc':>11}{'ratio':>8}   (medians over rounds, particle-steps/s)")
for k in sorted(ours):
    o = st.median(ours[k]); p = peer.get(k[:2])
    pm = st.median(p) if p else float('nan')
    print(f"{k[0]:<12}{k[1]:<9}{k[2]:>8}{pm:>11.0f}{o:>11.0f}{o/pm if p else float('nan'):>8.2f}")
for sh in sorted({k[0] for k in ours}):
    for w in sorted({k[2] for k in ours}):
        g, rv = ours.get((sh, "grad", w)), ours.get((sh, "reverse", w))
        if g and rv:
            print(f"{sh} workers={w}: gradient time / reverse time = {st.median(rv)/st.median(g):.2f}")
    for p in ("reverse", "grad"):
        a, b = ours.get((sh, p, 1)), ours.get((sh, p, 2))
        if a and b:
            print(f"{sh} {p}: 2 workers / 1 worker = {st.median(b)/st.median(a):.2f}")
PY
