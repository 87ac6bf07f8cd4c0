"""Profile likelihood for partially identified fits: which parameters to profile, over what
grid, which grid points the data cannot reject, and the envelope of their bands.

When the sizes stop short of where k(N) saturates, the paper law identifies only Kmax/N0:
N0 runs off to its bound and its Jacobian interval spans hundreds of decades. Rather than refuse
to forecast, the fit is redone with the unidentified parameters fixed on a grid over their
bounds; every grid point whose fit the data does not reject (a likelihood-ratio test at the
band's level, scaled by the error model's design effect, since correlated points carry less
information than their count) is a plausible law, and a forecast's band is the envelope of
theirs. Pure functions: the fitting itself is the estimator's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
from scipy import stats

from rlscale.fit.laws import ParamSpec
from rlscale.fit.noise import Noise

GRID_BUDGET = 120  # fits in a profile: 15 values for one parameter, 10 each for two, …
WIDE_SE = 3.0  # a log-scale SE beyond this (a 95% interval wider than ×360) is not identified
EDGE = 1e-3  # within this fraction of its internal range a parameter is on its bound


def unidentified(
    specs: Sequence[ParamSpec],
    params: Mapping[str, float],
    se_internal: Mapping[str, float],
    searched: Sequence[str],
) -> list[str]:
    """The searched (nonlinear) parameters the data leaves free: on a bound, or with an
    internal standard error above WIDE_SE (or none at all)."""
    out = []
    for s in specs:
        if s.name not in searched:
            continue
        lo, hi = s.internal_bounds
        v, se = s.to_internal(params[s.name]), se_internal.get(s.name, math.inf)
        on_bound = v <= lo + EDGE * (hi - lo) or v >= hi - EDGE * (hi - lo)
        if on_bound or not se < WIDE_SE:
            out.append(s.name)
    return out


def _points_per_parameter(profiled: int, budget: int = GRID_BUDGET) -> int:
    return min(15, max(4, int(budget ** (1 / max(profiled, 1)))))


def grid(specs: Sequence[ParamSpec], budget: int = GRID_BUDGET) -> list[dict[str, float]]:
    """Every combination of values per parameter (about `budget` in all, 15 at most and 4 at
    least per parameter), evenly spaced in its internal scale (log for scale parameters)
    between its bounds."""
    points = _points_per_parameter(len(specs), budget)
    axes = [
        [s.from_internal(float(u)) for u in np.linspace(*s.internal_bounds, points)] for s in specs
    ]
    return [
        dict(zip((s.name for s in specs), combo, strict=True)) for combo in itertools.product(*axes)
    ]


def narrowed(specs: Sequence[ParamSpec], kept: Sequence[Mapping[str, float]]) -> list[ParamSpec]:
    """The parameters' specs with bounds shrunk to one coarse grid step around the plausible
    values, for a finer second pass (a coarse grid may keep only one or two points)."""
    out = []
    for s in specs:
        lo, hi = s.internal_bounds
        step = (hi - lo) / (_points_per_parameter(len(specs)) - 1)
        values = [s.to_internal(m[s.name]) for m in kept]
        a, b = max(lo, min(values) - step), min(hi, max(values) + step)
        out.append(
            replace(
                s,
                value=s.from_internal(0.5 * (a + b)),
                lower=s.from_internal(a),
                upper=s.from_internal(b),
            )
        )
    return out


def design_effect(noise: Noise, mean_run_length: float) -> float:
    """How much more a run's mean varies than independent points would let it (Kish): AR(1)
    noise inflates it by (1 + ρ)/(1 − ρ), a run offset by the run's length."""
    point, run = noise.sigma_point**2, noise.sigma_run**2
    if not point + run > 0:
        return 1.0
    ar = (1 + noise.rho) / (1 - noise.rho)
    return float(max(1.0, (point * ar + mean_run_length * run) / (point + run)))


def plausible(
    objectives: Sequence[float], sigma2: float, effect: float, profiled: int, level: float
) -> np.ndarray:
    """Which fits the data does not reject against the best: 2·ΔF/(σ²·effect) within the
    χ² quantile of `level` with one degree of freedom per profiled parameter."""
    F = np.asarray(objectives, dtype=float)
    if F.size == 0:
        return np.zeros(0, dtype=bool)
    deviance = 2 * (F - np.nanmin(F)) / max(sigma2 * effect, 1e-300)
    return np.asarray(np.isfinite(F) & (deviance <= stats.chi2.ppf(level, profiled)))


def open_ends(
    specs: Sequence[ParamSpec],
    kept: Sequence[Mapping[str, float]],
    fitted: Sequence[Mapping[str, float]],
) -> dict[str, str]:
    """Per profiled parameter, which end of its plausible range the data does not close
    ('below', 'above', 'both'): no fit that converged lies beyond it (past it are only the
    parameter's bounds, or fits that left another parameter's bounds), so the range ends
    where the law's bounds do, not where the data does."""
    out = {}
    for s in specs:
        lo = min(m[s.name] for m in kept)
        hi = max(m[s.name] for m in kept)
        below = not any(m[s.name] < lo for m in fitted)
        above = not any(m[s.name] > hi for m in fitted)
        if below or above:
            out[s.name] = "both" if below and above else ("below" if below else "above")
    return out
