#!/usr/bin/env python3
"""Compares two study files of the same models analysed on different devices (run_all.sh: the
default study on the GPU, and its checkpoints analysed again on the CPU).

usage: compare_studies.py GPU.h5 CPU.h5 [--tol-values REL]

Per epoch, one row:
  d_train    |train_loss(GPU) - train_loss(CPU)| / |train_loss(CPU)|   (evaluation forward passes)
  d_values   max over samples and subsets of |v_GPU(S) - v_CPU(S)| / max(1, |v_CPU(S)|)
             (needs /values in both files: interactions.store = ["values"])
  d_loss     max over samples of the relative difference of the solver's L1 objective
  order      strength-weighted mean order of the salient interactions, GPU / CPU
  AND#       salient AND interactions per sample, GPU / CPU
Exit status 1 when the files hold different epochs or samples, or when d_values exceeds
--tol-values (default 1e-4: float32 forward passes with different kernels).
"""
import argparse
import sys

import h5py
import numpy as np


def mean_order(f, e):
    """Mean over samples of sum_k k * strength_k / sum_k strength_k (AND and OR, salient only)."""
    strength = sum(np.abs(f["orders/" + name][e]) for name in ("and_pos", "and_neg", "or_pos", "or_neg"))
    k = np.arange(strength.shape[-1])
    total = strength.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_sample = (strength * k).sum(axis=-1) / total
    return float(np.nanmean(per_sample)) if np.any(total > 0) else float("nan")


def rel(a, b):
    return np.abs(a - b) / np.maximum(np.abs(b), 1e-300)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gpu")
    ap.add_argument("cpu")
    ap.add_argument("--tol-values", type=float, default=1e-4)
    a = ap.parse_args()
    g, c = h5py.File(a.gpu, "r"), h5py.File(a.cpu, "r")
    if not np.array_equal(g["epochs/epoch"][()], c["epochs/epoch"][()]):
        sys.exit("compare_studies: the files hold different epochs")
    if not np.array_equal(g["samples/index"][()], c["samples/index"][()]):
        sys.exit("compare_studies: the files analyse different samples")
    have_values = "values" in g and "values" in c
    print(f"# GPU: {a.gpu} (device {g.attrs.get('device', '?')}), CPU: {a.cpu} "
          f"(device {c.attrs.get('device', '?')})")
    print(f"{'epoch':>5} {'d_train':>9} {'d_values':>9} {'d_loss':>9} {'order GPU/CPU':>14} "
          f"{'AND# GPU/CPU':>14}")
    worst_values = 0.0
    for e, epoch in enumerate(g["epochs/epoch"][()]):
        d_train = float(rel(g["epochs/train_loss"][e], c["epochs/train_loss"][e]))
        if have_values:
            vg, vc = g["values"][e].astype(np.float64), c["values"][e].astype(np.float64)
            d_values = float(np.max(np.abs(vg - vc) / np.maximum(1.0, np.abs(vc))))
            worst_values = max(worst_values, d_values)
            dv = f"{d_values:9.1e}"
        else:
            dv = f"{'-':>9}"
        d_loss = float(np.max(rel(g["extraction/loss"][e], c["extraction/loss"][e])))
        og, oc = mean_order(g, e), mean_order(c, e)
        ng = float(g["orders/and_count"][e].sum(axis=-1).mean())
        nc = float(c["orders/and_count"][e].sum(axis=-1).mean())
        print(f"{int(epoch):5d} {d_train:9.1e} {dv} {d_loss:9.1e} {og:6.2f} / {oc:5.2f} "
              f"{ng:6.1f} / {nc:5.1f}")
    if have_values:
        ok = worst_values <= a.tol_values
        print(f"# values: max relative difference {worst_values:.2e} "
              f"({'within' if ok else 'BEYOND'} {a.tol_values:.0e})")
        return 0 if ok else 1
    print("# values: not stored in both files (interactions.store)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
