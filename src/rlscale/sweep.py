"""Running a study's runs: the run store and the executors (`local`, `ray`).

Store layout: `OUT/runs/<run name>/` holds the trainer's files (`spec.json`, `steps.jsonl`,
`ckpt/`, `final/`, `summary.json`) plus `grpo.json` (the run's settings) and, for a run whose
last attempt failed, `error.json`. A run is `done` when `summary.json` exists, `partial` when
it has steps but no summary, `failed` when `error.json` exists, else `pending`. Done runs are
skipped; partial and failed ones are started again, and the trainer resumes from their last
checkpoint. Each run is its own `rlscale train` process with `threads` torch threads: the local
executor runs at most cores // threads at once (oversubscription was measured to slow a GRPO
step 10× on a 2-core machine); the Ray executor makes each run a task reserving that many CPUs.
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

from rlscale.errors import InputError, RlscaleError
from rlscale.store import STEPS_FILE, write_json_file
from rlscale.study import RunSpec, StudySpec, paper_departures

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


def train_args(run: RunSpec, folder: Path, threads: int = 1, device: str = "cpu") -> list[str]:
    """The `rlscale train` arguments of a run (the interpreter is the executing machine's)."""
    args = ["-m", "rlscale", "train", "--model", run.model, "--out", str(folder)]
    args += ["--config", str(folder / "grpo.json"), "--threads", str(threads), "--device", device]
    for flag, value in (("--train", run.train), ("--holdout", run.holdout)):
        if value:
            args += [flag, value]
    for name, source in run.evals.items():
        args += ["--eval", f"{name}={source}"]
    return args


def default_jobs(threads: int = 1) -> int:
    return max(1, (os.cpu_count() or 1) // max(threads, 1))


OnChange = Callable[[str, State], None]
OnTick = Callable[[], None]


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


def prepare(run: RunSpec, folder: Path) -> None:
    """The run's folder with its settings, and no stale error from a previous attempt."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.json").unlink(missing_ok=True)
    write_json_file(folder / "grpo.json", run.grpo.to_dict())


def outcome(
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
            prepare(run, folder)
            args = train_args(run, folder, spec.threads, spec.device)
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
            outcomes.append(outcome(run, proc.returncode, time.perf_counter() - started, folder))
            if on_change is not None:
                on_change(run.name, outcomes[-1].state)
    return in_study_order(spec, outcomes)


def in_study_order(spec: StudySpec, outcomes: list[Outcome]) -> list[Outcome]:
    order = {r.name: i for i, r in enumerate(spec.runs())}
    return sorted(outcomes, key=lambda o: order[o.run])


def spawn(argv: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Appended: a resumed or retried run keeps the log of its earlier attempts.
    log = open(folder / "train.log", "ab")  # noqa: SIM115 - the child keeps it; closed on exit
    return subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
    )


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the study process dies, so a killed
    study never leaves runs training that a rerun would start a second time."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env


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
            prepare(run, folder)
            args = train_args(run, folder, spec.threads, spec.device)
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
                    outcomes.append(outcome(run, returncode, seconds, folder))
                except Exception as exc:  # the task or its worker died: this run failed
                    outcomes.append(outcome(run, -1, 0.0, folder, f"ray task failed: {exc}"))
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


def execute(
    spec: StudySpec,
    root: Path,
    executor: str,
    *,
    jobs: int | None = None,
    address: str | None = None,
    on_change: OnChange | None = None,
    on_tick: OnTick | None = None,
) -> list[Outcome]:
    """Run the study's unfinished runs on the named executor."""
    if spec.engine == "verl":
        return _execute_verl(spec, root, executor, address, on_change, on_tick)
    if executor == "local":
        return run_local(spec, root, jobs, on_change, on_tick)
    if executor == "ray":
        if not address:
            raise InputError(
                "the ray executor needs --address HOST:PORT of a running Ray head "
                "(`ray start --head` prints it); nothing is started for you"
            )
        return run_ray(spec, root, address, on_change, on_tick)
    raise InputError(f"unknown executor {executor!r}; choose one of: local, ray")


def _execute_verl(
    spec: StudySpec,
    root: Path,
    executor: str,
    address: str | None,
    on_change: OnChange | None,
    on_tick: OnTick | None,
) -> list[Outcome]:
    from rlscale.engines import verl_launch

    if executor == "local":
        return verl_launch.run_local(spec, root, on_change, on_tick)
    if executor == "ray":
        if not address:
            raise InputError(
                "engine verl on Ray needs --address http://HOST:8265, the dashboard of a running "
                "Ray cluster (its job submission API); nothing is started for you"
            )
        return verl_launch.run_ray_jobs(spec, root, address, on_change, on_tick)
    raise InputError(f"unknown executor {executor!r}; choose one of: local, ray")


def sync_engine_logs(spec: StudySpec, root: Path) -> None:
    """verl runs keep their own logs: turn them into the runs' StepRecords first."""
    if spec.engine == "verl":
        from rlscale.engines.verl_launch import sync

        sync(spec, root)


def status_rows(spec: StudySpec, root: Path) -> list[dict[str, object]]:
    """Each run's state, last logged step, last evaluated L and — for a running run with
    enough evaluated steps — the forecast of its final L from a fit of its prefix."""
    import pandas as pd

    from rlscale.analysis import forecast_final
    from rlscale.store import read_records

    sync_engine_logs(spec, root)
    rows: list[dict[str, object]] = []
    for run in spec.runs():
        folder = run_dir(root, run)
        records = read_records(folder / STEPS_FILE)
        evaluated = [r for r in records if r.get("eval_L") is not None]
        state = run_state(folder)
        error = None
        if state == "failed":
            error = json.loads((folder / "error.json").read_text()).get("exit_code")
        forecast = None
        if state != "done" and evaluated:
            forecast = forecast_final(pd.DataFrame(evaluated), run.grpo.steps)
        rows.append(
            {
                "run": run.name,
                "model": run.model,
                "seed": run.seed,
                "tau": run.tau,
                "state": state,
                "step": records[-1]["step"] if records else None,
                "steps": run.grpo.steps,
                "L": evaluated[-1]["eval_L"] if evaluated else None,
                "forecast": forecast,
                "exit_code": error,
            }
        )
    return rows


def run_rows(spec: StudySpec, root: Path) -> list[dict[str, object]]:
    """Each run's identity, state and, when done, its summary (L before/after, compute, time)."""
    rows = []
    for run in spec.runs():
        folder = run_dir(root, run)
        summary_path = folder / "summary.json"
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        rows.append(
            {"run": run.name, "model": run.model, "seed": run.seed, "tau": run.tau}
            | {"state": run_state(folder)}
            | summary
        )
    return rows


def reuse_runs(spec: StudySpec) -> list[str]:
    """The runs of the data-reuse grid (the τ = 1 one included)."""
    steps = spec.reuse_steps or spec.steps
    return [r.name for r in spec.runs() if r.model == spec.reuse_model and r.grpo.steps == steps]


def analyse_study(spec: StudySpec, root: Path, bootstrap: int = 0) -> dict[str, object]:
    """Fit the study's laws and write `fits/<law>-<x>.json`, `analysis.json` and the report
    (`report.html`, self-contained; `report.md` with `report_files/`) into `root`; returns what
    `analysis.json` holds, with the fits."""
    from rlscale import analysis
    from rlscale.report.build import ReportInput, render_html, render_markdown
    from rlscale.store import load_study_records

    sync_engine_logs(spec, root)
    records = load_study_records(root, [r.name for r in spec.runs()])
    table = analysis.scaling_table(records)
    fits = analysis.fit_study(table, bootstrap=bootstrap)
    (root / "fits").mkdir(exist_ok=True)
    for name, result in fits.items():
        write_json_file(root / "fits" / f"{name}.json", result)
    summary = analysis.study_summary(
        table, records, fits, spec.reuse_model, reuse_runs(spec), paper_departures(spec)
    )
    runs = run_rows(spec, root)
    write_json_file(root / "analysis.json", {"study": spec.name, "runs": runs} | summary)
    report = ReportInput(f"rlscale study: {spec.name}", table, fits, records, summary, runs)
    (root / "report.md").write_text(render_markdown(report, root / "report_files"))
    (root / "report.html").write_text(render_html(report))
    return {"study": spec.name, "runs": runs, "fits": fits} | summary
