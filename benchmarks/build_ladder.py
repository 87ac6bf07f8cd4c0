"""Wall time of building the whole micro ladder from scratch, then of the cached second call.

Builds into a fresh temporary cache (RLSCALE_CACHE), two rungs at a time with one torch thread
each, and prints per rung: N, wall seconds, greedy / pass@1 / pass@8 error with standard errors,
and the largest absolute difference between the fresh weights and those shipped with the package
(0 means bit for bit).

Run: python benchmarks/build_ladder.py [--jobs 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from rlscale.models.build import BuildConfig
from rlscale.models.ladder import LADDER
from rlscale.models.ladder_build import build_ladder


def shipped_difference(name: str) -> str:
    """Max |fresh − shipped| over all weights of a rung, or why it cannot be compared."""
    import numpy as np
    from safetensors.numpy import load_file

    from rlscale.models.build import SHIPPED, build_dir
    from rlscale.models.ladder import RUNGS

    shipped = SHIPPED / name / "model.safetensors"
    if not shipped.exists():
        return "nothing shipped"
    fresh = load_file(build_dir(RUNGS[name], BuildConfig()) / "model.safetensors")
    old = load_file(shipped)
    if set(fresh) != set(old):
        return "different tensors"
    return f"max |Δ| {max(float(np.abs(fresh[k] - old[k]).max()) for k in fresh):.3g}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    names = [r.name for r in LADDER]
    with tempfile.TemporaryDirectory() as cache:
        os.environ["RLSCALE_CACHE"] = cache
        start = time.perf_counter()
        results = build_ladder(names, BuildConfig(), jobs=args.jobs)
        total = time.perf_counter() - start
        start = time.perf_counter()
        again = build_ladder(names, BuildConfig(), jobs=args.jobs)
        cached = time.perf_counter() - start
        diffs = {r["name"]: shipped_difference(r["name"]) for r in results}
    for r in results:
        print(
            f"{r['name']:9s} N {r['N']:>9,} {r['seconds']:6.0f} s  greedy err "
            f"{r['greedy_error']:.3f}±{r['greedy_error_se']:.3f}  pass@1 err "
            f"{r['pass1_error']:.3f}±{r['pass1_error_se']:.3f}  pass@8 err "
            f"{r['pass8_error']:.3f}±{r['pass8_error_se']:.3f}  vs shipped: {diffs[r['name']]}"
        )
    print(
        f"whole ladder: {total:.0f} s with {args.jobs} jobs; second call (cache) {cached:.1f} s, "
        f"reused {sum(r['reused'] for r in again)}/{len(again)}"
    )


if __name__ == "__main__":
    main()
