"""verl training logs → StepRecords: exact compute and data columns, no regexes over W&B prose.

Three inputs, one per-step mapping of metric name → number:
- verl's `file` logger: JSON lines `{"step": N, "data": {"metric": value, …}}`;
- verl's console lines: `step:N - key:value - key:value …` (other lines are skipped);
- a W&B CSV export: a `_step` (or `Step`/`step`) column, one metric per column.

A resumed run logs some steps twice: the last value of each metric per step wins. Missing steps
are reported as gaps. The paper's columns: C = Σ 6·N·`perf/total_num_tokens` (never verl's MFU:
its FLOPs counter overcounted causal attention 2× before early 2026), D = step × prompts per step,
L = 1 − `val-core/<source>/acc/mean@1` (or the older `val/test_score/<source>`).
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlscale.errors import InputError
from rlscale.steprecord import check_step_record

Steps = dict[int, dict[str, float]]
TOKENS = "perf/total_num_tokens"
_CONSOLE = re.compile(r"(?:^|\s)step:(\d+)\s+-\s+(.*)$")
_VAL_NEW = re.compile(r"^val-core/(.+)/acc/mean@1$")
_VAL_OLD = re.compile(r"^val/test_score/(.+)$")
OPTIONAL = {  # StepRecord column ← verl metric
    "reward_mean": "critic/score/mean",
    "response_len_mean": "response_length/mean",
    "kl": "actor/kl_loss",
    "loss_pg": "actor/pg_loss",
    "grad_norm": "actor/grad_norm",
    "lr": "actor/lr",
    "entropy": "actor/entropy",
}


@dataclass(frozen=True)
class Ingested:
    records: list[dict[str, Any]]
    gaps: list[tuple[int, int]]  # inclusive ranges of steps missing between the first and last
    holdout: str  # the validation source used for L
    duplicates: int  # steps logged more than once (resumed runs): the last values were kept


def read_log(path: Path) -> Steps:
    """Any of the three formats, by content: JSON lines, a CSV header, or console lines."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    first = next((line for line in text.splitlines() if line.strip()), "")
    if first.lstrip().startswith("{"):
        return _merge(_jsonl(text, path))
    if path.suffix.lower() == ".csv" or ("," in first and "step" in first.lower()):
        return _merge(_wandb_csv(text, path))
    return _merge(_console(text))


def _jsonl(text: str, path: Path) -> Iterable[tuple[int, dict[str, float]]]:
    for row, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            step, data = int(item["step"]), item["data"]
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if row == len(text.splitlines()):  # a torn last line from a crash
                return
            raise InputError(
                f'{path}: line {row} is not a verl file-logger record {{"step": N, "data": {{…}}}}'
            ) from None
        yield step, _numbers(data)


def _console(text: str) -> Iterable[tuple[int, dict[str, float]]]:
    for line in text.splitlines():
        match = _CONSOLE.search(line)
        if match is None:
            continue
        pairs = {}
        for part in match.group(2).split(" - "):
            key, sep, value = part.strip().rpartition(":")
            if sep and key:
                pairs[key] = value
        yield int(match.group(1)), _numbers(pairs)


def _wandb_csv(text: str, path: Path) -> Iterable[tuple[int, dict[str, float]]]:
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    step_col = next((c for c in ("_step", "Step", "step") if c in columns), None)
    if step_col is None:
        raise InputError(f"{path}: a W&B export needs a _step (or Step) column; have {columns}")
    for row, item in enumerate(reader, start=2):
        try:
            step = int(float(item[step_col]))
        except (TypeError, ValueError):
            raise InputError(f"{path}: row {row}: {step_col} is not a step number") from None
        yield step, _numbers({k: v for k, v in item.items() if k != step_col})


def _numbers(data: Any) -> dict[str, float]:
    out = {}
    for key, value in dict(data).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[str(key)] = number
    return out


def _merge(items: Iterable[tuple[int, dict[str, float]]]) -> Steps:
    steps: Steps = {}
    for step, metrics in items:
        steps.setdefault(step, {}).update(metrics)  # later lines (a resumed run) win
    return steps


def validation_sources(steps: Steps) -> dict[str, str]:
    """Each validation source in the log → the metric key of its mean@1 score."""
    found: dict[str, str] = {}
    for metrics in steps.values():
        for key in metrics:
            for pattern in (_VAL_NEW, _VAL_OLD):
                match = pattern.match(key)
                if match and match.group(1) not in found:
                    found[match.group(1)] = key
    return found


def holdout_source(steps: Steps, wanted: str | None) -> tuple[str, str]:
    """(source, metric key) of the held-out validation score used for L."""
    found = validation_sources(steps)
    if wanted is not None:
        if wanted not in found:
            raise InputError(
                f"--holdout {wanted!r}: not in the log (have {sorted(found) or 'none'})"
            )
        return wanted, found[wanted]
    if len(found) != 1:
        raise InputError(
            "the log has no validation score (val-core/<source>/acc/mean@1)"
            if not found
            else f"several validation sources {sorted(found)}: choose one with --holdout"
        )
    return next(iter(found.items()))


def to_records(
    logs: list[Steps], N: float, batch: int, run: str, holdout: str | None = None
) -> Ingested:
    """StepRecords (design) from one run's logs, in order (later logs override earlier ones)."""
    if N <= 0 or batch < 1:
        raise InputError("--N must be > 0 and --batch >= 1")
    steps: Steps = {}
    duplicates = 0
    for log in logs:
        for step, metrics in log.items():
            duplicates += step in steps
            steps.setdefault(step, {}).update(metrics)
    if not steps:
        raise InputError("no steps found in the logs")
    source, key = holdout_source(steps, holdout)
    others = {s: k for s, k in validation_sources(steps).items() if s != source}
    records, flops, tokens = [], 0.0, 0.0
    for step in sorted(steps):
        metrics = steps[step]
        tokens += metrics.get(TOKENS, 0.0)
        flops += 6.0 * N * metrics.get(TOKENS, 0.0)
        record: dict[str, Any] = {
            "run": run,
            "step": step,
            "N": N,
            "tau": 1,
            "seed": 0,
            "prompts_seen": step * batch,
            "tokens_cum": tokens,
            "flops_paper_cum": flops,
            "eval_L": 1.0 - metrics[key] if key in metrics else None,
        }
        record |= {col: metrics[name] for col, name in OPTIONAL.items() if name in metrics}
        record |= {f"eval_L@{s}": 1.0 - metrics[k] for s, k in others.items() if k in metrics}
        check_step_record(record)
        records.append(record)
    return Ingested(records, _gaps(sorted(steps)), source, duplicates)


def _gaps(steps: list[int]) -> list[tuple[int, int]]:
    return [(a + 1, b - 1) for a, b in itertools.pairwise(steps) if b > a + 1]
