"""Built-in synthetic math tasks: seeded, with worked solutions and a disjoint holdout.

Spec: `synth:<task>?split=train|holdout|sealed&n=<count>&seed=<seed>`. A problem belongs to the
holdout exactly when a hash of its prompt falls in the holdout's tenth, so train and holdout never
share a problem, whatever the seeds and sizes. `sealed` draws from the same tenth but never a
problem of the working holdout (`WORKING_HOLDOUT`: the one the ladder's builds, the GRPO settings
and the task were chosen on), so a study judged on it is judged on problems no design choice has
seen. Tasks are a registry: add a `SynthTask` to `TASKS`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from rlscale.data.problem import Problem
from rlscale.errors import InputError

HOLDOUT_SHARE = 10  # one problem in ten belongs to the holdout
WORKING_HOLDOUT = (512, 10_000)  # (n, seed): the holdout every design choice was made on
SPLITS = ("train", "holdout", "sealed")
Generated = tuple[str, str, str]  # prompt, worked solution, answer


@dataclass(frozen=True)
class SynthTask:
    name: str
    levels: int
    generate: Callable[[random.Random, int], Generated]  # (rng, level 1..levels)
    description: str
    holdout_min_level: int = 1  # the holdout draws only from this level up


def _arith(rng: random.Random, level: int) -> Generated:
    """level + 1 operands joined by +, − and ×; × first, then left to right."""
    top = 9 if level <= 2 else 99
    numbers = [rng.randint(1, top) for _ in range(level + 1)]
    ops = [rng.choice("+-*") for _ in range(level)]
    prompt = "Compute " + _join(numbers, ops) + "."
    steps = []
    while "*" in ops:
        i = ops.index("*")
        product = numbers[i] * numbers[i + 1]
        steps.append(f"{numbers[i]}*{numbers[i + 1]}={product}.")
        numbers[i : i + 2], ops[i : i + 1] = [product], []
    while ops:
        a, b, op = numbers[0], numbers[1], ops.pop(0)
        value = a + b if op == "+" else a - b
        steps.append(f"{a}{op}{b}={value}.")
        numbers[0:2] = [value]
    return prompt, " ".join([*steps, f"\\boxed{{{numbers[0]}}}"]), str(numbers[0])


def _join(numbers: list[int], ops: list[str]) -> str:
    out = str(numbers[0])
    for op, n in zip(ops, numbers[1:], strict=True):
        out += op + str(n)
    return out


def _addsub(rng: random.Random, level: int) -> Generated:
    """A chain of level + 1 numbers (0–30) joined by + and −, summed left to right."""
    numbers = [rng.randint(0, 30) for _ in range(level + 1)]
    ops = [rng.choice("+-") for _ in range(level)]
    return _worked_chain(numbers, ops)


# (numbers in the chain, largest number) per level, easy → hard: one-digit chains for the
# smallest rungs' frontier, two- and three-digit numbers for the largest rungs'.
CHAIN_LEVELS: tuple[tuple[int, int], ...] = (
    (2, 9),
    (3, 9),
    (4, 9),
    (5, 9),
    (2, 99),
    (3, 99),
    (2, 999),
    (3, 999),
)


def _chains(rng: random.Random, level: int) -> Generated:
    """A chain of + and − on numbers of one to three digits, harder with the level."""
    count, top = CHAIN_LEVELS[level - 1]
    numbers = [rng.randint(0, top) for _ in range(count)]
    ops = [rng.choice("+-") for _ in range(count - 1)]
    return _worked_chain(numbers, ops)


def _worked_chain(numbers: list[int], ops: list[str]) -> Generated:
    """'Compute a+b-c.', its left-to-right steps and the answer."""
    prompt = "Compute " + _join(numbers, ops) + "."
    steps, total = [], numbers[0]
    for op, n in zip(ops, numbers[1:], strict=True):
        value = total + n if op == "+" else total - n
        steps.append(f"{total}{op}{n}={value}.")
        total = value
    return prompt, " ".join([*steps, f"\\boxed{{{total}}}"]), str(total)


def _linear(rng: random.Random, level: int) -> Generated:
    """Solve a·x + b = c for an integer x; larger coefficients at higher levels."""
    top = (5, 9, 20, 50)[min(level, 4) - 1]
    a = rng.randint(2, top)
    x = rng.randint(-top, top)
    b = rng.randint(-top, top)
    c = a * x + b
    sign = "+" if b >= 0 else "-"
    prompt = f"Solve {a}x{sign}{abs(b)}={c} for x."
    steps = f"{a}x={c}{'-' if b >= 0 else '+'}{abs(b)}={c - b}. x={c - b}/{a}={x}."
    return prompt, f"{steps} \\boxed{{{x}}}", str(x)


TASKS: dict[str, SynthTask] = {
    t.name: t
    for t in (
        SynthTask(
            "addsub",
            4,
            _addsub,
            "chains of 2–5 numbers with + and −; holdout 3–5",
            holdout_min_level=2,
        ),
        SynthTask(
            "chains",
            len(CHAIN_LEVELS),
            _chains,
            "chains of 2–5 numbers of one to three digits with + and −, in 8 levels of difficulty",
        ),
        SynthTask("arith", 4, _arith, "integer arithmetic with +, −, ×; 2 to 5 operands"),
        SynthTask("linear", 4, _linear, "solve a·x + b = c for integer x"),
    )
}


def in_holdout(prompt: str) -> bool:
    digest = hashlib.sha256(prompt.encode()).digest()
    return int.from_bytes(digest[:4], "big") % HOLDOUT_SHARE == 0


def generate(task: str, split: str, n: int, seed: int, distinct: bool = True) -> list[Problem]:
    """`n` problems of `task` from `split`, levels drawn uniformly, seeded: distinct problems
    (a level with few problems then gives way to the others), or with repeats (`distinct=False`,
    e.g. warm-start data, where every level keeps its share)."""
    if task not in TASKS:
        raise InputError(f"unknown synthetic task {task!r}; choose one of: {', '.join(TASKS)}")
    if split not in SPLITS:
        raise InputError(f"synthetic split must be one of {', '.join(SPLITS)}, not {split!r}")
    if n < 1:
        raise InputError(f"synthetic n must be >= 1, not {n}")
    spec, rng = TASKS[task], random.Random(f"{task}/{split}/{seed}")
    want_holdout, seen, out = split != "train", set(), []
    working = generate(task, "holdout", *WORKING_HOLDOUT) if split == "sealed" else []
    excluded = {p.prompt for p in working}
    low = spec.holdout_min_level if want_holdout else 1
    for _ in range(200 * n):
        level = rng.randint(low, spec.levels)
        prompt, solution, answer = spec.generate(rng, level)
        repeat = distinct and prompt in seen
        if repeat or prompt in excluded or in_holdout(prompt) != want_holdout:
            continue
        seen.add(prompt)
        ident = hashlib.sha256(prompt.encode()).hexdigest()[:12]
        difficulty = (level - 1) / max(spec.levels - 1, 1)
        out.append(
            Problem(f"synth-{task}:{ident}", prompt, answer, difficulty, f"synth:{task}", solution)
        )
        if len(out) == n:
            return out
    raise InputError(f"synthetic task {task!r} ran out of distinct {split} problems at {len(out)}")


def synth_problems(spec: str) -> list[Problem]:
    """Parse `synth:<task>?split=train|holdout|sealed&n=<count>&seed=<seed>` and generate."""
    parsed = urlparse(spec)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    unknown = set(query) - {"split", "n", "seed"}
    if unknown:
        raise InputError(
            f"{spec}: unknown option(s) {', '.join(sorted(unknown))}; use split, n, seed"
        )
    try:
        n, seed = int(query.get("n", "1000")), int(query.get("seed", "0"))
    except ValueError:
        raise InputError(f"{spec}: n and seed must be integers") from None
    return generate(parsed.path, query.get("split", "train"), n, seed)
