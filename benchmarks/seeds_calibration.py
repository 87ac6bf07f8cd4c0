"""Coverage of held-out-size bands on studies with several seeds a size.

Truth: the `paper-base` simulation preset (the published law: Kmax, N0 and E per size; seven
sizes 0.5B–72B, 105 steps), run `--runs` times a size (seeds), each run with its own offset
(SD 0.005, the seeds' spread) and its own noise. The published E per size is off paper_e_sat's
E(N): that misfit is the same for every seed of a size. Each size is forecast in turn from the
other six by `paper_e_sat` and the forecasts are pooled ("each size held out"); the 72B alone is
printed too. Two scenarios: (a) independent point noise, (b) AR(1) noise with ρ = 0.5.

Each forecast is made twice on the same data in the same process: with the error model as it
is (an offset shared by the runs of a size, σ_size, estimated when some size has several runs)
and without that offset (the model before it: run offsets and point noise only, so the seeds'
spread is all a held-out size's own offset is judged by). Printed: the pooled coverage of the
50/80/95% bands, the MAE, each held-out size's 95% coverage, and the error model's estimates
(median over seeds). Goal: 95% bands covering 90–98%; a miss says "over" or "under".

    python benchmarks/seeds_calibration.py [--seeds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

import rlscale.fit.estimator as estimator_module
from rlscale.fit.data import load_fit_data
from rlscale.fit.estimator import FitConfig, LawFit
from rlscale.fit.validate import holdout_sizes
from rlscale.simulate import preset, simulate

SCENARIOS = {
    "(a) independent": {"noise": 0.01, "run_noise": 0.005},
    "(b) AR(1) rho=0.5": {"noise": 0.01, "run_noise": 0.005, "rho": 0.5},
}
VARIANTS = ("with size offset", "without (before)")
LEVELS = (50, 80, 95)
CONFIG = FitConfig(law="paper_e_sat", x="C")


@contextmanager
def without_size_offsets() -> Iterator[None]:
    """Fits whose error model is not told each point's size: no offset shared by a size."""
    original = estimator_module.estimate_noise

    def runs_only(*args: Any, group: Any = None, **kwargs: Any) -> Any:
        return original(*args, **kwargs)

    estimator_module.estimate_noise = runs_only  # type: ignore[assignment]
    try:
        yield
    finally:
        estimator_module.estimate_noise = original


def seeded_study(scenario: dict[str, float], seed: int, runs: int) -> pd.DataFrame:
    frames = []
    for r in range(runs):
        config = replace(preset("paper-base"), seed=1000 * seed + r, **scenario)  # type: ignore[arg-type]
        data = simulate(config)
        frames.append(data.assign(run=data["run"] + f"-seed{r}"))
    return pd.concat(frames, ignore_index=True)


def one_study(data: pd.DataFrame) -> dict[str, Any]:
    """Per variant: each size's held-out scores; the error model of the six-size fit."""
    sizes = sorted(set(data["N"]))
    out: dict[str, Any] = {}
    for variant in VARIANTS:
        with without_size_offsets() if variant != VARIANTS[0] else nullcontext():
            scores = [holdout_sizes(data, CONFIG, [size]) for size in sizes]
            six = LawFit(CONFIG).fit(load_fit_data(data[data["N"] < max(sizes)], "C"))
        out[variant] = {"scores": scores, "noise": six.noise_}
    return out


def pooled(scores: list[dict[str, Any]], level: int) -> float:
    n = np.array([s["n_test"] for s in scores], dtype=float)
    return float(np.sum(n * np.array([s[f"coverage{level}"] for s in scores])) / n.sum())


def verdict(coverage: float) -> str:
    return "" if 0.9 <= coverage <= 0.98 else ("  over" if coverage > 0.98 else "  under")


def report(name: str, studies: list[dict[str, Any]], sizes: list[float]) -> None:
    for variant in VARIANTS:
        each = [s for study in studies for s in study[variant]["scores"]]
        largest = [study[variant]["scores"][-1] for study in studies]
        covs = " ".join(f"{pooled(each, lv):>6.1%}" for lv in LEVELS)
        mae = np.mean([s["mae"] for s in each])
        print(
            f"{name:<20} {variant:<18} {covs} {pooled(largest, 95):>7.1%} {mae:>7.4f}"
            f"{verdict(pooled(each, 95))}"
        )
    for variant in VARIANTS:
        per_size = [
            pooled([study[variant]["scores"][i] for study in studies], 95)
            for i in range(len(sizes))
        ]
        print(f"{'':<20} {variant:<18} 95% per size: " + " ".join(f"{c:.0%}" for c in per_size))
    noises = [study[VARIANTS[0]]["noise"] for study in studies]
    medians = {
        key: float(np.median([getattr(n, key) for n in noises]))
        for key in ("sigma_size", "sigma_run", "sigma_point", "rho", "df_size")
    }
    print(
        f"{'':<20} error model (median): " + ", ".join(f"{k} {v:.3g}" for k, v in medians.items())
    )


def fit_cost(data: pd.DataFrame, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of the six-size fit with the size offset and without, interleaved."""
    train = load_fit_data(data[data["N"] < data["N"].max()], "C")
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            with without_size_offsets() if variant != VARIANTS[0] else nullcontext():
                start = time.perf_counter()
                LawFit(CONFIG).fit(train)
                times[variant].append(time.perf_counter() - start)
    with_size, before = (float(np.median(times[v])) for v in VARIANTS)
    return with_size, before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20, help="studies per scenario")
    parser.add_argument("--runs", type=int, default=3, help="runs (seeds) a size in a study")
    args = parser.parse_args()
    start = time.perf_counter()
    print(f"{args.seeds} studies per scenario, {args.runs} runs a size; 95% goal: 90-98%\n")
    sizes = sorted(set(simulate(preset("paper-base"))["N"]))
    print(
        f"{'scenario':<20} {'error model':<18} {'cov50':>6} {'cov80':>6} {'cov95':>6} "
        f"{'72B 95':>7} {'MAE':>7}   (each size held out, pooled)"
    )
    for name, scenario in SCENARIOS.items():
        studies = [one_study(seeded_study(scenario, s, args.runs)) for s in range(args.seeds)]
        report(name, studies, sizes)
    study = seeded_study(SCENARIOS["(a) independent"], 0, args.runs)
    with_size, before = fit_cost(study)
    runs = study[study["N"] < study["N"].max()]["run"].nunique()
    print(
        f"\ncost: a six-size paper_e_sat fit of {runs} runs, median of 5: "
        f"{before:.3f} s without the size offset, {with_size:.3f} s with it "
        f"(x{with_size / before:.2f})"
    )
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
