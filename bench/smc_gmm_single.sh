#!/bin/bash
cd /work/main
mkdir -p /tmp/gm && go build -o /tmp/gm/ddsmc ./cmd/ddsmc
for g in gmm1 gmm2; do
for m in 'name="reverse-mc10"
proposal="reverse"
twist="mc"
phi=10' 'name="reverse-exact"
proposal="reverse"
twist="exact"' 'name="lop"
proposal="lop"
twist="exact"' 'name="grad-phi10"
proposal="grad"
twist="grad"
phi=10' 'name="grad-x0-phi10"
proposal="grad"
twist="grad"
tilt="x0"
phi=10' 'name="bon"
method="bon"' 'name="prop-grad"
method="prop-grad"
phi=10' 'name="plain"
method="plain"'; do
  n=$(echo "$m" | head -1 | sed 's/name="\(.*\)"/\1/')
  printf 'name="%s"\nout="runs/%s"\n[data]\nname="%s"\n[smc]\n%s\n' "$g" "$g" "$g" "$(echo "$m" | tail -n +2)" > /tmp/gm/$g-$n.toml
  printf "dir=\"runs/%s/smc-%s\"\n" $g $n >> /tmp/gm/$g-$n.toml; /tmp/gm/ddsmc smc /tmp/gm/$g-$n.toml > /tmp/gm/$g-$n.log 2>&1 || echo FAIL $g $n
done
done
echo ALLDONE
