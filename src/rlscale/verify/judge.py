"""The comparison policy: decide one (response, gold) pair. Runs inside verifier workers.

Policy, in order (each step documented in README):
1. Extraction (`answer.extract_answer`): after the last </think>, the last explicit final answer:
   the final group of boxes (the last \\boxed{} and those before it in the same sentence), or a
   "final answer is …" after every box; else the response's tail for math-verify's LaTeX
   extraction. An answer longer than the cap is unparsable without parsing.
2. Several boxes: against a gold of one part each box must be correct (rival candidates never
   win); against a gold of n comma-separated parts there must be n boxes, each judged against its
   part in order (a tuple), or matched by label when every part is `name = value`.
3. Multiple choice: a gold that is a letter A–E (optionally in parentheses) needs that letter.
4. Exact numbers: when gold and answer are both plain integers, decimals or numeric fractions
   (thousands separators, `x = …`, trailing % and ° allowed), their exact rational values must be
   equal: no tolerance, so 10000 ≠ 10001 and 0.333 ≠ 1/3. A numeric gold is never matched as text.
5. Otherwise math-verify: the gold wrapped in \\boxed{} and the answer are parsed with its LaTeX
   extraction only (its plain-expression extraction runs sympy's parse_expr, an eval, on model
   text: never used) and compared with `verify`. Its own signal-based timeouts are off: the worker
   is killed from outside instead.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal

from rlscale.verify.answer import (
    MAX_ANSWER_CHARS,
    by_label,
    canonical,
    choice_letter,
    exact_number,
    extract_answer,
    gold_parts,
    labels_clash,
    normalize_gold,
)

Kind = Literal["correct", "wrong", "unparsable", "timeout"]
_GOLD_LETTER = re.compile(r"^\(?([A-E])\)?$")
GOLD_CACHE_SIZE = 20_000


def _math_verify() -> Any:
    import math_verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    return math_verify


def judge(
    response: str,
    gold: str,
    gold_cache: MutableMapping[str, Any] | None = None,
    cap: int = MAX_ANSWER_CHARS,
) -> Kind:
    """The verdict kind for one response against one gold answer."""
    gold_text = normalize_gold(gold)
    answer = extract_answer(response, cap)
    if answer.too_long or answer.text is None:
        return "unparsable"
    if len(answer.parts) > 1:
        return _judge_boxes(gold_text, answer.parts, gold_cache)
    return _judge_one(gold_text, answer.text, answer.how, gold_cache)


def _judge_boxes(
    gold: str, boxes: tuple[str, ...], gold_cache: MutableMapping[str, Any] | None
) -> Kind:
    """Several final boxes. Against a one-part gold every box must be correct, so boxing rival
    candidates never wins. Against an n-part gold, n boxes, part by part: in order (a tuple), or
    by label when every part is `name = value` (labels, not order, say which part is which)."""
    parts = gold_parts(gold)
    if len(parts) == 1:
        return _all_correct(((gold, box) for box in boxes), gold_cache)
    if len(parts) != len(boxes):
        return "wrong"
    pairs = list(zip(parts, by_label(parts, boxes) or boxes, strict=True))
    if any(labels_clash(part, box) for part, box in pairs):
        return "wrong"
    return _all_correct(pairs, gold_cache)


def _all_correct(pairs: Iterable[tuple[str, str]], cache: MutableMapping[str, Any] | None) -> Kind:
    """Correct when every (gold, box) pair is; the first wrong one ends it, so boxing many
    candidates costs no more parses than it takes to find one wrong."""
    unparsable = False
    for gold, box in pairs:
        kind = _judge_one(gold, box, "boxed", cache)
        if kind == "wrong":
            return "wrong"
        unparsable |= kind != "correct"
    return "unparsable" if unparsable else "correct"


def _judge_one(
    gold: str, answer: str, how: str, gold_cache: MutableMapping[str, Any] | None
) -> Kind:
    letter = _GOLD_LETTER.match(canonical(gold))
    if letter:
        said = choice_letter(answer) if how != "tail" else _last_letter(answer)
        if said is None:
            return "unparsable"
        return "correct" if said == letter.group(1) else "wrong"
    if how != "tail":
        g, p = exact_number(gold), exact_number(answer)
        if g is not None and p is not None:
            return "correct" if g == p else "wrong"
        # A numeric gold is decided by value, never by text: `32, 349` is not 32,349.
        if g is None and _same_text(gold, answer):
            return "correct"
    return _symbolic(gold, answer, how, gold_cache)


def _same_text(gold: str, answer: str) -> bool:
    """Identical up to spacing and presentation: equal without parsing anything."""
    return re.sub(r"\s+", "", canonical(gold)) == re.sub(r"\s+", "", canonical(answer))


def _last_letter(tail: str) -> str | None:
    found = re.findall(r"\(([A-E])\)|\b([A-E])\b", tail)
    return (found[-1][0] or found[-1][1]) if found else None


def _symbolic(
    gold: str, answer: str, how: str, gold_cache: MutableMapping[str, Any] | None
) -> Kind:
    mv = _math_verify()
    config = [mv.LatexExtractionConfig(boxed_match_priority=0)]
    cache = gold_cache if gold_cache is not None else {}
    gold_parsed = cache.get(gold)
    if gold_parsed is None:
        if len(cache) >= GOLD_CACHE_SIZE:
            cache.clear()
        gold_parsed = mv.parse(f"\\boxed{{{gold}}}", config, parsing_timeout=None)
        cache[gold] = gold_parsed
    text = answer if how == "tail" else f"\\boxed{{{answer}}}"
    pred = mv.parse(text, config, parsing_timeout=None)
    if not pred:
        return "unparsable"
    if not gold_parsed:
        # A gold that does not parse can only be matched as the same string.
        return "correct" if canonical(answer) == canonical(gold) else "wrong"
    if _numerically_different(gold_parsed[0], pred[0]):
        return "wrong"
    ok = mv.verify(gold_parsed, pred, timeout_seconds=None)
    return "correct" if ok else "wrong"


def _numerically_different(gold: Any, pred: Any) -> bool:
    """Two constants whose 30-digit values differ cannot be equal: no simplify needed."""
    import sympy

    if not (isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr)):
        return False
    if gold.free_symbols or pred.free_symbols or not (gold.is_number and pred.is_number):
        return False
    a, b = sympy.N(gold, 30), sympy.N(pred, 30)
    if not (a.is_finite and b.is_finite) or a.has(sympy.nan) or b.has(sympy.nan):
        return False
    return bool(abs(a - b) > sympy.Float("1e-20", 30) * max(1, abs(a)))
