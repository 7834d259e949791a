#!/usr/bin/env bash
# End-to-end checks of the harsanyi command line: help, exit codes, one-line errors, outputs that
# never look complete when a run fails or is killed. Usage: test_cli.sh path/to/harsanyi
set -u
H=${1:?usage: test_cli.sh path/to/harsanyi}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

expect 0 "extract" "top-level --help lists subcommands" -- "$H" --help
expect 0 "--trace-every" "extract --help documents options" -- "$H" extract --help
expect 0 "" "--version" -- "$H" --version
expect 0 "GPUs usable" "devices" -- "$H" devices
[[ $("$H" extract --help | grep -c -- '--') -ge 15 ]] && ok "extract --help lists all options" || bad "extract --help lists all options"
expect 2 "no such file" "missing input" -- "$H" extract --values "$T/nope.h5" --out "$T/o.h5"
[[ $(wc -l <"$T/stderr") -eq 1 ]] && ok "missing input: one-line error" || bad "missing input: one-line error ($(cat "$T/stderr"))"
expect nonzero "not expected" "unknown option is refused" -- "$H" extract --values x --out y --bogus 1
expect 0 "" "make-values" -- "$H" make-values --out "$T/v.h5" --n 8 --samples 3
expect 2 "exists; pass --force" "make-values refuses to overwrite" -- "$H" make-values --out "$T/v.h5"
expect 2 "mode must be" "bad --mode" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5" --mode xor
expect 2 "dtype must be" "bad --dtype" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5" --dtype f16
expect 2 "not available" "unknown solver" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5" --solver magic
[[ ! -e "$T/o.h5" && ! -e "$T/o.h5.part" ]] && ok "no output after refused runs" || bad "no output after refused runs"

expect 0 "mean loss" "extract and-or prints the per-order table" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5" --iters 2000 --trace-every 100
grep -qE "^ +8 " "$T/stdout" && ok "table has a row per order 0..n" || bad "table has a row per order 0..n"
expect 0 "mean loss" "report reads the file back" -- "$H" report "$T/o.h5"
expect 2 "tol must be" "optimal: bad --tol" -- "$H" extract --values "$T/v.h5" --out "$T/op.h5" --solver optimal --tol 0
expect 2 "max-iters must be" "optimal: bad --max-iters" -- "$H" extract --values "$T/v.h5" --out "$T/op.h5" --solver optimal --max-iters 0
[[ ! -e "$T/op.h5" && ! -e "$T/op.h5.part" ]] && ok "optimal: no output after refused runs" || bad "optimal: no output after refused runs"
expect 0 "mean loss" "optimal: extract runs" -- "$H" extract --values "$T/v.h5" --out "$T/op.h5" --solver optimal --tol 1e-2
"$PY" -c 'import h5py, sys; sys.exit(0 if "bound" in h5py.File(sys.argv[1], "r")["extraction"] else 1)' \
  "$T/op.h5" 2>/dev/null && ok "optimal: /extraction/bound present" || bad "optimal: /extraction/bound present"
expect 0 "warning: 3 of 3 samples did not reach" "optimal: non-convergence is a warning" -- "$H" extract --values "$T/v.h5" --out "$T/op2.h5" --solver optimal --max-iters 10
expect 2 "exists; pass --force" "existing output refused" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5"
expect 0 "" "--force overwrites" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5" --mode and --force --quiet
[[ ! -s "$T/stderr" ]] && ok "--quiet prints nothing on stderr" || bad "--quiet prints nothing on stderr"
expect 2 "not a harsanyi extraction file" "report on a values file" -- "$H" report "$T/v.h5"

# Write failures (a file size limit here) fail the run and leave nothing behind.
( trap '' XFSZ; ulimit -f 100; "$H" make-values --out "$T/fz.h5" --n 12 --samples 20 ) >"$T/stdout" 2>"$T/stderr"
rc=$?
if [[ $rc -eq 2 || $rc -eq 1 ]] && [[ ! -e "$T/fz.h5" && ! -e "$T/fz.h5.part" ]] && grep -q "file size limit" "$T/stderr"; then
  ok "write failure: exit $rc, clear message, no output"
