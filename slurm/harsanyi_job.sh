# shellcheck shell=bash
# Shared by the sbatch templates of slurm/ (sourced inside a job, not a job script itself): the
# site profile, the srun command with CPU and GPU binding, the record of the environment and of
# every command in the job output, and the exit-code conventions of harsanyi.
#
# The templates find this file through the path sbatch recorded for them (sbatch runs a copy of
# the script from its spool directory), or through HARSANYI_SLURM_DIR.

# harsanyi's exit codes (README "harsanyi run"): 0 done, 1 a system failure, 2 bad input,
# 3 stopped by a signal with the study resumable (continue with --resume).
HJ_STOPPED=3

# hj_die MESSAGE...: the message in the job output and exit code 2 (bad input).
hj_die() {
  echo "harsanyi job: error: $*" >&2
  exit 2
}

# hj_note MESSAGE...: one line of the job's own account in the job output.
hj_note() { echo "harsanyi job: $*"; }

# hj_profile: sources the site profile (module loads, HARSANYI, SBATCH_* defaults), which holds
# what differs between clusters; refuses one whose placeholders were not filled in; sets
# HARSANYI (default: harsanyi on PATH) and OMP_NUM_THREADS (the CPUs per task).
hj_profile() {
  local profile=${HARSANYI_PROFILE:-${XDG_CONFIG_HOME:-$HOME/.config}/harsanyi/profile} v
  if [[ ! -r $profile ]]; then
    hj_die "no profile at $profile. Copy the example and edit its account, partition and modules:" \
      "mkdir -p $(dirname "$profile") && cp $HARSANYI_SLURM_DIR/profile.example $profile" \
      "(or point HARSANYI_PROFILE at another file)"
  fi
  # Module scripts read unset variables and may fail in ways that are not errors of the job.
  set +eu
  # shellcheck source=profile.example
  source "$profile"
  local rc=$?
  set -eu
  ((rc == 0)) || hj_die "sourcing the profile $profile failed (exit $rc): see the lines above"
  HARSANYI_PROFILE=$profile
  for v in SBATCH_ACCOUNT SBATCH_PARTITION HARSANYI HARSANYI_PYTHON; do
    if [[ ${!v:-} == *"<"*">"* ]]; then
      hj_die "the profile $profile still has the placeholder $v=${!v}: edit it (or delete the line)"
    fi
  done
  HARSANYI=${HARSANYI:-harsanyi}
  if ! command -v "$HARSANYI" >/dev/null 2>&1; then
    hj_die "the harsanyi binary '$HARSANYI' is not found on $(hostname): set HARSANYI in" \
      "$profile to its full path (e.g. \$HOME/harsanyi/build/harsanyi), or load its module there"
  fi
  HARSANYI=$(command -v "$HARSANYI")
  export HARSANYI
  # Threads per rank: the CPUs Slurm gave each task (sbatch -c), else what the profile says.
  export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}
}

# hj_srun_command: sets the array SRUN, the launcher of one job step over all the job's tasks:
#   srun --mpi=pmix (Debian's and most sites' OpenMPI speak PMIx), the CPU binding
#   (HARSANYI_CPU_BIND, default none: rank 0 trains with train.threads, the node's CPUs), and,
#   when the job has GPUs, one GPU per rank (--gpu-bind=single:K with K ranks sharing a GPU
#   when there are more ranks than GPUs on a node; HARSANYI_GPU_BIND overrides).
hj_srun_command() {
  SRUN=(srun --mpi=pmix "--cpu-bind=${HARSANYI_CPU_BIND:-none}")
  local gpus=${SLURM_GPUS_ON_NODE:-0}
  if [[ $gpus =~ ^[0-9]+$ ]] && ((gpus > 0)); then
    local nodes=${SLURM_JOB_NUM_NODES:-1} tasks=${SLURM_NTASKS:-1} per_node per_gpu
    per_node=${SLURM_NTASKS_PER_NODE:-$(((tasks + nodes - 1) / nodes))}
    per_node=${per_node%%(*}  # "4(x2)" -> 4
    per_gpu=$(((per_node + gpus - 1) / gpus))
    SRUN+=("--gpu-bind=${HARSANYI_GPU_BIND:-single:$per_gpu}")
  fi
}

# hj_record TEMPLATE: the job's shape, versions and environment, at the top of the job output.
hj_record() {
  echo "==== harsanyi job: $1"
  echo "date       : $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "job        : ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array ${SLURM_ARRAY_JOB_ID:-?}, task $SLURM_ARRAY_TASK_ID of ${SLURM_ARRAY_TASK_MIN:-?}..${SLURM_ARRAY_TASK_MAX:-?})}, restart ${SLURM_RESTART_COUNT:-0}, partition ${SLURM_JOB_PARTITION:-?}, account ${SLURM_JOB_ACCOUNT:-none}"
  echo "nodes      : ${SLURM_JOB_NUM_NODES:-?} (${SLURM_JOB_NODELIST:-?}), ${SLURM_NTASKS:-?} tasks (${SLURM_TASKS_PER_NODE:-?} per node), ${SLURM_CPUS_PER_TASK:-1} CPU(s) per task, GPUs per node: ${SLURM_GPUS_ON_NODE:-none}"
  echo "batch host : $(hostname), submitted from ${SLURM_SUBMIT_DIR:-?}, working directory $(pwd)"
  echo "profile    : ${HARSANYI_PROFILE:-none}"
  echo "harsanyi   : $HARSANYI ($("$HARSANYI" --version 2>&1 | head -n 1))"
  echo "srun       : $(srun --version 2>&1 | head -n 1); MPI: $( (mpirun --version 2>/dev/null || echo unknown) | head -n 1)"
  if command -v module >/dev/null 2>&1; then
    echo "modules    : $(module -t list 2>&1 | tr '\n' ' ')"
  fi
  echo "environment:"
  env | grep -E '^(SLURM_|SBATCH_|SRUN_|OMP_|HARSANYI|CUDA_|OMPI_|PMIX_|UCX_|FI_|HDF5_|MPI|LD_LIBRARY_PATH=|PATH=)' |
    sort | sed 's/^/  /'
  echo "===="
}

