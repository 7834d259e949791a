#!/usr/bin/env bash
# harsanyi under mpirun: `extract` and `run` with 1, 2 and 4 ranks write the same files as a
# plain one-process run (bitwise, every dataset), with the subsets of a sample split over 2 and 4
# ranks too; a bad --subset-ranks and a rank that fails end the job with a message and a
# non-zero exit within seconds; a distributed run killed under mpirun resumes to the same file.
# Usage: test_mpi.sh path/to/harsanyi
set -u
H=${1:?usage: test_mpi.sh path/to/harsanyi}
T=$(mktemp -d)
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# mpirun NP ARGS...: harsanyi on NP ranks of this machine (more ranks than cores allowed).
mpi() {
  local np=$1
  shift
  timeout 600 mpirun -n "$np" --oversubscribe --bind-to none -x HARSANYI_FAULT_KILL_AFTER "$H" "$@"
}
# Attributes that say how a file was computed, not what it holds.
HOW="mpi_ranks subset_ranks epoch_groups"

expect 0 "rank +3 on .*CPU" "devices under mpirun lists every rank" -- mpi 4 devices

# --- extract: many samples, split by rank ----------------------------------------------------
"$H" make-values --out "$T/v8.h5" --n 8 --samples 13 --terms 4 --noise 0.01 --seed 3 >/dev/null 2>&1
X="--iters 300 --trace-every 50 --quiet --force"
"$H" extract --values "$T/v8.h5" --out "$T/e.h5" $X >/dev/null 2>&1 || bad "serial extract"
for np in 1 2 4; do
  expect 0 "" "extract on $np rank(s)" -- mpi "$np" extract --values "$T/v8.h5" --out "$T/e$np.h5" $X
  compare_h5 "$T/e.h5" "$T/e$np.h5" $HOW >"$T/cmp" && ok "extract on $np rank(s) = one process, bitwise" \
    || bad "extract on $np rank(s): $(cat "$T/cmp")"
done
"$H" extract --values "$T/v8.h5" --out "$T/o.h5" --solver optimal --max-iters 3000 $X >/dev/null 2>&1
mpi 4 extract --values "$T/v8.h5" --out "$T/o4.h5" --solver optimal --max-iters 3000 $X >/dev/null 2>&1
compare_h5 "$T/o.h5" "$T/o4.h5" $HOW >"$T/cmp" && ok "optimal solver on 4 ranks = one process" \
  || bad "optimal solver on 4 ranks: $(cat "$T/cmp")"

# --- extract: one sample of n = 16, its subsets split over 2 and 4 ranks -------------------
"$H" make-values --out "$T/v16.h5" --n 16 --samples 1 --terms 6 --noise 0.01 --seed 4 >/dev/null 2>&1
for mode in and and-or; do
  Y="--mode $mode --iters 20 --quiet --force"
  "$H" extract --values "$T/v16.h5" --out "$T/s_$mode.h5" $Y >/dev/null 2>&1 || bad "serial n=16 $mode"
  for k in 2 4; do
    for how in partner alltoall; do
      [[ $mode == and-or && $how == alltoall ]] && continue  # and-or gathers the sample
      expect 0 "" "n=16 $mode, --subset-ranks $k ($how)" -- \
        mpi "$k" extract --values "$T/v16.h5" --out "$T/s_${mode}_$k$how.h5" --subset-ranks "$k" --exchange "$how" $Y
      compare_h5 "$T/s_$mode.h5" "$T/s_${mode}_$k$how.h5" $HOW >"$T/cmp" \
        && ok "n=16 $mode, subsets over $k ranks ($how) = one process, bitwise" \
        || bad "n=16 $mode, $k subset ranks ($how): $(cat "$T/cmp")"
    done
  done
done
# Ranks launched with different environments (MPMD) still make the same collective calls.
expect 0 "" "ranks with different OMP_NUM_THREADS do not hang" -- timeout 120 mpirun --oversubscribe \
  --bind-to none -n 1 env OMP_NUM_THREADS=1 "$H" extract --values "$T/v8.h5" --out "$T/mpmd.h5" $X \
  : -n 1 "$H" extract --values "$T/v8.h5" --out "$T/mpmd.h5" $X
expect nonzero "subset-ranks 3 is not a power of two" "a bad --subset-ranks is refused" -- \
  mpi 2 extract --values "$T/v8.h5" --out "$T/bad.h5" --subset-ranks 3 --force
