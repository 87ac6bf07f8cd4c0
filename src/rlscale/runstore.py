"""The run store: a study's run folders, their states and the outcome of each attempt.

Layout: `OUT/runs/<run name>/` holds the trainer's files (`spec.json`, `steps.jsonl`, `ckpt/`,
`final/`, `summary.json`) plus `grpo.json` (the run's settings) and, for a run whose last attempt
failed, `error.json`. A run is `done` when `summary.json` exists, `partial` when it has steps but
no summary, `failed` when `error.json` exists, else `pending`. Done runs are skipped; partial and
failed ones are started again, and their engine resumes them from their last checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rlscale.errors import RlscaleError
from rlscale.spec import RunSpec, StudySpec
from rlscale.store import STEPS_FILE, write_json_file

State = Literal["done", "partial", "failed", "pending"]
ERROR_TAIL = 2000  # characters of a failed run's output kept in error.json
OnChange = Callable[[str, State], None]
OnTick = Callable[[], None]


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


def pending_runs(spec: StudySpec, root: Path) -> list[RunSpec]:
    """The runs not done, most expensive first: with a pool of workers the longest run then
    trains beside the others instead of after them (longest-processing-time order)."""
    todo = [r for r in spec.runs() if run_state(run_dir(root, r)) != "done"]
    return sorted(todo, key=lambda r: -run_cost(r))


def run_cost(run: RunSpec) -> float:
    """A run's relative cost: its model's approximate non-embedding parameters (from
    config.json, no weights loaded) × the rollouts it samples; 0 when the model is unreadable."""
    from rlscale.models.load import resolve

    try:
        config = json.loads((resolve(run.model) / "config.json").read_text())
        hidden, layers = config["hidden_size"], config["num_hidden_layers"]
        mlp = config.get("intermediate_size", 4 * hidden)
        params = layers * (4 * hidden * hidden + 3 * hidden * mlp)
    except (RlscaleError, OSError, KeyError, TypeError, ValueError):
        return 0.0
    return float(params * run.grpo.steps * run.grpo.prompts_per_step * run.grpo.group_size)


def prepare_folder(run: RunSpec, folder: Path) -> None:
    """The run's folder with its settings, and no stale error from a previous attempt."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.json").unlink(missing_ok=True)
    write_json_file(folder / "grpo.json", run.grpo.to_dict())


def record_outcome(
    run: RunSpec, returncode: int, seconds: float, folder: Path, cause: str = ""
) -> Outcome:
    """Done, or failed with the end of the run's log (or `cause`) kept in `error.json`."""
    if returncode == 0 and run_state(folder) == "done":
        return Outcome(run.name, "done", seconds)
    log = folder / "train.log"
    tail = log.read_text(errors="replace")[-ERROR_TAIL:] if log.exists() else ""
    tail = f"{tail}\n{cause}" if cause else tail
    last = tail.strip().splitlines()[-1] if tail.strip() else ""
    write_json_file(folder / "error.json", {"exit_code": returncode, "output_tail": tail})
    return Outcome(run.name, "failed", seconds, f"exit code {returncode}: {last}")


def in_study_order(spec: StudySpec, outcomes: list[Outcome]) -> list[Outcome]:
    order = {r.name: i for i, r in enumerate(spec.runs())}
    return sorted(outcomes, key=lambda o: order[o.run])


def run_rows(spec: StudySpec, root: Path) -> list[dict[str, object]]:
    """Each run's identity, state and, when done, its summary (L before/after, compute, time)."""
    rows = []
    for run in spec.runs():
        folder = run_dir(root, run)
        summary_path = folder / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        rows.append(
            {"run": run.name, "model": run.model, "seed": run.seed, "tau": run.tau}
            | family_column(run)
            | {"state": run_state(folder)}
            | summary
        )
    return rows


def family_column(run: RunSpec) -> dict[str, str]:
    """A run's `family` entry (none for a study without families)."""
    return {} if run.family is None else {"family": run.family}


def reuse_runs(spec: StudySpec) -> list[str]:
    """The runs of the data-reuse grid (the τ = 1 one included)."""
    return [r.name for r in spec.reuse_grid()]
