"""What every training engine offers a study: the `Engine` protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from rlscale.errors import InputError
from rlscale.runstore import OnChange, OnTick, Outcome
from rlscale.spec import RunSpec, StudySpec


@dataclass(frozen=True)
class Execution:
    """Where a study's runs execute (the executor, its Ray address, how many at once) and whom
    to tell as they go."""

    executor: str = "local"
    jobs: int | None = None
    address: str | None = None
    on_change: OnChange | None = None
    on_tick: OnTick | None = None


class Engine(Protocol):
    """Trains a study's runs into the run store; whatever it runs, each run ends as StepRecords
    in `runs/<run>/steps.jsonl` and a `summary.json` when complete."""

    name: str

    def check(self, spec: StudySpec) -> None:
        """Refuse, with an InputError naming the field, a study this engine cannot run."""

    def prepare(self, spec: StudySpec, run: RunSpec, folder: Path) -> None:
        """Write what the run needs into its folder before it starts."""

    def execute(self, spec: StudySpec, root: Path, how: Execution) -> list[Outcome]:
        """Run every unfinished run as `how` says; one Outcome per run, in study order."""
        ...

    def sync(self, spec: StudySpec, root: Path) -> None:
        """Bring the runs' own logs into StepRecords (for engines that keep their own)."""


@dataclass(frozen=True)
class Launch:
    """A run as a command a user can start by hand: argv, its environment, one shell line."""

    run: RunSpec
    folder: Path
    argv: list[str]
    env: dict[str, str]
    line: str


@runtime_checkable
class LaunchedByHand(Protocol):
    """An engine whose runs can also be printed as commands or Slurm scripts and started
    elsewhere; `rlscale study fit` then reads what they logged."""

    def launches(self, spec: StudySpec, root: Path) -> list[Launch]:
        """Each run's input files written into the study folder, and its command."""
        ...

    def emit_sbatch(self, spec: StudySpec, root: Path, directory: Path) -> list[Path]:
        """One Slurm script per unfinished run in `directory`."""
        ...


def by_executor(
    how: Execution,
    local: Callable[[], list[Outcome]],
    ray: Callable[[str], list[Outcome]],
    needs_address: str,
) -> list[Outcome]:
    """An engine's runs on the executor `how` names; Ray only at an address the user gave."""
    if how.executor == "local":
        return local()
    if how.executor == "ray":
        if not how.address:
            raise InputError(needs_address)
        return ray(how.address)
    raise InputError(f"unknown executor {how.executor!r}; choose one of: local, ray")
