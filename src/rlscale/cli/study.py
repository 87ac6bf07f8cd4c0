"""`rlscale study run|status|fit`: a whole study from one file (or a preset), resumable."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import typer

from rlscale.cli._common import fmt, handles_errors, stderr, stdout, step_progress, write_json
from rlscale.cli._plain import RunLines, is_terminal
from rlscale.errors import InputError, RlscaleError

study_app = typer.Typer(
    help="Studies: every run of a study file, then its fits and report.", no_args_is_help=True
)
STUDY_FILE = "study.json"  # the study's mapping, as given: what status and fit read back


@study_app.command("run")
@handles_errors
def run_command(
    spec: Path | None = typer.Argument(None, help="A study file (YAML); or give --preset."),
    out: Path = typer.Option(..., help="The study folder (created; rerun it to resume)."),
    preset: str = typer.Option(
        "", help="A built-in study: micro, micro-seeds, micro-quick, micro-families, paper (verl)."
    ),
    train: str = typer.Option("", help="Training data (replaces the study's train:)."),
    holdout: str = typer.Option("", help="Held-out data (replaces the study's holdout:)."),
    executor: str = typer.Option("", help="local or ray (default: the study file's)."),
    address: str = typer.Option(
        "",
        help="Ray head HOST:PORT for --executor ray; engine verl: the dashboard, "
        "http://HOST:8265 (default: $RAY_ADDRESS).",
    ),
    jobs: int = typer.Option(0, help="Local runs at once (default: cores // threads)."),
    bootstrap: int = typer.Option(0, help="Bootstrap resamples for the fits' intervals."),
    report_to: str = typer.Option(
        "",
        help="Experiment trackers for every run, comma-separated: wandb, mlflow, tensorboard "
        "(replaces the study's report_to:; 'none' for none).",
    ),
    emit: tuple[str, Path] | None = typer.Option(
        None, help="engine verl: `--emit sbatch DIR` writes one Slurm script per run, runs none."
    ),
) -> None:
    """Run every unfinished run, then fit the laws and write fits/, analysis.json, report.*."""
    from rlscale.integrations.trackers import prepare_trackers
    from rlscale.store import exclusive, remove_stale_temps, write_json_file
    from rlscale.study import parse_study
    from rlscale.sweep import analyse_study, execute

    mapping = study_mapping(spec, preset, train, holdout)
    if report_to:  # a preset has no file to add it to
        names = [n.strip() for n in report_to.split(",") if n.strip() and n.strip() != "none"]
        mapping["report_to"] = names
    study = parse_study(mapping)
    if emit is not None:
        _emit(study, mapping, out, emit)
        return
    tracking = _tracking(study, out)
    started = time.perf_counter()
    with exclusive(out, "study"):
        for folder in (out, out / "fits"):
            remove_stale_temps(folder)
        write_json_file(out / STUDY_FILE, {"study": mapping})
        prepare_trackers(tracking)
        progress = _RunBars(study, out) if is_terminal() else _RunLines(study, out)
        with progress as bars:
            outcomes = execute(
                study,
                out,
                executor or study.executor,
                jobs=jobs or None,
                address=address or os.environ.get("RAY_ADDRESS"),
                on_change=bars.change,
                on_tick=bars.tick,
            )
        ran = time.perf_counter()
        stderr().print(f"fitting {study.name} …")
        failures = _failures(outcomes, out)
        try:
            result = analyse_study(study, out, bootstrap)
        except Exception:
            if failures:  # said first: the analysis' own error must not hide the runs'
                print(f"error: {failures}", file=sys.stderr)
            raise
        timings = {
            "runs_s": ran - started,
            "analysis_s": time.perf_counter() - ran,
            "per_run_s": {o.run: o.seconds for o in outcomes},  # 0 for runs done before
        }
        write_json_file(out / "timings.json", timings)
        _report_study(tracking, study.name, out)
    _print_findings(result, out)
    if failures:
        raise RlscaleError(failures)


def _tracking(study: Any, out: Path) -> Any:
    """The study's trackers (`report_to:`), checked before any run starts."""
    from rlscale.integrations.trackers import TrackingConfig, require_packages

    try:
        tracking = TrackingConfig(study.report_to, study.name, out)
    except InputError as exc:
        raise InputError(f"report_to: {exc}") from None
    require_packages(tracking)
    return tracking