# hj_show_command CMD...: the exact command, shell-quoted, in the job output.
hj_show_command() {
  local q
  printf -v q '%q ' "$@"
  echo "+ ${q% }"
}

# hj_run CMD...: shows the command, runs it, and says how it ended; returns its exit code.
hj_run() {
  hj_show_command "$@"
  local rc=0
  "$@" || rc=$?
  hj_explain "$rc"
  return "$rc"
}

# hj_run_forwarding CMD...: as hj_run, with CMD (an srun step) in the background so that the
# batch shell can take signals while it runs: SIGUSR1, SIGUSR2 and SIGTERM sent to the batch
# shell (sbatch --signal=B:USR1@T, scancel --batch) are forwarded to srun as SIGUSR1, which
# passes it to every task; harsanyi then stops at its next safe point with exit code 3.
hj_run_forwarding() {
  hj_show_command "$@"
  "$@" &
  HJ_STEP=$!
  trap 'hj_forward USR1' USR1
  trap 'hj_forward USR2' USR2
  trap 'hj_forward TERM' TERM
  local rc
  while :; do
    rc=0
    wait "$HJ_STEP" || rc=$?
    kill -0 "$HJ_STEP" 2>/dev/null || break  # else a trapped signal interrupted the wait
  done
  rc=0
  wait "$HJ_STEP" || rc=$?  # the step's own exit code (bash keeps it)
  trap - USR1 USR2 TERM
  hj_explain "$rc"
  return "$rc"
}

hj_forward() {
  hj_note "SIG$1 received at $(date -u +%H:%M:%SZ): forwarding SIGUSR1 to the job step (pid $HJ_STEP) so that harsanyi stops at its next safe point"
  kill -USR1 "$HJ_STEP" 2>/dev/null || true
}

# hj_explain RC: what harsanyi's exit code means, in the job output.
hj_explain() {
  case $1 in
    0) hj_note "done (exit 0)" ;;
    "$HJ_STOPPED") hj_note "stopped by a signal (exit $HJ_STOPPED): the study is resumable; submit the same command again to continue it (the templates pass --resume)" ;;
    2) hj_note "refused: bad input (exit 2); the message is above" ;;
    *) hj_note "failed (exit $1); the message is above. A killed or failed study continues with --resume" ;;
  esac
}

# hj_refuse_force ARGS...: --force restarts a study from scratch, so a template that runs a
# study in several jobs (array tasks, requeues) refuses it.
hj_refuse_force() {
  local a
  for a in "$@"; do
    if [[ $a == --force ]]; then
      hj_die "--force would start the study over in every task or requeued run; delete OUT," \
        "OUT.part and OUT.ckpt/ by hand to start over, then submit without --force"
    fi
  done
}

# hj_resume_args ARGS...: sets RESUME to (--resume) unless ARGS has --force: a job submitted
# again continues an interrupted study (and --resume starts afresh when there is nothing to
# continue).
hj_resume_args() {
  # shellcheck disable=SC2034  # read by the template
  RESUME=(--resume)
  local a
  for a in "$@"; do
    # shellcheck disable=SC2034
    [[ $a == --force ]] && RESUME=()
  done
  return 0
}
