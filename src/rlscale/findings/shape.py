"""Finding (b): each size's curve is a power law in C and in D, against two rivals: the
exponential decay (ln L linear in X) and a curved power law (ln L quadratic in ln X)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from rlscale.findings.base import DEPARTS, HOLDS, PAPER, UNIDENTIFIED, Finding, quantile
from rlscale.fit.estimator import n_key

R2_GOOD = 0.9  # a per-size form "follows" a curve from this R² in ln L up
RSS_RATIO = 0.9  # one form beats the other when its residual sum is at most this share of it
CURVE_SHARE = 0.1  # a bow (sagitta) in ln L up to this share of the curve's fall is straight,
CURVE_FLOOR = 0.01  # and so is one up to this in ln L (1% of L) on a curve that barely falls

RULE = (
    f"per size and resource: the power law wins when its R² in ln L is ≥ {R2_GOOD:g}, its "
    f"residual sum is ≤ {RSS_RATIO:g}× the exp-decay's, and a quadratic in ln X bows from it by "
    f"less than the larger of {CURVE_SHARE:.0%} of the curve's fall and {CURVE_FLOOR:g} in "
    f"ln L (upper 95% bound); the exp-decay wins when the reverse holds of the residual sums, "
    f"'curved' when the bow's lower bound (Bonferroni over sizes) exceeds that margin. Holds if "
    f"the power law wins everywhere, departs if a rival wins anywhere, else not identifiable"
)


def curvature(rows: pd.DataFrame, x: str) -> dict[str, float] | None:
    """ln L (the runs' mean at each step) against u = ln X centred: the quadratic's bow over
    the range (q·h², h the half-range of u), its standard error (ordinary least squares), and
    the straight line's fall over the range."""
    curve = rows[rows[x] > 0].groupby("step").agg(X=(x, "mean"), L=("L", "mean"))
    if len(curve) < 5 or (curve["L"] <= 0).any():
        return None
    u = np.log(curve["X"].to_numpy(dtype=float))
    u = u - u.mean()
    y = np.log(curve["L"].to_numpy(dtype=float))
    A = np.column_stack([np.ones_like(u), u, u**2])
    beta, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ beta
    dof = len(u) - 3
    s2 = float(resid @ resid) / dof
    cov = s2 * np.linalg.inv(A.T @ A)
    h = (u.max() - u.min()) / 2
    slope = np.polyfit(u, y, 1)[0]
    return {
        "bow": float(beta[2] * h * h),
        "bow_se": float(math.sqrt(cov[2, 2]) * h * h),
        "fall": float(abs(slope) * 2 * h),
        "df": float(dof),
    }


def _winner(
    power: float | None, expo: float | None, curve: dict[str, float] | None, m: int
) -> dict[str, Any]:
    p = -np.inf if power is None else power
    e = -np.inf if expo is None else expo
    rss_p, rss_e = 1.0 - p, 1.0 - e
    bow = None
    if curve is not None:
        margin = max(CURVE_SHARE * curve["fall"], CURVE_FLOOR)
        size = abs(curve["bow"])
        if size + quantile(curve["df"]) * curve["bow_se"] < margin:
            bow = "straight"
        elif size - quantile(curve["df"], m) * curve["bow_se"] > margin:
            bow = "curved"
        else:
            bow = "unclear"
    if e >= R2_GOOD and rss_e <= RSS_RATIO * rss_p:
        winner = "exp-decay"
    elif bow == "curved":
        winner = "curved"
    elif p >= R2_GOOD and rss_p <= RSS_RATIO * rss_e and bow == "straight":
        winner = "power law"
    else:
        winner = "neither"
    return {"r2_power": power, "r2_exp": expo, "curvature": curve, "bow": bow, "winner": winner}


def power_law_per_size(fits: dict[str, dict[str, Any]], table: pd.DataFrame) -> Finding:
    claim = "Each size follows a power law in C and in D (against exp-decay and a curved form)"
    sizes = sorted(table["N"].unique()) if len(table) else []
    m = 2 * len(sizes)
    per: dict[str, dict[str, Any]] = {}
    for x in ("C", "D"):
        power = fits.get(f"loglinear-{x}", {}).get("r2_per_N") or {}
        expo = fits.get(f"expdecay-{x}", {}).get("r2_per_N") or {}
        per[x] = {
            n_key(float(N)): _winner(
                power.get(n_key(float(N))),
                expo.get(n_key(float(N))),
                curvature(table[table["N"] == N], x),
                m,
            )
            for N in sizes
        }
    wins = [w["winner"] for by_size in per.values() for w in by_size.values()]
    if not wins:
        return Finding("b", claim, PAPER["b"], "no per-size fits", UNIDENTIFIED, RULE)
    same = same_evidence(table)
    measured = "; ".join(_summary(x, by_size) for x, by_size in per.items())
    if same is not None and same > 0.999:
        measured += (
            f"; within each size C and D carry nearly the same evidence (corr of ln C and ln D "
            f"≥ {same:.4f}): the two verdicts are one test, not two"
        )
    if any(w in ("exp-decay", "curved") for w in wins):
        verdict = DEPARTS
    elif all(w == "power law" for w in wins):
        verdict = HOLDS
    else:
        verdict = UNIDENTIFIED
    numbers = per | {"corr_lnC_lnD_min": same}
    return Finding("b", claim, PAPER["b"], measured, verdict, RULE, numbers=numbers)


def same_evidence(table: pd.DataFrame) -> float | None:
    """The smallest, over sizes, correlation of ln C and ln D along the size's mean curve."""
    out = []
    for _, rows in table[(table["C"] > 0) & (table["D"] > 0)].groupby("N"):
        curve = rows.groupby("step")[["C", "D"]].mean()
        if len(curve) > 2:
            out.append(float(np.corrcoef(np.log(curve["C"]), np.log(curve["D"]))[0, 1]))
    return min(out) if out else None


def _summary(x: str, by_size: dict[str, dict[str, Any]]) -> str:
    winners = [v["winner"] for v in by_size.values()]
    counts = ", ".join(
        f"{w} {winners.count(w)}" for w in ("exp-decay", "curved", "neither") if w in winners
    )
    powers = [v["r2_power"] for v in by_size.values() if v["r2_power"] is not None]
    bows = [v["curvature"] for v in by_size.values() if v["curvature"]]
    flat = len(by_size) - len(powers)
    r2 = [f"R² power ≥ {min(powers):.3f}"] if powers else []
    if bows:
        share = max((abs(c["bow"]) / c["fall"] for c in bows if c["fall"] > 0), default=0.0)
        r2 += [f"largest bow {share:.0%} of the fall"]
    r2 += [f"{flat} size(s) with L never varying: R² undefined"] if flat else []
    rest = f", {counts}" if counts else ""
    return (
        f"{x}: power law wins {winners.count('power law')}/{len(by_size)} sizes{rest} "
        f"({', '.join(r2)})"
    )
