"""What every finding shares: its verdicts, the Finding record, the paper's figures, and the
quantiles its rules use."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scipy import stats

HOLDS, DEPARTS, UNIDENTIFIED = "holds", "departs", "not identifiable"
LEVEL = 0.05  # each rule's error rate: two-sided 95% intervals, Bonferroni over "any of m"

PAPER = {
    "a": "Qwen2.5 0.5B–72B (Base): the larger model has the lower test loss at every compute "
    "and data budget; final L 0.942 (0.5B) … 0.436 (72B).",
    "b": "log L is linear in log C and in log D for every size: all-size fit on C "
    "R² 0.9955 (732 points).",
    "c": "k(N) = Kmax/(1 + N0/N) with Kmax 0.133, N0 13.8B (Base, C; log10): inside 0.5B–72B, "
    "so k saturates within the studied sizes.",
    "d": "7B, 100 steps, τ ∈ {1, 2, 5, 20, 25, 50, 100}: final L stable up to τ = 25, "
    "degrades at τ = 100.",
    "e": "Qwen2.5 Base and Instruct, 0.5B–72B, each family fitted on its own (Table 6, on C): "
    "Base Kmax 0.1349, N0 13.09B, R² 0.9955; Instruct Kmax 0.1276, N0 17.27B, R² 0.9970.",
}


@dataclass(frozen=True)
class Finding:
    key: str
    claim: str
    paper: str
    measured: str
    verdict: str
    rule: str
    departure: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)


def quantile(df: float, comparisons: int = 1) -> float:
    """The two-sided critical value at LEVEL, Bonferroni-corrected over `comparisons`: Student's
    t with `df` degrees of freedom (the normal's when df is infinite)."""
    p = 1.0 - LEVEL / (2 * max(1, comparisons))
    return float(stats.norm.ppf(p)) if not math.isfinite(df) else float(stats.t.ppf(p, df))


def welch_df(parts: list[tuple[float, float]]) -> float:
    """Satterthwaite's degrees of freedom of a sum of variances, each given as (variance, df)."""
    total = sum(v for v, _ in parts)
    denom = sum(v * v / df for v, df in parts if math.isfinite(df) and df > 0 and v > 0)
    if total <= 0 or denom <= 0:
        return math.inf
    return total * total / denom
