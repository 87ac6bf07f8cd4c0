"""steps.jsonl: durable appends, torn last lines, truncation to a checkpoint, refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from rlscale.errors import InputError, RlscaleError
from rlscale.store import append_record, read_records, truncate_records


def test_torn_last_line_is_dropped_and_truncation_keeps_one_record_a_step(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    for step in range(4):
        append_record(path, {"step": step, "L": 1.0 - step / 10})
    with open(path, "a") as fh:  # a crash mid-write, then a resumed run re-logged step 2
        fh.write(json.dumps({"step": 2, "L": 0.5}) + "\n" + '{"step": 4, "L": 0.')
    records = read_records(path)
    assert [r["step"] for r in records] == [0, 1, 2, 3, 2]
    kept = truncate_records(path, 2)
    assert [(r["step"], r["L"]) for r in kept] == [(0, 1.0), (1, 0.9), (2, 0.5)]
    assert read_records(path) == kept and path.read_text().endswith("\n")


def test_non_finite_metrics_are_refused_and_nothing_written(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    with pytest.raises(RlscaleError, match="step 3: non-finite loss_pg"):
        append_record(path, {"step": 3, "loss_pg": math.nan})
    assert not path.exists() or path.read_text() == ""


def test_a_bad_line_in_the_middle_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    path.write_text('{"step": 0}\nnot json\n{"step": 1}\n')
    with pytest.raises(InputError, match="line 2 is not JSON"):
        read_records(path)
