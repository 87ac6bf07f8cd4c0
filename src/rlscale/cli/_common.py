"""Shared CLI plumbing: one-line errors (trace behind --debug), JSON output, number parsing."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from rlscale.errors import InputError, RlscaleError
from rlscale.units import parse_number as parse_number  # re-exported for the commands

if TYPE_CHECKING:
    from rlscale.fit.estimator import LawFit

P = ParamSpec("P")
R = TypeVar("R")


def stdout() -> Console:
    return Console(soft_wrap=True)  # long lines stay whole: greppable, copyable


def stderr() -> Console:
    return Console(stderr=True)


def step_progress(label: str) -> Any:
    """A rich progress display on stderr: label, steps done of total, bar, info text, ETA."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(label),
        MofNCompleteColumn(),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=stderr(),
    )


class Session:
    """What the root command parsed for the command now running (one CLI call per process)."""

    debug = False


def debug_enabled() -> bool:
    return Session.debug


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """User errors become one line on stderr and an exit code; --debug shows the trace."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except RlscaleError as exc:
            if debug_enabled():
                traceback.print_exc()
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            if debug_enabled():
                traceback.print_exc()
            else:
                print(
                    f"error: unexpected {type(exc).__name__}: {exc} (rerun with --debug for the "
                    "trace)",
                    file=sys.stderr,
                )
            raise typer.Exit(1) from None

    return wrapper


def parse_numbers(values: list[str] | None, what: str) -> list[float]:
    """Repeated options and comma lists alike: --sizes 7B --sizes 14B or --sizes 7B,14B."""
    out: list[float] = []
    for value in values or []:
        out += [parse_number(part, what) for part in value.split(",") if part.strip()]
    return out


def write_json(obj: Any, dest: str) -> None:
    """Write JSON to a file atomically (never a half-written file), or to stdout for '-'."""
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    if dest == "-":
        sys.stdout.write(text)
        return
    from rlscale.store import atomic_write

    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None


def read_fit(path: str) -> LawFit:
    """A FitResult JSON as a fitted LawFit, validated; errors name the file."""
    from rlscale.fit.estimator import LawFit

    result = read_json(path)
    try:
        return LawFit.from_summary(result)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}g}"
