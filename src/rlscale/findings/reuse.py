"""Finding (d): reusing data up to τ = 25 costs little — an equivalence test.

"Costs little" is a claim that the cost is small, so it must be shown, not merely fail to be
rejected: it holds only when the upper 95% bound of every τ ≤ 25 cost lies below the tolerance
(a share of what τ = 1 gained from its start, the gain's own uncertainty included). It departs
when some cost's lower bound is above the tolerance (Bonferroni over the τ values); between the
two, the study cannot tell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from rlscale.findings.base import (
    DEPARTS,
    HOLDS,
    PAPER,
    UNIDENTIFIED,
    Finding,
    quantile,
    welch_df,
)
from rlscale.findings.evidence import RunNoise, sampling_var
from rlscale.units import size_text

REUSE_TAU_MAX = 25  # the paper: stable up to τ = 25
REUSE_SHARE = 0.25  # "costs little": at most this share of what τ = 1 gained

RULE = (
    f"for each τ ≤ {REUSE_TAU_MAX}: the cost is final L(τ) − final L(τ = 1) and the tolerance "
    f"{REUSE_SHARE:.0%} of what τ = 1 gained from its start; holds if τ = 1's gain is above 0 "
    f"and every cost's upper 95% bound is below the tolerance (cost − tolerance, with both "
    f"uncertainties); departs if some cost's lower bound (Bonferroni over the τ values) is "
    f"above it; else not identifiable. A run's final L carries the run-to-run variance"
)


def _final_var(r: dict[str, Any], noise: RunNoise) -> tuple[float, float]:
    """The variance of a τ's final L and its df: across seeds as measured, else the
    evaluation's sampling variance plus the run-to-run variance."""
    se = r.get("final_L_se") or 0.0
    seeds = int(r.get("seeds") or 1)
    if r.get("se_kind") == "across seeds" and seeds > 1:
        return se * se, float(seeds - 1)
    return se * se + noise.sd**2 / seeds, noise.df


def reuse_costs_little(
    reuse: dict[str, dict[str, Any]], reuse_N: float | None, noise: RunNoise
) -> Finding:
    claim = f"Reusing data up to τ = {REUSE_TAU_MAX} costs little"
    base = reuse.get("1")
    others = {int(t): r for t, r in reuse.items() if t != "1"}
    if base is None or not others or base.get("start_L") is None:
        return Finding("d", claim, PAPER["d"], "no data-reuse runs", UNIDENTIFIED, RULE)
    v1, df1 = _final_var(base, noise)
    v0 = (base.get("start_L_se") or 0.0) ** 2
    gain = base["start_L"] - base["final_L"]
    gain_se = math.sqrt(v0 + v1)
    gain_lo = gain - quantile(welch_df([(v0, math.inf), (v1, df1)])) * gain_se
    costs = {}
    judged = [t for t in sorted(others) if t <= REUSE_TAU_MAX]
    for tau, r in sorted(others.items()):
        vt, dft = _final_var(r, noise)
        margin = r["final_L"] - base["final_L"] - REUSE_SHARE * gain
        parts = [(vt, dft), ((1 - REUSE_SHARE) ** 2 * v1, df1), (REUSE_SHARE**2 * v0, math.inf)]
        se = math.sqrt(sum(v for v, _ in parts))
        df = welch_df(parts)
        costs[str(tau)] = {
            "cost": r["final_L"] - base["final_L"],
            "se": math.sqrt(vt + v1),
            "share_of_gain": (r["final_L"] - base["final_L"]) / gain if gain > 0 else None,
            "minus_tolerance": margin,
            "upper95": margin + quantile(df) * se,
            "lower95_bonferroni": margin - quantile(df, len(judged)) * se,
            "judged": tau <= REUSE_TAU_MAX,
        }
    inside = [costs[str(t)] for t in judged]
    if not inside or gain_lo <= 0:
        verdict = UNIDENTIFIED
    elif any(c["lower95_bonferroni"] > 0 for c in inside):
        verdict = DEPARTS
    elif all(c["upper95"] < 0 for c in inside):
        verdict = HOLDS
    else:
        verdict = UNIDENTIFIED
    measured = _measured(gain, gain_se, gain_lo, base, costs, noise, verdict)
    departure = f"reuse on N = {size_text(reuse_N)} (the paper: 7B)" if reuse_N else ""
    numbers = {"gain": gain, "gain_se": gain_se, "tolerance": REUSE_SHARE * gain, "costs": costs}
    numbers["run_noise"] = noise.to_dict()
    return Finding("d", claim, PAPER["d"], measured, verdict, RULE, departure, numbers)


def _measured(
    gain: float,
    gain_se: float,
    gain_lo: float,
    base: dict[str, Any],
    costs: dict[str, dict[str, Any]],
    noise: RunNoise,
    verdict: str,
) -> str:
    head = (
        f"τ = 1 gained {gain:.3f} ± {gain_se:.3f} (final L {base['final_L']:.3f}); tolerance "
        f"{REUSE_SHARE * gain:.3f}; "
    )
    body = ", ".join(
        f"τ = {t}: {c['cost']:+.3f} ± {c['se']:.3f}"
        + (f" ({c['share_of_gain']:.0%} of the gain)" if c["share_of_gain"] is not None else "")
        + ("" if c["judged"] else " (not judged)")
        for t, c in costs.items()
    )
    tail = f"; {noise.text}"
    if gain_lo <= 0:
        tail += "; τ = 1's gain is not above 0 beyond its uncertainty: no tolerance to test"
    elif verdict == UNIDENTIFIED:
        worst = max((c["upper95"] for c in costs.values() if c["judged"]), default=0.0)
        tail += (
            f"; not shown to cost little nor much: the largest upper bound is "
            f"{worst:+.3f} past the tolerance"
        )
    return head + body + tail


def reuse_from_table(table: pd.DataFrame) -> tuple[dict[str, dict[str, Any]], float | None]:
    """The data-reuse runs of a long table (the size with runs at τ > 1): per τ its start and
    final L with their standard errors, as `analysis.reuse_curves` gives them for a study."""
    if "tau" not in table or not (table["tau"] > 1).any():
        return {}, None
    N = float(table.loc[table["tau"] > 1, "N"].iloc[0])
    rows = table[table["N"] == N]
    out = {}
    for tau in sorted(rows["tau"].unique()):
        part = rows[rows["tau"] == tau]
        start_L, start_se, _ = _mean_se(part[part["step"] == 0])
        final = part[part["step"] == part["step"].max()]
        final_L, final_se, kind = _mean_se(final)
        out[str(int(tau))] = {
            "start_L": start_L,
            "start_L_se": start_se,
            "final_L": final_L,
            "final_L_se": final_se,
            "se_kind": kind,
            "seeds": int(final["run"].nunique()),
        }
    return out, N


def _mean_se(rows: pd.DataFrame) -> tuple[float | None, float | None, str]:
    if rows.empty:
        return None, None, "none"
    mean = float(rows["L"].mean())
    if len(rows) > 1:
        return mean, float(rows["L"].std(ddof=1) / np.sqrt(len(rows))), "across seeds"
    return mean, float(np.sqrt(sampling_var(rows).iloc[0])), "sampling"
