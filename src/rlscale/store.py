"""The run store: append-only `steps.jsonl` (one StepRecord a line) and a run's files.

Each record is written with one `write` of a whole line, then flushed and fsynced, so after a
crash the file holds complete records plus at most one torn last line, which readers drop.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from rlscale.errors import InputError, RlscaleError

STEPS_FILE = "steps.jsonl"


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record durably; non-finite numbers are refused (JSON has none)."""
    bad = [k for k, v in record.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise RlscaleError(
            f"step {record.get('step')}: non-finite {', '.join(bad)}; the step is not logged "
            "(lower the learning rate or check the model's dtype)"
        )
    line = json.dumps(dict(record), allow_nan=False) + "\n"
    with open(path, "a") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def write_json_file(path: Path, obj: Any) -> None:
    text = json.dumps(obj, indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a JSONL file (see `parse_records`); [] when it does not exist."""
    if not path.exists():
        return []
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    return parse_records(text, str(path))


def parse_records(text: str, source: str) -> list[dict[str, Any]]:
    """JSON objects, one a line; a torn last line (no newline, not JSON: a write a crash cut
    short) is dropped. Any other line that is not a JSON object is an error naming it."""
    lines = text.split("\n")
    torn = lines.pop()  # "" when the text ends with a newline
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}: line {number} is not JSON: {exc.msg}") from None
        records.append(_an_object(record, source, number))
    if torn.strip():
        with contextlib.suppress(json.JSONDecodeError):  # a write a crash cut short
            records.append(_an_object(json.loads(torn), source, len(lines) + 1))
    return records


def _an_object(record: Any, source: str, number: int) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise InputError(
            f"{source}: line {number} is a JSON {type(record).__name__}, not an object"
        )
    return record


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write a file so that readers see the old or the new content, never a part: `write` fills
    a temporary file beside it, which is fsynced and renamed over `path`."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _new_file_mode())  # mkstemp's 0600 would ignore the user's umask
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temps(folder: Path) -> None:
    """The temp files of `atomic_write`s a crash interrupted; only the holder of the folder's
    `exclusive` lock may call this (another writer's temp file would be live)."""
    for tmp in folder.glob(".*.tmp"):
        if not tmp.is_dir():  # a directory (a model being saved) is its writer's to redo
            tmp.unlink(missing_ok=True)


def _new_file_mode() -> int:
    """0666 less the process umask, as open() would create the file; read from /proc where it
    can be (setting the umask to read it back is not safe with threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return 0o666 & ~mask


def rewrite_records(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace the file atomically with exactly these records."""
    text = "".join(json.dumps(dict(r), allow_nan=False) + "\n" for r in records)
    atomic_write(path, lambda fh: fh.write(text.encode()))


def truncate_records(path: Path, last_step: int) -> list[dict[str, Any]]:
    """Keep the records of steps 0..last_step (the last one of each step); return them. The file
    is rewritten only when that drops something (a finished run's file stays untouched)."""
    records = read_records(path)
    by_step: dict[int, dict[str, Any]] = {}
    for record in records:
        if int(record["step"]) <= last_step:
            by_step[int(record["step"])] = record
    kept = [by_step[s] for s in sorted(by_step)]
    clean = path.exists() and (path.stat().st_size == 0 or path.read_bytes().endswith(b"\n"))
    if path.exists() and (kept != records or not clean):
        rewrite_records(path, kept)
    return kept


def load_study_records(root: Path, runs: Iterable[str] | None = None) -> Any:
    """Every StepRecord of a study folder's runs (`root/runs/<run>/steps.jsonl`) as one
    DataFrame (pandas), in run then step order; `runs` limits it to those run folders."""
    import pandas as pd

    folders = (
        sorted((root / "runs").glob("*/")) if runs is None else [root / "runs" / r for r in runs]
    )
    frames = [pd.DataFrame(rows) for f in folders if (rows := read_records(f / STEPS_FILE))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


@contextlib.contextmanager
def exclusive(folder: Path, what: str = "run") -> Iterator[None]:
    """Hold `folder/.lock` for the duration: a second process on the same folder is refused
    (the kernel drops the lock when the holder dies, so a crash never leaves it stuck)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"{folder}: another process is using this {what}; wait for it or stop it"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_summary(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Start and end of a run: L before and after, compute, wall time (columns an engine does
    not log, such as verl's total FLOPs, are None)."""
    evaluated = [r for r in records if r.get("eval_L") is not None]
    first, last = evaluated[0], evaluated[-1]
    end = records[-1]
    return {
        "run": end["run"],
        "model": end["model"],
        "N": end["N"],
        "steps": end["step"],
        "L_start": first["eval_L"],
        "L_final": last["eval_L"],
        "L_final_se": last.get("eval_L_se"),
        "L_greedy_start": first.get("eval_L_greedy"),
        "L_greedy_final": last.get("eval_L_greedy"),
        "flops_paper": end["flops_paper_cum"],
        "flops_total": end.get("flops_total_cum"),
        "tokens": end["tokens_cum"],
        "wall_s": end.get("wall_s"),
    }
