"""Bootstrap of a law fit: resample whole runs (curves) when runs are known, else points.

Runs are resampled within each model size when every size has at least two runs (every replicate
then keeps every size); otherwise runs are drawn from all runs. Each replicate is refitted from the
point estimate (no grid), which keeps 1,000 replicates of a `paper` fit within seconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rlscale.fit.data import FitData
from rlscale.fit.laws import Law, size_param, split_size_param
from rlscale.fit.solver import Objective, solve_law

MAX_REDRAWS = 20


def resample(fd: FitData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Indices of one replicate, the curve id of each drawn point, and the unit resampled."""
    if not fd.has_runs:
        idx = rng.integers(0, fd.n, fd.n)
        return idx, fd.curve_id[idx], "point"
    runs = np.unique(fd.curve_id)
    members = {int(r): np.flatnonzero(fd.curve_id == r) for r in runs}
    run_size = np.array([fd.curves.g[members[int(r)][0]] for r in runs])
    per_size = [runs[run_size == g] for g in range(fd.curves.G)]
    if min(len(r) for r in per_size) >= 2:
        drawn = np.concatenate([rng.choice(r, size=len(r), replace=True) for r in per_size])
        unit = "run within size"
    else:
        drawn = rng.choice(runs, size=len(runs), replace=True)
        unit = "run"
    idx = np.concatenate([members[int(r)] for r in drawn])
    cid = np.repeat(np.arange(len(drawn)), [len(members[int(r)]) for r in drawn])
    return idx, cid, unit


def bootstrap_draws(
    law: Law,
    fd: FitData,
    objective: Objective,
    fixed: Mapping[str, float],
    weights: Callable[[np.ndarray], np.ndarray],
    start: Mapping[str, float],
    names: Sequence[str],
    log_scale: Sequence[bool],
    replicates: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(replicates × free parameters) internal values; NaN where a replicate lacks a size."""
    rng = np.random.default_rng(seed)
    y = objective.target(fd.L)
    draws = np.full((replicates, len(names)), np.nan)
    unit, failed = "point", 0
    for b in range(replicates):
        for _ in range(MAX_REDRAWS):
            idx, cid, unit = resample(fd, rng)
            curves = fd.curves.take(idx)
            if law.min_sizes <= curves.G:
                break
        else:
            failed += 1
            continue
        to_full = np.searchsorted(fd.curves.sizes, curves.sizes)
        sub_start = _reindex(start, {int(i): j for j, i in enumerate(to_full)})
        sol = solve_law(
            law,
            curves,
            y[idx],
            weights(cid),
            objective,
            fixed,
            [sub_start],
            grid=False,
            check=False,
        )
        full = _reindex(sol.params, {j: int(i) for j, i in enumerate(to_full)})
        draws[b] = [
            _internal(full.get(n, math.nan), log) for n, log in zip(names, log_scale, strict=True)
        ]
        if progress is not None:
            progress(b + 1)
    info = {"replicates": replicates, "unit": unit, "seed": seed, "failed": failed}
    return draws, info


def _reindex(params: Mapping[str, float], mapping: Mapping[int, int]) -> dict[str, float]:
    """Rename per-size parameters `name@i` → `name@mapping[i]`, dropping unmapped sizes."""
    out: dict[str, float] = {}
    for name, value in params.items():
        base, i = split_size_param(name)
        if i is None:
            out[name] = value
        elif i in mapping:
            out[size_param(base, mapping[i])] = value
    return out


def _internal(value: float, log: bool) -> float:
    if not math.isfinite(value):
        return math.nan
    if log:
        return math.log(value) if value > 0 else math.nan
    return value
