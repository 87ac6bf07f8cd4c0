"""Launching a study's verl runs: as local processes (one at a time: a verl run takes the whole
node), as Ray jobs through the job submission API, or as Slurm scripts to `sbatch` yourself.

Each attempt's output is appended to the run's `train.log`; when it ends, its file-logger logs
become the run's `steps.jsonl` and — once every step is there — `summary.json`, so the run store,
`rlscale study status|fit` and the report treat a verl run like a native one. A Ray job's id is
kept in the run's `ray_job.json`: a study started again while its jobs still run follows them
instead of submitting them twice.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

from rlscale import runstore
from rlscale.engines.base import Execution, Launch, by_executor
from rlscale.engines.process import spawn
from rlscale.engines.verl import (
    LOG_DIR,
    RunFiles,
    attempt_log,
    check_study,
    command,
    model_size,
    publish,
    run_env,
    sbatch_script,
    settings_for,
    shell_assignment,
    write_run_data,
)
from rlscale.errors import InputError, RlscaleError
from rlscale.spec import RunSpec, StudySpec
from rlscale.store import STEPS_FILE, write_json_file

JOB_FILE = "ray_job.json"
POLL_S = 1.0
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


class VerlEngine:
    """verl's `main_ppo` per run: local processes or Ray jobs; its logs become StepRecords."""

    name = "verl"

    def check(self, spec: StudySpec) -> None:
        check_study(spec)

    def prepare(self, spec: StudySpec, run: RunSpec, folder: Path) -> None:
        prepare_run(spec, run, folder)

    def execute(self, spec: StudySpec, root: Path, how: Execution) -> list[runstore.Outcome]:
        return by_executor(
            how,
            lambda: run_local(spec, root, how.on_change, how.on_tick),
            lambda at: run_ray_jobs(spec, root, at, how.on_change, how.on_tick),
            "engine verl on Ray needs --address http://HOST:8265, the dashboard of a running Ray "
            "cluster (its job submission API); nothing is started for you",
        )

    def sync(self, spec: StudySpec, root: Path) -> None:
        sync(spec, root)

    def launches(self, spec: StudySpec, root: Path) -> list[Launch]:
        rows = []
        for run, files in write_run_inputs(spec, root):
            settings = settings_for(spec, run)
            argv = command(run, settings, files)
            env = run_env(settings, str(files.logs / "<attempt>.jsonl"))
            rows.append(Launch(run, files.folder, argv, env, printed_command(spec, run, files)))
        return rows

    def emit_sbatch(self, spec: StudySpec, root: Path, directory: Path) -> list[Path]:
        return emit_sbatch(spec, root, directory)


def prepare_run(spec: StudySpec, run: RunSpec, folder: Path) -> RunFiles:
    """The run's folder: settings, data files, reward shim and `command.json` (argv)."""

    runstore.prepare_folder(run, folder)
    files = write_run_data(run, folder)
    write_json_file(
        folder / "command.json",
        {"argv": command(run, settings_for(spec, run), files)},
    )
    return files


def sync(spec: StudySpec, root: Path, runs: list[RunSpec] | None = None) -> None:
    """Refresh `steps.jsonl` (and `summary.json` when complete) from the runs' verl logs, e.g.
    of runs launched by hand from `rlscale verl commands`; a log with no validation yet is
    left for later."""

    for run in spec.runs() if runs is None else runs:
        folder = runstore.run_dir(root, run)
        if _logs_changed(folder):
            try:
                publish(run, folder, model_size(run.model, spec.sizes))
            except InputError:
                continue


def _logs_changed(folder: Path) -> bool:
    """Whether a verl log was written after the run's steps.jsonl (or it has none yet)."""
    logs = [p.stat().st_mtime_ns for p in (folder / LOG_DIR).glob("*.jsonl")]
    steps = folder / STEPS_FILE
    return bool(logs) and (not steps.exists() or max(logs) >= steps.stat().st_mtime_ns)


def finish(
    spec: StudySpec, run: RunSpec, folder: Path, code: int, seconds: float
) -> runstore.Outcome:
    """The attempt's Outcome after its logs were ingested."""

    try:
        complete = publish(run, folder, model_size(run.model, spec.sizes))
    except InputError as exc:
        cause = f"its verl log cannot be read: {exc}"
        return runstore.record_outcome(run, code or 1, seconds, folder, cause)
    if code == 0 and not complete:
        cause = f"verl exited without logging every step 0..{run.grpo.steps} (see verl-logs/)"
        return runstore.record_outcome(run, 1, seconds, folder, cause)
    return runstore.record_outcome(run, code, seconds, folder)


def run_local(
    spec: StudySpec,
    root: Path,
    on_change: runstore.OnChange | None = None,
    on_tick: runstore.OnTick | None = None,
) -> list[runstore.Outcome]:
    """Each unfinished run as a local verl process, one after another."""

    todo = runstore.pending_runs(spec, root)
    outcomes = [runstore.Outcome(r.name, "done", 0.0) for r in spec.runs() if r not in todo]
    for run in todo:
        folder = runstore.run_dir(root, run)
        files = prepare_run(spec, run, folder)
        files.logs.mkdir(exist_ok=True)
        env = run_env(settings_for(spec, run), attempt_log(files))
        started = time.perf_counter()
        proc = spawn(
            command(run, settings_for(spec, run), files),
            folder,
            dict(os.environ) | env,
        )
        if on_change is not None:
            on_change(run.name, "partial")
        while proc.poll() is None:
            time.sleep(POLL_S)
            _tick(spec, run, folder, on_tick)
        outcomes.append(finish(spec, run, folder, proc.returncode, time.perf_counter() - started))
        if on_change is not None:
            on_change(run.name, outcomes[-1].state)
    return runstore.in_study_order(spec, outcomes)