else
  bad "write failure (exit $rc, files: $(ls "$T" | grep fz | tr '\n' ' ')): $(head -c 300 "$T/stderr")"
fi
( trap '' XFSZ; ulimit -f 16; "$H" extract --values "$T/v.h5" --out "$T/fx.h5" --iters 10 ) >"$T/stdout" 2>"$T/stderr"
rc=$?
[[ $rc -ne 0 && ! -e "$T/fx.h5" && ! -e "$T/fx.h5.part" ]] && ok "extract write failure: exit $rc, no output" \
  || bad "extract write failure (exit $rc): $(head -c 300 "$T/stderr")"

mkdir -p "$T/adir"
expect 2 "is a directory" "--out is a directory" -- "$H" extract --values "$T/v.h5" --out "$T/adir" --force
[[ ! -e "$T/adir.part" ]] && ok "no .part next to a directory output" || bad "no .part next to a directory output"
expect 2 "max-order must be" "make-values --max-order 0" -- "$H" make-values --out "$T/mo.h5" --max-order 0
expect 2 "max-order must be" "make-values --max-order -1" -- "$H" make-values --out "$T/mo.h5" --max-order -1
[[ ! -e "$T/mo.h5.part" ]] && ok "refused make-values leaves no .part" || bad "refused make-values leaves no .part"
expect 2 "is not a size" "bad HARSANYI_MEMORY_LIMIT" -- env HARSANYI_MEMORY_LIMIT=lots "$H" extract --values "$T/v.h5" --out "$T/m.h5"
expect 2 "use a smaller --batch" "--batch beyond memory" -- env HARSANYI_MEMORY_LIMIT=40K "$H" extract --values "$T/v.h5" --out "$T/m.h5" --batch 3

# A NaN from the model: one line naming sample and subset, no success-looking progress line.
"$PY" - "$T/nan.h5" <<'PY'
import sys, h5py, numpy as np
v = np.ones((4, 64)); v[2, 9] = np.nan
with h5py.File(sys.argv[1], "w") as f:
    f["/values"] = v
PY
expect 2 "/values\[2, 9\] is NaN" "NaN input named by sample and subset" -- "$H" extract --values "$T/nan.h5" --out "$T/n.h5" --batch 1
# (the only other stderr line allowed is the one-line note on the device used)
[[ $(grep -vc "^extract: no GPU\|^extract: using GPU" "$T/stderr") -eq 1 ]] && ok "NaN input: a one-line error" \
  || bad "NaN input: a one-line error ($(cat "$T/stderr"))"

# A killed run leaves no file that looks complete.
"$H" make-values --out "$T/big.h5" --n 12 --samples 64 >/dev/null 2>&1
"$H" extract --values "$T/big.h5" --out "$T/k.h5" --iters 200000 --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do [[ -e "$T/k.h5.part" ]] && break; sleep 0.1; done
sleep 0.5
if kill -0 $pid 2>/dev/null; then ok "extract still running when killed"; else bad "extract still running when killed"; fi
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[[ ! -e "$T/k.h5" ]] && ok "killed run leaves no complete-looking output" || bad "killed run leaves no complete-looking output"
expect 2 "truncated or damaged|not an HDF5" "report refuses the partial file" -- "$H" report "$T/k.h5.part"

# An input that another process has open for writing: the HDF5 file lock is named, not "damaged".
cp "$T/v.h5" "$T/locked.h5"
"$PY" -c "import h5py, sys, time; f = h5py.File(sys.argv[1], 'a'); time.sleep(6)" "$T/locked.h5" &
sleep 2
expect 2 "another process has the file open for writing" "a locked input is named as locked" -- \
  "$H" extract --values "$T/locked.h5" --out "$T/locked_out.h5"
wait

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
