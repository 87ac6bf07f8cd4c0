"""The paper's findings, each measured in a study and judged from the numbers by a rule that
could fail, with its error rate measured on simulated studies whose truth is known
(`benchmarks/verdict_calibration.py`).

(a) larger N is better at equal C and D (level) and learns more per sample (learning);
(b) each size follows a power law in C and in D (against exp-decay and a curved form);
(c) k(N) rises with N and saturates (against k(N) forms that keep growing);
(d) data reuse up to τ = 25 costs little (an equivalence test);
(e) in a study of several model families: the law holds for each family.

Every verdict is `holds`, `departs` or `not identifiable`. Uncertainty: the evaluation's
sampling error and the run-to-run spread (measured from seeds, else the paper's figure, stated in
the verdict). Pure functions: tables and FitResult dicts in, JSON-ready dicts out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import pandas as pd

from rlscale.findings.base import DEPARTS, HOLDS, PAPER, UNIDENTIFIED, Finding
from rlscale.findings.evidence import RUN_SD_ASSUMED, RunNoise, run_noise
from rlscale.findings.families import law_holds_per_family
from rlscale.findings.kgrowth import k_rises_and_saturates, ratio_interval
from rlscale.findings.level import larger_learns_more
from rlscale.findings.reuse import REUSE_SHARE, REUSE_TAU_MAX, reuse_costs_little
from rlscale.findings.reuse import reuse_from_table as reuse_from_table
from rlscale.findings.shape import power_law_per_size
from rlscale.fit.estimator import json_safe
from rlscale.units import size_text

__all__ = [
    "DEPARTS",
    "HOLDS",
    "PAPER",
    "REUSE_SHARE",
    "REUSE_TAU_MAX",
    "RUN_SD_ASSUMED",
    "UNIDENTIFIED",
    "Finding",
    "RunNoise",
    "law_holds_per_family",
    "paper_findings",
    "ratio_interval",
    "reuse_from_table",
]


def paper_findings(
    table: pd.DataFrame,
    fits: dict[str, dict[str, Any]],
    reuse: dict[str, dict[str, Any]],
    reuse_N: float | None = None,
    departures: Sequence[str] = (),
    noise: RunNoise | None = None,
) -> dict[str, Any]:
    """The four findings (in order a–d) and the study's departures from the paper's protocol.
    `table` is the τ = 1 fit table, with its step-0 rows (C = D = 0) where the study has them:
    they give each size's starting level."""
    curves = table[table["step"] > 0] if len(table) else table
    noise = noise or run_noise(curves)
    sizes, length = _scale_departures(curves)
    rows = [
        replace(larger_learns_more(table, noise), departure=sizes),
        replace(power_law_per_size(fits, curves), departure=length),
        replace(k_rises_and_saturates(fits), departure=sizes),
        reuse_costs_little(reuse, reuse_N, noise),
    ]
    out = {
        "findings": [asdict(f) for f in rows],
        "departures": list(departures),
        "run_noise": noise.to_dict(),
    }
    result: dict[str, Any] = json_safe(out)  # an assumed spread's df is infinite: null
    return result


PAPER_SIZES = (0.36e9, 70.21e9)  # Qwen2.5 0.5B and 72B, non-embedding
PAPER_STEPS, PAPER_PROMPTS = 105, 512


def _scale_departures(table: pd.DataFrame) -> tuple[str, str]:
    """How the study's sizes and run length compare with the paper's, in numbers."""
    if table.empty:
        return "", ""
    lo, hi = float(table["N"].min()), float(table["N"].max())
    paper_lo, paper_hi = PAPER_SIZES
    sizes = (
        f"N {size_text(lo)}–{size_text(hi)} ({hi / lo:.0f}×, {table['N'].nunique()} sizes); "
        f"the paper: {size_text(paper_lo)}–{size_text(paper_hi)} ({paper_hi / paper_lo:.0f}×, "
        "7 sizes)"
    )
    last = table.sort_values("step").iloc[-1]
    per_step = float(last["D"]) / float(last["step"])
    points = table.groupby("run")["step"].count().min()
    length = (
        f"{int(last['step'])} steps × {per_step:.0f} prompts, ≥ {points} evaluated points a run; "
        f"the paper: {PAPER_STEPS} × {PAPER_PROMPTS}, every step"
    )
    return sizes, length
