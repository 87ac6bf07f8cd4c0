"""The README's main job timed: `rlscale study run --preset micro` in a fresh folder.

Prints the whole command's wall time (interpreter start to exit), the stages the study itself
records in `timings.json` (runs, fits + report) and each run's wall time, steps and L before and
after, then the study's own findings table. The goal: under 20 minutes on a 2-core machine.

Run: python benchmarks/micro_study.py [--out /tmp/micro-study] [--preset micro]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("/tmp/micro-study"))
    parser.add_argument("--preset", default="micro")
    args = parser.parse_args()
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
            f"  {run['run']:32s} {timings['per_run_s'].get(run['run'], 0):6.0f} s "
            f"{run.get('steps', '—')} steps  L {run.get('L_start', float('nan')):.3f} → "
            f"{run.get('L_final', float('nan')):.3f}  C {run.get('flops_paper', 0):.3g}"
        )
    print(done.stdout)


if __name__ == "__main__":
    main()
