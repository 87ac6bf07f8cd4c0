from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlscale.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def curves(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "curves.csv"
    result = runner.invoke(app, ["simulate", "--preset", "paper-base", "--out", str(path)])
    assert result.exit_code == 0, result.output
    return path


def test_fit_writes_a_fitresult_and_prints_a_table(curves: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    result = runner.invoke(
        app,
        ["fit", str(curves), "--law", "paper", "--x", "C", "--json", str(out), "--prefix", "0.3"],
    )
    assert result.exit_code == 0, result.output
    assert "Kmax" in result.output and "converged" in result.output
    fit = json.loads(out.read_text())
    assert fit["law"] == "paper" and fit["converged"] is True
    assert fit["params"]["Kmax"] == pytest.approx(0.13304, rel=0.05)
    assert fit["validation"][0]["kind"] == "prefix"


def test_predict_and_plan_read_the_saved_fit(curves: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    runner.invoke(app, ["fit", str(curves), "--law", "paper_e_sat", "--json", str(out)])
    result = runner.invoke(
        app, ["predict", str(out), "--N", "7B,144B", "--x", "1e20", "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["predictions"]
    assert [r["N"] for r in rows] == [7e9, 144e9]
    assert all(r["lo"] < r["L"] < r["hi"] for r in rows)
    result = runner.invoke(
        app,
        [
            "plan",
            str(out),
            "--budget",
            "1e21",
            "--sizes",
            "7B",
            "--sizes",
            "72B,144B",
            "--json",
            "-",
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["best_N"] in (7e9, 72e9, 144e9) and len(plan["candidates"]) == 3
    human = runner.invoke(app, ["plan", str(out), "--budget", "1e21"])
    assert "k(N) reaches 50% of Kmax" in human.output


def test_fit_reads_stdin(curves: Path) -> None:
    result = runner.invoke(
        app, ["fit", "-", "--law", "loglinear", "--json", "-"], input=curves.read_text()
    )
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["per_N"]) == 7


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("N,C,L\n1e9,1e18,0.9\n1e9,2e18,nan\n")
    out = tmp_path / "fit.json"
    result = runner.invoke(app, ["fit", str(bad), "--json", str(out)])
    assert result.exit_code == 2
    assert f"error: {bad}: column 'L' row 2: non-finite value" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()
    result = runner.invoke(app, ["--debug", "fit", str(bad)])
    assert result.exit_code == 2 and "Traceback" in result.output


def test_unknown_law_and_bad_numbers_are_user_errors(curves: Path) -> None:
    result = runner.invoke(app, ["fit", str(curves), "--law", "chinchilla"])
    assert result.exit_code == 2 and "unknown law 'chinchilla'" in result.output
    result = runner.invoke(app, ["fit", str(curves), "--holdout-N", "big"])
    assert result.exit_code == 2 and "--holdout-N: not a number: 'big'" in result.output


def test_not_converged_fit_says_so_and_exits_3(curves: Path, tmp_path: Path) -> None:
    out = tmp_path / "fit.json"
    result = runner.invoke(
        app, ["fit", str(curves), "--law", "sigmoid", "--space", "linear", "--json", str(out)]
    )
    assert result.exit_code == 3
    assert "NOT CONVERGED" in result.output
    assert json.loads(out.read_text())["converged"] is False


def test_the_main_job_pipeline_runs_as_a_program() -> None:
    cmd = (
        f"{sys.executable} -m rlscale simulate --preset paper-base | "
        f"{sys.executable} -m rlscale fit - --law paper --x C"
    )
    done = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Kmax" in done.stdout and "converged" in done.stdout


def test_verify_counts_verdicts_and_writes_one_line_each(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    lines = [
        {"response": r"so \boxed{42}", "answer": "42"},
        {"response": r"\boxed{41}", "answer": "42"},
        {"response": "I do not know", "answer": "42"},
    ]
    pairs.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "verdicts.jsonl"
    result = runner.invoke(app, ["verify", str(pairs), "--json", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "correct 1, wrong 1, unparsable 1, timeout 0" in result.output
    verdicts = [json.loads(x) for x in out.read_text().splitlines()]
    assert [v["verdict"] for v in verdicts] == ["correct", "wrong", "unparsable"]
    assert [v["reward"] for v in verdicts] == [1.0, 0.0, 0.0]


def test_verify_names_the_bad_row(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"response": "1", "answer": "1"}\n{"response": "2"}\n')
    result = runner.invoke(app, ["verify", str(pairs)])
    assert result.exit_code == 2
    assert f"{pairs}: row 1: missing or non-text 'answer'" in result.output
