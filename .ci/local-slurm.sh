#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost, for the SLURM profile's test (tests/test_slurm.py).
#   .ci/local-slurm.sh start   # munged, slurmctld, slurmd; partitions cpu (default) and gpu; 4 fake GPUs
#   .ci/local-slurm.sh stop    # stops the daemons this script started, removes their pid files
# Needs root and Debian's packages: apt-get install -y --no-install-recommends slurmctld slurmd
# slurm-client munge (.ci/run installs them). No accounting daemon: run Snakemake with
# --slurm-status-command squeue. The node claims 32 CPUs and 250 GB (config_overrides), so the
# profile's paper-scale requests are scheduled unchanged; the jobs share the real cores.
set -euo pipefail

HOST=$(hostname -s)
GPUS=4
CONF=/etc/slurm

wait_for() {  # wait_for <seconds> <command...>: until the command succeeds
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then echo "local-slurm: timed out waiting for: $*" >&2; return 1; fi
    sleep 0.2
  done
}

node_idle() { sinfo -h -n "$HOST" -o %t | grep -qx "idle"; }

stop_daemon() {  # stop_daemon <pid file>
  if [[ -f $1 ]]; then
    kill "$(cat "$1")" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$(cat "$1")" 2>/dev/null || break; sleep 0.1; done
    rm -f "$1"
  fi
}

start() {
  for bin in munged slurmctld slurmd sinfo; do
    command -v "$bin" >/dev/null || PATH=$PATH:/usr/sbin command -v "$bin" >/dev/null || {
      echo "local-slurm: $bin not found; apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge" >&2
      exit 2
    }
  done
  export PATH=$PATH:/usr/sbin
  if scontrol ping 2>/dev/null | grep -q UP && node_idle; then echo "local-slurm: already running"; return 0; fi
  mkdir -p /run/munge && chown munge:munge /run/munge
  [[ -f /etc/munge/munge.key ]] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
  wait_for 10 bash -c "munge -n | unmunge"
  for i in $(seq 0 $((GPUS - 1))); do [[ -e /dev/fakegpu$i ]] || mknod /dev/fakegpu$i c 1 3; done
  mkdir -p "$CONF" /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
  chown slurm:slurm /var/lib/slurm/slurmctld /var/log/slurm
  cat > "$CONF/slurm.conf" <<CONFEOF
ClusterName=localci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
SchedulerType=sched/backfill
ReturnToService=2
MailProg=/bin/true
MinJobAge=3600
AccountingStorageType=accounting_storage/none
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=32 RealMemory=256000 Gres=gpu:a100:$GPUS State=UNKNOWN
PartitionName=cpu Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$HOST MaxTime=INFINITE State=UP
CONFEOF
  echo "NodeName=$HOST Name=gpu Type=a100 File=/dev/fakegpu[0-$((GPUS - 1))]" > "$CONF/gres.conf"
  rm -f /run/slurmctld.pid /run/slurmd.pid
  slurmctld
  wait_for 20 bash -c "scontrol ping | grep -q UP"
  slurmd
  wait_for 30 bash -c "sinfo -h -n $HOST -o %t | grep -qE 'idle|drain|down'"
  if ! node_idle; then scontrol update nodename="$HOST" state=resume || true; fi
  wait_for 30 node_idle
  echo "local-slurm: up (node $HOST, partitions cpu and gpu, $GPUS fake GPUs)"
}

stop() {
  stop_daemon /run/slurmd.pid
  stop_daemon /run/slurmctld.pid
  stop_daemon /run/munge/munged.pid
  echo "local-slurm: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
