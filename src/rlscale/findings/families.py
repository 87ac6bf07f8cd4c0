"""Finding (e): in a study of several model families, the law holds for each family."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rlscale.findings.base import DEPARTS, HOLDS, PAPER, UNIDENTIFIED, Finding
from rlscale.findings.shape import R2_GOOD, power_law_per_size
from rlscale.units import size_text


def law_holds_per_family(
    per_family: dict[str, tuple[dict[str, dict[str, Any]], pd.DataFrame]],
    joint: dict[str, Any] | None = None,
) -> Finding:
    """Finding (b) and the paper law's all-size fit on C, judged for each family's runs;
    `per_family` maps a family to its fits and its fit table. The joint fit's verdict (one k(N)
    for every family, or not) is reported beside it."""
    claim = "The law holds for each model family"
    rule = (
        f"per family: finding (b)'s rule on its runs, and the paper law's all-size fit on C "
        f"converged with R² in ln L ≥ {R2_GOOD:g}; holds if every family passes both, departs if "
        f"(b) departs for a family or a converged paper-law fit has R² < {R2_GOOD:g}, else not "
        f"identifiable"
    )
    per: dict[str, dict[str, Any]] = {}
    for family, (fits, table) in per_family.items():
        paper = fits.get("paper-C", {})
        params = paper.get("params") or {}
        per[family] = {
            "power_law_per_size": power_law_per_size(fits, table).verdict,
            "paper_C_converged": bool(paper.get("converged")),
            "r2_paper_C": paper.get("r2") if paper.get("converged") else None,
            "Kmax": params.get("Kmax"),
            "N0": params.get("N0"),
        }
    if not per:
        return Finding("e", claim, PAPER["e"], "no families", UNIDENTIFIED, rule)
    measured = "; ".join(_family_summary(f, row) for f, row in per.items())
    if joint and joint.get("verdict"):
        measured += f". One k(N) for all families: {joint['verdict']} ({joint.get('reason', '')})"
    numbers = {"per_family": per, "joint_verdict": (joint or {}).get("verdict")}
    return Finding("e", claim, PAPER["e"], measured, _family_verdict(per), rule, numbers=numbers)


def _family_verdict(per: dict[str, dict[str, Any]]) -> str:
    poor_fit = any(r["r2_paper_C"] is not None and r["r2_paper_C"] < R2_GOOD for r in per.values())
    if poor_fit or any(r["power_law_per_size"] == DEPARTS for r in per.values()):
        return DEPARTS
    passes = all(
        r["power_law_per_size"] == HOLDS and r["r2_paper_C"] is not None for r in per.values()
    )
    return HOLDS if passes else UNIDENTIFIED


def _family_summary(family: str, row: dict[str, Any]) -> str:
    if not row["paper_C_converged"]:
        fit = "paper law on C did not converge"
    else:
        r2 = row["r2_paper_C"]
        fit = f"paper law on C R² {'undefined' if r2 is None else f'{r2:.3f}'}"
        fit += f", Kmax {row['Kmax']:.3g}"
        fit += f", N0 {size_text(row['N0'])}"
    return f"{family}: {fit}, power law per size {row['power_law_per_size']}"
