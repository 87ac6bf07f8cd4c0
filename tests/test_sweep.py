"""The local executor: runs land in the store, done runs are skipped, a failing run is recorded
and does not stop the others."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlscale.engines.native import run_local
from rlscale.errors import InputError
from rlscale.runstore import pending_runs, run_cost, run_dir, run_state
from rlscale.store import read_records
from rlscale.study import parse_study
from rlscale.sweep import execute, status_rows
from tests.conftest import WarmModel, local_ray_head

GRPO = {
    "prompts_per_step": 4, "group_size": 4, "eval_every": 2, "checkpoint_every": 2,
    "eval_problems": 4, "eval_samples": 1, "eval_greedy": False, "max_new_tokens": 16,
}  # fmt: skip


@pytest.mark.slow
def test_local_study_runs_skips_done_and_records_failures(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    study = {
        "name": "mini",
        "models": [str(warm_model.path), str(tmp_path / "no-such-model")],
        "train": str(warm_model.train),
        "holdout": str(warm_model.holdout),
        "budget": {"steps": 2},
        "grpo": GRPO,
        "reuse": {"taus": [2], "model": str(warm_model.path)},
    }
    spec = parse_study(study)
    outcomes = run_local(spec, tmp_path / "out", jobs=2)
    states = {o.run: o.state for o in outcomes}
    good = [r for r in spec.runs() if r.model == str(warm_model.path)]
    bad = next(r for r in spec.runs() if r.model != str(warm_model.path))
    assert [states[r.name] for r in good] == ["done", "done"]
    assert states[bad.name] == "failed"
    error = json.loads((run_dir(tmp_path / "out", bad) / "error.json").read_text())
    assert (
        error["exit_code"] == 2 and "not a ladder name or a model directory" in error["output_tail"]
    )
    for run in good:
        records = read_records(run_dir(tmp_path / "out", run) / "steps.jsonl")
        assert [r["step"] for r in records] == [0, 1, 2] and records[-1]["tau"] == run.tau
    stamps = {
        r.name: (run_dir(tmp_path / "out", r) / "steps.jsonl").stat().st_mtime_ns for r in good
    }
    again = run_local(spec, tmp_path / "out", jobs=2)  # done runs are not run again
    assert {o.run: o.state for o in again} == states
    assert all(
        (run_dir(tmp_path / "out", r) / "steps.jsonl").stat().st_mtime_ns == stamps[r.name]
        for r in good
    )
    rows = {row["run"]: row for row in status_rows(spec, tmp_path / "out")}
    assert rows[good[0].name]["step"] == 2 and rows[good[0].name]["L"] is not None
    assert rows[bad.name]["state"] == "failed" and rows[bad.name]["exit_code"] == 2
    assert run_state(tmp_path / "nothing") == "pending"


@pytest.fixture()
def ray_head() -> Iterator[str]:
    """A real Ray head on 127.0.0.1 (2 CPUs, no dashboard), stopped after the test."""
    with local_ray_head(dashboard=False) as (address, _):
        yield address


@pytest.mark.slow
def test_ray_executor_runs_a_mini_study_on_a_local_head(
    warm_model: WarmModel, tmp_path: Path, ray_head: str
) -> None:
    study = {
        "name": "mini-ray",
        "models": [str(warm_model.path)],
        "train": str(warm_model.train),
        "holdout": str(warm_model.holdout),
        "budget": {"steps": 2},
        "grpo": GRPO,
        "reuse": {"taus": [1, 2], "model": str(warm_model.path)},
        "executor": "ray",
    }
    spec = parse_study(study)
    assert len(spec.runs()) == 2
    changes: list[tuple[str, str]] = []
    outcomes = execute(
        spec,
        tmp_path / "out",
        "ray",
        address=ray_head,
        on_change=lambda r, s: changes.append((r, s)),
    )
    assert [o.state for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    for run in spec.runs():
        records = read_records(run_dir(tmp_path / "out", run) / "steps.jsonl")
        assert [r["step"] for r in records] == [0, 1, 2] and records[-1]["tau"] == run.tau
    assert {s for _, s in changes} == {"partial", "done"}
    again = execute(spec, tmp_path / "out", "ray", address=ray_head)  # nothing left to run
    assert [o.seconds for o in again] == [0.0, 0.0]


def test_ray_executor_without_an_address_starts_nothing(tmp_path: Path) -> None:
    spec = parse_study({"models": ["micro-xs"], "budget": {"steps": 1}})
    with pytest.raises(InputError, match="needs --address"):
        execute(spec, tmp_path, "ray", address=None)


def test_pending_runs_start_with_the_most_expensive(tmp_path: Path) -> None:
    study = {
        "models": ["micro-xs", str(tmp_path / "missing"), "micro-l", "micro-m"],
        "budget": {"steps": 3},
        "reuse": {"taus": [1, 4], "model": "micro-xs"},
    }
    spec = parse_study(study)
    order = [(r.model, r.tau) for r in pending_runs(spec, tmp_path)]
    assert order[:2] == [("micro-l", 1), ("micro-m", 1)]
    assert order[-1] == (str(tmp_path / "missing"), 1)  # unknown cost: last
    assert run_cost(spec.runs()[0]) < run_cost(spec.runs()[2])
