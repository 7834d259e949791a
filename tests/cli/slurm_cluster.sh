# shellcheck shell=bash disable=SC2034
# A private one-node Slurm cluster on localhost (munged, slurmctld, slurmd), for tests of slurm/.
# Source it, then:
#   cluster_start DIR   state, sockets, logs and slurm.conf under DIR (exports SLURM_CONF);
#                       returns non-zero with the reason in $CLUSTER_ERROR if it does not come up
#   cluster_stop        cancels the cluster's jobs, then stops the daemons it started (by the
#                       pids in their pid files); safe to call twice, or after a failed start
#   cluster_logs        prints the daemons' logs (for a failure report)
#   job_state ID        the job's state (PENDING, RUNNING, COMPLETED, FAILED, ...) or "" if gone
#   job_field ID FIELD  one field of `scontrol show job` (ExitCode, Restarts, ...)
#   wait_job ID SECONDS waits until the job is finished (not pending, running, requeued,
#                       completing); returns 1 on timeout
# Works as root without cgroups (proctrack/linuxproc, task/none). The ports are chosen free at
# start, so clusters of concurrent test runs do not meet.
CLUSTER_DIR=""
CLUSTER_ERROR=""

# _free_ports: two distinct TCP ports nobody listens on now (slurmctld's, slurmd's).
_free_ports() {
  /usr/bin/python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'
}

cluster_start() {
  local S=$1 cpus mem ports
  CLUSTER_DIR=$S
  mkdir -p "$S"/{munge,state,spool,log} || return 1
  chmod 700 "$S/munge"
  cpus=$(nproc)
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2))
  if ! mungekey --create --keyfile="$S/munge/munge.key" --force >"$S/log/mungekey.log" 2>&1; then
    CLUSTER_ERROR="mungekey failed: $(cat "$S/log/mungekey.log")"
    return 1
  fi
  if ! munged --force --key-file="$S/munge/munge.key" --socket="$S/munge/munge.socket.2" \
    --pid-file="$S/munge/munged.pid" --log-file="$S/log/munged.log" \
    --seed-file="$S/munge/munged.seed" >"$S/log/munged.start" 2>&1; then
    CLUSTER_ERROR="munged did not start: $(cat "$S/log/munged.start")"
    return 1
  fi
  read -r -a ports <<<"$(_free_ports)"
  if ((${#ports[@]} != 2)); then
    CLUSTER_ERROR="no free TCP ports for slurmctld and slurmd (/usr/bin/python3 needed to find them)"
    return 1
  fi
  # cred_expire=10: a requeued job may start again 10 s after its requeue (Slurm's default,
  # 120 s, would make the requeue test wait two minutes).
  cat >"$S/slurm.conf" <<EOF
ClusterName=harsanyi-test
SlurmctldHost=localhost
SlurmctldPort=${ports[0]}
SlurmdPort=${ports[1]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/munge.socket.2,cred_expire=10
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=pmix
EnforcePartLimits=ALL
ReturnToService=2
MailProg=/bin/true
SchedulerParameters=sched_interval=2
KillWait=10
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=30 State=UP
EOF
  export SLURM_CONF=$S/slurm.conf
  if ! slurmctld -i >"$S/log/slurmctld.start" 2>&1; then
    CLUSTER_ERROR="slurmctld did not start: $(cat "$S/log/slurmctld.start")"
    return 1
  fi
  if ! slurmd -N localhost >"$S/log/slurmd.start" 2>&1; then
    CLUSTER_ERROR="slurmd did not start: $(cat "$S/log/slurmd.start")"
    return 1
  fi
  # Up when the node is idle (at most 30 s).
  local i state=""
  for ((i = 0; i < 150; i++)); do
    state=$(sinfo -h -n localhost -o %T 2>/dev/null)
    [[ $state == idle* ]] && return 0
    sleep 0.2
  done
  CLUSTER_ERROR="the node did not become idle within 30 s (sinfo says '${state:-nothing}')"
  return 1
}

# cluster_watchdog PID: stops the cluster when process PID (the test) is gone, even if it was
# killed with SIGKILL (a ctest timeout) and could not run its EXIT trap. Run it in the background.
cluster_watchdog() {
  while kill -0 "$1" 2>/dev/null; do
    sleep 2
  done
  cluster_stop
}

cluster_logs() {
  [[ -n $CLUSTER_DIR ]] || return 0
  local f
  for f in "$CLUSTER_DIR"/log/*; do
    [[ -s $f ]] || continue
    echo "----- $f (last 40 lines)"
    tail -n 40 "$f"
  done
}

# _stop_pidfile FILE: SIGTERM to the pid in FILE, then SIGKILL after 10 s if it is still there.
_stop_pidfile() {
  local pid i
  [[ -s $1 ]] || return 0
  pid=$(cat "$1")
  [[ $pid =~ ^[0-9]+$ ]] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
}

cluster_stop() {
  [[ -n $CLUSTER_DIR ]] || return 0
  local S=$CLUSTER_DIR i
  CLUSTER_DIR=""
  if [[ -s $S/slurmctld.pid ]]; then
    # Jobs first, so that no job step outlives the daemons (at most 20 s).
    scancel --full --signal=KILL -u "$(id -un)" >/dev/null 2>&1
    scancel -u "$(id -un)" >/dev/null 2>&1
    for ((i = 0; i < 100; i++)); do
      [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.2
    done
  fi
  _stop_pidfile "$S/slurmd.pid"
  _stop_pidfile "$S/slurmctld.pid"
  _stop_pidfile "$S/munge/munged.pid"
}

job_field() {
  scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

job_state() { job_field "$1" JobState; }

wait_job() {
  local id=$1 limit=$2 start state
  start=$(date +%s)
  while (($(date +%s) - start < limit)); do
    state=$(job_state "$id")
    case $state in
      PENDING | RUNNING | REQUEUED | COMPLETING | CONFIGURING | SUSPENDED | RESIZING | REQUEUE_HOLD | REQUEUE_FED | SIGNALING | STAGE_OUT) sleep 0.5 ;;
      *) return 0 ;;
    esac
  done
  return 1
}
