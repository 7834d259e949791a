#!/usr/bin/python3
"""Scaling plots and efficiency tables from bench/scaling.py's JSON (or CSV).

For every suite it writes one PNG, STEM_SUITE.png: a column per mode (strong, weak), the time
against the rank count on top (log-log, one curve per kernel and size, the ideal dashed: T(P0)·P0/P
for strong scaling, T(P0) for weak) and the parallel efficiency below (the ideal, 100 %, dashed).
It prints the efficiency tables as Markdown and writes them to STEM_efficiency.md. The figures
are defined in docs/PERFORMANCE.md.

Usage: bench/plot_scaling.py RESULTS.json [--out-dir DIR] [--stem STEM]
Needs matplotlib (Debian: python3-matplotlib; run it with /usr/bin/python3).
"""
import argparse
import csv
import json
import math
import os
import sys


def load(path):
    """(rows, context) from a scaling JSON or CSV file."""
    if path.endswith(".csv"):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            for k in ("size", "ranks", "hosts", "threads", "work", "reps"):
                r[k] = int(r[k]) if r.get(k) not in (None, "") else None
            for k in ("time_s", "min_s", "max_s", "spread_pct", "speedup", "efficiency"):
                r[k] = float(r[k]) if r.get(k) not in (None, "") else None
        return rows, {}
    with open(path) as f:
        doc = json.load(f)
    if "results" not in doc:
        sys.exit(f"plot_scaling: {path} has no 'results': not a bench/scaling.py JSON file")
    return doc["results"], doc.get("context", {})


def curves_of(rows, suite, mode):
    """{(kernel, size_name, size): rows sorted by ranks} of one suite and mode."""
    out = {}
    for r in rows:
        if r["suite"] == suite and r["mode"] == mode:
            out.setdefault((r["kernel"], r["size_name"], r["size"]), []).append(r)
    return {k: sorted(v, key=lambda r: r["ranks"]) for k, v in sorted(out.items(),
                                                                        key=lambda kv: str(kv[0]))}


def label(suite, mode, kernel, size_name, size):
    per = " per rank" if mode == "weak" and suite in ("study", "run") else ""
    return f"{kernel}, {size_name} = {size}{per}"


def fmt_time(t):
    if t is None or (isinstance(t, float) and math.isnan(t)):
        return "–"
    if t >= 1:
        return f"{t:.3g} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} µs"


