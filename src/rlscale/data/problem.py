"""The Problem record and the one place where raw rows of any format become Problems."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlscale.errors import InputError


@dataclass(frozen=True)
class Problem:
    """A math problem: prompt text, gold answer, difficulty in [0, 1] (1 − pass rate; None when
    unknown), where it came from, and — for synthetic tasks — a worked solution."""

    id: str
    prompt: str
    answer: str
    difficulty: float | None
    source: str
    solution: str | None = None


class DataError(InputError):
    """A malformed row; the message names the file and the row."""


PROMPT_KEYS = ("prompt", "problem", "question")
ANSWER_KEYS = ("answer", "ground_truth", "final_answer")


def row_to_problem(row: Mapping[str, Any], where: str, index: int) -> Problem:
    """A verl-style or flat row → Problem; DataError naming `where` and the row otherwise."""
    prompt = _prompt_text(_first(row, PROMPT_KEYS), where)
    reward = row.get("reward_model")
    answer = reward.get("ground_truth") if isinstance(reward, Mapping) else None
    if answer is None:
        answer = _first(row, ANSWER_KEYS)
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        answer = format(answer, "g") if isinstance(answer, float) else str(answer)
    if not isinstance(answer, str) or not answer.strip():
        raise DataError(
            f"{where}: no answer (a non-empty text in 'answer' or "
            f"'reward_model.ground_truth'), got {type(answer).__name__}"
        )
    extra = row.get("extra_info") if isinstance(row.get("extra_info"), Mapping) else {}
    assert isinstance(extra, Mapping)
    source = str(row.get("data_source") or row.get("source") or "")
    ident = row.get("id", extra.get("index", index))
    return Problem(
        id=f"{source}:{ident}" if source and "id" not in row else str(ident),
        prompt=prompt,
        answer=answer,
        difficulty=_difficulty(row, extra, where),
        source=source,
        solution=row.get("solution") if isinstance(row.get("solution"), str) else None,
    )


def _first(row: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def _prompt_text(value: Any, where: str) -> str:
    """A prompt is text or a list of chat messages (the user's content is the prompt)."""
    if isinstance(value, str) and value.strip():
        return value
    if value is not None and not isinstance(value, str | bytes | Mapping):
        try:
            messages = list(value)
        except TypeError:
            messages = []
        users = [
            m.get("content")
            for m in messages
            if isinstance(m, Mapping) and m.get("role", "user") == "user"
        ]
        if users and isinstance(users[-1], str) and users[-1].strip():
            return users[-1]
    raise DataError(
        f"{where}: no prompt (a text, or chat messages with a user 'content'), "
        f"got {type(value).__name__}"
    )


def _difficulty(row: Mapping[str, Any], extra: Mapping[str, Any], where: str) -> float | None:
    """1 − pass rate (`qwen2.5_7b_pass_rate` in verl files), or an explicit `difficulty`."""
    if row.get("difficulty") is not None:
        value, name = row["difficulty"], "difficulty"
    elif row.get("pass_rate") is not None:
        value, name = 1.0 - _number(row["pass_rate"], "pass_rate", where), "pass_rate"
    elif extra.get("qwen2.5_7b_pass_rate") is not None:
        value = 1.0 - _number(extra["qwen2.5_7b_pass_rate"], "qwen2.5_7b_pass_rate", where)
        name = "extra_info.qwen2.5_7b_pass_rate"
    else:
        return None
    number = _number(value, name, where)
    if not 0.0 <= number <= 1.0:
        raise DataError(f"{where}: '{name}' must give a difficulty in [0, 1], got {number:g}")
    return number


def _number(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DataError(f"{where}: '{name}' must be a finite number, got {value!r}")
    return float(value)