def _report_study(tracking: Any, name: str, out: Path) -> None:
    """The fits, analysis and report as artifacts of the trackers that keep them."""
    from rlscale.integrations.trackers import report_study

    if not tracking.report_to:
        return
    files = [(str(p.relative_to(out)), p) for p in sorted((out / "fits").glob("*.json"))]
    files += [(name, out / name) for name in ("analysis.json", "report.html", "report.md")]
    figures = sorted(p for p in (out / "report_files").glob("*") if p.is_file())
    files += [(str(p.relative_to(out)), p) for p in figures]
    sent = report_study(tracking, name, [(inside, p) for inside, p in files if p.exists()])
    if sent:
        stderr().print(f"fits and report → {', '.join(sent)} ({name}-analysis)", markup=False)


def _failures(outcomes: list[Any], out: Path) -> str:
    """The one line that names a study's failed runs ('' when none failed)."""
    failed = [o for o in outcomes if o.state == "failed"]
    if not failed:
        return ""
    names = ", ".join(o.run for o in failed)
    return (
        f"{len(failed)} run(s) failed ({names}); see {out}/runs/<run>/error.json, "
        "fix the cause and run the same command again"
    )


def study_mapping(spec: Path | None, preset: str, train: str, holdout: str) -> dict[str, Any]:
    """A study file's or preset's mapping, with the data options applied."""
    from rlscale.study import preset_study, read_study_file

    if bool(preset) == (spec is not None):
        raise InputError(
            "give a study file or --preset NAME (micro, micro-seeds, micro-quick, micro-families, "
            "paper), not both"
        )
    mapping = preset_study(preset) if preset else read_study_file(spec)  # type: ignore[arg-type]
    return mapping | ({"train": train} if train else {}) | ({"holdout": holdout} if holdout else {})


def _emit(study: Any, mapping: dict[str, Any], out: Path, emit: tuple[str, Path]) -> None:
    from rlscale.engines.base import LaunchedByHand
    from rlscale.engines.registry import get_engine
    from rlscale.store import exclusive, write_json_file

    kind, directory = emit
    engine = get_engine(study.engine)
    if kind != "sbatch" or not isinstance(engine, LaunchedByHand):
        raise InputError("--emit sbatch DIR writes Slurm scripts for a study with engine: verl")
    with exclusive(out, "study"):
        write_json_file(out / STUDY_FILE, {"study": mapping})
        scripts = engine.emit_sbatch(study, out, directory)
    stdout().print(
        f"{len(scripts)} Slurm script(s) → {directory} (runs' data in {out}/runs); "
        f"submit each with sbatch, then `rlscale study fit {shlex.quote(str(out))}`",
        markup=False,
    )


@study_app.command("status")
@handles_errors
def status_command(
    folder: Path = typer.Argument(..., help="A study folder."),
    json_out: str = typer.Option("", "--json", help="Write the rows as JSON ('-' = stdout)."),
) -> None:
    """Each run's state, step, last L and the forecast of its final L from its prefix."""
    from rich.table import Table

    from rlscale.sweep import status_rows

    rows = status_rows(_read_study(folder), folder)
    if json_out:
        write_json(rows, json_out)
        return
    families = any("family" in r for r in rows)
    table = Table("run", *(["family"] if families else []), "state", "step", "L")
    table.add_column("forecast final L [95%]")
    for r in rows:
        f = r["forecast"]
        band = f"{fmt(f['L'], 3)} [{fmt(f['lo'], 3)}, {fmt(f['hi'], 3)}]" if f else "—"  # type: ignore[index]
        step = f"{r['step'] if r['step'] is not None else '—'}/{r['steps']}"
        family = [str(r.get("family", "—"))] if families else []
        table.add_row(str(r["run"]), *family, str(r["state"]), step, fmt(r["L"], 3), band)  # type: ignore[arg-type]
    stdout().print(table)


@study_app.command("fit")
@handles_errors
def fit_command(
    folder: Path = typer.Argument(..., help="A study folder."),
    bootstrap: int = typer.Option(0, help="Bootstrap resamples for the fits' intervals."),
) -> None:
    """Fit and report again from the runs' records (e.g. while some runs are unfinished)."""
    from rlscale.sweep import analyse_study

    _print_findings(analyse_study(_read_study(folder), folder, bootstrap), folder)


def _read_study(folder: Path) -> Any:
    from rlscale.study import parse_study

    path = folder / STUDY_FILE
    if not path.exists():
        raise InputError(f"{folder}: not a study folder (no {STUDY_FILE}); run `rlscale study run`")
    return parse_study(json.loads(path.read_text())["study"])


