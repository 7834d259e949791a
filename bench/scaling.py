#!/usr/bin/python3
"""Scaling driver: runs the MPI perf binaries and `harsanyi run` over rank counts and sizes.

For every suite, mode (strong / weak), size and rank count P it launches one job step (`srun
--mpi=pmix` inside a Slurm allocation, else `mpirun`; `--launcher` overrides), reads the
binary's JSON (or times `harsanyi run` itself), and writes one CSV row per kernel, a JSON twin
with a `context` block (versions, git hash, hosts, ranks, GPUs, date), and the raw output of
every step. bench/plot_scaling.py turns the JSON into PNG curves and efficiency tables;
docs/PERFORMANCE.md defines every figure.

Suites (`--suites`, comma-separated):
  dist_moebius  dist_moebius_perf: one vector of 2^n doubles spread over the P ranks; kernels
                partner, alltoall. Size n (--moebius-n); weak: n + log2(P) (the vector grows
                with P, 2^n per rank fixed; P a power of two).
  reduce        reduce_perf: the sum of S vectors of 2^n doubles over the ranks; kernels
                reproducible, plain. Size n (--reduce-n), S = --reduce-samples; weak: S·P.
  study         study_perf: a whole study on --study-config; kernels total, analysis. Size S
                samples (--samples); weak: --per-rank samples per rank, S = per_rank·P.
  run           `harsanyi run` on --study-config, timed by this driver (wall time of the launch,
                median of --reps); kernel wall. Sizes as study.

Figures (docs/PERFORMANCE.md): time = median over the repetitions, spread = (max − min) /
median; strong: speedup S(P) = T(P0)/T(P), efficiency = S(P)·P0/P; weak: efficiency =
T(P0)/T(P), with P0 the smallest rank count of the sweep (normally 1).

Exit code: 0 every run passed its check, 1 a check failed, 2 bad usage or a run that failed.

Examples:
  bench/scaling.py --build build --suites dist_moebius,reduce,run --ranks 1,2 --out-dir out
  sbatch -N 4 --ntasks-per-node=8 slurm/scaling_strong.sbatch      # calls this driver
"""
import argparse
import csv
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SCHEMA_VERSION = 1
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SUITES = ("dist_moebius", "reduce", "study", "run")
CSV_COLUMNS = ["suite", "kernel", "mode", "size_name", "size", "ranks", "hosts", "threads",
               "work", "time_s", "min_s", "max_s", "spread_pct", "reps", "speedup",
               "efficiency", "check", "command"]
UNITS = {"time_s": "s", "min_s": "s", "max_s": "s", "spread_pct": "%", "speedup": "x",
         "efficiency": "%"}


class RunError(Exception):
    """A launched step failed (its command and the tail of its output are in the message)."""


def int_list(text):
    return [int(x) for x in str(text).split(",") if x.strip()]


def capture(cmd, timeout=60):
    """First line of a command's output, or None when it is missing or fails."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0].strip() if out.returncode == 0 and text else None


# --- launching --------------------------------------------------------------------------------

class Launcher:
    """Builds the command that starts P ranks: srun (inside Slurm), mpirun, or a template."""

    def __init__(self, spec, extra):
        if spec == "auto":
            spec = "srun" if os.environ.get("SLURM_JOB_ID") and shutil.which("srun") else "mpirun"
        self.spec = spec
        self.extra = shlex.split(extra or "")

    def prefix(self, ranks):
        if self.spec == "srun":
            # One core per rank, the step's CPUs bound (a benchmark wants stable placement).
            return ["srun", "--mpi=pmix", f"--ntasks={ranks}", "--cpu-bind=cores"] + self.extra
        if self.spec == "mpirun":
            return ["mpirun", "-n", str(ranks), "--bind-to", "core", "--oversubscribe"] + self.extra
        if self.spec == "none":  # one process, no launcher (ranks must be 1)
            if ranks != 1:
                raise RunError("--launcher none runs one process; use --ranks 1")
            return list(self.extra)
        if "{P}" not in self.spec:
            raise RunError(f"--launcher '{self.spec}': a custom launcher must contain {{P}} "
                           "(the rank count), e.g. 'mpiexec -n {P}'")
        return shlex.split(self.spec.replace("{P}", str(ranks))) + self.extra

    def describe(self):
        return " ".join(self.prefix("{P}")) if self.spec in ("srun", "mpirun") else self.spec


def run_env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    if os.geteuid() == 0:  # OpenMPI refuses root without these (CI containers run as root)
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def launch(cmd, log_path, threads, timeout):
    """Runs one step, its output saved to log_path; returns (exit code, seconds)."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        log.write("# " + " ".join(shlex.quote(c) for c in cmd) + "\n")
        log.flush()
        try:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                  env=run_env(threads), timeout=timeout)
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = 124
        except OSError as e:
            raise RunError(f"cannot start {cmd[0]}: {e} (is it installed and on PATH?)")
    return rc, time.perf_counter() - start


