"""GRPO on every rung of the micro ladder: held-out error against step and compute.

Runs `rlscale train` on each built rung (one single-thread process per core, largest first) with
the given settings, then prints, per rung, the sampled pass@1 error (± standard error) and greedy
error at every evaluated step with the cumulative FLOPs (the paper's C), the change from step 0,
and — the paper's first finding — the error of each rung at compute budgets every rung reached
(log-linear interpolation in C between evaluated steps).

With `--extra-clean-steps K --extra-noisy-steps M` each rung first gets a longer warm start: K
more clean SFT steps (batch 64, lr 1e-3 with 10 warm-up steps, cosine to 10%) and M noisy ones
(40% one-off-by-one solutions, lr 3e-4) on fresh train problems (seed 77), in the worker process,
one thread; RL then starts from that model.

Run: python benchmarks/rl_ladder.py --out /tmp/rl-ladder [--steps 100] [--set lr=3e-5 …]
     [--sizes micro-l,micro-m] [--extra-clean-steps 600 --extra-noisy-steps 60]
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


def strengthen(rung: str, clean: int, noisy: int, dest: Path) -> None:
    """The rung's built model after `clean` + `noisy` more warm-start steps (see the header)."""
    import random

    import torch

    from rlscale.data import generate
    from rlscale.models.build import BuildConfig, _batches, train_phase
    from rlscale.models.load import load_model

    torch.set_num_threads(1)
    model, tok = load_model(rung)
    model.config._attn_implementation = "sdpa"
    rng = random.Random(5)
    problems = generate(BuildConfig().task, "train", (clean + noisy) * 64, 77)
    train_phase(model, _batches(tok, problems[: clean * 64], 64, 0.0, rng), 1e-3, 10, "c", None)
    if noisy:
        batches = _batches(tok, problems[clean * 64 :], 64, 0.4, rng)
        train_phase(model, batches, 3e-4, 0, "n", None)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)


def launch(
    rung: str, out: Path, steps: int, settings: list[str], extra: tuple[int, int]
) -> subprocess.Popen[bytes]:
    """This script in worker mode for one rung, logging to OUT/RUNG.log."""
    cmd = [sys.executable, __file__, "--worker", rung, "--out", str(out), "--steps", str(steps)]
    cmd += ["--extra-clean-steps", str(extra[0]), "--extra-noisy-steps", str(extra[1])]
    cmd += [x for item in settings for x in ("--set", item)]
    log = open(out / f"{rung}.log", "wb")  # noqa: SIM115 - closed when the process ends
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def worker(rung: str, out: Path, steps: int, settings: list[str], extra: tuple[int, int]) -> None:
    """(Strengthen the warm start, then) `rlscale train` the rung, one thread."""
    cmd = [sys.executable, "-m", "rlscale", "train", "--out", str(out / rung)]
    cmd += ["--steps", str(steps), "--threads", "1"]
    cmd += [x for item in settings for x in ("--set", item)]
    model = rung
    if any(extra):
        from rlscale.cli.train import default_sources
        from rlscale.rl.config import load_config

        model = str(out / f"{rung}-warm")
        if not (Path(model) / "config.json").exists():
            strengthen(rung, extra[0], extra[1], Path(model))
        cfg = load_config(None, "micro", steps=steps, **dict(s.split("=", 1) for s in settings))
        train, holdout = default_sources(rung, cfg.total_prompts, cfg.seed)
        cmd += ["--train", str(train), "--holdout", str(holdout)]
    subprocess.run([*cmd, "--model", model], check=True)


def run_all(
    rungs: list[str], out: Path, steps: int, settings: list[str], jobs: int, extra: tuple[int, int]
) -> None:
    pending, running = list(rungs), []
    while pending or running:
        while pending and len(running) < jobs:
            rung = pending.pop(0)
            proc = launch(rung, out, steps, settings, extra)
            running.append((rung, proc, time.perf_counter()))
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
    parser.add_argument("--extra-clean-steps", type=int, default=0)
    parser.add_argument("--extra-noisy-steps", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    extra = (args.extra_clean_steps, args.extra_noisy_steps)
    if args.worker:
        worker(args.worker, args.out, args.steps, args.settings, extra)
        return
    rungs = [s for s in args.sizes.split(",") if s]
    if not args.report_only:
        run_all(rungs, args.out, args.steps, args.settings, args.jobs, extra)
    runs = {r: read_records(args.out / r / "steps.jsonl") for r in rungs}
    for rung, records in runs.items():
        table(rung, records)
    equal_compute(dict(sorted(runs.items(), key=lambda kv: kv[1][0]["N"])))
    summary = {r: json.loads((args.out / r / "summary.json").read_text()) for r in rungs
               if (args.out / r / "summary.json").exists()}  # fmt: skip
    (args.out / "ladder.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
