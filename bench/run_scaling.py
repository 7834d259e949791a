#!/usr/bin/python3
"""Strong and weak scaling of `harsanyi run` over MPI ranks, on bench/study_perf.

The study suite of the scaling driver bench/scaling.py, with this script's original options:
for each rank count P it runs study_perf on P ranks (mpirun, or srun --mpi=pmix inside a Slurm
allocation; one thread per rank) on one study config: strong scaling keeps the samples fixed
(--samples), weak scaling keeps the samples per rank fixed (--per-rank, S = PER_RANK·P). It prints
one table per mode and kernel (`total`: the whole study; `analysis`: evaluation + forward passes
+ solver + writing, the distributed part, since training runs on rank 0 alone) and writes their
JSON twin. Formulas (docs/PERFORMANCE.md):

  speedup(P)     = T(1) / T(P)                      strong scaling, same total work
  efficiency(P)  = speedup(P) / P                   strong
  efficiency(P)  = T(1) / T(P)                      weak (work per rank fixed)

`check` is study_perf's check of every run (a complete file with finite losses); bitwise
equality of the study across rank counts is tested by tests/cli/test_mpi.sh.

Usage: bench/run_scaling.py --bench build/bench/study_perf [--config bench/configs/scaling_tiny.toml]
       [--ranks 1,2] [--samples 32] [--per-rank 16] [--n 9] [--json out.json] [--out-dir DIR]
       [--launcher auto|mpirun|srun|CMD]
"""
import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaling  # noqa: E402  (bench/scaling.py, beside this file)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True, help="path of bench/study_perf")
    ap.add_argument("--config", default=os.path.join(scaling.HERE, "configs", "scaling_tiny.toml"))
    ap.add_argument("--ranks", default="1,2", help="rank counts, comma-separated")
    ap.add_argument("--samples", type=int, default=32, help="strong scaling: samples in all")
    ap.add_argument("--per-rank", type=int, default=16, help="weak scaling: samples per rank")
    ap.add_argument("--n", type=int, default=9, help="players (cells of a 3x3 grid)")
    ap.add_argument("--json", help="write the tables' JSON twin here")
    ap.add_argument("--out-dir", help="keep the CSV, JSON and every run's output here "
                                      "(default: a temporary directory)")
    ap.add_argument("--launcher", default="auto", help="as bench/scaling.py --launcher")
    a = ap.parse_args()
    bench_dir = os.path.dirname(os.path.abspath(a.bench))
    if os.path.basename(a.bench) != "study_perf":
        sys.exit(f"run_scaling: --bench must name the study_perf binary, not {a.bench}")
    with tempfile.TemporaryDirectory(prefix="run-scaling-") as tmp:
        argv = ["scaling.py", "--suites", "study", "--modes", "strong,weak",
                "--build", os.path.dirname(bench_dir), "--bench-dir", bench_dir,
                "--study-config", a.config, "--ranks", a.ranks, "--samples", str(a.samples),
                "--per-rank", str(a.per_rank), "--n", str(a.n), "--reps", "1", "--warmup", "0",
                "--launcher", a.launcher, "--out-dir", a.out_dir or tmp, "--name", "run_scaling"]
        if a.json:
            argv += ["--json", a.json]
        return scaling.main(argv)


if __name__ == "__main__":
    sys.exit(main())
