"""`rlscale findings DATA`: the paper's findings judged on a long table, with clear errors."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.simulate import preset, simulate

runner = CliRunner()


def test_findings_on_a_simulated_paper_table_judge_saturation(tmp_path: Path) -> None:
    table = simulate(replace(preset("paper-base"), seeds=2))
    data = tmp_path / "curves.csv"
    table.to_csv(data, index=False)
    out = tmp_path / "findings.json"
    result = runner.invoke(app, ["findings", str(data), "--json", str(out)])
    assert result.exit_code == 0, result.output
    found = {f["key"]: f for f in json.loads(out.read_text())["findings"]}
    assert found["c"]["verdict"] == "holds"  # the published law: N0 13.8B inside 0.5B–72B
    assert found["d"]["verdict"] == "not identifiable" and "no data-reuse runs" in result.output
    assert "(c) rule:" in result.output


def test_findings_take_pass1_and_refuse_a_table_without_its_columns(tmp_path: Path) -> None:
    table = simulate(preset("paper-base"))
    data = tmp_path / "pass.csv"
    table.assign(pass1=1.0 - table["L"]).drop(columns=["L"]).to_csv(data, index=False)
    assert runner.invoke(app, ["findings", str(data), "--json", "-"]).exit_code == 0
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"N": [1e6], "step": [1], "L": [0.5]}).to_csv(bad, index=False)
    result = runner.invoke(app, ["findings", str(bad)])
    assert result.exit_code != 0
    assert "missing run, C, D" in result.output and "Traceback" not in result.output
    nan = tmp_path / "nan.csv"
    table.assign(L=table["L"].where(table.index != 3)).to_csv(nan, index=False)
    result = runner.invoke(app, ["findings", str(nan)])
    assert result.exit_code != 0 and "row 4: L is not a finite number" in result.output
