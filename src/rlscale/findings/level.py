"""Finding (a): a larger model is better at equal compute and data (level), and learns more per
sample net of where it starts (learning).

Level and learning are separate claims. On a ladder whose larger rungs start lower, the level
comparison holds even if nothing learns; the learning comparison (the fall of ln L from each
size's own start, at equal data) does not. Per-FLOP learning (the same fall at equal compute) is
reported beside them: a larger size pays more per step, so at a smaller size's final compute it
has run few steps, and the paper's law does not make it learn more there.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import pandas as pd

from rlscale.findings.base import DEPARTS, HOLDS, PAPER, UNIDENTIFIED, Finding, quantile
from rlscale.findings.evidence import RunNoise, Start, at, mean_curve, starting_levels

LEVEL_POINTS = (0.0, 0.5, 1.0)  # where in each common range (log x) level is compared


def size_pairs(table: pd.DataFrame, x: str, noise: RunNoise) -> list[tuple[Any, ...]]:
    """Adjacent sizes with their mean curves and the x range both span (log–log interpolation
    needs x > 0, so the start is not inside it)."""
    rows = table[table[x] > 0]
    curves = {float(N): mean_curve(rows[rows["N"] == N], x, noise) for N in rows["N"].unique()}
    out = []
    for (n_small, small), (n_large, large) in itertools.pairwise(sorted(curves.items())):
        lo = max(small.index.min(), large.index.min())
        hi = min(small.index.max(), large.index.max())
        if lo <= hi:
            out.append((n_small, small, n_large, large, float(lo), float(hi)))
    return out


def level_comparisons(table: pd.DataFrame, x: str, noise: RunNoise) -> list[dict[str, float]]:
    """L(smaller) − L(larger) at points of each adjacent pair's common x range."""
    out = []
    for n_small, small, n_large, large, lo, hi in size_pairs(table, x, noise):
        for f in LEVEL_POINTS:
            X = math.exp(math.log(lo) + f * (math.log(hi) - math.log(lo)))
            (Ls, vs), (Ll, vl) = at(small, X), at(large, X)
            out.append(_row(n_small, n_large, x, X, Ls - Ll, vs + vl))
    return out


def learning_comparisons(
    table: pd.DataFrame, x: str, noise: RunNoise, starts: dict[float, Start]
) -> list[dict[str, float]]:
    """At the end of each adjacent pair's common x range: the larger size's fall of ln L from
    its own start minus the smaller's (positive: the larger learned more)."""
    out = []
    for n_small, small, n_large, large, _, hi in size_pairs(table, x, noise):
        falls = []
        for N, curve in ((n_small, small), (n_large, large)):
            L, var = at(curve, hi)
            s = starts[N]
            falls.append((math.log(s.L / L), s.var / s.L**2 + var / L**2))
        (fall_s, v_s), (fall_l, v_l) = falls
        out.append(_row(n_small, n_large, x, hi, fall_l - fall_s, v_s + v_l))
    return out


def _row(
    n_small: float, n_large: float, x: str, X: float, diff: float, var: float
) -> dict[str, float]:
    return {"N_small": n_small, "N_large": n_large, x: X, "diff": diff, "se": math.sqrt(var)}


def tally(comparisons: list[dict[str, float]], df: float) -> dict[str, Any]:
    """Every comparison beyond its 95% interval in the expected direction (`all_significant`,
    an intersection test: no correction needed), and reversals beyond the Bonferroni bound over
    all of them."""
    m = len(comparisons)
    q, q_any = quantile(df), quantile(df, m)
    return {
        "compared": m,
        "expected_sign": sum(c["diff"] > 0 for c in comparisons),
        "significant": sum(c["diff"] > q * c["se"] for c in comparisons),
        "reversals": sum(c["diff"] < -q_any * c["se"] for c in comparisons),
        "all_significant": m > 0 and all(c["diff"] > q * c["se"] for c in comparisons),
        "min_z": min((c["diff"] / c["se"] for c in comparisons if c["se"] > 0), default=None),
    }


def _judge(parts: list[dict[str, Any]]) -> str:
    if any(p["reversals"] for p in parts):
        return DEPARTS
    if parts and all(p["all_significant"] for p in parts):
        return HOLDS
    return UNIDENTIFIED


RULE = (
    "level: at the start, middle and end (log x) of each adjacent pair's common C and D range, "
    "L(smaller) − L(larger) > 0 beyond its 95% interval everywhere; learning: at the end of each "
    "pair's common D range the larger size's fall of ln L from its own start exceeds the "
    "smaller's beyond its 95% interval. Holds if both; departs if any level or learning "
    "comparison reverses beyond a Bonferroni-corrected 95% bound; else not identifiable. "
    "Per-FLOP learning (the same fall at equal C) is reported, not judged"
)


def larger_learns_more(table: pd.DataFrame, noise: RunNoise) -> Finding:
    claim = (
        "Larger N is better at equal compute and data, and learns more per sample "
        "(net of where it starts)"
    )
    if table.empty or table["N"].nunique() < 2:
        return Finding("a", claim, PAPER["a"], "fewer than two sizes", UNIDENTIFIED, RULE)
    starts = starting_levels(table)
    level = {x: level_comparisons(table, x, noise) for x in ("C", "D")}
    learn = {x: learning_comparisons(table, x, noise, starts) for x in ("C", "D")}
    tallies = {
        "level": {x: tally(c, noise.df) for x, c in level.items()},
        "learning": {x: tally(c, noise.df) for x, c in learn.items()},
    }
    if min(t["compared"] for t in tallies["level"].values()) == 0:
        return Finding("a", claim, PAPER["a"], "no common range", UNIDENTIFIED, RULE)
    level_verdict = _judge(list(tallies["level"].values()))
    learn_verdict = _judge([tallies["learning"]["D"]])
    verdict = _combine(level_verdict, learn_verdict)
    from_step = {s.step for s in starts.values()}
    measured = _measured(tallies, level_verdict, learn_verdict, from_step, noise)
    numbers = tallies | {
        "level_verdict": level_verdict,
        "learning_verdict": learn_verdict,
        "comparisons": {"level": level, "learning": learn},
        "run_noise": noise.to_dict(),
    }
    return Finding("a", claim, PAPER["a"], measured, verdict, RULE, numbers=numbers)


def _combine(level: str, learning: str) -> str:
    if DEPARTS in (level, learning):
        return DEPARTS
    return HOLDS if level == learning == HOLDS else UNIDENTIFIED


def _measured(
    tallies: dict[str, dict[str, dict[str, Any]]],
    level: str,
    learning: str,
    from_step: set[int],
    noise: RunNoise,
) -> str:
    lv = tallies["level"]
    ln = tallies["learning"]
    start = "step 0" if from_step == {0} else "its first evaluated step"
    return (
        f"level {level}: larger lower beyond 95% in {lv['C']['significant']}/"
        f"{lv['C']['compared']} comparisons at equal C and {lv['D']['significant']}/"
        f"{lv['D']['compared']} at equal D, {lv['C']['reversals'] + lv['D']['reversals']} "
        f"reversal(s); learning per sample {learning}: the larger fell more from {start} in "
        f"{ln['D']['significant']}/{ln['D']['compared']} pairs beyond 95%, "
        f"{ln['D']['reversals']} reversal(s); per FLOP (reported): the larger fell more in "
        f"{ln['C']['expected_sign']}/{ln['C']['compared']} pairs ({ln['C']['significant']} beyond "
        f"95%); {noise.text}"
    )
