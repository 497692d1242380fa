#!/usr/bin/env bash
# Scaling of ddsmc at the GMM shape (issue 17, item 4): particle-steps/s for
# N ∈ {16, 64, 256, 1024, 4096} × T ∈ {25, 100, 400}, and R ∈ {1, 8, 30}
# independent runs of N = 8 batched through Sampler.RunMany, for both
# proposals. Prints one JSON line per cell, then a table.
#
#   bench/scaling.sh [workers]        (default 1)
#   OPENBLAS=1 bench/scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-1}
PROPS=${PROPS:-reverse grad}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
BIN=$OUT/ddsmc
if [ "${OPENBLAS:-0}" = 1 ]; then
  CGO_ENABLED=1 CGO_LDFLAGS=-lopenblas go build -tags openblas -o "$BIN" ./cmd/ddsmc
else
  CGO_ENABLED=0 go build -o "$BIN" ./cmd/ddsmc
fi
: > "$OUT/scaling.jsonl"
for p in $PROPS; do
  for T in 25 100 400; do
    for N in 16 64 256 1024 4096; do
      reps=3; [ $((N * T)) -ge 400000 ] && reps=1
      "$BIN" bench -shape gmm -proposal "$p" -N "$N" -T "$T" -workers "$W" -repeats $reps >> "$OUT/scaling.jsonl"
    done
  done
  for R in 1 8 30; do
    "$BIN" bench -shape gmm -proposal "$p" -N 8 -T 100 -R "$R" -workers "$W" -repeats 3 >> "$OUT/scaling.jsonl"
  done
done
echo "raw results: $OUT/scaling.jsonl" >&2
python3 - "$OUT/scaling.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"BLAS: {rows[0]['blas']}, workers {rows[0]['workers']}")
for p in sorted({r["proposal"] for r in rows}, reverse=True):
    print(f"\n{p}: particle-steps/s (R = 1)")
    print("T \\ N  " + "".join(f"{n:>10}" for n in (16, 64, 256, 1024, 4096)))
    for T in (25, 100, 400):
        cells = {r["N"]: r["particle_steps_per_s"] for r in rows if r["proposal"] == p and r["T"] == T and r["R"] == 1 and r["N"] != 8}
        print(f"{T:<7}" + "".join(f"{cells.get(n, float('nan')):>10.0f}" for n in (16, 64, 256, 1024, 4096)))
    print(f"{p}: R batched runs of N = 8, T = 100 (RunMany): " + ", ".join(
        f"R={r['R']}: {r['particle_steps_per_s']:.0f}/s ({r['median_s']:.3f} s for all R)" for r in rows if r["proposal"] == p and r["N"] == 8))
PY
