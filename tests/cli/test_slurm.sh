#!/usr/bin/env bash
# The job scripts of slurm/ on a real one-node Slurm cluster (munged, slurmctld and slurmd
# started here, in a private directory, on free ports; always stopped at the end):
#  - study.sbatch with a tiny study on 2 tasks (srun --mpi=pmix): exit code 0, a complete study
#    written by 2 ranks, the environment and the srun command in the job output; its clear
#    refusals (no config, no profile);
#  - study.sbatch signalled mid-run (scancel --signal=TERM): exit code 3, the study resumable;
#    the same command submitted again finishes it, equal to the uninterrupted run (compare_h5);
#  - preemptible.sbatch warned as --signal=B:USR1 does (scancel --batch --signal=USR1): it
#    forwards the signal, requeues itself, and the requeued run finishes the same study;
#  - array.sbatch as 3 tasks of 3 epochs in turn: the same study;
#  - scaling_strong.sbatch on a tiny sweep: CSV, JSON and a PNG from srun steps.
# Usage: test_slurm.sh path/to/harsanyi [path/to/build]
# Skips (exit 0, "SKIP: ...") only when Slurm or munge is not installed; a cluster that is
# installed but does not start is a failure, with the daemons' logs.
set -u
H=${1:?usage: test_slurm.sh path/to/harsanyi [build-dir]}
H=$(cd "$(dirname "$H")" && pwd)/$(basename "$H")
BUILD=${2:-$(dirname "$H")}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
# shellcheck source=common.sh
source "$HERE/common.sh"
# shellcheck source=slurm_cluster.sh
source "$HERE/slurm_cluster.sh"

missing=()
for tool in munged mungekey slurmctld slurmd sbatch srun scontrol scancel squeue sinfo; do
  command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] || missing+=("$tool")