def log_tail(path, chars=1500):
    with open(path, errors="replace") as f:
        return f.read()[-chars:]


# --- suites -----------------------------------------------------------------------------------

def perf_json(a, binary, args, ranks, tag):
    """Runs a perf binary on `ranks` ranks with -j; returns (result rows, context, command)."""
    path = os.path.join(a.bench_dir, binary)
    if not os.access(path, os.X_OK):
        raise RunError(f"{path} is not built: ninja -C {a.build} {binary} (or pass --build)")
    out = os.path.join(a.log_dir, f"{tag}.json")  # kept beside the step's output
    cmd = a.launcher.prefix(ranks) + [path] + args + ["-t", str(a.threads), "-j", out]
    log = os.path.join(a.log_dir, f"{tag}.txt")
    rc, _ = launch(cmd, log, a.threads, a.timeout)
    if rc not in (0, 1) or not os.path.exists(out):
        raise RunError(f"{' '.join(cmd)} failed (exit {rc}); its output ({log}):\n{log_tail(log)}")
    with open(out) as f:
        result = json.load(f)
    return result["results"], result.get("context", {}), " ".join(shlex.quote(c) for c in cmd)


def timing_row(timings, kernel):
    t = timings[kernel]
    return t["median_s"], t["min_s"], t["max_s"], len(t.get("times_s", [])) or 1


def suite_dist_moebius(a, mode, size, ranks, workdir):
    n = size + int(round(math.log2(ranks))) if mode == "weak" else size
    if mode == "weak" and 2 ** int(round(math.log2(ranks))) != ranks:
        raise RunError(f"dist_moebius weak scaling needs power-of-two rank counts, not {ranks}")
    rows, ctx, cmd = perf_json(a, "dist_moebius_perf",
                               ["-b", str(n), "-e", str(n), "-d", "f64", "-s", "1",
                                "-n", str(a.reps), "-w", str(a.warmup)],
                               ranks, f"dist_moebius_{mode}_n{size}_np{ranks}")
    out = []
    for r in rows:
        for kernel in ("partner", "alltoall"):
            med, lo, hi, reps = timing_row(r["timings"], kernel)
            out.append(dict(kernel=kernel, size_name="n", work=2 ** n, time_s=med, min_s=lo,
                            max_s=hi, reps=reps, check=r.get("check", "?"), command=cmd,
                            detail={"n": n, "bytes": r.get("bytes")}))
    return out, ctx


def suite_reduce(a, mode, size, ranks, workdir):
    samples = a.reduce_samples * (ranks if mode == "weak" else 1)
    rows, ctx, cmd = perf_json(a, "reduce_perf",
                               ["-b", str(size), "-e", str(size), "-d", "f64",
                                "-s", str(samples), "-n", str(a.reps), "-w", str(a.warmup)],
                               ranks, f"reduce_{mode}_n{size}_np{ranks}")
    out = []
    for r in rows:
        for kernel in ("reproducible", "plain"):
            med, lo, hi, reps = timing_row(r["timings"], kernel)
            out.append(dict(kernel=kernel, size_name="n", work=samples * 2 ** size, time_s=med,
                            min_s=lo, max_s=hi, reps=reps, check=r.get("check", "?"),
                            command=cmd, detail={"samples": samples, "bytes": r.get("bytes")}))
    return out, ctx


