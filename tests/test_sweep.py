"""The local executor: runs land in the store, done runs are skipped, a failing run is recorded
and does not stop the others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlscale.store import read_records
from rlscale.study import parse_study
from rlscale.sweep import run_dir, run_local, run_state, status_rows
from tests.conftest import WarmModel

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
