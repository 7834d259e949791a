#!/usr/bin/env bash
# The scaling driver (bench/scaling.py) on a tiny sweep (1 and 2 ranks, small sizes, every
# suite, strong and weak) writes a well-formed CSV (header, one row per suite, kernel, mode, size
# and rank count, consistent speedup and efficiency) and JSON (the context block's keys); the
# plot script (bench/plot_scaling.py) turns it into PNGs and Markdown efficiency tables;
# bench/run_scaling.py (the study suite with its original options) still works; bad usage is
# refused with exit code 2.
# Usage: test_scaling.sh path/to/build
set -u
BUILD=${1:?usage: test_scaling.sh path/to/build}
BUILD=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
T=$(mktemp -d)
trap 'jobs -p | xargs -r kill -9 2>/dev/null; rm -rf "$T"' EXIT
# shellcheck source=common.sh
source "$HERE/common.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
unset SLURM_JOB_ID  # mpirun here, even when the suite itself runs inside an allocation

if [[ ! -x $BUILD/bench/reduce_perf || ! -x $BUILD/bench/dist_moebius_perf ]]; then
  echo "SKIP: no perf binaries in $BUILD/bench (configured with HARSANYI_BUILD_BENCH=OFF?)"
  echo "0 passed, 0 failed"
  exit 0
fi
if ! "$PY" -c "import matplotlib" 2>/dev/null; then
  echo "SKIP: $PY has no matplotlib (scripts/setup.sh installs python3-matplotlib)"
  echo "0 passed, 0 failed"
  exit 0
fi
suites=dist_moebius,reduce,study
if [[ -e /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]]; then
  suites+=,run
else
  echo "note: Fashion-MNIST is not installed: the study and run suites are left out"
  suites=dist_moebius,reduce
fi

expect 0 "" "the tiny sweep ($suites; strong and weak; 1 and 2 ranks)" -- timeout 600 "$PY" "$SRC/bench/scaling.py" \
  --build "$BUILD" --suites "$suites" --ranks 1,2 --moebius-n 12 --reduce-n 10,12 --reduce-samples 4 \
  --samples 4 --per-rank 2 --n 4 --iters 200 --epochs 1 --reps 2 --warmup 1 --out-dir "$T/out" --name tiny
cp "$T/stdout" "$T/sweep.txt"
grep -q "^# harsanyi scaling" "$T/sweep.txt" && grep -q "^# reduce reproducible, weak scaling, n = 12" "$T/sweep.txt" \
  && ok "the driver prints a preamble and one table per curve" || bad "sweep tables: $(head -c 600 "$T/sweep.txt")"

"$PY" - "$T/out/tiny.csv" "$T/out/tiny.json" "$suites" <<'PYEOF' && ok "CSV and JSON are well-formed and consistent" || bad "CSV/JSON checks"
import csv, json, math, sys
csv_path, json_path, suites = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
rows = list(csv.DictReader(open(csv_path, newline="")))
header = open(csv_path).readline().strip().split(",")
want = ["suite", "kernel", "mode", "size_name", "size", "ranks", "hosts", "threads", "work",
        "time_s", "min_s", "max_s", "spread_pct", "reps", "speedup", "efficiency", "check", "command"]
assert header == want, header
kernels = {"dist_moebius": 2, "reduce": 2, "study": 2, "run": 1}
sizes = {"dist_moebius": 1, "reduce": 2, "study": 1, "run": 1}
expected = sum(kernels[s] * sizes[s] * 2 * 2 for s in suites)  # modes x rank counts
assert len(rows) == expected, (len(rows), expected)
for r in rows:
    assert r["suite"] in suites and r["mode"] in ("strong", "weak"), r
    assert r["ranks"] in ("1", "2") and r["check"] == "ok" and r["hosts"] == "1", r
    t, lo, hi = float(r["time_s"]), float(r["min_s"]), float(r["max_s"])
    assert 0 < lo <= t <= hi and math.isfinite(t), r
    e = float(r["efficiency"])
    if r["ranks"] == "1":
        assert abs(e - 100) < 1e-9, r
    if r["mode"] == "strong":
        s = float(r["speedup"])
        assert abs(e - 100 * s / int(r["ranks"])) < 1e-6 * max(1, e), r
    else:
        assert r["speedup"] == "", r
    if r["suite"] == "dist_moebius" and r["mode"] == "weak":
        assert int(r["work"]) == 2 ** (12 + (r["ranks"] == "2")), r  # n + log2 P
    assert ("mpirun -n " + r["ranks"]) in r["command"], r