def study_samples(a, mode, size, ranks):
    return size * ranks if mode == "weak" else size


def suite_study(a, mode, size, ranks, workdir):
    samples = study_samples(a, mode, size, ranks)
    args = ["-b", str(a.n), "-e", str(a.n), "-d", "f64", "-s", str(samples), "-n", str(a.reps),
            "-w", "0", "--config", a.study_config]
    if a.iters:
        args += ["--iters", str(a.iters)]
    if a.epochs is not None:
        args += ["--epochs", str(a.epochs)]
    rows, ctx, cmd = perf_json(a, "study_perf", args, ranks,
                               f"study_{mode}_s{size}_np{ranks}")
    out = []
    for r in rows:
        med, lo, hi, reps = timing_row(r["timings"], "study")
        analysis = r["eval"] + r["forward"] + r["solver"] + r["write"]
        detail = {k: r.get(k) for k in ("train", "eval", "forward", "solver", "write", "epochs")}
        detail["samples"] = samples
        out.append(dict(kernel="total", size_name="samples", work=samples, time_s=med, min_s=lo,
                        max_s=hi, reps=reps, check=r.get("check", "?"), command=cmd,
                        detail=detail))
        # The distributed part alone (training runs on rank 0): one value, from the median run.
        out.append(dict(kernel="analysis", size_name="samples", work=samples, time_s=analysis,
                        min_s=analysis, max_s=analysis, reps=1, check=r.get("check", "?"),
                        command=cmd, detail=detail))
    return out, ctx


def suite_run(a, mode, size, ranks, workdir):
    if not os.access(a.harsanyi, os.X_OK):
        raise RunError(f"{a.harsanyi} is not built: ninja -C {a.build} harsanyi (or --harsanyi)")
    samples = study_samples(a, mode, size, ranks)
    out_h5 = os.path.join(workdir, f"run_{mode}_s{size}_np{ranks}.h5")
    sets = ["--set", f"samples.train={samples // 2}", "--set",
            f"samples.test={samples - samples // 2}", "--set", f"output.path={out_h5}",
            "--set", f"runtime.threads={a.threads}"]
    if a.iters:
        sets += ["--set", f"interactions.iters={a.iters}"]
    if a.epochs is not None:
        sets += ["--set", f"train.epochs={a.epochs}"]
    cmd = a.launcher.prefix(ranks) + [a.harsanyi, "run", a.study_config] + sets + [
        "--force", "--quiet", "--no-report"]
    times, check = [], "ok"
    for rep in range(a.warmup + a.reps):
        log = os.path.join(a.log_dir, f"run_{mode}_s{size}_np{ranks}_rep{rep}.txt")
        rc, seconds = launch(cmd, log, a.threads, a.timeout)
        if rc != 0:
            raise RunError(f"{' '.join(cmd)} failed (exit {rc}); its output ({log}):\n"
                           f"{log_tail(log)}")
        if not os.path.exists(out_h5):
            check = "FAIL"
        if rep >= a.warmup:
            times.append(seconds)
    med = statistics.median(times)
    return [dict(kernel="wall", size_name="samples", work=samples, time_s=med, min_s=min(times),
                 max_s=max(times), reps=len(times), check=check,
                 command=" ".join(shlex.quote(c) for c in cmd),
                 detail={"samples": samples})], {}


SUITE_FUNCS = {"dist_moebius": suite_dist_moebius, "reduce": suite_reduce, "study": suite_study,
               "run": suite_run}


def suite_sizes(a, suite, mode):
    if suite == "dist_moebius":
        return a.moebius_n
    if suite == "reduce":
        return a.reduce_n
    return a.per_rank if mode == "weak" else a.samples


# --- derived figures --------------------------------------------------------------------------

