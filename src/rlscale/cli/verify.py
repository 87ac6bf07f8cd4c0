"""`rlscale verify PAIRS.jsonl`: verify {"response", "answer"} lines; counts and throughput."""

from __future__ import annotations

import math
import os
from pathlib import Path

import typer

from rlscale.cli._common import handles_errors, stderr, stdout

MAX_WORKERS = 256  # each worker may take its memory cap (2 GiB): beyond this a typo, not a plan


@handles_errors
def verify_command(
    pairs: str = typer.Argument(..., help='JSONL, one {"response": …, "answer": …} a line.'),
    json_out: str = typer.Option("", "--json", help="Write one verdict line per input line."),
    workers: int = typer.Option(2, help="Worker processes (at most the number of cores)."),
    timeout: float = typer.Option(5.0, help="Wall-clock seconds per answer before it is killed."),
) -> None:
    """Grade model responses against gold answers in isolated, killable workers."""
    import json
    import time
    from collections import Counter

    from rlscale.errors import InputError
    from rlscale.verify import VerifierPool

    if not 0 < timeout < math.inf:
        raise InputError(f"--timeout {timeout}: give a positive, finite number of seconds")
    if not 1 <= workers <= MAX_WORKERS:
        raise InputError(f"--workers {workers}: give 1 to {MAX_WORKERS}")
    cores = os.cpu_count() or 1
    if workers > cores:
        stderr().print(f"note: {workers} workers on {cores} cores: they will share the cores")
    items = _read_pairs(Path(pairs))
    with VerifierPool(workers=workers, timeout=timeout) as pool:
        start = time.perf_counter()
        verdicts = pool.verify(items)
        seconds = time.perf_counter() - start
    if json_out:
        lines = [
            json.dumps({"verdict": v.kind, "reward": v.reward, "seconds": v.seconds})
            for v in verdicts
        ]
        Path(json_out).write_text("\n".join(lines) + ("\n" if lines else ""))
    counts = Counter(v.kind for v in verdicts)
    summary = ", ".join(
        f"{k} {counts.get(k, 0)}" for k in ("correct", "wrong", "unparsable", "timeout")
    )
    rate = len(verdicts) / seconds if seconds > 0 else float("inf")
    stdout().print(f"{len(verdicts)} answers: {summary} — {rate:.0f} answers/s ({workers} workers)")


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    from rlscale.data.loaders import jsonl_rows
    from rlscale.errors import InputError

    if not path.exists():
        raise InputError(f"{path}: no such file")
    items = []
    for index, record in jsonl_rows(path):
        for key in ("response", "answer"):
            if not isinstance(record.get(key), str | int | float):
                raise InputError(f"{path}: row {index}: missing or non-text '{key}'")
        items.append((str(record["response"]), str(record["answer"])))
    return items
