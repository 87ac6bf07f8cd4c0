"""Experiment trackers (W&B, MLflow, TensorBoard) as sinks of the StepRecords a run already
writes: each record's scalars at its step, the run's config and its final summary; a study's
fits and report as artifacts where the tracker keeps artifacts.

Trackers are chosen by name from `TRACKERS`; each needs its own optional package (the extra of
the same name). They follow their users' own settings: W&B its `WANDB_MODE`, `WANDB_DIR` and
`WANDB_PROJECT`, MLflow its `MLFLOW_TRACKING_URI`. Where those name no place, local files go
under the config's `directory`: `wandb/`, `mlruns/` (an MLflow file store), `tensorboard/<run>/`.

A resumed run re-trains the steps after its last checkpoint; those steps were already sent. So
the sink keeps, per tracker, the last step it sent (`trackers.json` in the run folder, written
after each step) and sends only later steps: no step reaches a tracker twice. A tracker the run
has not reported to before gets the steps already in `steps.jsonl` first. A crash between a
tracker's write and that file's can leave one step sent without its mark; that step is then sent
again (W&B drops a step that is not after its last; MLflow and TensorBoard keep both values).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from rlscale.errors import InputError, RlscaleError
from rlscale.store import STEPS_FILE, read_records, write_json_file

STATE_FILE = "trackers.json"
# Columns that name the run rather than measure a step: its config, not its series.
IDENTITY = frozenset({"run", "model", "family", "seed", "tau", "step", "N", "N_total"})
TIME_COLUMNS = frozenset({"wall_s", "sample_s", "verify_s", "update_s", "eval_s"})
DATA_COLUMNS = frozenset({"prompts_seen", "unique_prompts", "epoch"})
Settings = Mapping[str, Any]
_UNSAFE = re.compile(r"[^\w.\- /]")  # MLflow's rule for metric names, the strictest of the three


# --- names and values (pure) ----------------------------------------------------------------


def series_name(column: str) -> str:
    """A StepRecord column's series name, the same in every tracker: a section (`train`, `eval`,
    `compute`, `data`, `time`: trackers group charts by it), '/', the column as documented
    (an extra eval set's `eval_L@NAME` becomes `eval_L.NAME`)."""
    if column in TIME_COLUMNS:
        section = "time"
    elif column.startswith("eval_"):
        section = "eval"
    elif column.startswith(("tokens_", "flops_")):
        section = "compute"
    elif column in DATA_COLUMNS:
        section = "data"
    else:
        section = "train"
    return f"{section}/{_UNSAFE.sub('_', column.replace('@', '.'))}"


def step_scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """A StepRecord's measured numbers by series name (identity columns, text and missing
    values are left out)."""
    return {
        series_name(key): float(value)
        for key, value in record.items()
        if key not in IDENTITY and _finite_number(value)
    }


def summary_scalars(summary: Mapping[str, Any]) -> dict[str, float]:
    """A run summary's numbers as `summary/<key>`."""
    return {f"summary/{k}": float(v) for k, v in summary.items() if _finite_number(v)}


def run_config(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A trainer's spec (spec.json) as the trackers' run config: model, N, data, seed, τ at the
    top, every GRPO setting under `grpo`."""
    grpo = dict(spec.get("config") or {})
    top = {k: v for k, v in spec.items() if k != "config"}
    return top | {"seed": grpo.get("seed"), "tau": grpo.get("tau"), "grpo": grpo}


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A nested config as `a.b` → text (MLflow's parameters are flat strings)."""
    out: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out |= flat_params(value, f"{name}.")
        else:
            out[name] = json.dumps(value) if not isinstance(value, str) else value
    return out


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- the config -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingConfig:
    """Which trackers a run reports to, its group (a study's name: the W&B group and the MLflow
    experiment) and where trackers keep local files when their own settings name no place."""

    report_to: tuple[str, ...] = ()
    group: str | None = None
    directory: Path = field(default_factory=Path)

    def __post_init__(self) -> None:
        unknown = [name for name in self.report_to if name not in TRACKERS]
        if unknown:
            raise InputError(
                f"unknown tracker(s) {', '.join(unknown)}; known: {', '.join(TRACKERS)}"
            )
        if len(set(self.report_to)) != len(self.report_to):
            raise InputError(f"a tracker is named twice in {','.join(self.report_to)}")

    @classmethod
    def parse(cls, text: str, group: str | None, directory: Path) -> TrackingConfig:
        """`wandb,mlflow` (or '' / `none`: no tracker)."""
        names = tuple(n.strip() for n in text.split(",") if n.strip() and n.strip() != "none")
        return cls(names, group, directory)


def require_packages(config: TrackingConfig) -> None:
    """One line naming the extra to install for each tracker whose package is missing (checked
    before a run loads anything)."""
    for name in config.report_to:
        module, extra = TRACKER_PACKAGES[name]
        if importlib.util.find_spec(module) is None:
            raise InputError(
                f"report to {name}: the {module} package is not installed; "
                f"pip install 'rlscale[{extra}]'"
            )


# --- the trackers ---------------------------------------------------------------------------


class Tracker(Protocol):
    """One tracker's run: opened (or reopened from the state it returned), fed, closed."""

    keeps_artifacts: bool

    @staticmethod
    def prepare(config: TrackingConfig) -> None:
        """Before a study's runs start, in the process that starts them: what the runs share
        and must not each create at once."""

    def start(self, run: str, config: Settings, state: Settings) -> dict[str, Any]:
        """Open the run (reopen it when `state` names one); the state that reopens it."""
        ...

    def log(self, step: int, scalars: Mapping[str, float]) -> None: ...

    def summarise(self, summary: Mapping[str, Any]) -> None: ...

    def artifacts(self, name: str, files: Mapping[str, Path]) -> None:
        """Files (name in the artifact → path) kept with the run."""

    def close(self, ok: bool) -> None: ...


class WandbTracker:
    """A W&B run in project `WANDB_PROJECT` (default rlscale), grouped by the study; online or
    offline as the user's `WANDB_MODE` says (a resumed run reopens the same run id)."""

    keeps_artifacts = True

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.run: Any = None

    @staticmethod
    def prepare(config: TrackingConfig) -> None:
        """Nothing: W&B makes a group when a run first names it."""

    def start(self, run: str, config: Settings, state: Settings) -> dict[str, Any]:
        import wandb

        directory = None if os.environ.get("WANDB_DIR") else self.config.directory
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        try:
            self.run = wandb.init(
                project=os.environ.get("WANDB_PROJECT") or "rlscale",
                group=self.config.group,
                name=run,
                id=state.get("id"),
                resume="allow" if state.get("id") else None,
                dir=str(directory) if directory is not None else None,
                config=dict(config),
                job_type=str(config.get("job_type", "train")),
                settings=wandb.Settings(console="off", silent=True),
            )
        except Exception as exc:  # wandb's own errors (no login, bad mode) as one line
            raise RlscaleError(
                f"report to wandb: {exc} (WANDB_MODE=offline keeps runs on this machine; "
                "`wandb login` for online runs)"
            ) from None
        return {"id": self.run.id}

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        self.run.log(dict(scalars), step=step)

    def summarise(self, summary: Mapping[str, Any]) -> None:
        self.run.summary.update(summary_scalars(summary))

    def artifacts(self, name: str, files: Mapping[str, Path]) -> None:
        import wandb

        artifact = wandb.Artifact(_artifact_name(name), type="rlscale-study")
        for inside, path in files.items():
            artifact.add_file(str(path), name=inside)
        self.run.log_artifact(artifact)

    def close(self, ok: bool) -> None:
        if self.run is not None:
            self.run.finish(exit_code=0 if ok else 1)
            self.run = None


class MlflowTracker:
    """An MLflow run in the experiment named by the study (else `MLFLOW_EXPERIMENT_NAME`, else
    rlscale), at `MLFLOW_TRACKING_URI`, else in a file store under the config's directory."""

    keeps_artifacts = True

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.client: Any = None
        self.run_id = ""

    @staticmethod
    def prepare(config: TrackingConfig) -> None:
        """The study's experiment, made once: a file store checks a name is free, then adds the
        experiment, so two runs starting at once could each add one of the same name."""
        _experiment(_mlflow_client(config), config)

    def start(self, run: str, config: Settings, state: Settings) -> dict[str, Any]:
        self.client = _mlflow_client(self.config)
        if state.get("run_id"):
            self.run_id = str(state["run_id"])
            self.client.update_run(self.run_id, status="RUNNING")
            return dict(state)
        experiment = _experiment(self.client, self.config)
        self.run_id = self.client.create_run(experiment, run_name=run).info.run_id
        params = [(k, v[:6000]) for k, v in flat_params(config).items()]  # MLflow's value limit
        from mlflow.entities import Param

        for start in range(0, len(params), 100):  # MLflow's batch limit
            batch = [Param(k, v) for k, v in params[start : start + 100]]
            self.client.log_batch(self.run_id, params=batch)
        return {"run_id": self.run_id}

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in scalars.items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def summarise(self, summary: Mapping[str, Any]) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        step = int(summary.get("steps") or 0)
        metrics = [Metric(k, v, now, step) for k, v in summary_scalars(summary).items()]
        self.client.log_batch(self.run_id, metrics=metrics)
        self.client.log_dict(self.run_id, dict(summary), "summary.json")

    def artifacts(self, name: str, files: Mapping[str, Path]) -> None:
        for inside, path in files.items():
            folder = str(Path(inside).parent)
            self.client.log_artifact(self.run_id, str(path), None if folder == "." else folder)

    def close(self, ok: bool) -> None:
        if self.client is not None and self.run_id:
            self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")
            self.run_id = ""


def _mlflow_client(config: TrackingConfig) -> Any:
    # MLflow reports usage online unless told not to: nothing goes online unasked.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:  # MLflow keeps file stores working only when asked to (maintenance mode)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = (config.directory / "mlruns").resolve().as_uri()
    return MlflowClient(tracking_uri=uri)


def _experiment(client: Any, config: TrackingConfig) -> str:
    """The id of the experiment named by the config's group, created when missing."""
    from mlflow.exceptions import MlflowException

    name = config.group or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "rlscale"
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(client.create_experiment(name))
    except MlflowException:  # a server refuses a second experiment of a name: it exists now
        return str(client.get_experiment_by_name(name).experiment_id)


class TensorBoardTracker:
    """Event files in `<directory>/tensorboard/<run>/`: scalars by step, the config and the
    summary as text (TensorBoard keeps no artifacts). `tensorboard --logdir DIR/tensorboard`."""

    keeps_artifacts = False

    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.writer: Any = None
        self.last_step = 0

    @staticmethod
    def prepare(config: TrackingConfig) -> None:
        """Nothing: each run writes its own folder."""

    def start(self, run: str, config: Settings, state: Settings) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.config.directory / "tensorboard" / run))
        if not state:  # a reopened run has its config already
            text = json.dumps(dict(config), indent=2, default=str)
            self.writer.add_text("config", _code_block(text), 0)
        return {}

    def log(self, step: int, scalars: Mapping[str, float]) -> None:
        for name, value in scalars.items():
            self.writer.add_scalar(name, value, step)
        self.writer.flush()  # a killed run keeps what it sent
        self.last_step = step

    def summarise(self, summary: Mapping[str, Any]) -> None:
        step = int(summary.get("steps") or self.last_step)
        for name, value in summary_scalars(summary).items():
            self.writer.add_scalar(name, value, step)
        text = json.dumps(dict(summary), indent=2, default=str)
        self.writer.add_text("summary", _code_block(text), step)

    def artifacts(self, name: str, files: Mapping[str, Path]) -> None:
        """TensorBoard has no artifacts."""

    def close(self, ok: bool) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _code_block(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())  # markdown: kept verbatim


