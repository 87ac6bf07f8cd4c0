"""Ingesting verl logs (file logger, console, W&B CSV) into StepRecords, from hand-written logs."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.engines.verl_logs import read_log, to_records
from rlscale.errors import InputError
from rlscale.fit.estimator import LawFit
from rlscale.report.build import from_data, render_html

TOKENS = 1_000_000.0  # perf/total_num_tokens per step


def accuracy(N: float, step: int) -> float:
    """A power law in compute, better for the larger model."""
    C = 6 * N * TOKENS * step
    return 1 - (0.9 if N < 1e9 else 0.7) * (C / 1e15) ** (-0.02 if N < 1e9 else -0.05)


def jsonl_line(N: float, step: int, source: str = "math") -> str:
    data = {
        "perf/total_num_tokens": TOKENS,
        "critic/score/mean": 0.1 * step,
        "response_length/mean": 300 + step,
        "actor/kl_loss": 0.001 * step,
        f"val-core/{source}/acc/mean@1": accuracy(N, step),
        "perf/mfu/actor": 0.99,  # verl's own FLOPs estimate: never used
    }
    return json.dumps({"step": step, "data": data})


def test_jsonl_with_a_resume_and_a_gap(tmp_path: Path) -> None:
    lines = [jsonl_line(5e8, s) for s in (1, 2, 3, 4)]
    lines += [jsonl_line(5e8, s) for s in (3, 4, 7, 8)]  # resumed at 3; steps 5–6 never logged
    again = json.loads(lines[4])  # the resumed run's step 3 scored differently
    again["data"]["critic/score/mean"] = 0.75
    lines[4] = json.dumps(again)
    log = tmp_path / "run.jsonl"
    log.write_text("\n".join(lines) + '\n{"step": 9, "da')  # torn last line: dropped
    result = to_records([read_log(log)], N=5e8, batch=512, run="r")
    assert [r["step"] for r in result.records] == [1, 2, 3, 4, 7, 8]
    assert result.gaps == [(5, 6)] and result.holdout == "math"
    assert result.records[-1]["flops_paper_cum"] == pytest.approx(6 * 5e8 * TOKENS * 6)
    assert result.records[-1]["prompts_seen"] == 8 * 512
    assert result.records[2]["reward_mean"] == 0.75  # the resumed (last) value is kept
    assert result.duplicates == 0  # one log: duplicates within it are merged when read
    assert result.records[0]["eval_L"] == pytest.approx(1 - accuracy(5e8, 1))


def test_console_lines_and_the_older_validation_key(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text(
        "INFO starting\n"
        "(TaskRunner) step:1 - perf/total_num_tokens:2000.0 - val/test_score/gsm8k:0.25 - "
        "critic/score/mean:0.125\n"
        "some other line\n"
        "step:2 - perf/total_num_tokens:3000 - val/test_score/gsm8k:0.5\n"
    )
    result = to_records([read_log(log)], N=1e6, batch=4, run="c")
    assert [r["eval_L"] for r in result.records] == [0.75, 0.5]
    assert result.records[1]["flops_paper_cum"] == pytest.approx(6e6 * 5000)
    assert result.holdout == "gsm8k" and result.gaps == []


def test_wandb_csv_export(tmp_path: Path) -> None:
    log = tmp_path / "export.csv"
    log.write_text(
        "_step,perf/total_num_tokens,val-core/aime/acc/mean@1,val-core/math/acc/mean@1\n"
        "1,100,0.1,0.3\n2,100,,0.4\n"
    )
    with pytest.raises(InputError, match="several validation sources"):
        to_records([read_log(log)], N=1e6, batch=2, run="w")
    result = to_records([read_log(log)], N=1e6, batch=2, run="w", holdout="aime")
    assert [r["eval_L"] for r in result.records] == [pytest.approx(0.9), None]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1, "data": {}}\nnot json\n{"step": 2, "data": {}}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl: line 2"):
        read_log(bad)


def test_ingested_runs_fit_and_report_like_a_native_study(tmp_path: Path) -> None:
    runner = CliRunner()
    outs = []
    for N in (5e8, 7e9):
        log = tmp_path / f"n{N:g}.jsonl"
        log.write_text("\n".join(jsonl_line(N, s) for s in range(1, 21)))
        out = tmp_path / f"n{N:g}.jsonl.steps.csv"
        result = runner.invoke(
            app, ["ingest", "verl", str(log), "--N", f"{N:g}", "--batch", "512", "--out", str(out)]
        )
        assert result.exit_code == 0, result.output
        outs.append(pd.read_csv(out))
    table = pd.concat(outs, ignore_index=True)
    data = tmp_path / "steps.csv"
    table.to_csv(data, index=False)
    fit = LawFit(law="loglinear", x="C").fit(table)  # StepRecords read directly
    k = {float(n): row["k"] for n, row in fit.per_N_.items()}
    assert k[5e8] == pytest.approx(0.02, rel=1e-6) and k[7e9] == pytest.approx(0.05, rel=1e-6)
    fit_path = tmp_path / "loglinear-C.json"
    fit_path.write_text(json.dumps(fit.summary()))
    page = render_html(from_data(data, [fit_path]))
    assert "L against C per size" in page and "<svg" in page


def test_ingest_with_the_training_file_sets_the_data_columns(tmp_path: Path) -> None:
    """A 4-step run of 2 prompts a step over a training file of 3 problems, each of which the
    run meets in file order: prompts seen 2, 4, 6, 8 → distinct 2, 3, 3, 3; passes 2/3 … 8/3."""
    log = tmp_path / "run.jsonl"
    log.write_text("\n".join(jsonl_line(5e8, s) for s in range(1, 5)))
    ids = ["a", "b", "c", "a", "b", "c", "a", "b"]
    train = tmp_path / "train.parquet"
    info = [{"id": i, "index": n} for n, i in enumerate(ids)]
    pd.DataFrame({"prompt": [f"problem {i}" for i in ids], "extra_info": info}).to_parquet(train)
    out = tmp_path / "steps.jsonl"
    args = ["ingest", "verl", str(log), "--N", "5e8", "--batch", "2", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--train", str(train)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["unique_prompts"] for r in records] == [2, 3, 3, 3]
    assert [r["epoch"] for r in records] == pytest.approx([2 / 3, 4 / 3, 2, 8 / 3])
    without = CliRunner().invoke(app, args)
    assert without.exit_code == 0 and "unique_prompts" not in out.read_text()