def derive(rows):
    """speedup and efficiency of every row against the smallest rank count of its curve."""
    curves = {}
    for r in rows:
        curves.setdefault((r["suite"], r["kernel"], r["mode"], r["size"]), []).append(r)
    for curve in curves.values():
        base = min(curve, key=lambda r: r["ranks"])
        for r in curve:
            ratio = base["time_s"] / r["time_s"] if r["time_s"] > 0 else float("nan")
            if r["mode"] == "strong":
                r["speedup"] = ratio
                r["efficiency"] = 100.0 * ratio * base["ranks"] / r["ranks"]
            else:
                r["speedup"] = None
                r["efficiency"] = 100.0 * ratio
            r["spread_pct"] = (100.0 * (r["max_s"] - r["min_s"]) / r["time_s"]
                               if r["time_s"] > 0 else float("nan"))


# --- context ----------------------------------------------------------------------------------

def hosts_of(a, ranks):
    """Host of every rank of a `ranks`-rank step (one launch of `hostname`)."""
    try:
        cmd = a.launcher.prefix(ranks) + ["hostname"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=run_env(1), timeout=120)
        names = [l.strip() for l in out.stdout.splitlines() if l.strip()]
        if out.returncode == 0 and names:
            return names
    except (OSError, subprocess.SubprocessError, RunError):
        pass
    return [socket.gethostname()]


