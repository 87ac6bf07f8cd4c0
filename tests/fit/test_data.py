from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rlscale.errors import InputError
from rlscale.fit.data import load_fit_data
from rlscale.fit.estimator import LawFit


def table(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


GOOD = {
    "N": [1e9, 1e9, 1e9, 7e9, 7e9, 7e9],
    "C": [1e18, 2e18, 3e18, 7e18, 1.4e19, 2.1e19],
    "L": [0.9, 0.85, 0.8, 0.7, 0.6, 0.55],
}


def with_value(column: str, row: int, value: object) -> pd.DataFrame:
    df = pd.DataFrame(GOOD).astype(object)
    df.loc[row, column] = value
    return df


@pytest.mark.parametrize(
    ("df", "message"),
    [
        (pd.DataFrame(GOOD).drop(columns=["C"]), "train.csv: missing column 'C'"),
        (with_value("C", 2, "abc"), "train.csv: column 'C' row 3: non-numeric value 'abc'"),
        (with_value("L", 1, math.inf), "train.csv: column 'L' row 2: non-finite value inf"),
        (with_value("N", 4, None), "train.csv: column 'N' row 5: non-finite value None"),
        (with_value("L", 0, -1.2), "train.csv: column 'L' row 1: value -1.2 — L must be > 0"),
        (with_value("L", 5, 0.0), "train.csv: column 'L' row 6: value 0 — L must be > 0"),
        (with_value("C", 3, 0.0), "train.csv: column 'C' row 4: value 0 — must be > 0"),
        (with_value("N", 0, -5.0), "train.csv: column 'N' row 1: value -5 — must be > 0"),
    ],
)
def test_bad_input_is_one_line_naming_file_column_and_row(df: pd.DataFrame, message: str) -> None:
    with pytest.raises(InputError) as info:
        load_fit_data(df, "C", source="train.csv")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_zero_loss_is_fine_for_a_linear_fit() -> None:
    fd = load_fit_data(with_value("L", 5, 0.0), "C", space="linear")
    assert fd.L[5] == 0.0


def test_a_single_size_is_refused_for_the_paper_law() -> None:
    df = pd.DataFrame(GOOD)
    df["N"] = 1e9
    with pytest.raises(
        InputError, match="needs at least 2 model sizes in column 'N'; the data has 1"
    ):
        LawFit(law="paper").fit(df, source="one.csv")
    assert LawFit(law="loglinear").fit(df).converged_  # a single size is enough for loglinear


def test_fewer_points_than_parameters_is_refused() -> None:
    df = pd.DataFrame(GOOD).iloc[[0, 1, 3, 4]]
    with pytest.raises(
        InputError, match="4 points for 4 free parameters of law 'paper'; need at least 5"
    ):
        LawFit(law="paper").fit(df)


def test_pass1_column_becomes_loss() -> None:
    df = pd.DataFrame(GOOD).rename(columns={"L": "pass1"})
    fd = load_fit_data(df, "C")
    np.testing.assert_allclose(fd.L, 1 - np.array(GOOD["L"]))


def test_step_records_are_read_directly() -> None:
    """steps.jsonl columns: step 0 (X = 0) and steps without an evaluation are dropped."""
    records = pd.DataFrame(
        {
            "run": ["a"] * 4 + ["b"] * 4,
            "N": [1e6] * 4 + [4e6] * 4,
            "step": [0, 1, 2, 3] * 2,
            "flops_paper_cum": [0, 1e12, 2e12, 3e12, 0, 4e12, 8e12, 1.2e13],
            "prompts_seen": [0, 16, 32, 48] * 2,
            "eval_L": [0.9, None, 0.8, 0.7, 0.8, 0.7, None, 0.5],
        }
    )
    fd = load_fit_data(records, "C")
    assert fd.n == 4
    np.testing.assert_allclose(fd.L, [0.8, 0.7, 0.7, 0.5])
    assert fd.has_runs
    fd_d = load_fit_data(records, "D")
    np.testing.assert_allclose(fd_d.curves.X, [32, 48, 16, 48])
    assert fd_d.d_per_step == 16


def test_any_positive_loss_fits_in_log_space_and_a_pass_rate_stays_in_0_1() -> None:
    """A pretraining-style cross-entropy (nats, above 1) is a loss like any other in log space;
    `pass1` is a pass rate, so outside [0, 1] it is refused."""
    cross_entropy = pd.DataFrame(GOOD).assign(L=lambda d: 1.8 + 2 * d["L"])
    fd = load_fit_data(cross_entropy, "C", source="ce.csv")
    assert fd.L.max() > 1
    rates = pd.DataFrame(GOOD).rename(columns={"L": "pass1"}).astype(object)
    rates.loc[2, "pass1"] = 1.3
    with pytest.raises(InputError, match=r"row 3: value 1.3 — a pass rate must be in \[0, 1\]"):
        load_fit_data(rates, "C", source="rates.csv")
