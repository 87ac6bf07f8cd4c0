"""`rlscale backtest`: exact figures on a tiny deterministic table, and both kinds of forecast."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.fit.estimator import FitConfig
from rlscale.fit.validate import backtest
from rlscale.simulate import preset, simulate

LAWS = {1e6: (0.8, 0.10), 1e7: (0.6, 0.15)}  # N: (a, k) of L = a·X^−k
EPS = 0.01


def _law(N: float, X: np.ndarray) -> np.ndarray:
    a, k = LAWS[N]
    return np.asarray(a * X**-k)


def _tiny_table() -> pd.DataFrame:
    """Two runs of 8 points at X = e^0 … e^7. The first four scatter around the law by
    ε·(+1, −1, −1, +1) in ln L, a pattern orthogonal to a line in ln X, so a fit of those four
    is the law itself. Of the last four, one per run is off the law (×2, ×0.5), the others on."""
    X = np.exp(np.arange(8.0))
    off = {1e6: (6, 2.0), 1e7: (5, 0.5)}
    rows = []
    for N, (where, factor) in off.items():
        L = _law(N, X) * np.exp(EPS * np.array([1, -1, -1, 1, 0, 0, 0, 0]))
        L[where] *= factor
        rows += [{"run": f"r{N:g}", "N": N, "C": x, "L": v} for x, v in zip(X, L, strict=True)]
    return pd.DataFrame(rows)


def _expected() -> dict[str, float]:
    """By hand: the fits forecast the law exactly; two of eight points are off by L·|f − 1|."""
    e1 = _law(1e6, np.exp(6.0)) * 1.0
    e2 = _law(1e7, np.exp(5.0)) * 0.5
    return {"mae": float(e1 + e2) / 8, "max_error": float(max(e1, e2)), "mae_1e6": float(e1) / 4}


def test_backtest_figures_on_a_tiny_table_are_exact() -> None:
    result = backtest(_tiny_table(), FitConfig(law="loglinear", x="C"), fractions=[0.5])
    (origin,) = result["prefix"]
    want = _expected()
    assert origin["n_train"] == 8 and origin["n_test"] == 8
    assert origin["mae"] == pytest.approx(want["mae"], rel=1e-9)
    assert origin["max_error"] == pytest.approx(want["max_error"], rel=1e-9)
    # the six points on the law lie in every band; the two off it (ln 2 away) in none
    for level in (50, 80, 95):
        assert origin[f"coverage{level}"] == 0.75
        assert origin["per_N"]["1000000"][f"coverage{level}"] == 0.75
    assert origin["per_N"]["1000000"]["mae"] == pytest.approx(want["mae_1e6"], rel=1e-9)
    assert result["pooled"]["prefix"]["mae"] == pytest.approx(want["mae"], rel=1e-9)
    assert result["leave_one_size_out"] == []
    assert "cannot forecast a size" in result["leave_one_size_out_skipped"]


def test_backtest_command_prints_and_writes_the_same_figures(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    _tiny_table().to_csv(path, index=False)
    out = tmp_path / "bt.json"
    args = ["backtest", str(path), "--law", "loglinear", "--fractions", "0.5", "--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["prefix"][0]["mae"] == pytest.approx(_expected()["mae"], rel=1e-9)
    assert "first 50%" in result.output and "75%" in result.output
    assert "leave-one-size-out: not made" in result.output


def test_backtest_command_refuses_a_fraction_outside_0_1(tmp_path: Path) -> None:
    path = tmp_path / "tiny.csv"
    _tiny_table().to_csv(path, index=False)
    result = CliRunner().invoke(app, ["backtest", str(path), "--fractions", "1.5"])
    assert result.exit_code != 0 and "--fractions must lie in (0, 1)" in result.output


def test_default_backtest_has_three_origins_and_every_size_left_out() -> None:
    data = simulate(replace(preset("paper-base"), steps=40, seed=3))
    result = backtest(data, FitConfig(law="paper_e_sat", x="C"))
    assert [r["fraction"] for r in result["prefix"]] == [0.1, 0.25, 0.5]
    held = [r["held_out"][0] for r in result["leave_one_size_out"]]
    assert held == sorted(float(n) for n in data["N"].unique())
    pooled = result["pooled"]["leave_one_size_out"]
    assert pooled["n_test"] == len(data)
    assert pooled["max_error"] == max(r["max_error"] for r in result["leave_one_size_out"])
    for r in result["prefix"] + result["leave_one_size_out"]:
        assert r["coverage50"] <= r["coverage80"] <= r["coverage95"]
        assert math.isfinite(r["mae"])
