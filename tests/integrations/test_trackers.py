"""Trackers as sinks of StepRecords, each run for real and offline (W&B offline mode in a tmp
dir, an MLflow file store, TensorBoard event files) and read back with its own reader."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rlscale.errors import InputError
from rlscale.integrations import trackers
from rlscale.integrations.trackers import (
    TrackingConfig,
    prepare_trackers,
    require_packages,
    series_name,
    step_scalars,
)
from rlscale.store import read_records
from tests.integrations.readers import (
    mlflow_client,
    read_wandb_runs,
    tensorboard_scalars,
    tensorboard_text,
    wandb_series,
)

TINY = ["--steps", "3", "--threads", "1", "--set", "prompts_per_step=4", "--set", "group_size=4"]
TINY += ["--set", "eval_every=2", "--set", "eval_problems=16", "--set", "eval_samples=2"]
TINY += ["--set", "checkpoint_every=1", "--set", "eval_greedy=false"]
SERIES = ["train/reward_mean", "eval/eval_L", "compute/flops_paper_cum", "data/prompts_seen"]


def offline_env(tmp: Path) -> dict[str, str]:
    """Trackers kept on this machine and out of the user's home; never online."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "MLFLOW_"))}
    return env | {
        "OMP_NUM_THREADS": "1",
        "WANDB_MODE": "offline",
        "WANDB_CONFIG_DIR": str(tmp / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp / "wandb-cache"),
        "WANDB_DATA_DIR": str(tmp / "wandb-data"),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def train(out: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rlscale", "train", "--model", "micro-xs", "--out", str(out)]
    done = subprocess.run(
        [*cmd, *TINY, *extra], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


# --- pure parts -----------------------------------------------------------------------------


def test_series_names_group_columns_and_survive_every_tracker() -> None:
    assert series_name("reward_mean") == "train/reward_mean"
    assert series_name("eval_L") == "eval/eval_L"
    assert series_name("eval_s") == "time/eval_s"
    assert series_name("flops_paper_cum") == "compute/flops_paper_cum"
    assert series_name("prompts_seen") == "data/prompts_seen"
    assert series_name("eval_L@gsm 8k!") == "eval/eval_L.gsm 8k_"  # MLflow refuses '@' and '!'


def test_step_scalars_keep_measurements_only() -> None:
    record = {"run": "r", "step": 3, "N": 10, "seed": 0, "reward_mean": 0.5, "eval_L": None}
    record |= {"entropy": float("nan"), "groups_kept": 2, "model": "m", "kl": True}
    assert step_scalars(record) == {"train/reward_mean": 0.5, "train/groups_kept": 2.0}


def test_unknown_tracker_lists_the_known_ones() -> None:
    with pytest.raises(
        InputError, match=r"unknown tracker.*comet.*known: wandb, mlflow, tensorboard"
    ):
        TrackingConfig.parse("wandb,comet", None, Path("."))
    assert TrackingConfig.parse("none", None, Path(".")).report_to == ()
    with pytest.raises(InputError, match="named twice"):
        TrackingConfig(("mlflow", "mlflow"))


def test_a_missing_tracker_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = dict(trackers.TRACKER_PACKAGES, wandb=("no_such_wandb_module", "wandb"))
    monkeypatch.setattr(trackers, "TRACKER_PACKAGES", missing)
    with pytest.raises(InputError, match=r"pip install 'rlscale\[wandb\]'"):
        require_packages(TrackingConfig(("mlflow", "wandb")))


def test_cli_refuses_an_unknown_tracker_before_loading_anything(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "rlscale", "train", "--model", "micro-xs"]
    cmd += ["--out", str(tmp_path / "r"), "--report-to", "comet"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=offline_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: unknown tracker(s) comet; known: wandb, mlflow, tensorboard"
    ]
    assert not (tmp_path / "r" / "steps.jsonl").exists()


# --- each tracker for real ------------------------------------------------------------------


@pytest.mark.slow
def test_trackers_get_each_step_once_through_a_resume_and_a_tracker_added_catches_up(
    tmp_path: Path,
) -> None:
    out, env = tmp_path / "run", offline_env(tmp_path)
    done = train(out, env, "--report-to", "wandb,mlflow")
    records = read_records(out / "steps.jsonl")
    assert [r["step"] for r in records] == [0, 1, 2, 3]
    # stdout is a pipe here: plain lines, not bars
    lines = done.stdout.splitlines()
    assert lines[0].endswith("run started")
    assert any(" run step=3/3 reward=" in line and " L=" in line for line in lines)
    assert "run: 3 steps" in lines[-1]

    # A crash after step 3 but before the step-3 checkpoint: the rerun resumes from step 2 and
    # re-trains step 3, which W&B and MLflow already have; TensorBoard, added now, gets steps
    # 0-2 from steps.jsonl first.
    (out / "summary.json").unlink()
    (out / "ckpt" / "step-000003.pt").unlink()
    sent = json.loads((out / "trackers.json").read_text())
    assert {name: s["last_step"] for name, s in sent.items()} == {"wandb": 3, "mlflow": 3}
    unfinished = {
        name: {k: v for k, v in s.items() if k != "summarised"} for name, s in sent.items()
    }
    (out / "trackers.json").write_text(json.dumps(unfinished))  # as a crash leaves it
    again = train(out, env, "--report-to", "wandb,mlflow,tensorboard")
    assert "note: passed over" in again.stdout and "run step=3/3" in again.stdout
    assert read_records(out / "steps.jsonl") == [
        r | {k: v for k, v in new.items() if k.endswith("_s")}
        for r, new in zip(records, read_records(out / "steps.jsonl"), strict=True)
    ]
    expected = {
        name: {r["step"]: float(r[col]) for r in records if r.get(col) is not None}
        for name, col in zip(
            SERIES, ["reward_mean", "eval_L", "flops_paper_cum", "prompts_seen"], strict=True
        )
    }
    check_wandb(out, records, expected)
    check_mlflow(out, records, expected)
    check_tensorboard(out, expected)


def check_wandb(out: Path, records: list[dict], expected: dict[str, dict[int, float]]) -> None:
    files = sorted((out / "wandb").glob("offline-run-*"))
    assert len(files) == 2  # the first attempt and the resumed one: the same run id
    run = read_wandb_runs(out / "wandb")["run"]
    assert {f.name.rsplit("-", 1)[1] for f in files} == {run.id}
    for name, values in expected.items():
        assert wandb_series(run, name) == pytest.approx(values)  # each step once
    assert run.config["N"] == records[0]["N"] and run.config["model"] == "micro-xs"
    assert run.config["seed"] == 0 and run.config["tau"] == 1
    assert run.config["grpo"]["prompts_per_step"] == 4
    assert run.summary["summary/L_final"] == pytest.approx(records[-1]["eval_L"])
    assert run.project == "rlscale"


def check_mlflow(out: Path, records: list[dict], expected: dict[str, dict[int, float]]) -> None:
    client = mlflow_client((out / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("rlscale")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "run" and run.info.status == "FINISHED"
    for name, values in expected.items():
        history = client.get_metric_history(run.info.run_id, name)
        assert sorted(m.step for m in history) == sorted(values)  # each step once
        assert {m.step: m.value for m in history} == pytest.approx(values)
    params = run.data.params
    assert params["N"] == str(records[0]["N"]) and params["grpo.group_size"] == "4"
    assert params["model"] == "micro-xs" and params["seed"] == "0" and params["tau"] == "1"
    assert run.data.metrics["summary/L_final"] == pytest.approx(records[-1]["eval_L"])


def check_tensorboard(out: Path, expected: dict[str, dict[int, float]]) -> None:
    scalars = tensorboard_scalars(out / "tensorboard")
    assert set(scalars["dir_name"]) == {"run"}
    for name, values in expected.items():
        rows = scalars[scalars["tag"] == name]
        assert sorted(rows["step"]) == sorted(values)  # 0-2 caught up, 3 trained: each once
        got = dict(zip(rows["step"], rows["value"], strict=True))
        assert got == pytest.approx(values, rel=1e-6)  # TensorBoard keeps float32
    text = tensorboard_text(out / "tensorboard")
    config = json.loads(
        "\n".join(line[4:] for line in text[text["tag"] == "config"]["value"].iloc[0].splitlines())
    )
    assert config["model"] == "micro-xs" and config["grpo"]["eval_every"] == 2


@pytest.mark.slow
def test_a_study_reports_each_run_in_its_group_and_its_fits_and_report_as_artifacts(
    tmp_path: Path,
) -> None:
    import yaml

    from rlscale.study import preset_study

    study = preset_study("micro-quick") | {"name": "tracked", "budget": {"steps": 3}}
    study |= {"report_to": ["wandb", "mlflow", "tensorboard"]}
    del study["reuse"]
    (tmp_path / "tracked.yaml").write_text(yaml.safe_dump(study))
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "rlscale", "study", "run", str(tmp_path / "tracked.yaml")]
    done = subprocess.run(
        [*cmd, "--out", str(out)], env=offline_env(tmp_path), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert len(runs) == 2
    # plain lines (stdout is a pipe): each run's start, a step line and its end, then tables
    events = [line for line in done.stdout.splitlines() if re.match(r"\d\d:\d\d:\d\d ", line)]
    for run in runs:
        mine = [line[9:] for line in events if line[9:].startswith(f"{run} ")]
        assert mine[0] == f"{run} started"
        assert any(line.startswith(f"{run} step=3/3 reward=") for line in mine)
        assert mine[-1].startswith(f"{run} finished L=")

    wandb_runs = read_wandb_runs(out / "wandb")
    assert set(wandb_runs) == {*runs, "tracked-analysis"}
    assert {r.group for r in wandb_runs.values()} == {"tracked"}
    for run in runs:
        steps = read_records(out / "runs" / run / "steps.jsonl")
        assert wandb_series(wandb_runs[run], "eval/eval_L") == pytest.approx(
            {r["step"]: r["eval_L"] for r in steps}
        )
    (artifact,) = wandb_runs["tracked-analysis"].artifacts
    assert {"fits/paper-C.json", "analysis.json", "report.html"} <= set(artifact["files"])

    client = mlflow_client((out / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "tracked"]
    found = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(found) == {*runs, "tracked-analysis"}
    analysis = found["tracked-analysis"].info.run_id
    assert {a.path for a in client.list_artifacts(analysis, "fits")} >= {"fits/paper-C.json"}
    assert "report.html" in {a.path for a in client.list_artifacts(analysis)}

    assert set(tensorboard_scalars(out / "tensorboard")["dir_name"]) == set(runs)


RACE = """
import sys, time
from pathlib import Path
from rlscale.integrations.trackers import MlflowTracker, TrackingConfig
import mlflow
folder, name = Path(sys.argv[1]), sys.argv[2]
(folder / f"ready-{name}").touch()
while not (folder / "go").exists():
    time.sleep(0.001)
tracker = MlflowTracker(TrackingConfig(("mlflow",), "raced", folder))
tracker.start(name, {}, {})
tracker.close(ok=True)
"""


def test_runs_starting_at_once_share_the_experiment_prepared_for_them(tmp_path: Path) -> None:
    # a file store checks a name is free and then adds it: four runs let loose at the same
    # moment would make up to four experiments named `raced` without the prepared one
    config = TrackingConfig(("mlflow",), "raced", tmp_path)
    env = offline_env(tmp_path) | {"MLFLOW_ALLOW_FILE_STORE": "true"}
    prepare_trackers(config)
    names = [f"run{i}" for i in range(4)]
    racers = [
        subprocess.Popen([sys.executable, "-c", RACE, str(tmp_path), name], env=env)
        for name in names
    ]
    while len(list(tmp_path.glob("ready-*"))) < len(racers):
        assert all(r.poll() is None for r in racers), "a racer died before the start"
    (tmp_path / "go").touch()
    assert [r.wait(timeout=120) for r in racers] == [0] * len(racers)

    client = mlflow_client((tmp_path / "mlruns").resolve().as_uri())
    raced = [e for e in client.search_experiments() if e.name == "raced"]
    assert len(raced) == 1
    runs = client.search_runs([raced[0].experiment_id])
    assert sorted(r.info.run_name for r in runs) == names


def test_a_study_refuses_trackers_for_verl_and_unknown_names(tmp_path: Path) -> None:
    from rlscale.study import parse_study, preset_study

    paper = preset_study("paper") | {"report_to": ["wandb"]}
    with pytest.raises(InputError, match=r"report_to: engine verl .*verl\.overrides"):
        parse_study(paper)
    cmd = [sys.executable, "-m", "rlscale", "study", "run", "--preset", "micro-quick"]
    cmd += ["--report-to", "mlflow,comet", "--out", str(tmp_path / "s")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=offline_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: report_to: unknown tracker(s) comet; known: wandb, mlflow, tensorboard"
    ]
    assert not (tmp_path / "s" / "runs").exists()
