#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost, for tests and for trying sweeps on one machine.
#   slurm/local_cluster.sh start DIR   # installs slurm-wlm + munge if missing (Debian, root), starts munged/slurmctld/slurmd
#   slurm/local_cluster.sh stop DIR
#   MLIFT_SLURM_NODES=2 slurm/local_cluster.sh start DIR   # two nodes (n1, n2: one slurmd each, own port) on this machine
# Clients need `export SLURM_CONF=DIR/slurm.conf`. Facts behind the settings: ../shared/DESIGN.md section 3.
set -euo pipefail
cmd=${1:?start|stop}
dir=$(mkdir -p "${2:?state dir}" && cd "$2" && pwd)

if [ "$cmd" = stop ]; then
  for pid in "$dir"/slurmd*.pid "$dir/slurmctld.pid"; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
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
nodes=${MLIFT_SLURM_NODES:-1}
dport=${MLIFT_SLURMD_PORT:-6818}
if [ "$nodes" = 1 ]; then
  names=localhost
  node_lines="NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN"
else  # several slurmd on one host: each its own node name, port, spool, pid and log (%n)
  names=$(seq -s, -f 'n%g' 1 "$nodes")
  node_lines=$(for i in $(seq 1 "$nodes"); do
    echo "NodeName=n$i NodeHostname=localhost Port=$(( dport + i )) CPUs=$cpus RealMemory=$(( mem / nodes )) State=UNKNOWN"
  done)
fi
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
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldPort=${MLIFT_SLURMCTLD_PORT:-6817}
SlurmdPort=$dport
ReturnToService=2
MinJobAge=3600
DefMemPerCPU=$(( mem / nodes / cpus / 4 ))
DependencyParameters=kill_invalid_depend
SchedulerParameters=batch_sched_delay=0
$node_lines
PartitionName=debug Nodes=$names Default=YES OverSubscribe=YES MaxTime=INFINITE State=UP
CONF

# munge: its key exists after install; the daemon runs as the munge user.
mkdir -p /run/munge && chown munge:munge /run/munge
if ! pgrep -x munged >/dev/null; then
  runuser -u munge -- munged --pid-file="$dir/munged.pid" 2>/dev/null || runuser -u munge -- munged
fi
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
for name in ${names//,/ }; do
  mkdir -p "$dir/spool/$name"
  slurmd -f "$SLURM_CONF" -N "$name"
done
for _ in $(seq 1 60); do
  if [ "$(sinfo -h -N -o %T 2>/dev/null | grep -cE '^(idle|mixed|allocated)')" -ge "$nodes" ]; then
    echo "slurm up: SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.5
done
echo "slurm did not come up; see $dir/log" >&2
exit 1
