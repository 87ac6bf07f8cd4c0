"""GRPO on every rung of the micro ladder: held-out error against step and compute.

Runs `rlscale train` on each built rung (one single-thread process per core, largest first) with
the given settings, then prints, per rung, the sampled pass@1 error (± standard error) and greedy
error at every evaluated step with the cumulative FLOPs (the paper's C), the change from step 0,
and — the paper's first finding — the error of each rung at compute budgets every rung reached
(log-linear interpolation in C between evaluated steps).

Run: python benchmarks/rl_ladder.py --out /tmp/rl-ladder [--steps 100] [--set lr=3e-5 …]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rlscale.models.ladder import LADDER
from rlscale.store import read_records


def launch(rung: str, out: Path, steps: int, settings: list[str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "rlscale", "train", "--model", rung, "--out", str(out / rung)]
    cmd += ["--steps", str(steps), "--threads", "1"]
    for item in settings:
        cmd += ["--set", item]
    log = open(out / f"{rung}.log", "wb")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def run_all(rungs: list[str], out: Path, steps: int, settings: list[str], jobs: int) -> None:
    pending, running = list(rungs), []
    while pending or running:
        while pending and len(running) < jobs:
            rung = pending.pop(0)
            running.append((rung, launch(rung, out, steps, settings), time.perf_counter()))
        time.sleep(2)
        for item in list(running):
            rung, proc, start = item
            if proc.poll() is not None:
                running.remove(item)
                state = "ok" if proc.returncode == 0 else f"failed ({proc.returncode})"
                print(f"{rung}: {state} in {time.perf_counter() - start:.0f} s", flush=True)


def table(rung: str, records: list[dict[str, Any]]) -> None:
    evaluated = [r for r in records if r.get("eval_L") is not None]
    first = evaluated[0]
    print(f"\n{rung} (N {first['N']:,})")
    print(" step   C (FLOPs)   pass@1 err ± se    greedy err   Δ pass@1 vs step 0")
    for r in evaluated:
        delta = r["eval_L"] - first["eval_L"]
        se = math.hypot(r["eval_L_se"], first["eval_L_se"])
        print(
            f"{r['step']:5d}  {r['flops_paper_cum']:10.3g}   "
            f"{r['eval_L']:.3f} ± {r['eval_L_se']:.3f}     "
            f"{r.get('eval_L_greedy') or float('nan'):.3f}      {delta:+.3f} ± {se:.3f}"
        )
    print(f"wall {records[-1]['wall_s']:.0f} s")


def at_compute(records: list[dict[str, Any]], c: float) -> float | None:
    points = [(r["flops_paper_cum"], r["eval_L"]) for r in records if r.get("eval_L") is not None]
    points = [(x, y) for x, y in points if x > 0]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= c <= x1:
            w = (math.log(c) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + w * (y1 - y0)
    return None


def equal_compute(runs: dict[str, list[dict[str, Any]]]) -> None:
    """Each rung's error at shared compute budgets (n/a outside the range it evaluated)."""
    evaluated = {
        name: [r for r in rs if r.get("eval_L") is not None and r["flops_paper_cum"] > 0]
        for name, rs in runs.items()
    }
    lo = min(rs[0]["flops_paper_cum"] for rs in evaluated.values() if rs)
    hi = max(rs[-1]["flops_paper_cum"] for rs in evaluated.values() if rs)
    print("\npass@1 error at equal compute C (interpolated in log C; n/a: outside the run):")
    print("  C        " + "  ".join(f"{name:>9s}" for name in runs))
    for k in range(7):
        c = lo * (hi / lo) ** (k / 6)
        values = [at_compute(rs, c) for rs in runs.values()]
        print(
            f"  {c:8.3g} "
            + "  ".join(f"{v:9.3f}" if v is not None else "      n/a" for v in values)
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--sizes", default=",".join(r.name for r in reversed(LADDER)))
    parser.add_argument("--set", dest="settings", action="append", default=[])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rungs = [s for s in args.sizes.split(",") if s]
    if not args.report_only:
        run_all(rungs, args.out, args.steps, args.settings, args.jobs)
    runs = {r: read_records(args.out / r / "steps.jsonl") for r in rungs}
    for rung, records in runs.items():
        table(rung, records)
    equal_compute(dict(sorted(runs.items(), key=lambda kv: kv[1][0]["N"])))
    summary = {r: json.loads((args.out / r / "summary.json").read_text()) for r in rungs
               if (args.out / r / "summary.json").exists()}  # fmt: skip
    (args.out / "ladder.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
