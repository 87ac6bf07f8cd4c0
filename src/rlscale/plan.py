"""Budget planning from a fitted law: which model size and how many steps for a compute budget.

Pure functions of a fitted `LawFit`. For a budget X (compute C, data D or steps, in the law's
resource) and candidate sizes it gives each size's predicted L with its 95% band and the steps the
budget buys, the best size, where k(N) reaches 50% and 90% of Kmax (N0·f/(1 − f)), and, at the best
size, what doubling the model buys against doubling the steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rlscale.errors import InputError
from rlscale.fit.estimator import LawFit


@dataclass(frozen=True)
class Candidate:
    N: float
    L: float
    lo: float
    hi: float
    steps: float | None  # steps the budget buys at this size (None: per-step cost unknown)


@dataclass(frozen=True)
class Doubling:
    """At the best size: L after doubling the model (same steps) or the steps (same model)."""

    N: float
    L: float
    L_double_N: float | None
    L_double_steps: float
    note: str


@dataclass(frozen=True)
class Plan:
    x: str
    budget: float
    candidates: list[Candidate]
    best_N: float
    k50_N: float | None
    k90_N: float | None
    doubling: Doubling

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def most_steps(self) -> float | None:
        """The most steps the budget buys at any candidate size (None: cost unknown)."""
        known = [c.steps for c in self.candidates if c.steps is not None]
        return max(known) if known else None


def k_fraction_size(fit: LawFit, fraction: float) -> float | None:
    """Size where k(N) = fraction·Kmax, for laws with k(N) = Kmax/(1 + N0/N)."""
    if "N0" not in fit.params_:
        return None
    return float(fit.params_["N0"] * fraction / (1.0 - fraction))


def steps_for(fit: LawFit, N: float, budget: float, per_step: float | None = None) -> float | None:
    """Steps a budget buys at size N: C from measured (or given) cost per step, D from batch."""
    x = fit.config.x
    if x == "step":
        return budget
    if per_step is not None:
        cost = 6.0 * N * per_step if x == "C" else per_step
        return budget / cost
    known = fit.per_step_ or {}
    if x == "D":
        d = known.get("D")
        return budget / float(d) if isinstance(d, int | float) and d > 0 else None
    c_per_step = known.get("C")
    pairs = c_per_step.items() if isinstance(c_per_step, dict) else ()
    measured = {float(k): float(v) for k, v in pairs}
    if N in measured:
        return budget / measured[N]
    if not measured:
        return None
    tokens = float(np.median([c / (6.0 * n) for n, c in measured.items()]))
    return budget / (6.0 * N * tokens)


def plan(
    fit: LawFit,
    budget: float,
    sizes: Sequence[float] | None = None,
    tokens_or_prompts_per_step: float | None = None,
) -> Plan:
    """Rank candidate sizes for `budget` (in the fit's resource x)."""
    if not (math.isfinite(budget) and budget > 0):
        raise InputError(f"--budget must be a positive number, not {budget}")
    per_step = tokens_or_prompts_per_step
    if per_step is not None and not (math.isfinite(per_step) and per_step > 0):
        raise InputError(f"--per-step must be a positive number, not {per_step:g}")
    candidates_N = [float(s) for s in sizes] if sizes else [float(s) for s in fit.sizes_]
    pred = fit.predict(candidates_N, budget)
    L, lo, hi = (pred[c].to_numpy(dtype=float) for c in ("L", "lo", "hi"))
    cands = [
        Candidate(N, float(L[i]), float(lo[i]), float(hi[i]), steps_for(fit, N, budget, per_step))
        for i, N in enumerate(candidates_N)
    ]
    # a size the budget cannot train for one step is no plan, whatever its curve says
    affordable = [c for c in cands if c.steps is None or c.steps >= 1]
    best = min(affordable or cands, key=lambda c: c.L)
    return Plan(
        x=fit.config.x,
        budget=budget,
        candidates=cands,
        best_N=best.N,
        k50_N=k_fraction_size(fit, 0.5),
        k90_N=k_fraction_size(fit, 0.9),
        doubling=_doubling(fit, best, budget),
    )


def _doubling(fit: LawFit, best: Candidate, budget: float) -> Doubling:
    # With C = 6·N·tokens, a model twice as big doubles the compute of the same steps.
    x_double_N = 2 * budget if fit.config.x == "C" else budget
    L_steps = float(fit.predict(best.N, 2 * budget)["L"].iloc[0])
    try:
        L_N: float | None = float(fit.predict(2 * best.N, x_double_N)["L"].iloc[0])
        note = "both double the compute" if fit.config.x == "C" else "doubling N keeps D"
    except InputError:
        L_N, note = None, f"law {fit.config.law!r} cannot forecast N={2 * best.N:g}"
    return Doubling(best.N, best.L, L_N, L_steps, note)