def gpus():
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        return []
    return [l.strip() for l in out.stdout.splitlines() if l.strip()] if out.returncode == 0 else []


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_context(a, perf_ctx, argv):
    git = capture(["git", "-C", ROOT, "rev-parse", "HEAD"])
    dirty = capture(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"])
    # Where the ranks of each rank count ran (one launch of `hostname` per count).
    placement = {}
    for p in a.ranks:
        per_host = {}
        for h in hosts_of(a, p):
            per_host[h] = per_host.get(h, 0) + 1
        placement[str(p)] = per_host
    slurm = {k: os.environ[k] for k in ("SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_NNODES",
                                         "SLURM_NTASKS", "SLURM_CPUS_PER_TASK",
                                         "SLURM_JOB_PARTITION", "SLURM_CLUSTER_NAME")
             if k in os.environ}
    return {
        "schema_version": SCHEMA_VERSION,
        "benchmark": "scaling",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command_line": " ".join(shlex.quote(x) for x in argv),
        "host": socket.gethostname(),
        "hosts": sorted({h for per_host in placement.values() for h in per_host}),
        "ranks_per_host": placement,
        "ranks": a.ranks,
        "threads_per_rank": a.threads,
        "launcher": a.launcher.describe(),
        "harsanyi_version": capture([a.harsanyi, "--version"]) if os.access(a.harsanyi, os.X_OK)
        else None,
        "git_sha": git or perf_ctx.get("git_sha"),
        "git_dirty": bool(dirty) if git else None,
        "build_dir": os.path.abspath(a.build),
        "build_type": perf_ctx.get("build_type"),
        "kernel_flags": perf_ctx.get("kernel_flags"),
        "cuda_built": perf_ctx.get("cuda_built"),
        "compiler": perf_ctx.get("compiler") or capture(["c++", "--version"]),
        "openmp": perf_ctx.get("openmp"),
        "mpi_library": perf_ctx.get("mpi_library") or capture(["mpirun", "--version"]),
        "mpirun_version": capture(["mpirun", "--version"]),
        "srun_version": capture(["srun", "--version"]),
        "hdf5_version": capture(["h5dump", "--version"]),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "gpus": gpus(),
        "slurm": slurm,
    }


# --- output -----------------------------------------------------------------------------------

def fmt_cell(column, value):
    if value is None:
        return "-"
    if column in ("time_s", "min_s", "max_s"):
        return f"{value:.6g}"
    if column in ("spread_pct", "efficiency"):
        return f"{value:.1f}"
    if column == "speedup":
        return f"{value:.3f}"
    return str(value)


def print_tables(rows, out):
    cols = ["ranks", "hosts", "work", "time_s", "spread_pct", "speedup", "efficiency", "check"]
    keys = []
    for r in rows:
        k = (r["suite"], r["kernel"], r["mode"], r["size_name"], r["size"])
        if k not in keys:
            keys.append(k)
    for suite, kernel, mode, size_name, size in keys:
        curve = sorted((r for r in rows if (r["suite"], r["kernel"], r["mode"], r["size"]) ==
                        (suite, kernel, mode, size)), key=lambda r: r["ranks"])
        per = " per rank" if mode == "weak" and suite in ("study", "run") else ""
        print(f"\n# {suite} {kernel}, {mode} scaling, {size_name} = {size}{per}", file=out)
        width = {c: max(len(c), 10) for c in cols}
        print("#" + " ".join(f"{c:>{width[c]}}" for c in cols)[1:], file=out)
        print("#" + " ".join(f"{'(' + UNITS[c] + ')' if c in UNITS else '-':>{width[c]}}"
                             for c in cols)[1:], file=out)
        for r in curve:
            print(" ".join(f"{fmt_cell(c, r.get(c)):>{width[c]}}" for c in cols), file=out)


def write_csv(rows, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow(["" if r.get(c) is None else
                        (f"{r[c]:.9g}" if isinstance(r.get(c), float) else r[c])
                        for c in CSV_COLUMNS])


def main(argv=None):
    argv = sys.argv if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.splitlines()[2:]))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="build directory holding harsanyi and bench/ (default: %(default)s)")
    ap.add_argument("--harsanyi", help="the harsanyi binary (default: BUILD/harsanyi)")
    ap.add_argument("--bench-dir", help="directory of the perf binaries (default: BUILD/bench)")
    ap.add_argument("--suites", default="dist_moebius,reduce,study",
                    help=f"comma-separated, of {', '.join(SUITES)} (default: %(default)s)")
    ap.add_argument("--modes", default="strong,weak", help="strong, weak or both")
    ap.add_argument("--ranks", default=None,
                    help="rank counts, e.g. 1,2,4 (default: powers of two up to SLURM_NTASKS "
                         "inside Slurm, else 1,2)")
    ap.add_argument("--threads", type=int, default=1, help="OpenMP threads per rank")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per step")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up runs per step")
    ap.add_argument("--launcher", default=os.environ.get("HARSANYI_LAUNCHER", "auto"),
                    help="auto (srun --mpi=pmix inside Slurm, else mpirun), srun, mpirun, none, "
                         "or a command with {P}, e.g. 'mpiexec -n {P}' (default: %(default)s)")
    ap.add_argument("--launcher-args", default="", help="extra launcher arguments")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per step")
    ap.add_argument("--moebius-n", default="20", help="dist_moebius sizes n (weak: + log2 P)")
    ap.add_argument("--reduce-n", default="20", help="reduce sizes n")
    ap.add_argument("--reduce-samples", type=int, default=8,
                    help="reduce: vectors in all (weak: per rank)")
    ap.add_argument("--study-config", default=os.path.join(HERE, "configs", "scaling_tiny.toml"))
    ap.add_argument("--samples", default="32", help="study/run strong sizes: samples in all")
    ap.add_argument("--per-rank", default="16", help="study/run weak sizes: samples per rank")
    ap.add_argument("--n", type=int, default=9, help="study: players (cells of a 3x3 grid)")
    ap.add_argument("--iters", type=int, default=0, help="study/run: sgd iterations (0: config's)")
    ap.add_argument("--epochs", type=int, default=None, help="study/run: train.epochs override")
    ap.add_argument("--out-dir", default=".", help="where CSV, JSON and logs/ go")
    ap.add_argument("--name", help="file name stem (default: scaling_HOST_npRANKS_DATE)")
    ap.add_argument("--json", help="also write the JSON here (run_scaling.py's option)")
    a = ap.parse_args(argv[1:])

    a.build = os.path.abspath(a.build)
    a.harsanyi = os.path.abspath(a.harsanyi or os.path.join(a.build, "harsanyi"))
    a.bench_dir = os.path.abspath(a.bench_dir or os.path.join(a.build, "bench"))
    a.study_config = os.path.abspath(a.study_config)
    suites = [s for s in a.suites.split(",") if s]
    modes = [m for m in a.modes.split(",") if m]
    bad = [s for s in suites if s not in SUITES] + [m for m in modes if m not in ("strong", "weak")]
    if bad or not suites or not modes:
        ap.error(f"unknown suite or mode {bad}; suites: {', '.join(SUITES)}; modes: strong, weak")
    try:
        if a.ranks:
            a.ranks = int_list(a.ranks)
        elif os.environ.get("SLURM_NTASKS"):
            top = int(os.environ["SLURM_NTASKS"])
            a.ranks = sorted({2 ** k for k in range(int(math.log2(top)) + 1)} | {top})
        else:
            a.ranks = [1, 2]
        a.moebius_n, a.reduce_n = int_list(a.moebius_n), int_list(a.reduce_n)
        a.samples, a.per_rank = int_list(a.samples), int_list(a.per_rank)
    except ValueError as e:
        ap.error(f"a list of integers is expected: {e}")
    if not a.ranks or min(a.ranks) < 1 or a.reps < 1 or a.threads < 1:
        ap.error("--ranks, --reps and --threads must be positive")
    if ("study" in suites or "run" in suites) and not os.path.exists(a.study_config):
        ap.error(f"--study-config {a.study_config} does not exist")
    a.launcher = Launcher(a.launcher, a.launcher_args)

    date = datetime.date.today().isoformat()
    name = a.name or (f"scaling_{socket.gethostname()}_np{'-'.join(map(str, a.ranks))}_{date}")
    os.makedirs(a.out_dir, exist_ok=True)
    a.log_dir = os.path.join(a.out_dir, "logs", name)
    os.makedirs(a.log_dir, exist_ok=True)

    rows, perf_ctx = [], {}
    try:
        with tempfile.TemporaryDirectory(prefix="harsanyi-scaling-", dir=a.out_dir) as work:
            for suite in suites:
                for mode in modes:
                    for size in suite_sizes(a, suite, mode):
                        for p in a.ranks:
                            print(f"scaling: {suite} {mode} size {size} on {p} rank(s)",
                                  file=sys.stderr, flush=True)
                            got, ctx = SUITE_FUNCS[suite](a, mode, size, p, work)
                            perf_ctx = perf_ctx or ctx
                            for r in got:
                                r.update(suite=suite, mode=mode, size=size, ranks=p,
                                         threads=a.threads)
                                rows.append(r)
    except RunError as e:
        print(f"scaling: error: {e}", file=sys.stderr)
        return 2
    derive(rows)
    context = build_context(a, perf_ctx, argv)
    for r in rows:
        r["hosts"] = len(context["ranks_per_host"][str(r["ranks"])])

    csv_path = os.path.join(a.out_dir, name + ".csv")
    json_path = os.path.join(a.out_dir, name + ".json")
    write_csv(rows, csv_path)
    doc = {"context": context, "columns": [{"name": c, "unit": UNITS.get(c, "-")}
                                           for c in CSV_COLUMNS],
           "suites": suites, "modes": modes, "results": rows}
    for path in filter(None, (json_path, a.json)):
        with open(path, "w") as f:
            json.dump(doc, f, indent=1)

    print(f"# harsanyi scaling: {', '.join(suites)}; {', '.join(modes)}; ranks "
          f"{','.join(map(str, a.ranks))}; {a.threads} thread(s) per rank")
    print(f"# date {context['date']}  host {context['host']}  hosts {','.join(context['hosts'])}"
          f"  git {context['git_sha']}  {context['harsanyi_version']}")
    print(f"# launcher {context['launcher']}  MPI {context['mpi_library']}  "
          f"HDF5 {context['hdf5_version']}  compiler {context['compiler']}")
    print(f"# time = median of {a.reps} repetition(s) after {a.warmup} warm-up(s); strong: "
          "speedup = T(P0)/T(P), efficiency = speedup*P0/P; weak: efficiency = T(P0)/T(P) "
          "(docs/PERFORMANCE.md)")
    print_tables(rows, sys.stdout)
    failed = [r for r in rows if r["check"] != "ok"]
    print(f"\n# result   : {len(rows)} rows, {len(failed)} failed -> {csv_path}, {json_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
