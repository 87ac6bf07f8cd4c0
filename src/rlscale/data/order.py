"""Curriculum order, data-reuse (τ) subsets and train/holdout overlap. Pure list functions."""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import re
from collections.abc import Sequence

from rlscale.data.problem import Problem
from rlscale.errors import InputError


def curriculum_order(problems: Sequence[Problem]) -> list[Problem]:
    """Easy → hard: difficulty ascending (pass rate descending), stable; unknown last."""
    return sorted(problems, key=lambda p: (p.difficulty is None, p.difficulty or 0.0))


def reuse_pool(
    problems: Sequence[Problem], total: int, tau: int, seed: int = 0, nested: bool = False
) -> list[Problem]:
    """The total/τ unique problems of the data-reuse experiment, in curriculum order.

    The curriculum-ordered problems are cut into pool-size bins of equal width and one problem is
    drawn from each (seeded), so the pool keeps the easy/hard proportions and the order. With
    `nested`, each problem gets one seeded priority and a bin takes its lowest-priority member
    from a fixed set of fine strata, so a smaller pool is contained in a larger one.
    """
    if tau < 1 or total < 1:
        raise InputError(f"total and tau must be >= 1, not total={total}, tau={tau}")
    size = total // tau
    ordered = curriculum_order(problems)
    if not 1 <= size <= len(ordered):
        raise InputError(
            f"a pool of {total}/{tau} = {size} problems needs 1 to {len(ordered)} problems"
        )
    rng = random.Random(seed)
    if not nested:
        edges = [round(i * len(ordered) / size) for i in range(size + 1)]
        return [ordered[rng.randrange(lo, hi)] for lo, hi in itertools.pairwise(edges)]
    priority = [rng.random() for _ in ordered]
    chosen: list[int] = []
    for members, count in zip(_strata(len(ordered)), _allocate(len(ordered), size), strict=True):
        chosen += sorted(members, key=lambda i: priority[i])[:count]
    return [ordered[i] for i in sorted(chosen)]


STRATA = 10


def _strata(n: int) -> list[range]:
    edges = [round(k * n / STRATA) for k in range(STRATA + 1)]
    return [range(lo, hi) for lo, hi in itertools.pairwise(edges)]


def _allocate(n: int, size: int) -> list[int]:
    """Largest-remainder shares of `size` over the strata, proportional to their sizes."""
    sizes = [len(r) for r in _strata(n)]
    exact = [size * s / n for s in sizes]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(STRATA), key=lambda k: (counts[k] - exact[k], k))
    for k in by_remainder[: size - sum(counts)]:
        counts[k] += 1
    return counts


def reuse_subset(
    problems: Sequence[Problem], total: int, tau: int, seed: int = 0, nested: bool = False
) -> list[Problem]:
    """The training sequence: the pool, in curriculum order, repeated τ times (`total` long)."""
    pool = reuse_pool(problems, total, tau, seed, nested)
    repeats = math.ceil(total / len(pool))
    return (pool * repeats)[:total]


def normalized_prompt(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def find_overlap(train: Sequence[Problem], holdout: Sequence[Problem]) -> list[tuple[str, str]]:
    """(train id, holdout id) of every pair with the same normalised prompt text."""
    by_text: dict[str, list[str]] = {}
    for p in holdout:
        by_text.setdefault(normalized_prompt(p.prompt), []).append(p.id)
    return [(p.id, h) for p in train for h in by_text.get(normalized_prompt(p.prompt), [])]


def prompt_sequence(
    problems: Sequence[Problem], total: int, tau: int, curriculum: bool, seed: int
) -> list[Problem]:
    """The `total` training prompts of a run (steps × prompts per step) in the order they are used.

    τ > 1: the data-reuse design (a pool of total/τ problems spread over the curriculum, each seen
    τ times). τ = 1 with more problems than the budget: the same spread, seen once. Fewer
    problems than the budget: whole passes (epochs). Without curriculum each pass is shuffled.
    """
    if not problems:
        raise InputError("the training set is empty")
    if tau > 1 or len(problems) >= total:
        sequence = reuse_subset(problems, total, tau, seed=seed)
        pool = len(sequence) if tau == 1 else total // tau
        return sequence if curriculum else _shuffled_passes(sequence[:pool], total, seed)
    ordered = curriculum_order(problems) if curriculum else list(problems)
    if not curriculum:
        return _shuffled_passes(ordered, total, seed)
    return (ordered * math.ceil(total / len(ordered)))[:total]


def _shuffled_passes(pool: Sequence[Problem], total: int, seed: int) -> list[Problem]:
    out: list[Problem] = []
    rng = random.Random(seed)
    while len(out) < total:
        chunk = list(pool)
        rng.shuffle(chunk)
        out += chunk
    return out[:total]


def eval_subset(problems: Sequence[Problem], limit: int, seed: int) -> list[Problem]:
    """At most `limit` problems (0: all), a seeded sample kept in file order."""
    if limit == 0 or len(problems) <= limit:
        return list(problems)
    keep = sorted(random.Random(seed).sample(range(len(problems)), limit))
    return [problems[i] for i in keep]


class Progress:
    """Where a run stands in its prompt sequence after `seen` prompts: how many distinct
    problems it has met (`unique_prompts`) and how many passes over its pool (`epoch`) — the
    StepRecord's data columns, whichever engine ran it."""

    def __init__(self, ids: Sequence[str]):
        seen: set[str] = set()
        self.unique_cum: list[int] = []
        for problem_id in ids:
            seen.add(problem_id)
            self.unique_cum.append(len(seen))
        self.pool_size = len(seen)
        self.digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()

    def columns(self, seen: int) -> dict[str, float]:
        if not self.unique_cum or seen <= 0:
            return {"unique_prompts": 0, "epoch": 0.0}
        at = min(seen, len(self.unique_cum))
        return {"unique_prompts": self.unique_cum[at - 1], "epoch": seen / self.pool_size}
