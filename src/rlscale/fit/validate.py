"""Out-of-sample checks of a law: forecast held-out sizes, or the rest of each curve from a prefix.

Both refit the law on the training part (Jacobian uncertainty, no bootstrap) and score the
forecast of the held-out points: mean and max absolute error in L, and the fraction of true points
inside the 50%, 80% and 95% prediction bands.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from rlscale.errors import InputError
from rlscale.fit.data import FitData, load_fit_data
from rlscale.fit.estimator import FitConfig, LawFit, n_key
from rlscale.fit.laws import get_law

MIN_PREFIX_POINTS = 3  # a prefix fit needs two parameters and one point to spare


def prefix_length(points: int, fraction: float) -> int:
    """How many of a curve's first points make its `fraction` prefix (at least three)."""
    return max(MIN_PREFIX_POINTS, math.ceil(fraction * points))


LEVELS = (0.5, 0.8, 0.95)  # the bands whose coverage a forecast reports


def forecast_points(fit: LawFit, N: np.ndarray, X: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """A fit's forecasts (95% prediction band) at held-out points against their measured L:
    the points, their absolute errors and the share inside each band."""
    (L, lo, hi), err, inside = _forecast_errors(fit, N, X, truth)
    points = {"N": N, "X": X, "truth": truth, "L": L, "lo": lo, "hi": hi}
    return {k: v.tolist() for k, v in points.items()} | _scores(err, inside)


def _forecast_errors(
    fit: LawFit, N: np.ndarray, X: np.ndarray, truth: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, dict[float, np.ndarray]]:
    """(L, lo, hi) forecast at each point with its 95% band, its absolute error, and per band
    level whether the truth is inside."""
    _, _, L, bands = fit.bands(N, X, LEVELS)
    inside = {lv: (truth >= lo) & (truth <= hi) for lv, (lo, hi) in bands.items()}
    return (L, *bands[0.95]), np.abs(L - truth), inside


def _scores(err: np.ndarray, inside: dict[float, np.ndarray]) -> dict[str, float]:
    coverage = {f"coverage{round(100 * level)}": float(m.mean()) for level, m in inside.items()}
    return {"mae": float(err.mean()), "max_error": float(err.max())} | coverage


def _as_fit_data(data: pd.DataFrame | FitData, config: FitConfig) -> FitData:
    if isinstance(data, FitData):
        return data
    return load_fit_data(data, config.x, by=config.by, space=config.space)


def holdout_sizes(
    data: pd.DataFrame | FitData, config: FitConfig, sizes: Sequence[float] | None = None
) -> dict[str, Any]:
    """Fit without `sizes` (default: the largest size) and forecast them."""
    law = get_law(config.law)
    if not law.forecasts_unseen:
        raise InputError(
            f"--holdout-N needs a law defined at unseen sizes (paper_e_sat or powerlaw_floor); "
            f"{config.law!r} fits E separately for each size"
        )
    fd = _as_fit_data(data, config)
    all_sizes = fd.curves.sizes
    held = [float(all_sizes[-1])] if not sizes else [float(s) for s in sizes]
    for s in held:
        if not np.any(np.isclose(all_sizes, s, rtol=1e-6)):
            have = ", ".join(f"{x:g}" for x in all_sizes)
            raise InputError(f"--holdout-N {s:g} is not a size in the data ({have})")
    test = np.isclose(fd.N[:, None], np.array(held)[None, :], rtol=1e-6).any(axis=1)
    report = _forecast(fd, config, train=~test)
    return {"kind": "holdout_sizes", "held_out": held, **report}


def prefix(data: pd.DataFrame | FitData, config: FitConfig, fraction: float) -> dict[str, Any]:
    """Fit the first `fraction` of every curve (ordered by X) and forecast the rest."""
    if not 0 < fraction < 1:
        raise InputError(f"--prefix must be a fraction in (0, 1), not {fraction}")
    fd = _as_fit_data(data, config)
    train = np.zeros(fd.n, dtype=bool)
    for cid in np.unique(fd.curve_id):
        idx = np.flatnonzero(fd.curve_id == cid)
        order = idx[np.argsort(fd.curves.X[idx], kind="stable")]
        keep = prefix_length(idx.size, fraction)
        train[order[:keep]] = True
    if train.all():
        raise InputError(f"--prefix {fraction} leaves no points to forecast")
    report = _forecast(fd, config, train=train)
    return {"kind": "prefix", "fraction": fraction, **report}


def _forecast(fd: FitData, config: FitConfig, train: np.ndarray) -> dict[str, Any]:
    fit = LawFit(replace(config, bootstrap=0)).fit(fd.subset(train))
    test = ~train
    _, err, inside = _forecast_errors(fit, fd.N[test], fd.curves.X[test], fd.L[test])
    per_N = {}
    for N in np.unique(fd.N[test]):
        m = fd.N[test] == N
        per_N[n_key(N)] = _scores(err[m], _masked(inside, m)) | {"n": int(m.sum())}
    return _scores(err, inside) | {
        "profile": fit.profile_note or None,
        "n_train": int(train.sum()),
        "n_test": int(test.sum()),
        "fit_converged": fit.converged_,
        "per_N": per_N,
    }


def _masked(inside: dict[float, np.ndarray], m: np.ndarray) -> dict[float, np.ndarray]:
    return {level: v[m] for level, v in inside.items()}


BACKTEST_FRACTIONS = (0.1, 0.25, 0.5)


def backtest(
    data: pd.DataFrame | FitData,
    config: FitConfig,
    fractions: Sequence[float] = BACKTEST_FRACTIONS,
) -> dict[str, Any]:
    """How well the law forecasts this data: rolling-origin prefix forecasts (the first
    `fraction` of every run fitted, the rest forecast, for each fraction) and leave-one-size-out
    forecasts (every size in turn forecast by a fit on the others), each scored per size and
    overall (MAE, max error, coverage of the 50/80/95% bands); `pooled` sums each kind up."""
    fd = _as_fit_data(data, config)
    law = get_law(config.law)
    result: dict[str, Any] = {"law": config.law, "x": config.x, "noise": config.noise}
    result["prefix"] = [_attempt(partial(prefix, fd, config, f), fraction=f) for f in fractions]
    if not law.forecasts_unseen:
        result["leave_one_size_out"] = []
        result["leave_one_size_out_skipped"] = (
            f"law {config.law!r} has a free level per size: it cannot forecast a size it has not "
            f"seen (paper_e_sat and powerlaw_floor can)"
        )
    elif law.min_sizes >= fd.curves.G:
        result["leave_one_size_out"] = []
        result["leave_one_size_out_skipped"] = (
            f"law {config.law!r} needs {law.min_sizes} sizes to fit; the data has {fd.curves.G}, "
            f"none to spare"
        )
    else:
        result["leave_one_size_out"] = [
            _attempt(partial(holdout_sizes, fd, config, [s]), held_out=[float(s)])
            for s in fd.curves.sizes
        ]
    result["pooled"] = {
        kind: _pooled([r for r in result[kind] if "skipped" not in r])
        for kind in ("prefix", "leave_one_size_out")
    }
    return result


def _attempt(run: Callable[[], dict[str, Any]], **identity: Any) -> dict[str, Any]:
    """One backtest forecast, or why it could not be made (too few points, …)."""
    try:
        return run()
    except InputError as exc:
        return identity | {"skipped": str(exc)}


def _pooled(results: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """Scores over the points of several forecasts: n-weighted means, the largest max error."""
    if not results:
        return None
    n = np.array([r["n_test"] for r in results], dtype=float)
    out: dict[str, Any] = {
        "n_test": int(n.sum()),
        "max_error": max(r["max_error"] for r in results),
    }
    for key in ("mae", *(f"coverage{round(100 * level)}" for level in LEVELS)):
        out[key] = float(np.sum(n * np.array([r[key] for r in results])) / n.sum())
    return out
