"""Fits on a million rows: `powerlaw_floor` against `paper` on the same simulated curves.

Simulates the paper's Base models with as many seeds as make `--rows` rows, then times each law's
fit (load included), the two laws interleaved, and prints the medians and their ratio (goal:
powerlaw_floor within 10× of paper). With `--unscreened`, each law is also fitted with the
subsample screening turned off (every start searched on every point), on `--unscreened-rows`
rows, to show what the screening saves and that the optimum is the same.

Run: python benchmarks/fit_large.py [--rows 1000000] [--repeats 3] [--unscreened]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from typing import Any

import numpy as np

from rlscale.fit import solver
from rlscale.fit.data import load_fit_data
from rlscale.fit.estimator import LawFit
from rlscale.simulate import preset, simulate

LAWS = ("paper", "powerlaw_floor")


def curves(rows: int) -> Any:
    base = preset("paper-base")
    per_seed = len(simulate(base))
    return simulate(replace(base, seeds=math.ceil(rows / per_seed), noise=0.01)).iloc[:rows]


def timed_fit(df: Any, law: str) -> tuple[float, LawFit]:
    start = time.perf_counter()
    fit = LawFit(law=law).fit(load_fit_data(df, "C"))
    return time.perf_counter() - start, fit


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--unscreened", action="store_true")
    parser.add_argument("--unscreened-rows", type=int, default=100_000)
    args = parser.parse_args()
    df = curves(args.rows)
    times: dict[str, list[float]] = {law: [] for law in LAWS}
    for _ in range(args.repeats):
        for law in LAWS:
            seconds, _ = timed_fit(df, law)
            times[law].append(seconds)
    medians = {law: float(np.median(t)) for law, t in times.items()}
    for law in LAWS:
        print(f"{law:15s} {len(df):,} rows: median {medians[law]:.1f} s over {args.repeats}")
    ratio = medians["powerlaw_floor"] / medians["paper"]
    print(f"powerlaw_floor / paper: {ratio:.2f}× (goal ≤ 10×)")
    if args.unscreened:
        compare_unscreened(curves(args.unscreened_rows))


def compare_unscreened(df: Any) -> None:
    screened = {law: timed_fit(df, law) for law in LAWS}
    saved = solver.SCREEN_POINTS
    solver.SCREEN_POINTS = len(df) + 1
    try:
        unscreened = {law: timed_fit(df, law) for law in LAWS}
    finally:
        solver.SCREEN_POINTS = saved
    for law in LAWS:
        (t_s, f_s), (t_u, f_u) = screened[law], unscreened[law]
        worst = max(abs(f_s.params_[k] / f_u.params_[k] - 1) for k in f_u.params_)
        print(
            f"{law:15s} {len(df):,} rows: screened {t_s:.1f} s, every point {t_u:.1f} s "
            f"({t_u / t_s:.1f}×); objective {f_s.objective_:.6g} vs {f_u.objective_:.6g}, "
            f"largest relative parameter difference {worst:.1e}"
        )


if __name__ == "__main__":
    main()
