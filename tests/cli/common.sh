# Shared by the end-to-end CLI tests (sourced after $T, the scratch directory, is set):
# pass/fail counters, ok/bad, and expect. PY is the Python with h5py and numpy: Debian's
# /usr/bin/python3 unless HARSANYI_TEST_PYTHON names another (bench/gpu/run_all.sh does).
PY=${HARSANYI_TEST_PYTHON:-/usr/bin/python3}
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

# compare_h5 A B [ATTR...]: every dataset equal (bitwise, NaN equal to NaN) except /timing/*; the
# same root attributes except the creation time, the elapsed time, the git hash and the ATTRs
# given; the config compared without its output path and runtime.solver_device (where the solver
# runs does not change the study). Prints "differ: ..." (none when equal).
compare_h5() {
  "$PY" - "$@" <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
names = []
a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
other = []
b.visit(lambda n: other.append(n) if isinstance(b[n], h5py.Dataset) else None)
bad = sorted(set(names) ^ set(other))
for n in names:
    if n.startswith("timing") or n not in b: continue
    x, y = a[n][()], b[n][()]
    if x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind == "f"):
        bad.append(n)
skip = {"created_utc", "elapsed_s", "git_sha"} | set(sys.argv[3:])
def config(f):  # the resolved config, but for the output path and the solver's device
    return [l for l in str(f.attrs["config"]).splitlines()
            if not l.startswith(("path =", "out =", "solver_device ="))]
if config(a) != config(b): bad.append("@config")
for k in set(a.attrs) | set(b.attrs):
    if k in skip or k == "config": continue
    if k not in a.attrs or k not in b.attrs or str(a.attrs[k]) != str(b.attrs[k]): bad.append("@" + k)
print("differ:", " ".join(bad) if bad else "none")
sys.exit(1 if bad else 0)
PYEOF
}

# tiny_study FILE: the tiny Fashion-MNIST study of the CLI tests (4 players on a 2x2 grid, 3 train
# + 3 test samples, epochs 0..3). It ends inside [interactions], so a caller may append more
# [interactions] keys, then its own [runtime] section.
tiny_study() {
  cat >"$1" <<'TOML'
[data]
train_limit = 300
test_limit = 300
[model]
arch = "lenet"
[train]
epochs = 3
batch = 32
lr = 0.05
[players]
grid = [2, 2]
[samples]
train = 3
test = 3
[interactions]
iters = 400
lr = 1e-4
TOML
}

# signal_study FILE: the tiny study made long enough to be signalled in flight (9 players, epochs
# 0..8, one thread for training and for the analysis, so that its pace barely depends on what
# else loads the machine); its --set options go to the array SIGNAL_SETS.
signal_study() {
  tiny_study "$1"
  cat >>"$1" <<'TOML'
[runtime]
threads = 1
forward_batch = 64
TOML
  SIGNAL_SETS=(--set train.epochs=8 --set train.threads=1 --set 'players.grid=[3,3]' --no-report)
}
