"""Load problems from verl parquet, JSONL, a Hugging Face dataset directory, or `synth:…`."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rlscale.data.problem import DataError, Problem, row_to_problem
from rlscale.errors import InputError

SYNTH_PREFIX = "synth:"


def load_problems(spec: str | Path) -> list[Problem]:
    """Every problem of a file, directory or `synth:<task>?split=…&n=…&seed=…` spec.

    All rows are checked; the error names the first bad row and how many more there are.
    """
    problems, errors = read_problems(spec)
    if errors:
        more = (
            f" (and {len(errors) - 1} more bad rows: `rlscale data inspect`)"
            if len(errors) > 1
            else ""
        )
        raise DataError(errors[0] + more)
    return problems


def read_problems(spec: str | Path) -> tuple[list[Problem], list[str]]:
    """Problems and the error of every bad row (for a whole-file check)."""
    text = str(spec)
    if text.startswith(SYNTH_PREFIX):
        from rlscale.data.synthetic import synth_problems

        return synth_problems(text), []
    path = Path(text)
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    problems, failures = [], []
    for index, row in _rows(path):
        try:
            problems.append(row_to_problem(row, "", index))
        except DataError as exc:
            failures.append((index, str(exc).removeprefix(": ")))
    if not problems and not failures:
        raise InputError(f"{path}: no rows")
    return problems, _grouped(path, failures)


def _grouped(path: Path, failures: list[tuple[int, str]]) -> list[str]:
    """One error line per distinct problem: a column missing from every row is one line, not
    one per row."""
    by_problem: dict[str, list[int]] = {}
    for index, problem in failures:
        by_problem.setdefault(problem, []).append(index)
    lines = []
    for problem, rows in by_problem.items():
        shown = ", ".join(map(str, rows[:5])) + (" …" if len(rows) > 5 else "")
        where = f"row {rows[0]}" if len(rows) == 1 else f"rows {shown} ({len(rows)} rows)"
        lines.append(f"{path}: {where}: {problem}")
    return lines


def _rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(0-based row index, row) for any supported format."""
    if path.is_dir():
        yield from enumerate(_hf_rows(path))
    elif path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist())
    elif path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        yield from jsonl_rows(path)
    else:
        raise InputError(
            f"{path}: unknown format; expected .parquet, .jsonl, a Hugging Face "
            "dataset directory or synth:<task>"
        )


def jsonl_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(0-based row index, object) of each non-blank line; DataError naming a bad row."""
    with path.open("rb") as fh:
        for index, raw in enumerate(fh):
            try:
                line = raw.decode()
            except UnicodeDecodeError:
                raise DataError(f"{path}: row {index}: not UTF-8 text") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: row {index}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}: row {index}: expected a JSON object")
            yield index, row


def _hf_rows(path: Path) -> list[dict[str, Any]]:
    """A `datasets` save_to_disk directory (a Dataset, or a DatasetDict's 'train' split)."""
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"{path}: reading a Hugging Face dataset directory needs the 'hf' "
            "extra: pip install 'rlscale[hf]'"
        ) from None
    try:
        loaded = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(f"{path}: not a Hugging Face dataset directory ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise InputError(
                f"{path}: a DatasetDict without a 'train' split; point at one of "
                f"{', '.join(loaded)}"
            )
        loaded = loaded["train"]
    return list(loaded.to_list())
