#!/usr/bin/python3
"""Strong and weak scaling of `harsanyi run` over MPI ranks, on bench/study_perf.

For each rank count P it runs `mpirun -n P study_perf` on one study config with one thread per
rank: strong scaling keeps the samples fixed (-s SAMPLES), weak scaling keeps the samples per
rank fixed (-s PER_RANK·P). Each run writes its study_perf JSON; this script prints one table per
mode (header row, units row) and writes their JSON twin. Formulas (bench/README.md):

  speedup(P)     = T(1) / T(P)                      strong scaling, same total work
  efficiency(P)  = speedup(P) / P                   strong
  efficiency(P)  = T(1) / T(P)                      weak (work per rank fixed)

with T the whole study (`total`) and, separately, the distributed analysis only
(`analysis` = evaluation + forward passes + solver + writing; training runs on rank 0 alone).
`check` is study_perf's check of every run (a complete file with finite losses); bitwise
equality of the study across rank counts is tested by tests/cli/test_mpi.sh.

Usage: bench/run_scaling.py --bench build/bench/study_perf [--config bench/configs/scaling_tiny.toml]
       [--ranks 1,2] [--samples 32] [--per-rank 16] [--n 9] [--json out.json]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile


def run(bench, config, ranks, samples, n, workdir):
    out = os.path.join(workdir, f"study_perf_np{ranks}_s{samples}.json")
    cmd = ["mpirun", "-n", str(ranks), "--bind-to", "core", "--oversubscribe", bench,
           "-b", str(n), "-e", str(n), "-t", "1", "-s", str(samples), "-n", "1", "-w", "0",
           "--config", config, "-j", out]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not os.path.exists(out):
        sys.exit(f"run_scaling: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    with open(out) as f:
        result = json.load(f)
    row = result["results"][0]
    row["command"] = " ".join(cmd)
    return row, result["context"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True, help="path of bench/study_perf")
    ap.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "configs",
                                                     "scaling_tiny.toml"))
    ap.add_argument("--ranks", default="1,2", help="rank counts, comma-separated")
    ap.add_argument("--samples", type=int, default=32, help="strong scaling: samples in all")
    ap.add_argument("--per-rank", type=int, default=16, help="weak scaling: samples per rank")
    ap.add_argument("--n", type=int, default=9, help="players (cells of a 3x3 grid)")
    ap.add_argument("--json", help="write the tables' JSON twin here")
    a = ap.parse_args()
    ranks = [int(r) for r in a.ranks.split(",")]
    tables = {}
    context = None
    with tempfile.TemporaryDirectory() as work:
        for mode in ("strong", "weak"):
            rows = []
            for p in ranks:
                samples = a.samples if mode == "strong" else a.per_rank * p
                row, context = run(a.bench, a.config, p, samples, a.n, work)
                analysis = row["eval"] + row["forward"] + row["solver"] + row["write"]
                rows.append({"ranks": p, "samples": samples, "total": row["total"],
                             "train": row["train"], "analysis": analysis,
                             "check": row.get("check", "?"), "command": row["command"]})
            t1, a1 = rows[0]["total"], rows[0]["analysis"]
            for r in rows:
                p = r["ranks"] / rows[0]["ranks"]
                if mode == "strong":
                    r["speedup"] = t1 / r["total"]
                    r["speedup_analysis"] = a1 / r["analysis"]
                    r["efficiency"] = r["speedup"] / p
                    r["efficiency_analysis"] = r["speedup_analysis"] / p
                else:
                    r["efficiency"] = t1 / r["total"]
                    r["efficiency_analysis"] = a1 / r["analysis"]
            tables[mode] = rows

    print(f"# harsanyi run_scaling: strong and weak scaling of `harsanyi run` ({a.config})")
    print(f"# date {datetime.datetime.utcnow():%Y-%m-%dT%H:%M:%SZ}  host {context.get('host')}  "
          f"git {context.get('git_sha')}  device {context.get('device')}, "
          f"{context.get('logical_cpus')} logical CPUs, load {context.get('load_average')}")
    print(f"# one thread per rank; strong: {a.samples} samples; weak: {a.per_rank} samples per rank; n = {a.n}")
    for mode, rows in tables.items():
        print(f"\n# {mode} scaling")
        cols = ["ranks", "samples", "total", "train", "analysis"]
        cols += ["speedup", "speedup_analysis"] if mode == "strong" else []
        cols += ["efficiency", "efficiency_analysis", "check"]
        units = {"total": "s", "train": "s", "analysis": "s", "speedup": "x",
                 "speedup_analysis": "x", "efficiency": "%", "efficiency_analysis": "%"}
        width = {c: max(len(c), 7) for c in cols}
        print(" ".join(f"{c:>{width[c]}}" for c in cols))
        print(" ".join(f"{units.get(c, '-'):>{width[c]}}" for c in cols))
        for r in rows:
            cells = []
            for c in cols:
                v, w = r[c], width[c]
                if c.startswith("efficiency"):
                    cells.append(f"{100 * v:>{w}.1f}")
                elif isinstance(v, float):
                    cells.append(f"{v:>{w}.2f}")
                else:
                    cells.append(f"{v!s:>{w}}")
            print(" ".join(cells))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"context": context, "config": a.config, "tables": tables}, f, indent=1)
    bad = [r for rows in tables.values() for r in rows if r["check"] != "ok"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
