#!/usr/bin/env bash
# A graceful stop of `harsanyi run` by a signal, outside any batch system: SIGTERM in the
# analysis, SIGINT in training, SIGUSR1 to mpirun (which forwards it to both ranks) each end the
# run at the next safe point with exit code 3 and a message naming the signal and the resume
# command (also with --overlap on); a second signal ends it at once; --until-epoch stops it
# resumable with exit code 0; and every --resume ends with the same study as an uninterrupted
# run (compare_h5).
# Usage: test_stop_signal.sh path/to/harsanyi
set -u
H=${1:?usage: test_stop_signal.sh path/to/harsanyi}
T=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP: Fashion-MNIST is not installed (scripts/setup.sh installs dataset-fashion-mnist)"
  echo "0 passed, 0 failed"
  exit 0
fi

# The tiny study, made long enough to be signalled in flight: 9 players, 9 epochs (~0.3 s each),
# 2000 training images (~0.2 s per training epoch).
signal_study "$T/s.toml"
X=("${SIGNAL_SETS[@]}" --set interactions.iters=5000 --set data.train_limit=2000)
run() { timeout 300 "$H" run "$T/s.toml" "${X[@]}" "$@"; }

expect 0 "" "the uninterrupted reference run" -- run --set output.path="$T/ref.h5" --quiet

