"""The native engine: each run is an `rlscale train` process, run locally (at most
cores // threads at once: oversubscribed cores slow every run many times over) or as a Ray task
reserving `threads` CPUs (and a GPU on `cuda`) on a running cluster."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from rlscale.engines.base import Execution, by_executor
from rlscale.engines.process import spawn, thread_env
from rlscale.runstore import (
    OnChange,
    OnTick,
    Outcome,
    in_study_order,
    pending_runs,
    prepare_folder,
    record_outcome,
    run_dir,
)
from rlscale.spec import RunSpec, StudySpec


class NativeEngine:
    """rlscale's own trainer (`rlscale train`), on the local or the Ray executor."""

    name = "native"

    def check(self, spec: StudySpec) -> None:
        """Nothing beyond what the study checked when it was read."""

    def prepare(self, spec: StudySpec, run: RunSpec, folder: Path) -> None:
        prepare_folder(run, folder)

    def execute(self, spec: StudySpec, root: Path, how: Execution) -> list[Outcome]:
        return by_executor(
            how,
            lambda: run_local(spec, root, how.jobs, how.on_change, how.on_tick),
            lambda at: run_ray(spec, root, at, how.on_change, how.on_tick),
            "the ray executor needs --address HOST:PORT of a running Ray head (`ray start "
            "--head` prints it); nothing is started for you",
        )

    def sync(self, spec: StudySpec, root: Path) -> None:
        """The trainer writes its StepRecords itself: nothing to bring in."""


def train_args(run: RunSpec, folder: Path, threads: int = 1, device: str = "cpu") -> list[str]:
    """The `rlscale train` arguments of a run (the interpreter is the executing machine's)."""
    args = ["-m", "rlscale", "train", "--model", run.model, "--out", str(folder)]
    args += ["--config", str(folder / "grpo.json"), "--threads", str(threads), "--device", device]
    for flag, value in (("--train", run.train), ("--holdout", run.holdout)):
        if value:
            args += [flag, value]
    for name, source in run.evals.items():
        args += ["--eval", f"{name}={source}"]
    if run.family is not None:
        args += ["--family", run.family]
    return args


def report_args(spec: StudySpec, root: Path) -> list[str]:
    """The trackers' arguments of a study's runs: grouped by the study, local files in its
    folder (the same W&B directory, MLflow file store and TensorBoard root for every run)."""
    if not spec.report_to:
        return []
    names = ",".join(spec.report_to)
    return ["--report-to", names, "--report-group", spec.name, "--report-dir", str(root)]


def default_jobs(threads: int = 1) -> int:
    return max(1, (os.cpu_count() or 1) // max(threads, 1))


def run_local(
    spec: StudySpec,
    root: Path,
    jobs: int | None = None,
    on_change: OnChange | None = None,
    on_tick: OnTick | None = None,
) -> list[Outcome]:
    """Run every run of the study that is not done, `jobs` processes at a time (default: as
    many as the cores allow at `spec.threads` threads each)."""
    todo = pending_runs(spec, root)
    outcomes = [Outcome(r.name, "done", 0.0) for r in spec.runs() if r not in todo]
    running: list[tuple[RunSpec, subprocess.Popen[bytes], float, Path]] = []
    limit = jobs or (1 if spec.device == "cuda" else default_jobs(spec.threads))
    while todo or running:
        while todo and len(running) < limit:
            run = todo.pop(0)
            folder = run_dir(root, run)
            prepare_folder(run, folder)
            args = train_args(run, folder, spec.threads, spec.device) + report_args(spec, root)
            proc = spawn([sys.executable, *args], folder, thread_env(spec.threads))
            running.append((run, proc, time.perf_counter(), folder))
            if on_change is not None:
                on_change(run.name, "partial")
        time.sleep(0.2)
        if on_tick is not None:
            on_tick()
        for item in [i for i in running if i[1].poll() is not None]:
            running.remove(item)
            run, proc, started, folder = item
            outcomes.append(
                record_outcome(run, proc.returncode, time.perf_counter() - started, folder)
            )
            if on_change is not None:
                on_change(run.name, outcomes[-1].state)
    return in_study_order(spec, outcomes)


def run_ray(
    spec: StudySpec,
    root: Path,
    address: str,
    on_change: OnChange | None = None,
    on_tick: OnTick | None = None,
) -> list[Outcome]:
    """Every run not done as a Ray task on the cluster at `address`, reserving `spec.threads`
    CPUs (and a GPU on `cuda`) each; the run store must be on a filesystem the workers share."""
    import ray

    todo = pending_runs(spec, root)
    outcomes = [Outcome(r.name, "done", 0.0) for r in spec.runs() if r not in todo]
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(_ray_train)
        waiting = {}
        for run in todo:
            folder = run_dir(root, run)
            prepare_folder(run, folder)
            args = train_args(run, folder, spec.threads, spec.device) + report_args(spec, root)
            options = task.options(
                num_cpus=spec.threads, num_gpus=1 if spec.device == "cuda" else 0, name=run.name
            )
            waiting[options.remote(args, str(folder), spec.threads)] = (run, folder)
            if on_change is not None:
                on_change(run.name, "partial")
        while waiting:
            ready, _ = ray.wait(list(waiting), num_returns=1, timeout=1.0)
            if on_tick is not None:
                on_tick()
            for ref in ready:
                run, folder = waiting.pop(ref)
                try:
                    returncode, seconds = ray.get(ref)
                    outcomes.append(record_outcome(run, returncode, seconds, folder))
                except Exception as exc:  # the task or its worker died: this run failed
                    outcomes.append(record_outcome(run, -1, 0.0, folder, f"ray task failed: {exc}"))
                if on_change is not None:
                    on_change(run.name, outcomes[-1].state)
    finally:
        ray.shutdown()
    return in_study_order(spec, outcomes)


def _ray_train(args: list[str], folder: str, threads: int) -> tuple[int, float]:
    """Inside a Ray worker: the run as a child process of the worker's own interpreter."""
    started = time.perf_counter()
    proc = spawn([sys.executable, *args], Path(folder), thread_env(threads))
    return proc.wait(), time.perf_counter() - started