[[ ! -e "$T/bad.h5" ]] && ok "no output after a refused distributed run" || bad "output after a refused run"

# --- a rank fails: a NaN only the last rank reads -----------------------------------------
"$PY" - "$T/v8.h5" "$T/nan.h5" <<'PYEOF'
import sys, h5py, numpy as np
v = h5py.File(sys.argv[1], "r")["/values"][()]
v[12, 5] = np.nan  # sample 12: the last rank's
h5py.File(sys.argv[2], "w").create_dataset("/values", data=v)
PYEOF
start=$(date +%s)
expect nonzero "rank 3 of 4.*values\[12, 5\] is NaN" "a failing rank ends the job with its message" -- \
  mpi 4 extract --values "$T/nan.h5" --out "$T/nan_out.h5" --force --batch 1
elapsed=$(($(date +%s) - start))
[[ $elapsed -lt 60 ]] && ok "the failed job ended in ${elapsed} s" || bad "the failed job took ${elapsed} s"
[[ ! -e "$T/nan_out.h5" && ! -e "$T/nan_out.h5.part" ]] && ok "no output (nor .part) after the failure of rank 3" \
  || bad "output after a failure: $(ls "$T" | grep nan_out)"

# --- run: a tiny study on 1, 2, 4 ranks ------------------------------------------------------
if [[ ! -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  echo "SKIP run checks: Fashion-MNIST is not installed (scripts/setup.sh installs it)"
else
  tiny_study "$T/tiny.toml"
  cat >>"$T/tiny.toml" <<'TOML'
store = ["values", "interactions"]
[runtime]
forward_batch = 4
TOML
  "$H" run "$T/tiny.toml" --set output.path="$T/r.h5" --quiet --no-report >/dev/null 2>&1 || bad "serial run"
  for np in 1 2 4; do
    expect 0 "" "run on $np rank(s)" -- mpi "$np" run "$T/tiny.toml" --set output.path="$T/r$np.h5" --quiet --no-report
    compare_h5 "$T/r.h5" "$T/r$np.h5" $HOW >"$T/cmp" && ok "study on $np rank(s) = one process, bitwise" \
      || bad "study on $np rank(s): $(cat "$T/cmp")"
  done
  # mpirun's default binding (one core per rank): rank 0 trains with train.threads all the same.
  expect 0 "" "run on 2 ranks bound to cores" -- timeout 600 mpirun -n 2 --oversubscribe "$H" run "$T/tiny.toml" \
    --set output.path="$T/rb.h5" --quiet --no-report
  compare_h5 "$T/r.h5" "$T/rb.h5" $HOW >"$T/cmp" && ok "study on 2 bound ranks = one process, bitwise" \
    || bad "study on 2 bound ranks: $(cat "$T/cmp")"
  expect 0 "" "run with the masked inputs of each sample over 2 ranks" -- \
    mpi 4 run "$T/tiny.toml" --set output.path="$T/rk.h5" --subset-ranks 2 --quiet --no-report
  compare_h5 "$T/r.h5" "$T/rk.h5" $HOW >"$T/cmp" && ok "study with 2 subset ranks = one process, bitwise" \
    || bad "study with 2 subset ranks: $(cat "$T/cmp")"
  for eg in 2 4; do
    expect 0 "" "run with $eg epoch groups on 4 ranks" -- \
      mpi 4 run "$T/tiny.toml" --set output.path="$T/eg$eg.h5" --epoch-groups "$eg" --quiet --no-report
    compare_h5 "$T/r.h5" "$T/eg$eg.h5" $HOW >"$T/cmp" && ok "study with $eg epoch groups = one process, bitwise" \
      || bad "study with $eg epoch groups: $(cat "$T/cmp")"
  done
  # --overlap on: each wave's solver on a worker thread while the next wave is prepared.
  expect 0 "" "run with 2 epoch groups and --overlap on" -- \
    mpi 4 run "$T/tiny.toml" --set output.path="$T/ov.h5" --epoch-groups 2 --overlap on --quiet --no-report
  compare_h5 "$T/r.h5" "$T/ov.h5" $HOW >"$T/cmp" && ok "study with --overlap on, 2 epoch groups = one process, bitwise" \
    || bad "study with --overlap on: $(cat "$T/cmp")"
  "$PY" -c "import h5py, sys; a = h5py.File(sys.argv[1], 'r').attrs
sys.exit(0 if (a['mpi_ranks'], a['epoch_groups'], a['subset_ranks']) == (4, 2, 1) else 1)" "$T/eg2.h5" \
    && ok "the study records mpi_ranks, epoch_groups and subset_ranks" || bad "layout attributes"
  expect nonzero "epoch-groups 3 does not divide the 4 ranks" "a bad --epoch-groups is refused" -- \
    mpi 4 run "$T/tiny.toml" --set output.path="$T/eg3.h5" --epoch-groups 3 --quiet
  # Killed under mpirun after epoch 2 (in a wave of two epochs), resumed with other groups.
  HARSANYI_FAULT_KILL_AFTER=epoch:2 mpi 4 run "$T/tiny.toml" --set output.path="$T/w.h5" --epoch-groups 2 --quiet --no-report >/dev/null 2>&1
  expect 0 "" "a run with epoch groups killed and resumed" -- \
    mpi 2 run "$T/tiny.toml" --set output.path="$T/w.h5" --resume --epoch-groups 2 --quiet --no-report
  compare_h5 "$T/r.h5" "$T/w.h5" $HOW >"$T/cmp" && ok "epoch groups, killed and resumed: the same study" \
    || bad "epoch groups, killed and resumed: $(cat "$T/cmp")"
  # Killed under mpirun after epoch 1's analysis, and after training's checkpoint 2; resumed.
  HARSANYI_FAULT_KILL_AFTER=epoch:1 mpi 2 run "$T/tiny.toml" --set output.path="$T/k.h5" --quiet --no-report >/dev/null 2>&1
  [[ -e "$T/k.h5.part" && ! -e "$T/k.h5" ]] && ok "a killed distributed run leaves only the .part" || bad "killed run left $(ls "$T")"
  expect 0 "" "the killed distributed run resumes" -- \
    mpi 2 run "$T/tiny.toml" --set output.path="$T/k.h5" --resume --quiet --no-report
  compare_h5 "$T/r.h5" "$T/k.h5" $HOW >"$T/cmp" && ok "killed and resumed under mpirun: the same study" \
    || bad "killed and resumed under mpirun: $(cat "$T/cmp")"
  HARSANYI_FAULT_KILL_AFTER=checkpoint:2 mpi 4 run "$T/tiny.toml" --set output.path="$T/c.h5" --quiet --no-report >/dev/null 2>&1
  expect 0 "" "killed in training, resumed on another rank count" -- \
    mpi 2 run "$T/tiny.toml" --set output.path="$T/c.h5" --resume --quiet --no-report
  compare_h5 "$T/r.h5" "$T/c.h5" $HOW >"$T/cmp" && ok "killed in training and resumed: the same study" \
    || bad "killed in training and resumed: $(cat "$T/cmp")"
  # One rank SIGKILLed at a random moment from outside (mpirun then ends the others); resumed.
  mpi 2 run "$T/tiny.toml" --set output.path="$T/x.h5" --quiet --no-report >/dev/null 2>&1 &
  job=$!
  sleep "$("$PY" -c 'import random; print(round(random.uniform(0.5, 3.0), 2))')"
  victim=$(pgrep -n -f "output.path=$T/x.h5")
  [[ -n $victim ]] && kill -9 "$victim" 2>/dev/null
  wait "$job" 2>/dev/null
  if [[ -e "$T/x.h5" ]]; then
    compare_h5 "$T/r.h5" "$T/x.h5" $HOW >"$T/cmp" && ok "one rank killed at a random time (after the end)" \
      || bad "random kill of a rank: $(cat "$T/cmp")"
  else
    mpi 2 run "$T/tiny.toml" --set output.path="$T/x.h5" --resume --quiet --no-report >"$T/stdout" 2>"$T/stderr" \
      || { grep -q "damaged: delete" "$T/stderr" && rm "$T/x.h5.part" \
        && mpi 2 run "$T/tiny.toml" --set output.path="$T/x.h5" --resume --quiet --no-report >/dev/null 2>&1; }
    compare_h5 "$T/r.h5" "$T/x.h5" $HOW >"$T/cmp" && ok "one rank killed at a random time, resumed: the same study" \
      || bad "random kill of a rank, resumed: $(cat "$T/cmp") $(tail -c 300 "$T/stderr")"
  fi
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
