#!/usr/bin/env bash
# slurm-ci.sh CMD [ARGS...]: bring up a one-node Slurm cluster (munged,
# slurmctld, slurmd) under a temporary directory, run CMD with SLURM_CONF
# (and SLURM_CI_RESTART_CTLD, a script that restarts the controller)
# exported, and tear it down by the PIDs it started. Needs root. Installs
# Debian's slurmctld, slurmd, slurm-client and munge if absent. No systemd,
# no cgroups, loopback only. Follows ../shared/slurm.md (every snag there).
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }

W=$(mktemp -d /tmp/ddsmc-slurm.XXXXXX)
SLOTS=${SLURM_CI_SLOTS:-8}
CTLD_PORT=${SLURM_CI_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_CI_SLURMD_PORT:-6818}
log() { echo "[slurm-ci] $*" >&2; }

pids_in_w() { # processes holding a file under $W open: all ours
  local d p
  for d in /proc/[0-9]*; do
    p=${d#/proc/}; [ "$p" = $$ ] && continue
    if ls -l "$d/fd" 2>/dev/null | grep -- "-> $W/" >/dev/null; then echo "$p"; fi
  done
  return 0
}
teardown() {
  local rc=$?
  if [ -n "${SLURM_CONF:-}" ] && scontrol ping >/dev/null 2>&1; then
    scancel --full --user=root 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(squeue -h -t R,CG,CF 2>/dev/null)" ] && break; sleep 0.2
    done
  fi
  for f in slurmd slurmctld munged; do
    [ -s "$W/$f.pid.run" ] || continue
    p=$(cat "$W/$f.pid.run"); kill "$p" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  local stray; stray=$(pids_in_w)
  [ -z "$stray" ] || kill -9 $stray 2>/dev/null || true
  if [ $rc -ne 0 ]; then
    log "FAILED (rc=$rc); last log lines:"
    tail -n 15 "$W"/slurmctld.log "$W"/slurmd.log 2>/dev/null >&2 || true
  fi
  rm -rf "$W"
  exit $rc
}
trap teardown EXIT

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge) >/dev/null
fi

mkdir -p "$W"/{state,spool}
chmod 755 "$W" # munged wants o+x on every directory above its socket
head -c 1024 /dev/urandom > "$W/munge.key"; chmod 600 "$W/munge.key"
munged -F --socket="$W/munge.sock" --key-file="$W/munge.key" --pid-file="$W/munged.pid" \
  --log-file="$W/munged.log" --seed-file="$W/munge.seed" >"$W/munged.stderr" 2>&1 &
echo $! > "$W/munged.pid.run"
for _ in $(seq 100); do [ -S "$W/munge.sock" ] && break; sleep 0.05; done

cat > "$W/slurm.conf" <<CONF
ClusterName=ci
SlurmctldHost=localhost
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$W/munge.sock
StateSaveLocation=$W/state
SlurmdSpoolDir=$W/spool
SlurmctldPidFile=$W/slurmctld.pid
SlurmdPidFile=$W/slurmd.pid
SlurmctldLogFile=$W/slurmctld.log
SlurmdLogFile=$W/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SlurmdTimeout=10
MinJobAge=600
MaxArraySize=${SLURM_CI_MAX_ARRAY:-4}
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$SLOTS RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$W/slurm.conf"

start_ctld() {
  slurmctld -D -f "$SLURM_CONF" >>"$W/slurmctld.stderr" 2>&1 &
  echo $! > "$W/slurmctld.pid.run"
}
start_ctld
slurmd -D -f "$SLURM_CONF" -N localhost >"$W/slurmd.stderr" 2>&1 &
echo $! > "$W/slurmd.pid.run"
for _ in $(seq 300); do
  [ "$(sinfo -h -n localhost -o %T 2>/dev/null)" = idle ] && break; sleep 0.1
done
[ "$(sinfo -h -n localhost -o %T)" = idle ] || { log "node never became idle"; exit 1; }

# A script the tests call to restart the controller mid-array (SIGTERM, as a
# graceful restart; state is saved in $W/state).
cat > "$W/restart-ctld.sh" <<RS
#!/usr/bin/env bash
p=\$(cat "$W/slurmctld.pid.run"); kill "\$p"; for _ in \$(seq 100); do kill -0 "\$p" 2>/dev/null || break; sleep 0.1; done
slurmctld -D -f "$SLURM_CONF" >>"$W/slurmctld.stderr" 2>&1 &
echo \$! > "$W/slurmctld.pid.run"
for _ in \$(seq 100); do scontrol ping >/dev/null 2>&1 && break; sleep 0.1; done
RS
chmod +x "$W/restart-ctld.sh"
export SLURM_CI_RESTART_CTLD="$W/restart-ctld.sh"
log "one-node Slurm up ($SLOTS slots, MaxArraySize ${SLURM_CI_MAX_ARRAY:-4}); running: $*"
set +e; "$@"; rc=$?; set -e
log "'$*' exited $rc"
exit $rc
