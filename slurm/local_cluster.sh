#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost, for tests and for trying sweeps on one machine.
#   slurm/local_cluster.sh start DIR   # installs slurm-wlm + munge if missing (Debian, root), starts munged/slurmctld/slurmd
#   slurm/local_cluster.sh stop DIR
# Clients need `export SLURM_CONF=DIR/slurm.conf`. Facts behind the settings: ../shared/DESIGN.md section 3.
set -euo pipefail
cmd=${1:?start|stop}
dir=$(mkdir -p "${2:?state dir}" && cd "$2" && pwd)

if [ "$cmd" = stop ]; then
  for d in slurmd slurmctld; do
    [ -f "$dir/$d.pid" ] && kill "$(cat "$dir/$d.pid")" 2>/dev/null || true
  done
  [ -f "$dir/munged.pid" ] && kill "$(cat "$dir/munged.pid")" 2>/dev/null || true
  exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

cpus=$(nproc)
mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
mkdir -p "$dir/state" "$dir/spool" "$dir/log"
cat >"$dir/slurm.conf" <<CONF
ClusterName=mlift-local
SlurmctldHost=localhost
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmUser=root
SlurmdUser=root
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=${MLIFT_SLURMCTLD_PORT:-6817}
SlurmdPort=${MLIFT_SLURMD_PORT:-6818}
ReturnToService=2
MinJobAge=3600
DefMemPerCPU=$(( mem / cpus / 4 ))
DependencyParameters=kill_invalid_depend
SchedulerParameters=batch_sched_delay=0
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES OverSubscribe=YES MaxTime=INFINITE State=UP
CONF

# munge: its key exists after install; the daemon runs as the munge user.
mkdir -p /run/munge && chown munge:munge /run/munge
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- munged --pid-file="$dir/munged.pid" 2>/dev/null || runuser -u munge -- munged
fi
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF" -N localhost
for _ in $(seq 1 60); do
  if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "slurm up: SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm did not come up; see $dir/log" >&2
exit 1
