"""Outputs pinned, so that restructuring the code cannot change what users get: the `paper`
preset's verl commands byte for byte, and the StepRecords of the `micro-quick` study (seeded; the
wall-clock columns left out) value for value: every reward, count, FLOP and L exactly, and the
float32 statistics of an update (`UPDATE_STATS`) to 1e-4, because torch's CPU kernels sum in
another order on another instruction set (AVX2, AVX-512). When a change is meant to alter
them, regenerate the files with `RLSCALE_REGENERATE_GOLDEN=1 pytest tests/test_golden.py` and
say why in the commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("RLSCALE_REGENERATE_GOLDEN") == "1"
ENV = os.environ | {"OMP_NUM_THREADS": "1"}
TIMING = {"wall_s", "sample_s", "verify_s", "update_s", "eval_s"}
UPDATE_STATS = {"loss_pg", "grad_norm", "entropy", "kl"}  # float32 sums over a batch
PAPER_DATA = [
    "--train", "synth:arith?split=train&n=60000&seed=0",
    "--holdout", "synth:arith?split=holdout&n=500&seed=0",
]  # fmt: skip


def golden_text(name: str, text: str) -> str:
    """The golden file's text (first written from `text` when regenerating)."""
    path = GOLDEN / name
    if REGENERATE:
        path.write_text(text)
    assert path.exists(), f"{path} is missing: regenerate it (see this module's docstring)"
    return path.read_text()


def matches_golden(name: str, text: str) -> None:
    assert text == golden_text(name, text), f"{name} differs from its golden file"


def records_match_golden(name: str, records: list[dict]) -> None:
    """Each record as in the golden file: the same columns, the same values, and the update's
    float32 statistics within what kernels that sum in another order change."""
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    golden = [json.loads(line) for line in golden_text(name, text).splitlines()]
    assert len(records) == len(golden), f"{name}: {len(records)} records, golden {len(golden)}"
    for got, want in zip(records, golden, strict=True):
        where = f"{name}: {want['run']} step {want['step']}"
        assert sorted(got) == sorted(want), where
        exact = {k: v for k, v in want.items() if k not in UPDATE_STATS}
        assert {k: got[k] for k in exact} == exact, where
        stats = {k: v for k, v in want.items() if k in UPDATE_STATS}
        assert {k: got[k] for k in stats} == pytest.approx(stats, rel=1e-4, abs=1e-6), where


def rlscale(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "rlscale", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=1200)


def test_paper_preset_verl_commands_are_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "paper"
    done = rlscale("verl", "commands", "--preset", "paper", *PAPER_DATA, "--out", str(out))
    assert done.returncode == 0, done.stderr
    matches_golden("verl_paper_commands.txt", done.stdout.replace(str(out), "{OUT}"))


@pytest.mark.slow
def test_micro_quick_study_records_are_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "quick"
    done = rlscale("study", "run", "--preset", "micro-quick", "--out", str(out))
    assert done.returncode == 0, done.stderr
    records = []
    for steps in sorted((out / "runs").glob("*/steps.jsonl")):
        for line in steps.read_text().splitlines():
            records.append({k: v for k, v in json.loads(line).items() if k not in TIMING})
    records_match_golden("micro_quick_steps.jsonl", records)
    # the study folder is data for `rlscale backtest` (its τ = 1 runs, as its fits use)
    backtest = rlscale("backtest", str(out), "--json", "-")
    assert backtest.returncode == 0, backtest.stderr
    result = json.loads(backtest.stdout)
    assert [r["fraction"] for r in result["prefix"]] == [0.1, 0.25, 0.5]
    assert all("skipped" in r or r["n_test"] > 0 for r in result["prefix"])
