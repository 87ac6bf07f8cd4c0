"""Build several rungs in parallel worker processes, at most `jobs` at a time."""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from rlscale.errors import RlscaleError
from rlscale.models.build import BuildConfig
from rlscale.models.instruct import InstructConfig

OnLine = Callable[[str, dict[str, Any]], None]  # rung name, progress line


def build_ladder(
    names: Sequence[str],
    cfg: BuildConfig | InstructConfig,
    jobs: int = 2,
    on_line: OnLine | None = None,
) -> list[dict[str, Any]]:
    """Results in the order of `names` (base rungs' names; an InstructConfig builds their
    instruct rungs); a failed rung raises after the others finish.

    The largest rungs start first (longest-processing-time scheduling): the slowest build then
    runs alongside all the others instead of after them.
    """
    from rlscale.models.ladder import RUNGS

    size = {r.name: r.hidden**2 * r.layers for r in RUNGS.values()}
    waiting = sorted(names, key=lambda n: -size.get(n, 0))
    running: dict[str, subprocess.Popen[str]] = {}
    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, list[str]] = {}
    config = json.dumps(asdict(cfg))
    family = "instruct" if isinstance(cfg, InstructConfig) else "base"
    with selectors.DefaultSelector() as selector:
        while waiting or running:
            while waiting and len(running) < jobs:
                name = waiting.pop(0)
                proc = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "rlscale.models.build_worker",
                        "--rung",
                        name,
                        "--family",
                        family,
                        "--config",
                        config,
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                running[name] = proc
                assert proc.stdout is not None
                selector.register(proc.stdout, selectors.EVENT_READ, name)
            for key, _ in selector.select(timeout=1.0):
                name = key.data
                line = key.fileobj.readline()  # type: ignore[union-attr]
                if line:
                    record = json.loads(line)
                    if "result" in record:
                        results[name] = record["result"]
                    elif on_line is not None:
                        on_line(name, record)
                    continue
                selector.unregister(key.fileobj)
                proc = running.pop(name)
                proc.wait()
                if proc.returncode != 0 or name not in results:
                    stderr = proc.stderr.read() if proc.stderr else ""
                    failed[name] = stderr.strip().splitlines()[-1:] or ["no output"]
    if failed:
        raise RlscaleError("; ".join(f"{n} failed: {msg[0]}" for n, msg in failed.items()))
    return [results[n] for n in names]
