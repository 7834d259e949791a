#!/usr/bin/env bash
# End-to-end checks of the harsanyi command line: help, exit codes, one-line errors, outputs that
# never look complete when a run fails or is killed. Usage: test_cli.sh path/to/harsanyi
set -u
H=${1:?usage: test_cli.sh path/to/harsanyi}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect CODE PATTERN NAME -- command...: exit code and a stderr line matching PATTERN
expect() {
  local code=$1 pattern=$2 name=$3
  shift 4
  "$@" >"$T/stdout" 2>"$T/stderr"
  local rc=$?
  if [[ $code == nonzero && $rc -eq 0 ]] || [[ $code != nonzero && $rc -ne $code ]]; then
    bad "$name (exit $rc, wanted $code): $(head -c 300 "$T/stderr")"
  elif [[ -n $pattern ]] && ! grep -qE -- "$pattern" "$T/stderr" "$T/stdout"; then
    bad "$name (no '$pattern' in output): $(head -c 300 "$T/stderr")"
  else
    ok "$name"
  fi
}

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
expect 2 "exists; pass --force" "existing output refused" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5"
expect 0 "" "--force overwrites" -- "$H" extract --values "$T/v.h5" --out "$T/o.h5" --mode and --force --quiet
[[ ! -s "$T/stderr" ]] && ok "--quiet prints nothing on stderr" || bad "--quiet prints nothing on stderr"
expect 2 "not a harsanyi extraction file" "report on a values file" -- "$H" report "$T/v.h5"

# A killed run leaves no file that looks complete.
"$H" make-values --out "$T/big.h5" --n 12 --samples 64 >/dev/null 2>&1
"$H" extract --values "$T/big.h5" --out "$T/k.h5" --iters 200000 --threads 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 50); do [[ -e "$T/k.h5.part" ]] && break; sleep 0.1; done
sleep 0.5
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[[ ! -e "$T/k.h5" ]] && ok "killed run leaves no complete-looking output" || bad "killed run leaves no complete-looking output"
expect 2 "truncated or damaged|not an HDF5" "report refuses the partial file" -- "$H" report "$T/k.h5.part"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
