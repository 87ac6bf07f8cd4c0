"""`rlscale simulate --family` and `rlscale fit DATA --by family`."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rlscale.cli import app

runner = CliRunner()
SIZES = "1.5B,3B,7B,14B,32B"


def simulate(path: Path, *options: str) -> Path:
    args = ["simulate", "--sizes", SIZES, "--noise", "0.01", "--out", str(path), *options]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return path


def concatenated(out: Path, *parts: Path) -> Path:
    pd.concat([pd.read_csv(p) for p in parts], ignore_index=True).to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("families")


@pytest.fixture(scope="module")
def base(folder: Path) -> Path:
    return simulate(folder / "base.csv", "--family", "base", "--seed", "1")


def test_simulate_writes_a_family_column_a_shift_and_set_parameters(
    base: Path, folder: Path
) -> None:
    plain = pd.read_csv(simulate(folder / "plain.csv", "--seed", "1"))
    table = pd.read_csv(base)
    assert set(table["family"]) == {"base"} and "family" not in plain.columns
    assert table["run"].str.startswith("base-").all()
    shifted = pd.read_csv(
        simulate(folder / "s.csv", "--family", "x", "--shift-E", "-0.05", "--seed", "1")
    )
    ratio = shifted["L_true"] / table["L_true"]
    assert ratio.to_numpy() == pytest.approx(10**-0.05)
    steeper = pd.read_csv(simulate(folder / "k.csv", "--set", "Kmax=0.2", "--set", "N0=13B"))
    assert (steeper["L_true"] < plain["L_true"]).all()
    result = runner.invoke(app, ["simulate", "--set", "E=1"])
    assert result.exit_code == 2 and "cannot set 'E'" in result.output


@pytest.mark.parametrize(
    ("options", "verdict"),
    [
        (["--shift-E", "-0.05"], "shared"),
        (["--shift-E", "-0.05", "--set", "Kmax=0.1276", "--set", "N0=17.27B"], "differ"),
    ],
)
def test_fit_by_family_compares_the_families(
    base: Path, folder: Path, options: list[str], verdict: str
) -> None:
    other = simulate(folder / f"{verdict}.csv", "--family", "instruct", "--seed", "2", *options)
    data = concatenated(folder / f"two-{verdict}.csv", base, other)
    out = folder / f"{verdict}.json"
    result = runner.invoke(app, ["fit", str(data), "--by", "family", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "base/paper-C" in result.output and "instruct/paper-C" in result.output
    assert f"verdict {verdict}" in result.output
    saved = json.loads(out.read_text())
    assert list(saved) == ["base/paper-C", "instruct/paper-C", "joint"]
    assert saved["joint"]["verdict"] == verdict
    assert saved["base/paper-C"]["law"] == "paper"


def test_fit_by_family_validates_each_family(base: Path, folder: Path) -> None:
    other = simulate(folder / "v.csv", "--family", "instruct", "--seed", "3")
    data = concatenated(folder / "two-v.csv", base, other)
    result = runner.invoke(
        app, ["fit", str(data), "--by", "family", "--prefix", "0.5", "--json", "-"]
    )
    assert result.exit_code == 0, result.output
    saved = json.loads(result.output)
    assert all(saved[k]["validation"][0]["kind"] == "prefix" for k in saved if k != "joint")


def test_a_table_without_a_family_column_is_a_one_line_error(folder: Path) -> None:
    plain = simulate(folder / "no-family.csv")
    out = folder / "none.json"
    result = runner.invoke(app, ["fit", str(plain), "--by", "family", "--json", str(out)])
    assert result.exit_code == 2
    assert "no column 'family'" in result.output and len(result.output.splitlines()) == 1
    assert not out.exists()