def _tick(spec: StudySpec, run: RunSpec, folder: Path, on_tick: runstore.OnTick | None) -> None:
    sync(spec, folder.parent.parent, [run])  # live steps for the bars and status
    if on_tick is not None:
        on_tick()


def run_ray_jobs(
    spec: StudySpec,
    root: Path,
    address: str,
    on_change: runstore.OnChange | None = None,
    on_tick: runstore.OnTick | None = None,
) -> list[runstore.Outcome]:
    """Each unfinished run as a Ray job on the cluster whose dashboard is at `address`
    (http://HOST:8265); the run store must be on a filesystem the cluster shares."""
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(_http(address))
    except ConnectionError as exc:
        raise RlscaleError(
            f"cannot reach Ray's job API at {_http(address)} ({exc}); give the dashboard "
            "address of a running cluster (ray start --head prints it, port 8265 by default)"
        ) from None
    todo = runstore.pending_runs(spec, root)
    outcomes = [runstore.Outcome(r.name, "done", 0.0) for r in spec.runs() if r not in todo]
    jobs: dict[str, tuple[RunSpec, Path, float]] = {}
    for run in todo:
        folder = runstore.run_dir(root, run)
        job = _running_job(client, folder) or _submit(client, spec, run, folder)
        jobs[job] = (run, folder, time.perf_counter())
        if on_change is not None:
            on_change(run.name, "partial")
    while jobs:
        time.sleep(POLL_S)
        for job, (run, folder, started) in list(jobs.items()):
            status = str(client.get_job_status(job).value)
            if status not in TERMINAL:
                _tick(spec, run, folder, None)
                continue
            del jobs[job]
            with open(folder / "train.log", "a") as log:
                log.write(client.get_job_logs(job))
            code = 0 if status == "SUCCEEDED" else 1
            outcomes.append(finish(spec, run, folder, code, time.perf_counter() - started))
            if on_change is not None:
                on_change(run.name, outcomes[-1].state)
        if on_tick is not None:
            on_tick()
    return runstore.in_study_order(spec, outcomes)


def _http(address: str) -> str:
    return address if "://" in address else f"http://{address}"


def _running_job(client: Any, folder: Path) -> str | None:
    """The run's Ray job from an earlier study process, if it is still pending or running."""
    path = folder / JOB_FILE
    if not path.exists():
        return None
    job = str(json.loads(path.read_text())["submission_id"])
    try:
        status = str(client.get_job_status(job).value)
    except Exception:  # unknown to this cluster (e.g. a new head): submit again
        return None
    return None if status in TERMINAL else job


def _submit(client: Any, spec: StudySpec, run: RunSpec, folder: Path) -> str:
    files = prepare_run(spec, run, folder)
    files.logs.mkdir(exist_ok=True)
    argv = command(run, settings_for(spec, run), files)
    job = client.submit_job(
        entrypoint=shlex.join(argv),
        submission_id=f"{run.name}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}",
        runtime_env={"env_vars": run_env(settings_for(spec, run), attempt_log(files))},
        metadata={"rlscale_study": spec.name, "rlscale_run": run.name},
    )
    write_json_file(folder / JOB_FILE, {"submission_id": job, "argv": argv})
    return str(job)


def emit_sbatch(spec: StudySpec, root: Path, directory: Path) -> list[Path]:
    """One Slurm script per unfinished run in `directory` (the runs' data files are written
    into the study folder); `sbatch` them, then `rlscale study fit` the folder."""

    directory.mkdir(parents=True, exist_ok=True)
    scripts = []
    for run in runstore.pending_runs(spec, root):
        folder = runstore.run_dir(root, run)
        files = prepare_run(spec, run, folder)
        files.logs.mkdir(exist_ok=True)
        path = directory / f"{run.name}.sbatch"
        path.write_text(sbatch_script(run, settings_for(spec, run), files))
        path.chmod(0o755)
        scripts.append(path)
    return scripts


def printed_command(spec: StudySpec, run: RunSpec, files: RunFiles) -> str:
    """The run's command as one shell line (the log file named at launch time)."""
    log = shlex.quote(str(files.logs)) + '/"$(date -u +%Y%m%dT%H%M%S).jsonl"'
    env = run_env(settings_for(spec, run), "")
    del env["VERL_FILE_LOGGER_PATH"]  # named when the line runs: $(date) must expand there
    prefix = " ".join([f"VERL_FILE_LOGGER_PATH={log}", *map(shell_assignment, env, env.values())])
    return f"mkdir -p {shlex.quote(str(files.logs))} && {prefix} " + shlex.join(
        command(run, settings_for(spec, run), files)
    )


def write_run_inputs(spec: StudySpec, root: Path) -> list[tuple[RunSpec, RunFiles]]:
    """Every run's data files, reward shim and command.json in the study folder."""

    return [(run, prepare_run(spec, run, runstore.run_dir(root, run))) for run in spec.runs()]