def _print_findings(result: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from rlscale.report.plain import study_tables

    console = stdout()
    if not console.is_terminal:  # a file or a pipe: wide enough that tables do not wrap
        console = Console(soft_wrap=True, width=160)
    for t in study_tables(result, result["runs"], result["fits"]):
        table = Table(*t.headers, title=t.title, caption=t.note or None)
        for row in t.rows:
            table.add_row(*(Text(cell) for cell in row))  # plain text: "[…]" is not markup
        console.print(table)
    console.print(f"fits, analysis.json and report.html → {out}", markup=False)


class _RunBars:
    """One rich bar per run (step of steps, reward, last L, ETA) fed from the runs' records."""

    def __init__(self, study: Any, root: Path) -> None:
        from rlscale.runstore import run_dir, run_state

        self.progress = step_progress("{task.description}")
        self.folders = {r.name: run_dir(root, r) for r in study.runs()}
        self.tasks = {
            r.name: self.progress.add_task(r.name, total=r.grpo.steps, info="waiting")
            for r in study.runs()
        }
        self.active: set[str] = set()
        for name, folder in self.folders.items():
            if run_state(folder) == "done":
                self._refresh(name, "done before")

    def __enter__(self) -> _RunBars:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def change(self, run: str, state: str) -> None:
        if state == "partial":
            self.active.add(run)
        else:
            self.active.discard(run)
            self._refresh(run, state)

    def tick(self) -> None:
        for run in self.active:
            self._refresh(run, "training")

    def _refresh(self, run: str, state: str) -> None:
        from rlscale.store import STEPS_FILE, read_records

        records = read_records(self.folders[run] / STEPS_FILE)
        if not records:
            self.progress.update(self.tasks[run], info=state)
            return
        last = records[-1]
        evaluated = [r["eval_L"] for r in records if r.get("eval_L") is not None]
        info = f"{state}  reward {fmt(last.get('reward_mean'), 3)}"
        info += f"  L {fmt(evaluated[-1] if evaluated else None, 3)}"
        self.progress.update(self.tasks[run], completed=last["step"], info=info)


class _RunLines:
    """Plain lines instead of the bars when stdout is not a terminal: each run's start, a step
    now and then, its end."""

    READ_EVERY = 1.0  # seconds between reads of a training run's steps.jsonl

    def __init__(self, study: Any, root: Path) -> None:
        from rlscale.runstore import run_dir, run_state

        self.folders = {r.name: run_dir(root, r) for r in study.runs()}
        self.lines = {r.name: RunLines(r.name, r.grpo.steps) for r in study.runs()}
        self.seen: dict[str, int] = {}
        self.read_at: dict[str, float] = {}
        self.done_before = [n for n, f in self.folders.items() if run_state(f) == "done"]

    def __enter__(self) -> _RunLines:
        for name in self.done_before:
            self.lines[name].say(f"{name} done before")
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def change(self, run: str, state: str) -> None:
        lines = self.lines[run]
        if state == "partial":
            self.seen[run] = self._last_step(run)
            resumed = f" (resuming after step {self.seen[run]})" if self.seen[run] >= 0 else ""
            lines.start(resumed)
            return
        self._read(run)
        self.seen.pop(run, None)
        lines.say(f"{run} {'finished' if state == 'done' else state}{self._end(run)}")

    def tick(self) -> None:
        now = time.monotonic()
        for run in list(self.seen):
            if now - self.read_at.get(run, float("-inf")) >= self.READ_EVERY:
                self.read_at[run] = now
                self._read(run)

    def _read(self, run: str) -> None:
        from rlscale.store import STEPS_FILE, read_records

        for record in read_records(self.folders[run] / STEPS_FILE):
            if int(record["step"]) > self.seen.get(run, -1):
                self.seen[run] = int(record["step"])
                self.lines[run].update(record)

    def _last_step(self, run: str) -> int:
        from rlscale.store import STEPS_FILE, read_records

        records = read_records(self.folders[run] / STEPS_FILE)
        return int(records[-1]["step"]) if records else -1

    def _end(self, run: str) -> str:
        summary = self.folders[run] / "summary.json"
        if summary.exists():
            s = json.loads(summary.read_text())
            return f" L={fmt(s['L_start'], 3)}→{fmt(s['L_final'], 3)} steps={s['steps']}"
        error = self.folders[run] / "error.json"
        if error.exists():
            tail = json.loads(error.read_text()).get("output_tail", "").strip().splitlines()
            return f": {tail[-1]}" if tail else ""
        return ""