def _artifact_name(name: str) -> str:
    return re.sub(r"[^\w.\-]", "-", name)  # W&B: alphanumerics, dashes, underscores, dots


TRACKERS: dict[str, type[WandbTracker] | type[MlflowTracker] | type[TensorBoardTracker]] = {
    "wandb": WandbTracker,
    "mlflow": MlflowTracker,
    "tensorboard": TensorBoardTracker,
}
# tracker → (the module it imports, the rlscale extra that installs it)
TRACKER_PACKAGES = {
    "wandb": ("wandb", "wandb"),
    "mlflow": ("mlflow", "mlflow"),
    "tensorboard": ("tensorboard", "tensorboard"),
}


def prepare_trackers(config: TrackingConfig) -> None:
    """Before a study's runs start: what its runs share, made once (an MLflow experiment)."""
    for name in config.report_to:
        TRACKERS[name].prepare(config)


# --- a run's sink ---------------------------------------------------------------------------


class TrackerSink:
    """Feeds one run's StepRecords to its trackers, each opened at the first step it has not yet
    seen and never sent a step twice (see the module's docstring); the summary once, at the end."""

    def __init__(self, config: TrackingConfig, folder: Path, run: str) -> None:
        self.config, self.folder, self.run = config, Path(folder), run
        self.describe: Mapping[str, Any] = {"run": run}
        self.state: dict[str, dict[str, Any]] = _read_state(self.folder / STATE_FILE)
        self.open: dict[str, Tracker] = {}

    def set_config(self, spec: Mapping[str, Any]) -> None:
        """What the trackers record as the run's config: the trainer's spec (`run_config`)."""
        self.describe = run_config(spec)

    def catch_up(self) -> None:
        """Before a run trains: open each tracker that has not got the run's summary (one that
        cannot start says so now) and send it the steps already in `steps.jsonl` it has not got,
        so a tracker added when a run resumes (or after it finished) gets the whole run."""
        waiting = [n for n in self.config.report_to if not self.state.get(n, {}).get("summarised")]
        for name in waiting:
            self._tracker(name)
        if waiting:
            for record in read_records(self.folder / STEPS_FILE):
                self.on_step(record)

    def on_step(self, record: Mapping[str, Any]) -> None:
        step = int(record["step"])
        scalars = step_scalars(record)
        for name in self.config.report_to:
            if step <= self.state.get(name, {}).get("last_step", -1):
                continue  # sent before this run was resumed
            self._tracker(name).log(step, scalars)
            self.state.setdefault(name, {})["last_step"] = step
            self._save()

    def finish(self, summary: Mapping[str, Any]) -> None:
        """The run's summary, once per tracker (a finished run started again sends nothing)."""
        for name in self.config.report_to:
            if not self.state.get(name, {}).get("summarised"):
                self._tracker(name).summarise(summary)
                self.state.setdefault(name, {})["summarised"] = True
                self._save()
        self.close(ok=True)

    def close(self, ok: bool) -> None:
        for tracker in self.open.values():
            tracker.close(ok)
        self.open = {}

    def _tracker(self, name: str) -> Tracker:
        if name not in self.open:
            tracker = TRACKERS[name](self.config)
            kept = self.state.get(name, {})
            opened = tracker.start(self.run, self.describe, kept)
            self.state[name] = {**kept, **opened}
            self._save()
            self.open[name] = tracker
        return self.open[name]

    def _save(self) -> None:
        write_json_file(self.folder / STATE_FILE, self.state)


@contextmanager
def tracker_sink(config: TrackingConfig, folder: Path, run: str) -> Iterator[TrackerSink]:
    """A sink whose trackers are closed as failed when the run raises."""
    sink = TrackerSink(config, folder, run)
    try:
        yield sink
    except BaseException:
        sink.close(ok=False)
        raise
    sink.close(ok=True)


def _read_state(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc.msg}); delete it to report anew") from None
    return state if isinstance(state, dict) else {}


def report_study(
    config: TrackingConfig, study: str, files: Sequence[tuple[str, Path]]
) -> list[str]:
    """A study's fits and report as artifacts of one `<study>-analysis` run in each tracker that
    keeps artifacts; the names of the trackers that got them."""
    sent = []
    for name in config.report_to:
        tracker = TRACKERS[name](config)
        if not tracker.keeps_artifacts:
            continue
        tracker.start(f"{study}-analysis", {"study": study, "job_type": "analysis"}, {})
        try:
            tracker.artifacts(f"{study}-analysis", dict(files))
        except BaseException:
            tracker.close(ok=False)
            raise
        tracker.close(ok=True)
        sent.append(name)
    return sent
