"""Forms of k(N) compared on per-size slopes: does k saturate, or keep growing?

Each size's free slope k (the log–log fit's, with its standard error) is fitted by three
two-parameter forms: the paper's saturating k = Kmax/(1 + N0/N), k linear in ln N and
k = a·N^b. Each has one parameter in which k is linear, so a form's fit is a grid over its other
parameter with the linear one in closed form (weighted least squares, deterministic). Equal
parameter counts make the weighted residual sums (χ²) directly comparable.

The comparison is a likelihood-ratio test calibrated by a parametric bootstrap: the statistic
Δ = χ²(best rival) − χ²(saturating) is recomputed on slopes simulated from each rival's fit (and,
the other way round, from the saturating fit), so "saturates" is said only when Δ exceeds what
growth alone gives in 95% of simulated studies. Scatter of the slopes beyond their standard
errors (overdispersion) scales the simulated noise. Pure numpy: arrays in, dicts out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

FORMS = ("saturating", "loglinear", "power")
RIVALS = ("loglinear", "power")
LEVEL = 0.05  # the tests' false-positive rate
DRAWS = 400  # parametric-bootstrap draws a test


@dataclass(frozen=True)
class FormFit:
    """One form's weighted fit: its two parameters, χ² and fitted k at each size."""

    form: str
    params: dict[str, float]
    chi2: float
    fitted: np.ndarray


def _grid(form: str, N: np.ndarray) -> tuple[np.ndarray, np.ndarray, str, str]:
    """For a form, its nonlinear parameter's grid and the design column at each grid value
    (shape grid × sizes), with the names of the linear and the grid parameter."""
    if form == "saturating":
        n0 = np.geomspace(N.min() * 1e-3, N.max() * 1e4, 481)
        return n0, 1.0 / (1.0 + n0[:, None] / N[None, :]), "Kmax", "N0"
    if form == "power":
        b = np.linspace(-1.5, 1.5, 481)
        return b, (N[None, :] / np.exp(np.mean(np.log(N)))) ** b[:, None], "a", "b"
    raise ValueError(f"unknown k(N) form {form!r}: one of {', '.join(FORMS)}")


def fit_forms_many(N: np.ndarray, k: np.ndarray, se: np.ndarray) -> dict[str, np.ndarray]:
    """χ² of each form's best fit for each row of `k` (draws × sizes): vectorised for the
    bootstrap."""
    w = 1.0 / se**2
    k = np.atleast_2d(k)
    out = {"loglinear": _loglinear_chi2(np.log(N), k, w)}
    for form in ("saturating", "power"):
        _, g, _, _ = _grid(form, N)
        gw = g * w  # grid × sizes
        coef = (k @ gw.T) / np.sum(gw * g, axis=1)  # draws × grid
        resid2 = np.einsum("dn,n->d", k**2, w)[:, None] - coef**2 * np.sum(gw * g, axis=1)
        out[form] = resid2.min(axis=1)
    return out


def _loglinear_chi2(x: np.ndarray, k: np.ndarray, w: np.ndarray) -> np.ndarray:
    X = np.column_stack([np.ones_like(x), x]) * np.sqrt(w)[:, None]
    y = k * np.sqrt(w)[None, :]
    beta, *_ = np.linalg.lstsq(X, y.T, rcond=None)
    return np.asarray(np.sum((y.T - X @ beta) ** 2, axis=0))


