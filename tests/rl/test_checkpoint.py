"""Checksummed checkpoints: a damaged newest one is passed over (and said so), none intact is an
error naming the files, and a resumed run from a fallback repeats the uninterrupted one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from rlscale.errors import InputError, RlscaleError
from rlscale.rl.checkpoint import LATEST, load_latest, save_checkpoint
from rlscale.store import read_records
from tests.conftest import WarmModel
from tests.rl.test_trainer import SMALL, TIMING, small_run


def state(step: int) -> dict[str, Any]:
    return {"step": step, "weights": torch.full((4096,), float(step))}


def three_checkpoints(folder: Path) -> None:
    for step in (2, 4, 6):
        save_checkpoint(folder, step, state(step), keep=2)


def overwrite_middle(path: Path, count: int = 400) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + count] = bytes((7 * i + 1) % 256 for i in range(count))
    path.write_bytes(bytes(data))


def test_newest_intact_checkpoint_is_loaded_and_two_are_kept(tmp_path: Path) -> None:
    three_checkpoints(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("step-*")) == [
        "step-000004.json", "step-000004.pt", "step-000006.json", "step-000006.pt",
    ]  # fmt: skip
    resumed = load_latest(tmp_path)
    assert resumed is not None and resumed.state["step"] == 6 and resumed.skipped == ()
    assert load_latest(tmp_path / "none") is None


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (overwrite_middle, "checksum mismatch"),
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), "checksum mismatch"),
        (lambda p: p.write_bytes(b""), "checksum mismatch"),
        (lambda p: p.unlink(), "missing"),
    ],
)
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(
    tmp_path: Path, damage: Any, why: str
) -> None:
    three_checkpoints(tmp_path)
    damage(tmp_path / "step-000006.pt")
    resumed = load_latest(tmp_path)
    assert resumed is not None and resumed.state["step"] == 4
    assert torch.equal(resumed.state["weights"], state(4)["weights"])
    assert len(resumed.skipped) == 1 and "step-000006.pt" in resumed.skipped[0]
    assert why in resumed.skipped[0]


def test_a_garbled_pointer_is_passed_over_for_the_checkpoints_own_entries(tmp_path: Path) -> None:
    three_checkpoints(tmp_path)
    (tmp_path / LATEST).write_text('{"step": 6, "fi')
    resumed = load_latest(tmp_path)
    assert resumed is not None and resumed.state["step"] == 6
    assert [LATEST in s for s in resumed.skipped] == [True]


def test_no_intact_checkpoint_is_an_input_error_naming_each_file(tmp_path: Path) -> None:
    three_checkpoints(tmp_path)
    for step in (4, 6):
        overwrite_middle(tmp_path / f"step-{step:06d}.pt")
    with pytest.raises(InputError, match=r"no checkpoint is intact") as caught:
        load_latest(tmp_path)
    assert "step-000004.pt" in str(caught.value) and "step-000006.pt" in str(caught.value)
    (tmp_path / LATEST).write_text(json.dumps({"step": 6, "file": "step-000006.pt"}))
    for entry in tmp_path.glob("step-*.json"):
        entry.unlink()
    with pytest.raises(InputError, match=r"written before checksums"):
        load_latest(tmp_path)


def test_resume_past_a_damaged_checkpoint_repeats_the_uninterrupted_run(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    """The probe's case: the newest checkpoint overwritten in the middle, the run's end lost; the
    resumed run says so, falls back to the checkpoint before, and ends with the same records."""
    straight, damaged = tmp_path / "straight", tmp_path / "damaged"
    first = small_run(warm_model, straight, run="r")
    shutil.copytree(straight, damaged)
    shutil.rmtree(damaged / "final")
    (damaged / "summary.json").unlink()
    overwrite_middle(damaged / "ckpt" / f"step-{SMALL.steps:06d}.pt")
    (damaged / "ckpt" / ".step-000008.pt.abc.tmp").write_bytes(b"half a write")
    notes: list[str] = []
    again = small_run(warm_model, damaged, run="r", on_note=notes.append)
    assert any("checksum mismatch" in n for n in notes)
    assert any("step-000004.pt" in n for n in notes)

    def strip(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in rs]

    assert strip(again) == strip(first) == strip(read_records(damaged / "steps.jsonl"))
    assert not list((damaged / "ckpt").glob(".*.tmp"))


def test_a_first_checkpoint_cut_short_before_its_entry_means_start_again(tmp_path: Path) -> None:
    save_checkpoint(tmp_path, 2, state(2))
    for entry in (tmp_path / LATEST, tmp_path / "step-000002.json"):
        entry.unlink()  # killed after the file, before its entry and the pointer
    assert load_latest(tmp_path) is None


def test_stale_temp_files_go_and_a_temp_directory_is_left_to_its_writer(tmp_path: Path) -> None:
    from rlscale.store import remove_stale_temps

    (tmp_path / ".steps.jsonl.x1.tmp").write_text("{")
    (tmp_path / ".final.tmp").mkdir()
    remove_stale_temps(tmp_path)
    assert not (tmp_path / ".steps.jsonl.x1.tmp").exists() and (tmp_path / ".final.tmp").is_dir()


def test_resume_refuses_a_changed_prompt_order(warm_model: WarmModel, tmp_path: Path) -> None:
    """Same spec, but the training file now holds its problems in another order: the
    checkpoint's prompt sequence no longer matches, and resuming would silently train on
    another curriculum."""
    out, cfg = tmp_path / "run", SMALL.replace(steps=2)
    small_run(warm_model, out, cfg, run="r")
    shutil.rmtree(out / "final")  # as if killed before the end
    (out / "summary.json").unlink()
    original = warm_model.train.read_text()
    try:
        lines = original.splitlines()
        warm_model.train.write_text("".join(line + "\n" for line in reversed(lines)))
        with pytest.raises(RlscaleError, match="prompts, or their order, differ"):
            small_run(warm_model, out, cfg, run="r")
    finally:
        warm_model.train.write_text(original)


def test_a_run_resumes_with_another_number_of_verifier_workers(
    warm_model: WarmModel, tmp_path: Path
) -> None:
    out, cfg = tmp_path / "run", SMALL.replace(steps=2)
    first = small_run(warm_model, out, cfg, run="r")
    shutil.rmtree(out / "final")
    (out / "summary.json").unlink()
    again = small_run(warm_model, out, cfg.replace(verify_workers=2), run="r")
    strip = [{k: v for k, v in r.items() if k not in TIMING} for r in first]
    assert [{k: v for k, v in r.items() if k not in TIMING} for r in again] == strip
