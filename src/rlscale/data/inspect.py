"""Summaries of a problem set: sources, answer types, difficulty histogram. Pure functions."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rlscale.data.problem import Problem
from rlscale.verify.answer import canonical, exact_number, normalize_gold

_RULES = (
    ("letter", re.compile(r"^\(?[A-E]\)?$")),
    ("percent or degree", re.compile(r"(\\%|%|\\circ|°)\s*$")),
    ("equation", re.compile(r"=")),
    ("tuple or interval", re.compile(r"^[\(\[].*,.*[\)\]]$")),
    ("closed form", re.compile(r"\\sqrt|\\pi|\\ln|\\log|\^|\\frac|e\b")),
    ("text", re.compile(r"\\text|\bor\b")),
    ("expression", re.compile(r"[a-zA-Z]")),
)


def answer_type(gold: str) -> str:
    g = normalize_gold(gold)
    value = exact_number(g) if not re.search(r"(\\%|%|\\circ|°)\s*$", g) else None
    if value is not None:
        if value.denominator == 1:
            return "integer"
        return "decimal" if "." in canonical(g) else "fraction"
    for name, pattern in _RULES:
        if pattern.search(g):
            return name
    return "other"


def summarize(problems: Sequence[Problem], bins: int = 8) -> dict[str, Any]:
    difficulties = [p.difficulty for p in problems if p.difficulty is not None]
    histogram = [0] * bins
    for d in difficulties:
        histogram[min(int(d * bins), bins - 1)] += 1
    return {
        "rows": len(problems),
        "sources": dict(Counter(p.source for p in problems).most_common()),
        "answer_types": dict(Counter(answer_type(p.answer) for p in problems).most_common()),
        "difficulty_known": len(difficulties),
        "difficulty_histogram": {
            f"{i / bins:.3f}-{(i + 1) / bins:.3f}": c for i, c in enumerate(histogram)
        },
        "with_solution": sum(p.solution is not None for p in problems),
    }