doc = json.load(open(json_path))
ctx = doc["context"]
for key in ("schema_version", "date", "host", "hosts", "ranks", "ranks_per_host", "launcher",
            "harsanyi_version", "git_sha", "compiler", "mpi_library", "hdf5_version", "gpus",
            "cpu_model", "logical_cpus", "threads_per_rank", "command_line", "slurm"):
    assert key in ctx, key
assert ctx["ranks"] == [1, 2] and isinstance(ctx["gpus"], list) and ctx["schema_version"] == 1, ctx
assert ctx["harsanyi_version"] and ctx["git_sha"] and ctx["hosts"], ctx
assert [c["name"] for c in doc["columns"]] == want
assert len(doc["results"]) == len(rows)
PYEOF
ls "$T/out/logs/tiny/"dist_moebius_strong_n12_np2.{txt,json} >/dev/null 2>&1 \
  && ok "every step's output and JSON are kept under logs/" || bad "logs: $(ls -R "$T/out")"

expect 0 "### reduce, strong scaling" "the plot script makes PNGs and efficiency tables" -- \
  "$PY" "$SRC/bench/plot_scaling.py" "$T/out/tiny.json"
magic_ok=1
for s in ${suites//,/ }; do
  png=$T/out/tiny_$s.png
  [[ -s $png && $(head -c 8 "$png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] || magic_ok=0
done
((magic_ok)) && ok "one valid PNG per suite (magic bytes)" || bad "PNGs: $(ls "$T/out")"
grep -q "^### dist_moebius, strong scaling" "$T/out/tiny_efficiency.md" 2>/dev/null \
  && grep -qE "^\| 2 \| 1 \| .* %" "$T/out/tiny_efficiency.md" && ok "the Markdown efficiency tables are written" || bad "efficiency tables: $(head -c 400 "$T/out/tiny_efficiency.md")"
expect 0 "### reduce, weak scaling" "the plot script reads the CSV too" -- \
  "$PY" "$SRC/bench/plot_scaling.py" "$T/out/tiny.csv" --out-dir "$T/csvplots"

if [[ $suites == *study* ]]; then
  expect 0 "study total, weak scaling" "bench/run_scaling.py keeps its options" -- timeout 300 "$PY" "$SRC/bench/run_scaling.py" \
    --bench "$BUILD/bench/study_perf" --ranks 1,2 --samples 4 --per-rank 2 --n 4 --json "$T/rs.json"
  "$PY" -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if len(d['results']) == 8 else 1)" "$T/rs.json" \
    && ok "run_scaling.py writes its JSON" || bad "run_scaling.py JSON"
fi

expect 2 "unknown suite" "an unknown suite is refused" -- "$PY" "$SRC/bench/scaling.py" --build "$BUILD" --suites nope
expect 2 "is not built" "a missing perf binary is named with the build command" -- "$PY" "$SRC/bench/scaling.py" \
  --build "$T/nowhere" --suites reduce --ranks 1 --out-dir "$T/x"
expect 2 "must contain \{P\}" "a custom launcher without {P} is refused" -- "$PY" "$SRC/bench/scaling.py" \
  --build "$BUILD" --suites reduce --ranks 1 --launcher mpiexec --out-dir "$T/x"
expect nonzero "does not exist" "plot_scaling.py on a missing file" -- "$PY" "$SRC/bench/plot_scaling.py" "$T/none.json"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
