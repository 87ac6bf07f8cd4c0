"""Base vs instruct rungs: held-out errors from their build.json files, and the build time.

Prints per rung the base and instruct pass@1 error (± SE), the paired difference's relative
size, pass@8 error, greedy error and the instruct round's build seconds, read from the builds
`rlscale` resolves (the local cache's, else the shipped ones). With `--build` it first builds
the five instruct rungs from the shipped base rungs into a fresh temporary cache (`--jobs` at a
time, one torch thread each), prints the whole build's wall time and reads those fresh builds,
with the largest absolute difference between their weights and the shipped ones.

Run: python benchmarks/instruct_ladder.py [--build] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from rlscale.models.ladder import LADDER


def figures(name: str) -> dict[str, Any]:
    from rlscale.models.load import resolve

    data: dict[str, Any] = json.loads((resolve(name) / "build.json").read_text())
    return data


def shipped_difference(fresh_dir: Path, name: str) -> str:
    import numpy as np
    from safetensors.numpy import load_file

    from rlscale.models.build import SHIPPED

    shipped = SHIPPED / name / "model.safetensors"
    if not shipped.exists():
        return "nothing shipped"
    fresh, old = load_file(fresh_dir / "model.safetensors"), load_file(shipped)
    if set(fresh) != set(old):
        return "different tensors"
    return f"max |Δ| {max(float(np.abs(fresh[k] - old[k]).max()) for k in fresh):.3g}"


def row(rung: str, diff: str) -> str:
    base, inst = figures(rung), figures(f"{rung}-instruct")
    relative = 1 - inst["pass1_error"] / base["pass1_error"]
    return (
        f"{rung:9s} pass@1 err base {base['pass1_error']:.3f}±{base['pass1_error_se']:.3f} "
        f"instruct {inst['pass1_error']:.3f}±{inst['pass1_error_se']:.3f} ({relative:.0%} lower)  "
        f"pass@8 err {base['pass8_error']:.3f} → {inst['pass8_error']:.3f}  "
        f"greedy err {base['greedy_error']:.3f} → {inst['greedy_error']:.3f}  "
        f"instruct build {inst['seconds']:.0f} s (train {inst['train_seconds']:.0f} s)  {diff}"
    )


def build_fresh(jobs: int) -> dict[str, str]:
    from rlscale.models.instruct import InstructConfig, instruct_dir
    from rlscale.models.ladder_build import build_ladder

    names = [r.name for r in LADDER]
    start = time.perf_counter()
    results = build_ladder(names, InstructConfig(), jobs=jobs)
    print(f"five instruct rungs: {time.perf_counter() - start:.0f} s wall with {jobs} jobs")
    assert not any(r["reused"] for r in results)
    return {r.name: shipped_difference(instruct_dir(r, InstructConfig()), f"{r.name}-instruct")
            for r in LADDER}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", action="store_true", help="Build afresh into a temp cache.")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        diffs = {r.name: "" for r in LADDER}
        if args.build:
            os.environ["RLSCALE_CACHE"] = cache
            diffs = build_fresh(args.jobs)
        for rung in LADDER:
            print(row(rung.name, diffs[rung.name]))


if __name__ == "__main__":
    main()
