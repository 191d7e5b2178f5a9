#!/usr/bin/env bash
# A single-node Slurm cluster in a folder, for trying the Slurm launcher and for its test:
#   tools/slurm-local.sh start DIR [PORT]   # writes DIR/slurm.conf, starts munged, slurmctld, slurmd
#   export SLURM_CONF=DIR/slurm.conf        # for sbatch, squeue, scancel and microcal-run
#   tools/slurm-local.sh stop DIR           # cancels every job, stops the daemons by pid
# Needs root and Debian's packages: apt-get install -y --no-install-recommends slurmctld
# slurmd slurm-client munge. No systemd: every daemon runs from here, with its state, logs
# and pid files under DIR. PORT (default 6817) and PORT+1 are slurmctld's and slurmd's.
set -euo pipefail

cmd=${1:?usage: slurm-local.sh start|stop DIR [PORT]}
dir=$(mkdir -p "${2:?usage: slurm-local.sh start|stop DIR [PORT]}" && cd "$2" && pwd)
port=${3:-6817}

stop_pid() { # pid: TERM, up to 5 s, then KILL
  kill -TERM "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

stop_pid_file() { # pid file of a daemon (daemons delete their own on exit: read it first)
  [ -f "$1" ] || return 0
  stop_pid "$(cat "$1")"
  rm -f "$1"
}

job_pids() { # the processes of every running job step, as slurmd lists them
  scontrol listpids 2>/dev/null | awk 'NR > 1 && $1 ~ /^[0-9]+$/ { print $1 }'
}

stepd_pids() { # the slurmstepd of each step: the parents of its processes not listed themselves
  local pids
  pids=$(job_pids)
  [ -n "$pids" ] || return 0
  ps -o ppid= -p "$(tr '\n' ',' <<<"$pids" | sed 's/,$//')" 2>/dev/null | tr -d ' ' \
    | sort -u | grep -vxF -f <(echo "$pids") | grep -vx '1' || true
}

case "$cmd" in
start)
  host=$(hostname -s)
  mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/run" "$dir/munge"
  chmod 700 "$dir/munge"
  [ -f "$dir/munge/key" ] || { dd if=/dev/urandom of="$dir/munge/key" bs=1024 count=1 status=none; chmod 400 "$dir/munge/key"; }
  munged --force --socket="$dir/munge/socket" --key-file="$dir/munge/key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
  node=$(slurmd -C | head -n 1)
  cat >"$dir/slurm.conf" <<EOF
ClusterName=microcal-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/socket
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MailProg=/bin/true
ReturnToService=2
SchedulerParameters=sched_interval=1
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$dir/slurm.conf"
  started=$(date +%s)
  slurmctld -i
  slurmd
  # Wait for the node to register (state saved by an earlier start says idle too early).
  for _ in $(seq 200); do
    line=$(scontrol -o show node "$host" 2>/dev/null || true)
    if [[ "$line" == *"State=IDLE"* ]]; then
      since=$(sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p' <<<"$line")
      if [ -n "$since" ] && [ "$(date -d "$since" +%s 2>/dev/null || echo 0)" -ge "$((started - 1))" ]; then
        echo "export SLURM_CONF=$dir/slurm.conf"
        exit 0
      fi
    fi
    sleep 0.1
  done
  echo "slurm-local: the node did not become idle; see $dir/log" >&2
  exit 1
  ;;
stop)
  export SLURM_CONF="$dir/slurm.conf"
  # Every process is stopped by its pid, never by a pattern: the daemons by their pid files,
  # job steps (which can outlive slurmd) by the pids slurmd lists before it stops.
  started=""
  if [ -f "$dir/run/slurmd.pid" ]; then
    started="$(job_pids) $(stepd_pids)"
  fi
  if [ -f "$dir/run/slurmctld.pid" ]; then
    scancel --full --quiet --partition=debug 2>/dev/null || true
    for _ in $(seq 100); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  stop_pid_file "$dir/run/slurmd.pid"
  stop_pid_file "$dir/run/slurmctld.pid"
  stop_pid_file "$dir/run/munged.pid"
  for pid in $started; do stop_pid "$pid"; done
  ;;
*)
  echo "usage: slurm-local.sh start|stop DIR [PORT]" >&2
  exit 2
  ;;
esac