# wait_for FILE PATTERN: up to 240 s until PATTERN appears in FILE (a run's stderr).
wait_for() {
  local i
  for ((i = 0; i < 2400; i++)); do
    grep -qE -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# signal_run NAME SIGNAL PATTERN [launcher...]: starts the run on NAME.h5, sends SIGNAL once
# PATTERN is in its stderr, and sets rc to its exit code.
signal_run() {
  local name=$1 sig=$2 pattern=$3
  shift 3
  "$@" "$H" run "$T/s.toml" "${X[@]}" --set output.path="$T/$name.h5" 2>"$T/$name.err" &
  local pid=$!
  wait_for "$T/$name.err" "$pattern" || bad "$name: no '$pattern' within 240 s"
  kill -"$sig" "$pid"
  rc=0
  wait "$pid" || rc=$?
}

# resumed NAME TEXT [launcher...]: --resume NAME.h5 to its end and compare with the reference.
resumed() {
  local name=$1 text=$2
  shift 2
  expect 0 "" "$text: --resume finishes it" -- "$@" "$H" run "$T/s.toml" "${X[@]}" \
    --set output.path="$T/$name.h5" --resume --quiet
  compare_h5 "$T/ref.h5" "$T/$name.h5" mpi_ranks subset_ranks epoch_groups >"$T/cmp" \
    && ok "$text, resumed: the same study as an uninterrupted run" || bad "$text, resumed: $(cat "$T/cmp")"
}

# SIGTERM during the analysis: the epoch in flight is finished, then exit 3.
signal_run term TERM "epoch 1:"
[[ $rc -eq 3 ]] && ok "SIGTERM in the analysis: exit code 3" || bad "SIGTERM in the analysis: exit $rc: $(tail -c 300 "$T/term.err")"
grep -q "stopped by SIGTERM (.* epochs written.*continue with \`harsanyi run .*--resume\` (exit code 3)" "$T/term.err" \
  && ok "the message names the signal and the resume command" || bad "stop message: $(tail -n 2 "$T/term.err")"
[[ -e "$T/term.h5.part" && ! -e "$T/term.h5" ]] && ok "a stopped run leaves only the resumable .part" \
  || bad "after SIGTERM: $(ls "$T")"
"$PY" -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r'); n = int(f.attrs['epochs_written'])
sys.exit(0 if 2 <= n < 9 and f['epochs/epoch'].shape[0] >= n else 1)" "$T/term.h5.part" \
  && ok "the .part is readable and holds the epochs written before the stop" || bad "the stopped .part"
resumed term "SIGTERM in the analysis"

# --overlap on (the solver of one epoch on a worker thread while the next epoch is prepared):
# SIGTERM in the analysis writes the epoch whose solver was running, and the resumed study (with
# the overlap too) is the same.
X_PLAIN=("${X[@]}")
X+=(--overlap on)
signal_run overlap TERM "epoch 1:"
[[ $rc -eq 3 ]] && ok "SIGTERM with --overlap on: exit code 3" || bad "SIGTERM with --overlap on: exit $rc: $(tail -c 300 "$T/overlap.err")"
resumed overlap "SIGTERM with --overlap on"
X=("${X_PLAIN[@]}")

# SIGINT (Ctrl-C) during training: stops after the checkpoint being written.
signal_run int INT "training epochs"
[[ $rc -eq 3 ]] && ok "SIGINT in training: exit code 3" || bad "SIGINT in training: exit $rc: $(tail -c 300 "$T/int.err")"
grep -q "stopped by SIGINT (0 of 9 epochs written" "$T/int.err" && ok "stopped in training, before any epoch's analysis" \
  || bad "SIGINT in training: $(tail -n 2 "$T/int.err")"
resumed int "SIGINT in training"

# A second signal while the first waits for its safe point ends the run at once (status 143),
# and the run announces the first. Long epochs (100 000 sgd iterations) leave the time to send
# the second signal after the first was received (two signals sent at once may merge into one).
"$H" run "$T/s.toml" "${X[@]}" --set interactions.iters=100000 --set output.path="$T/twice.h5" 2>"$T/twice.err" &
pid=$!
wait_for "$T/twice.err" "epoch 0:" || bad "twice: no epoch 0 within 240 s"
kill -TERM "$pid"
wait_for "$T/twice.err" "SIGTERM received: stopping after the epoch in flight" && ok "the first signal is announced" \
  || bad "no announcement of the first signal: $(tail -c 300 "$T/twice.err")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[[ $rc -eq 143 ]] && ok "a second SIGTERM ends the run at once" || bad "two SIGTERMs: exit $rc"
expect 0 "incomplete" "the study killed by the second signal is readable" -- "$H" report "$T/twice.h5.part"

# --until-epoch: stopped resumable with exit 0, three invocations in turn as a job array does.
expect 0 "stopped after epoch 2 as asked" "--until-epoch 2 stops after epoch 2, exit 0" -- \
  run --set output.path="$T/until.h5" --resume --until-epoch 2
[[ -e "$T/until.h5.part" && ! -e "$T/until.h5" ]] && ok "--until-epoch leaves the .part" || bad "--until-epoch: $(ls "$T")"
expect 0 "" "--until-epoch 5 continues it" -- run --set output.path="$T/until.h5" --resume --until-epoch 5 --quiet
resumed until "--until-epoch 2, 5, then the rest"

# Under mpirun (2 ranks): SIGUSR1 to mpirun is forwarded to every rank, which agree to stop.
# mpirun forwards the ranks' output in bursts, and on a fast machine (a GPU) the whole run can be
# over before "epoch 1:" reaches the test: each epoch waits 0.5 s after it is written.
export HARSANYI_FAULT_EPOCH_DELAY=0.5
signal_run mpi USR1 "epoch 1:" mpirun --timeout 300 -n 2 --oversubscribe --bind-to none
unset HARSANYI_FAULT_EPOCH_DELAY
[[ $rc -eq 3 ]] && ok "SIGUSR1 to mpirun: exit code 3" || bad "SIGUSR1 to mpirun: exit $rc: $(tail -c 400 "$T/mpi.err")"
grep -q "stopped by SIGUSR1" "$T/mpi.err" && ok "2 ranks stopped by SIGUSR1" || bad "mpi stop message: $(tail -n 3 "$T/mpi.err")"
resumed mpi "SIGUSR1 to mpirun (2 ranks)" timeout 300 mpirun -n 2 --oversubscribe --bind-to none

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
