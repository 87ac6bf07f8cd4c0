"""The error model's own estimates, and what measuring ρ's spread costs.

1. ρ's estimate and its spread: over `--studies` simulated studies (the paper-base preset, noise
   0.01, AR(1) noise of correlation ρ along each run), the mean and SD of the fitted ρ against
   the median `rho_se` the fits report (a calibrated spread makes their ratio about 1).
2. Cost: the same fits with ρ's spread measured and with it switched off
   (`RHO_SPREAD_MAX_POINTS = 0`), interleaved in one process; the median of `--repeats` each
   and their ratio. With a study folder, also a backtest of its table (`rlscale backtest`'s
   work: prefix and leave-one-size-out refits).

Run: python benchmarks/noise_estimates.py [--studies 30] [--repeats 5] [--study STUDY_DIR]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from rlscale.analysis import scaling_table
from rlscale.fit import noise
from rlscale.fit.estimator import FitConfig, LawFit
from rlscale.fit.validate import backtest
from rlscale.simulate import preset, simulate
from rlscale.store import load_study_records

SPREAD_CASES = ((12, 0.0), (12, 0.6), (30, 0.8))  # (evaluations a run, true ρ)


def rho_spread_table(studies: int) -> None:
    print(f"rho over {studies} simulated studies (paper law, 7 runs)")
    print(f"{'points a run':>12} {'true rho':>8} {'mean rho':>9} {'SD rho':>7} {'rho_se':>7} ratio")
    for steps, rho in SPREAD_CASES:
        fits = [
            LawFit(law="paper").fit(
                simulate(replace(preset("paper-base"), steps=steps, rho=rho, seed=seed))
            )
            for seed in range(studies)
        ]
        estimates = np.array([f.noise_.rho for f in fits])
        spread = float(np.median([f.noise_.rho_se for f in fits]))
        print(
            f"{steps:>12} {rho:>8.2f} {estimates.mean():>9.3f} {estimates.std():>7.3f} "
            f"{spread:>7.3f} {spread / estimates.std():>5.2f}"
        )


def timed(work: Callable[[], object], spread: bool) -> float:
    kept = noise.RHO_SPREAD_MAX_POINTS
    noise.RHO_SPREAD_MAX_POINTS = kept if spread else 0
    try:
        start = time.perf_counter()
        work()
        return time.perf_counter() - start
    finally:
        noise.RHO_SPREAD_MAX_POINTS = kept


def cost_table(repeats: int, study: Path | None) -> None:
    work: dict[str, Callable[[], object]] = {}
    for law, steps in (("paper", 105), ("paper", 30), ("paper_e_sat", 105)):
        data = simulate(replace(preset("paper-base"), steps=steps, rho=0.5))
        work[f"{law} fit, {len(data)} points"] = lambda d=data, law=law: LawFit(law=law).fit(d)
    if study is not None:
        table = scaling_table(load_study_records(study))
        table = table[table["tau"] == 1]
        for law in ("paper", "paper_e_sat"):
            work[f"backtest {law} of {study.name}"] = lambda t=table, law=law: backtest(
                t, FitConfig(law=law, x="C")
            )
    print(f"\ncost of measuring rho's spread (median of {repeats}, interleaved)")
    print(f"{'work':<40} {'without':>9} {'with':>9} {'ratio':>6}")
    for name, job in work.items():
        times: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(repeats):
            for spread in (False, True):
                times[spread].append(timed(job, spread))
        without, with_ = (float(np.median(times[s])) for s in (False, True))
        print(f"{name:<40} {without:>8.3f}s {with_:>8.3f}s {with_ / without:>6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--study", type=Path, default=None, help="a study folder to backtest")
    args = parser.parse_args()
    rho_spread_table(args.studies)
    cost_table(args.repeats, args.study)


if __name__ == "__main__":
    main()
