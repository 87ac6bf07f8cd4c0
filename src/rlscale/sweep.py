"""Running a study's runs: the run store and the local executor.

Store layout: `OUT/runs/<run name>/` holds the trainer's files (`spec.json`, `steps.jsonl`,
`ckpt/`, `final/`, `summary.json`) plus `grpo.json` (the run's settings) and, for a run whose
last attempt failed, `error.json`. A run is `done` when `summary.json` exists, `partial` when
it has steps but no summary, `failed` when `error.json` exists, else `pending`. Done runs are
skipped; partial and failed ones are started again, and the trainer resumes from their last
checkpoint. Each run is its own `rlscale train` process with one torch thread; at most `jobs`
run at once, so processes × threads never exceed the cores (oversubscription was measured to
slow a GRPO step 10× on a 2-core machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rlscale.store import STEPS_FILE, write_json_file
from rlscale.study import RunSpec, StudySpec

State = Literal["done", "partial", "failed", "pending"]
ERROR_TAIL = 2000  # characters of a failed run's output kept in error.json


@dataclass(frozen=True)
class Outcome:
    run: str
    state: State
    seconds: float
    error: str | None = None


def run_dir(root: Path, run: RunSpec) -> Path:
    return root / "runs" / run.name


def run_state(folder: Path) -> State:
    if (folder / "summary.json").exists():
        return "done"
    if (folder / "error.json").exists():
        return "failed"
    steps = folder / STEPS_FILE
    return "partial" if steps.exists() and steps.stat().st_size > 0 else "pending"


def train_command(run: RunSpec, folder: Path, threads: int = 1) -> list[str]:
    cmd = [sys.executable, "-m", "rlscale", "train", "--model", run.model, "--out", str(folder)]
    cmd += ["--config", str(folder / "grpo.json"), "--threads", str(threads)]
    for flag, value in (("--train", run.train), ("--holdout", run.holdout)):
        if value:
            cmd += [flag, value]
    for name, source in run.evals.items():
        cmd += ["--eval", f"{name}={source}"]
    return cmd


def default_jobs(threads: int = 1) -> int:
    return max(1, (os.cpu_count() or 1) // max(threads, 1))


def run_local(
    spec: StudySpec,
    root: Path,
    jobs: int | None = None,
    on_change: Callable[[str, State], None] | None = None,
) -> list[Outcome]:
    """Run every run of the study that is not done, `jobs` processes at a time."""
    todo = [r for r in spec.runs() if run_state(run_dir(root, r)) != "done"]
    outcomes = [Outcome(r.name, "done", 0.0) for r in spec.runs() if r not in todo]
    running: list[tuple[RunSpec, subprocess.Popen[bytes], float, Path]] = []
    limit = jobs or default_jobs()
    while todo or running:
        while todo and len(running) < limit:
            run = todo.pop(0)
            folder = run_dir(root, run)
            running.append((run, _start(run, folder), time.perf_counter(), folder))
            if on_change is not None:
                on_change(run.name, "partial")
        time.sleep(0.2)
        for item in [i for i in running if i[1].poll() is not None]:
            running.remove(item)
            outcomes.append(_finish(*item))
            if on_change is not None:
                on_change(item[0].name, outcomes[-1].state)
    order = {r.name: i for i, r in enumerate(spec.runs())}
    return sorted(outcomes, key=lambda o: order[o.run])


def _start(run: RunSpec, folder: Path) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.json").unlink(missing_ok=True)
    write_json_file(folder / "grpo.json", run.grpo.to_dict())
    log = open(folder / "train.log", "wb")  # noqa: SIM115 - the child keeps it; closed on exit
    return subprocess.Popen(
        train_command(run, folder), stdout=log, stderr=subprocess.STDOUT, env=_one_thread()
    )


def _finish(run: RunSpec, proc: subprocess.Popen[bytes], started: float, folder: Path) -> Outcome:
    seconds = time.perf_counter() - started
    if proc.returncode == 0 and run_state(folder) == "done":
        return Outcome(run.name, "done", seconds)
    tail = (folder / "train.log").read_text(errors="replace")[-ERROR_TAIL:]
    error = f"exit code {proc.returncode}: {tail.strip().splitlines()[-1] if tail.strip() else ''}"
    write_json_file(folder / "error.json", {"exit_code": proc.returncode, "output_tail": tail})
    return Outcome(run.name, "failed", seconds, error)


def _one_thread() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    return env


def status_rows(spec: StudySpec, root: Path) -> list[dict[str, object]]:
    """Each run's state, last logged step and last evaluated L."""
    from rlscale.store import read_records

    rows: list[dict[str, object]] = []
    for run in spec.runs():
        folder = run_dir(root, run)
        records = read_records(folder / STEPS_FILE)
        evaluated = [r for r in records if r.get("eval_L") is not None]
        error = None
        if (folder / "error.json").exists():
            error = json.loads((folder / "error.json").read_text()).get("exit_code")
        rows.append(
            {
                "run": run.name,
                "model": run.model,
                "seed": run.seed,
                "tau": run.tau,
                "state": run_state(folder),
                "step": records[-1]["step"] if records else None,
                "L": evaluated[-1]["eval_L"] if evaluated else None,
                "exit_code": error,
            }
        )
    return rows