def fit_form(form: str, N: np.ndarray, k: np.ndarray, se: np.ndarray) -> FormFit:
    """One form's weighted least-squares fit to the slopes."""
    w = 1.0 / se**2
    if form == "loglinear":
        X = np.column_stack([np.ones_like(N), np.log(N)])
        beta = np.linalg.lstsq(X * np.sqrt(w)[:, None], k * np.sqrt(w), rcond=None)[0]
        fitted = X @ beta
        params = {"a": float(beta[0]), "b_per_lnN": float(beta[1])}
    else:
        values, g, linear, nonlinear = _grid(form, N)
        coef = (g * w) @ k / np.sum(g * g * w, axis=1)
        chi2 = np.sum(w * (k[None, :] - coef[:, None] * g) ** 2, axis=1)
        best = int(np.argmin(chi2))
        fitted = coef[best] * g[best]
        params = {linear: float(coef[best]), nonlinear: float(values[best])}
        if form == "power":
            params["a"] = float(coef[best] / np.exp(np.mean(np.log(N))) ** values[best])
    return FormFit(form, params, float(np.sum(w * (k - fitted) ** 2)), fitted)


def compare_k_forms(
    N: np.ndarray, k: np.ndarray, se: np.ndarray, draws: int = DRAWS, seed: int = 0
) -> dict[str, Any]:
    """The three forms fitted to the slopes, the trend of k in ln N, and the two bootstrap
    tests: saturating against growth (`p_saturating`: how often growth alone beats the
    saturating form by as much) and growth against saturation (`p_growth`)."""
    N, k, se = (np.asarray(a, dtype=float) for a in (N, k, se))
    if len(N) < 3:
        raise ValueError("comparing k(N) forms needs at least 3 sizes")
    fits = {form: fit_form(form, N, k, se) for form in FORMS}
    dof = len(N) - 2
    phi = max(1.0, min(f.chi2 for f in fits.values()) / dof)
    rival = min(RIVALS, key=lambda f: fits[f].chi2)
    delta = fits[rival].chi2 - fits["saturating"].chi2
    rng = np.random.default_rng(seed)
    p_sat = max(_p_value(fits[r].fitted, N, se, phi, delta, draws, rng, +1) for r in RIVALS)
    p_growth = _p_value(fits["saturating"].fitted, N, se, phi, -delta, draws, rng, -1)
    return {
        "forms": {f: {"params": v.params, "chi2": v.chi2} for f, v in fits.items()},
        "best_rival": rival,
        "delta_chi2": float(delta),
        "overdispersion": phi,
        "p_saturating": p_sat,
        "p_growth": p_growth,
        "level": LEVEL,
        "trend": k_trend(N, k, se, phi),
    }


def _p_value(
    truth: np.ndarray,
    N: np.ndarray,
    se: np.ndarray,
    phi: float,
    observed: float,
    draws: int,
    rng: np.random.Generator,
    sign: int,
) -> float:
    """Share of studies simulated from `truth` whose statistic (sign·Δ) reaches the observed."""
    sim = truth[None, :] + se[None, :] * np.sqrt(phi) * rng.standard_normal((draws, len(N)))
    chi2 = fit_forms_many(N, sim, se)
    rival = np.minimum(*(chi2[r] for r in RIVALS))
    stat = sign * (rival - chi2["saturating"])
    return float((1 + np.sum(stat >= observed)) / (draws + 1))


def k_trend(N: np.ndarray, k: np.ndarray, se: np.ndarray, phi: float) -> dict[str, float]:
    """Weighted slope of k on log10 N over every size, its standard error (the slopes' errors
    scaled by `phi`, their scatter around the best-fitting form: a k(N) that rises but not
    linearly in log N is no scatter) and its 95% interval (t with sizes − 2 df)."""
    x = np.log10(np.asarray(N, dtype=float))
    w = 1.0 / np.asarray(se, dtype=float) ** 2
    xm = np.sum(w * x) / np.sum(w)
    sxx = np.sum(w * (x - xm) ** 2)
    slope = float(np.sum(w * (x - xm) * (k - np.sum(w * k) / np.sum(w))) / sxx)
    dof = len(x) - 2
    err = float(np.sqrt(phi / sxx))
    q = float(stats.t.ppf(0.975, dof))
    return {"slope_per_decade": slope, "se": err, "lo": slope - q * err, "hi": slope + q * err}