done
if ((${#missing[@]})); then
  echo "SKIP: Slurm is not installed (missing ${missing[*]}; scripts/setup.sh installs slurm-wlm and munge)"
  echo "0 passed, 0 failed"
  exit 0
fi
export PATH=$PATH:/usr/sbin
if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: Fashion-MNIST is not installed (scripts/setup.sh installs dataset-fashion-mnist)"
  echo "0 passed, 0 failed"
  exit 0
fi

t0_all=$(date +%s)
T=$(mktemp -d /tmp/harsanyi-slurm-test.XXXXXX)
chmod 755 "$T"
finish() {
  cluster_stop
  jobs -p | xargs -r kill -9 2>/dev/null
  rm -rf "$T"
}
trap finish EXIT
trap 'exit 130' INT TERM

t0=$(date +%s)
if ! cluster_start "$T/cluster"; then
  bad "the one-node Slurm cluster starts: $CLUSTER_ERROR"
  cluster_logs
  echo "$pass passed, $fail failed"
  exit 1
fi
ok "the one-node Slurm cluster is up in $(($(date +%s) - t0)) s"
cluster_watchdog $$ >/dev/null 2>&1 &

# The jobs run as root here (CI containers): OpenMPI needs this. Never in the templates.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The three steps of README "Clusters (Slurm)": copy the profile, fill it in, source it, sbatch.
sed -e '/SBATCH_ACCOUNT=/d' -e 's|<partition>|debug|' -e "s|<path to harsanyi/build/harsanyi>|$H|" \
  "$SRC/slurm/profile.example" >"$T/profile"
export HARSANYI_PROFILE=$T/profile
# shellcheck source=../../slurm/profile.example
source "$T/profile"
unset SBATCH_ACCOUNT HARSANYI_SLURM_DIR

# The tiny study, long enough to be signalled in flight on 2 ranks: 9 players, epochs 0..8.
signal_study "$T/s.toml"
SETS=("${SIGNAL_SETS[@]}" --set interactions.iters=12000 --set data.train_limit=1000)
cd "$T" || exit 1

# submit NAME SBATCH-ARGS... : submits, sets JOB to its id (empty on failure).
submit() {
  local name=$1
  shift
  JOB=$(sbatch --parsable --chdir="$T" --output="$T/$name.out" --time=10 "$@" 2>"$T/$name.sbatch.err")
  JOB=${JOB%%;*}
  [[ -n $JOB ]] || bad "$name: sbatch refused: $(cat "$T/$name.sbatch.err")"
}

# finished NAME LIMIT: waits (bounded) for $JOB to end; checks it did not time out.
finished() {
  if ! wait_job "$JOB" "$2"; then
    bad "$1: job $JOB still $(job_state "$JOB") after $2 s; its output: $(tail -c 600 "$T/$1.out" 2>/dev/null)"
    scancel "$JOB" 2>/dev/null
    return 1
  fi
}

# expect_job NAME STATE EXITCODE: the finished job's state and exit code (scontrol's a:b).
expect_job() {
  local state code
  state=$(job_state "$JOB")
  code=$(job_field "$JOB" ExitCode)
  if [[ $state == "$2" && $code == "$3" ]]; then
    ok "$1: job $JOB $state, exit code $code"
  else
    bad "$1: job $JOB $state with exit code $code (wanted $2, $3); output: $(tail -c 800 "$T/$1.out" 2>/dev/null)"
  fi
}

# wait_output NAME PATTERN LIMIT: until PATTERN is in the job output (bounded).
wait_output() {
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    grep -qE -- "$2" "$T/$1.out" 2>/dev/null && return 0
    [[ $(job_state "$JOB") == @(PENDING|RUNNING|CONFIGURING|COMPLETING|REQUEUED) ]] || break
    sleep 0.2
  done
  bad "$1: no '$2' in the job output within $3 s: $(tail -c 600 "$T/$1.out" 2>/dev/null)"
  return 1
}

# --- refusals: clear messages, exit code 2 ----------------------------------------------------
submit noconfig -n 1 "$SRC/slurm/study.sbatch"
finished noconfig 60 && expect_job "study.sbatch without a config" FAILED 2:0
grep -q "no study config given.*Usage: sbatch" "$T/noconfig.out" && ok "the missing config is named, with the usage" \
  || bad "no-config message: $(cat "$T/noconfig.out")"
HARSANYI_PROFILE=$T/none submit noprofile -n 1 "$SRC/slurm/study.sbatch" "$T/s.toml"
finished noprofile 60 && expect_job "study.sbatch without a profile" FAILED 2:0
grep -q "no profile at $T/none.*cp .*slurm/profile.example" "$T/noprofile.out" \
  && ok "the missing profile is named, with the copy command" || bad "no-profile message: $(cat "$T/noprofile.out")"

# --- study.sbatch, uninterrupted: the reference ------------------------------------------------
t0=$(date +%s)
submit study -n 2 "$SRC/slurm/study.sbatch" "$T/s.toml" --set output.path="$T/ref.h5" "${SETS[@]}"
finished study 300 && expect_job "study.sbatch on 2 tasks" COMPLETED 0:0
study_s=$(($(date +%s) - t0))
"$PY" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r')
sys.exit(0 if f.attrs['complete'] == 1 and f.attrs['mpi_ranks'] == 2 and f['epochs/epoch'].shape[0] == 9 else 1)" \
  "$T/ref.h5" 2>/dev/null && ok "a complete study of 9 epochs, written by 2 ranks (srun --mpi=pmix)" \
  || bad "the study file: $(ls "$T"), $(tail -c 600 "$T/study.out")"
grep -q '^+ srun --mpi=pmix --cpu-bind=none .*harsanyi run .*s.toml --resume' "$T/study.out" \
  && grep -q "^  SLURM_NTASKS=2" "$T/study.out" && grep -q "^harsanyi   : $H" "$T/study.out" \
  && ok "the job output records the environment, the binary and the exact srun command" \
  || bad "job output record: $(head -c 1500 "$T/study.out")"

# --- study.sbatch signalled mid-run, then submitted again -------------------------------------
submit sig -n 2 "$SRC/slurm/study.sbatch" "$T/s.toml" --set output.path="$T/sig.h5" "${SETS[@]}"
if wait_output sig "run: epoch 1:" 120; then
  scancel --signal=TERM "$JOB"
  finished sig 120 && expect_job "study.sbatch stopped by SIGTERM" FAILED 3:0
  grep -q "stopped by SIGTERM" "$T/sig.out" && grep -q "stopped by a signal (exit 3)" "$T/sig.out" \
    && ok "the job output says the study stopped and how to continue" || bad "stop messages: $(tail -c 800 "$T/sig.out")"
  [[ -e "$T/sig.h5.part" && ! -e "$T/sig.h5" ]] && ok "the stopped study is left resumable (.part)" \
    || bad "after the stop: $(ls "$T")"
fi
submit sig2 -n 2 "$SRC/slurm/study.sbatch" "$T/s.toml" --set output.path="$T/sig.h5" "${SETS[@]}"
finished sig2 300 && expect_job "the same command submitted again" COMPLETED 0:0
grep -qE "run: [0-9]+ of 9 epochs analysed" "$T/sig2.out" && ! grep -q "run: 9 of 9 epochs analysed" "$T/sig2.out" \
  && ok "the second job continued the study (only the missing epochs)" || bad "second job: $(tail -c 600 "$T/sig2.out")"
compare_h5 "$T/ref.h5" "$T/sig.h5" >"$T/cmp" && ok "stopped and resubmitted: the same study as the uninterrupted job" \
  || bad "stopped and resubmitted: $(cat "$T/cmp")"

# --- preemptible.sbatch: warned, forwards, requeues itself, finishes -----------------------------
t0=$(date +%s)
submit pre -n 2 "$SRC/slurm/preemptible.sbatch" "$T/s.toml" --set output.path="$T/pre.h5" "${SETS[@]}"
if wait_output pre "run: epoch 1:" 120; then
  scancel --batch --signal=USR1 "$JOB"  # what --signal=B:USR1@120 sends before the time limit
  finished pre 300 && expect_job "preemptible.sbatch, requeued" COMPLETED 0:0
  [[ $(job_field "$JOB" Restarts) -ge 1 ]] && ok "the job was requeued ($(job_field "$JOB" Restarts) restart)" \
    || bad "no restart: $(tail -c 800 "$T/pre.out")"
  grep -q "SIGUSR1 received.*forwarding" "$T/pre.out" && grep -q "stopped by SIGUSR1" "$T/pre.out" \
    && grep -q "requeueing job $JOB" "$T/pre.out" && grep -q "restart 1," "$T/pre.out" \
    && ok "signal forwarded to the step, study stopped, job requeued, run again (one output)" \
    || bad "preemptible output: $(cat "$T/pre.out" | grep -v '^  ' | tail -c 1500)"
  compare_h5 "$T/ref.h5" "$T/pre.h5" >"$T/cmp" && ok "preempted and requeued: the same study as the uninterrupted job" \
    || bad "preempted and requeued: $(cat "$T/cmp")"
fi
pre_s=$(($(date +%s) - t0))

# --- array.sbatch: three tasks of three epochs, in turn -----------------------------------------
HARSANYI_EPOCHS_PER_TASK=3 submit arr-%a -n 2 --array=0-2%1 "$SRC/slurm/array.sbatch" "$T/s.toml" \
  --set output.path="$T/arr.h5" "${SETS[@]}"
ARRAY=$JOB
for task in 0 1 2; do
  JOB=${ARRAY}_$task
  finished "arr-$task" 300 && expect_job "arr-$task" COMPLETED 0:0
done
grep -q "stopped after epoch 2 as asked" "$T/arr-0.out" && grep -q "stopped after epoch 5 as asked" "$T/arr-1.out" \
  && grep -q "run: 3 of 9 epochs analysed" "$T/arr-2.out" && ok "the array tasks analysed epochs 0-2, 3-5 and 6-8" \
  || bad "array task outputs: $(tail -n 3 "$T"/arr-*.out)"
compare_h5 "$T/ref.h5" "$T/arr.h5" >"$T/cmp" && ok "the array's three tasks in turn: the same study" \
  || bad "array: $(cat "$T/cmp")"

# --- scaling_strong.sbatch: a tiny sweep through srun -------------------------------------------
if [[ -x $BUILD/bench/dist_moebius_perf && -x $BUILD/bench/reduce_perf ]]; then
  HARSANYI_BUILD=$BUILD HARSANYI_SCALING_OUT=$T/scaling submit scal -n 2 "$SRC/slurm/scaling_strong.sbatch" \
    --suites dist_moebius,reduce --moebius-n 12 --reduce-n 12 --reps 2 --warmup 0
  finished scal 300 && expect_job "scaling_strong.sbatch" COMPLETED 0:0
  csv=$(ls "$T"/scaling/strong_*.csv 2>/dev/null | head -n 1)
  png=$(ls "$T"/scaling/strong_*_reduce.png 2>/dev/null | head -n 1)
  [[ -n $csv && $(grep -c '^dist_moebius,partner,strong,n,12,[12],' "$csv") -eq 2 ]] \
    && grep -q "srun --mpi=pmix --ntasks=2" "$csv" && ok "the sweep ran its steps under srun (CSV rows for 1 and 2 ranks)" \
    || bad "scaling CSV: $(cat "$csv" 2>/dev/null) $(tail -c 800 "$T/scal.out")"
  [[ -n $png && $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] \
    && ok "the sweep's plot is a PNG" || bad "scaling PNG: $(ls "$T/scaling")"
else
  echo "SKIP scaling template check: no perf binaries in $BUILD/bench"
fi

echo "timing: study job ${study_s} s, preempted and requeued job ${pre_s} s, whole test $(($(date +%s) - t0_all)) s"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
