# Shared by the end-to-end CLI tests (sourced after $T, the scratch directory, is set):
# pass/fail counters, ok/bad, and expect.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect CODE PATTERN NAME -- command...: the exit code (a number, or "nonzero") and a line of
# stdout or stderr matching the extended regex PATTERN (empty: no check).
expect() {
  local code=$1 pattern=$2 name=$3
  shift 4
  "$@" >"$T/stdout" 2>"$T/stderr"
  local rc=$?
  if [[ $code == nonzero && $rc -eq 0 ]] || [[ $code != nonzero && $rc -ne $code ]]; then
    bad "$name (exit $rc, wanted $code): $(tail -c 400 "$T/stderr")"
  elif [[ -n $pattern ]] && ! grep -qE -- "$pattern" "$T/stderr" "$T/stdout"; then
    bad "$name (no '$pattern' in output): $(tail -c 400 "$T/stderr")"
  else
    ok "$name"
  fi
}
