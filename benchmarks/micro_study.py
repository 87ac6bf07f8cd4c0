"""The README's main job timed and summarised: `rlscale study run --preset micro` in a fresh
folder.

Prints the whole command's wall time (interpreter start to exit), the stages the study records in
`timings.json` (runs, fits + report) and each run's wall time, steps and L before and after; then
what the faithful-miniature issue asks of the study: every size's free k on C with its 95%
interval, the per-size R² in ln L of the power law and the exp-decay (on C and on D) and which
wins, the largest sampling standard error of any evaluated L, the paper law on C, the reuse
finals per τ with their standard errors, and the findings with their verdicts. The goal: under 20
minutes on a 2-core machine.

Run: python benchmarks/micro_study.py [--out /tmp/micro-study] [--preset micro] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from rlscale.store import load_study_records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/micro-study"))
    parser.add_argument("--preset", default="micro")
    parser.add_argument("--keep", action="store_true", help="reuse finished runs in --out")
    args = parser.parse_args()
    if not args.keep:
        shutil.rmtree(args.out, ignore_errors=True)
    cmd = [sys.executable, "-m", "rlscale", "study", "run", "--preset", args.preset]
    start = time.perf_counter()
    done = subprocess.run([*cmd, "--out", str(args.out)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"study failed ({done.returncode}): {done.stderr[-2000:]}")
    timings = json.loads((args.out / "timings.json").read_text())
    analysis = json.loads((args.out / "analysis.json").read_text())
    print(f"whole command: {wall:.0f} s ({wall / 60:.1f} min)")
    print(f"  runs: {timings['runs_s']:.0f} s   fits + report: {timings['analysis_s']:.1f} s")
    print(f"  start-up and the rest: {wall - timings['runs_s'] - timings['analysis_s']:.1f} s")
    for run in analysis["runs"]:
        print(
            f"  {run['run']:34s} {timings['per_run_s'].get(run['run'], 0):6.0f} s "
            f"{run.get('steps', '—')} steps  L {run.get('L_start', float('nan')):.3f} → "
            f"{run.get('L_final', float('nan')):.3f}  C {run.get('flops_paper', 0):.3g}"
        )
    print_issue_figures(args.out, analysis)
    print(done.stdout)


def print_issue_figures(out: Path, analysis: dict[str, Any]) -> None:
    fits = {p.stem: json.loads(p.read_text()) for p in (out / "fits").glob("*.json")}
    free = fits["loglinear-C"]
    print("\nper size: free k on C [95%], R² in ln L power law / exp-decay (C; D) → winner")
    for key in sorted(free.get("per_N") or {}, key=float):
        k = free["per_N"][key]["k"]
        lo, hi = free["per_N_ci95"][key]["k"]
        row = f"  N {float(key):>10,.0f}  k {k:.4f} [{lo:.4f}, {hi:.4f}]"
        for x in ("C", "D"):
            p = (fits[f"loglinear-{x}"].get("r2_per_N") or {}).get(key)
            e = (fits[f"expdecay-{x}"].get("r2_per_N") or {}).get(key)
            win = "power" if (p or -1) >= (e or -1) else "exp"
            row += f"  {x}: {_f(p)} / {_f(e)} → {win}"
        print(row)
    records = load_study_records(out)
    evaluated = records[records["eval_L"].notna()]
    se = pd.to_numeric(evaluated.get("eval_L_se_sampling"), errors="coerce")
    print(
        f"sampling SE of L: max {se.max():.4f}, median {se.median():.4f} over "
        f"{len(evaluated)} evaluated points; between-problem SE median "
        f"{evaluated['eval_L_se'].median():.4f}; points a run ≥ "
        f"{evaluated[evaluated['step'] > 0].groupby('run')['step'].count().min()}"
    )
    paper = fits["paper-C"]
    print(
        f"paper law on C: converged {paper.get('converged')}; params {paper.get('params')}; "
        f"ci95 {paper.get('ci95')}; {paper.get('message')}"
    )
    for tau, r in sorted(analysis["reuse"].items(), key=lambda kv: int(kv[0])):
        print(
            f"reuse τ {tau:>3}: L {r['start_L']:.3f} → {r['final_L']:.3f} ± "
            f"{r['final_L_se'] or float('nan'):.3f} ({r['se_kind']}, {r['seeds']} seed(s))"
        )
    for f in analysis["paper_findings"]["findings"]:
        print(f"({f['key']}) {f['verdict']:17s} {f['measured']}")


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