def markdown_tables(rows, context):
    lines = []
    if context:
        lines.append(f"Scaling on {', '.join(context.get('hosts', [])) or context.get('host', '?')}"
                     f", {context.get('date', '?')}, git {str(context.get('git_sha'))[:12]}, "
                     f"{context.get('threads_per_rank', '?')} thread(s) per rank, launcher "
                     f"`{context.get('launcher', '?')}`.")
        lines.append("")
    suites = []
    for r in rows:
        if r["suite"] not in suites:
            suites.append(r["suite"])
    for suite in suites:
        for mode in ("strong", "weak"):
            curves = curves_of(rows, suite, mode)
            if not curves:
                continue
            lines.append(f"### {suite}, {mode} scaling")
            lines.append("")
            head = ["ranks", "hosts"]
            for (kernel, size_name, size) in curves:
                tag = label(suite, mode, kernel, size_name, size)
                head += [f"{tag}: time"] + ([f"{tag}: speedup"] if mode == "strong" else []) + \
                        [f"{tag}: efficiency"]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "|".join("---:" for _ in head) + "|")
            ranks = sorted({r["ranks"] for c in curves.values() for r in c})
            for p in ranks:
                cells = [str(p), "–"]
                for curve in curves.values():
                    r = next((r for r in curve if r["ranks"] == p), None)
                    if r is None:
                        cells += ["–"] * (3 if mode == "strong" else 2)
                        continue
                    cells[1] = str(r.get("hosts") or "–")
                    cells.append(fmt_time(r["time_s"]))
                    if mode == "strong":
                        cells.append(f"{r['speedup']:.2f}×" if r.get("speedup") is not None
                                     else "–")
                    cells.append(f"{r['efficiency']:.1f} %" if r.get("efficiency") is not None
                                 else "–")
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def plot_suite(plt, rows, suite, context, path):
    modes = [m for m in ("strong", "weak") if curves_of(rows, suite, m)]
    fig, axes = plt.subplots(2, len(modes), figsize=(5.5 * len(modes), 7.5), squeeze=False)
    for col, mode in enumerate(modes):
        ax_t, ax_e = axes[0][col], axes[1][col]
        for i, ((kernel, size_name, size), curve) in enumerate(curves_of(rows, suite,
                                                                          mode).items()):
            color = f"C{i % 10}"
            p = [r["ranks"] for r in curve]
            t = [r["time_s"] for r in curve]
            e = [r["efficiency"] for r in curve]
            lo = [r["time_s"] - (r.get("min_s") or r["time_s"]) for r in curve]
            hi = [(r.get("max_s") or r["time_s"]) - r["time_s"] for r in curve]
            name = label(suite, mode, kernel, size_name, size)
            ax_t.errorbar(p, t, yerr=[lo, hi], marker="o", color=color, capsize=3, label=name)
            p0, t0 = p[0], t[0]
            ideal = [t0 * p0 / q for q in p] if mode == "strong" else [t0 for _ in p]
            ax_t.plot(p, ideal, linestyle="--", color=color, alpha=0.5, linewidth=1)
            ax_e.plot(p, e, marker="o", color=color, label=name)
        ax_e.axhline(100.0, linestyle="--", color="gray", linewidth=1, label="ideal")
        for ax in (ax_t, ax_e):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("MPI ranks")
            ax.grid(True, which="both", alpha=0.3)
            ranks = sorted({r["ranks"] for r in rows if r["suite"] == suite})
            ax.set_xticks(ranks)
            ax.set_xticklabels([str(x) for x in ranks])
        ax_t.set_yscale("log")
        ax_t.set_ylabel("time (s, median; bars: min–max)")
        ax_t.set_title(f"{suite}: {mode} scaling (dashed: ideal)")
        ax_e.set_ylabel("parallel efficiency (%)")
        ax_e.set_ylim(bottom=0)
        ax_t.legend(fontsize=7)
        ax_e.legend(fontsize=7)
    if context:
        fig.text(0.01, 0.005, f"{', '.join(context.get('hosts', []))}  {context.get('date', '')}  "
                 f"git {str(context.get('git_sha'))[:12]}  {context.get('mpi_library', '')}  "
                 f"{context.get('threads_per_rank', '?')} thread(s)/rank", fontsize=7,
                 color="gray")
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", help="JSON (or CSV) written by bench/scaling.py")
    ap.add_argument("--out-dir", help="where the PNGs and the tables go (default: beside it)")
    ap.add_argument("--stem", help="file name stem (default: the results' name)")
    a = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("plot_scaling: matplotlib is missing: install python3-matplotlib "
                 "(scripts/setup.sh does) and run this script with /usr/bin/python3")
    if not os.path.exists(a.results):
        sys.exit(f"plot_scaling: {a.results} does not exist (write it with bench/scaling.py)")
    rows, context = load(a.results)
    if not rows:
        sys.exit(f"plot_scaling: {a.results} holds no results")
    out_dir = a.out_dir or os.path.dirname(os.path.abspath(a.results))
    stem = a.stem or os.path.splitext(os.path.basename(a.results))[0]
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for suite in dict.fromkeys(r["suite"] for r in rows):
        path = os.path.join(out_dir, f"{stem}_{suite}.png")
        plot_suite(plt, rows, suite, context, path)
        written.append(path)
    tables = markdown_tables(rows, context)
    md = os.path.join(out_dir, f"{stem}_efficiency.md")
    with open(md, "w") as f:
        f.write(tables + "\n")
    print(tables)
    print("plot_scaling: wrote " + ", ".join(written + [md]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
